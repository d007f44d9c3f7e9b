"""The pure parts of `make images` (devtools/images/): what an image's inputs are, the digest that
decides a rebuild, the index the node reads, and the refs the chart and the operator name.
Building needs root and buildah: e2e/test_images.py checks the built images (-m images)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from devtools import images

from swg_operator.api.settings import Images

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "swg-operator"

DOCKERFILE = """# Build context: the repository root.
ARG DEBIAN_IMAGE=debian:trixie-slim
FROM ${DEBIAN_IMAGE} AS build
COPY images/demo/requirements.lock /src/requirements.lock
COPY pyproject.toml README.md ./
COPY --chmod=0755 operator/ operator/
FROM ${DEBIAN_IMAGE}
COPY --from=build /wheels /wheels
"""


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1.2.3"\n')
    (tmp_path / "README.md").write_text("demo\n")
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "notes.md").write_text("not an input\n")
    package = tmp_path / "operator" / "pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("X = 1\n")
    image = tmp_path / "images" / "demo"
    image.mkdir(parents=True)
    (image / "Dockerfile").write_text(DOCKERFILE)
    (image / "requirements.lock").write_text("a==1 --hash=sha256:" + "0" * 64 + "\n")
    return tmp_path


def _digest(repo: Path, *, base: str = "sha256:base", builder: str = "buildah 1") -> str:
    [spec] = images.specs(["demo"], repo=repo)
    return images.inputs_digest(spec, base_id=base, builder=builder, repo=repo)


def test_copy_sources_skip_stages_and_flags() -> None:
    assert images.copy_sources(DOCKERFILE) == [
        "images/demo/requirements.lock",
        "pyproject.toml",
        "README.md",
        "operator/",
    ]


def test_spec_of_a_repository_root_context(repo: Path) -> None:
    [spec] = images.specs(["demo"], repo=repo)
    assert spec.ref == "ghcr.io/swg-operator/demo:1.2.3"
    assert spec.context == repo
    assert spec.build_args == {"VERSION": "1.2.3"}
    rel = sorted(p.relative_to(repo).as_posix() for p in spec.inputs())
    assert rel == [
        "README.md",
        "images/demo/Dockerfile",
        "images/demo/requirements.lock",
        "operator/pkg/__init__.py",
        "operator/pkg/mod.py",
        "pyproject.toml",
    ]


@pytest.mark.parametrize(
    "change",
    [
        "images/demo/Dockerfile",
        "images/demo/requirements.lock",
        "operator/pkg/mod.py",
        "README.md",
    ],
)
def test_digest_changes_when_an_input_changes(repo: Path, change: str) -> None:
    before = _digest(repo)
    assert _digest(repo) == before, "not deterministic"
    with (repo / change).open("a") as handle:
        handle.write("# changed\n")
    assert _digest(repo) != before


def test_digest_changes_with_a_new_file_the_mode_the_base_and_the_builder(repo: Path) -> None:
    before = _digest(repo)
    assert _digest(repo, base="sha256:other") != before
    assert _digest(repo, builder="buildah 2") != before
    (repo / "operator" / "pkg" / "mod.py").chmod(0o755)
    assert _digest(repo) != before
    (repo / "operator" / "pkg" / "mod.py").chmod(0o644)
    assert _digest(repo) == before
    (repo / "operator" / "pkg" / "new.py").write_text("")
    assert _digest(repo) != before


def test_digest_ignores_what_the_build_does_not_read(repo: Path) -> None:
    before = _digest(repo)
    (repo / "docs" / "notes.md").write_text("changed\n")
    cache = repo / "operator" / "pkg" / "__pycache__"
    cache.mkdir()
    (cache / "mod.cpython-313.pyc").write_bytes(b"\0")
    (repo / "operator" / "swg.egg-info").mkdir()
    (repo / "operator" / "swg.egg-info" / "PKG-INFO").write_text("x")
    assert _digest(repo) == before


def test_digest_changes_with_the_version(repo: Path) -> None:
    before = _digest(repo)
    (repo / "pyproject.toml").write_text('[project]\nname = "demo"\nversion = "1.2.4"\n')
    assert _digest(repo) != before


def test_index_round_trip(tmp_path: Path) -> None:
    archive = tmp_path / "proxy-0123.tar"
    archive.write_bytes(b"")
    entry = images.Entry(
        ref="ghcr.io/swg-operator/proxy:0.1.0",
        name="proxy",
        archive=str(archive),
        image_id="sha256:" + "a" * 64,
        inputs_digest="b" * 64,
        built_at="2026-12-04T00:00:00Z",
        build_seconds=40.1,
        revision="abc",
    )
    index = images.Index(images={entry.ref: entry}, base={"ref": images.BASE_REF})
    path = tmp_path / "images" / "index.json"
    images.write_index(path, index)
    again = images.read_index(path)
    assert again == index
    data = json.loads(path.read_text())
    assert data["version"] == images.INDEX_VERSION
    assert data["images"][entry.ref]["archive"] == str(archive)
    assert data["images"][entry.ref]["format"] == "docker-archive"
    assert images.is_current(again.images[entry.ref], "b" * 64)
    assert not images.is_current(again.images[entry.ref], "c" * 64)
    archive.unlink()
    assert not images.is_current(again.images[entry.ref], "b" * 64)
    assert not images.is_current(None, "b" * 64)


def test_missing_or_foreign_index_is_empty(tmp_path: Path) -> None:
    assert images.read_index(tmp_path / "absent.json") == images.Index()
    (tmp_path / "old.json").write_text(json.dumps({"version": 0, "images": {"x": {}}}))
    assert images.read_index(tmp_path / "old.json") == images.Index()


def test_image_id_of_a_docker_archive(tmp_path: Path) -> None:
    config = "c" * 64
    archive = tmp_path / "image.tar"
    manifest = json.dumps([{"Config": f"{config}.json", "RepoTags": ["x:1"], "Layers": []}])
    with tarfile.open(archive, "w") as tar:
        data = manifest.encode()
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    assert images.archive_image_id(archive) == f"sha256:{config}"


def test_refs_are_the_ones_the_chart_and_the_operator_settings_name() -> None:
    built = {spec.name: spec.ref for spec in images.specs()}
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    tag = chart["appVersion"]
    assert built["operator"] == f"{values['image']['repository']}:{tag}"
    for name, image in values["dataplane"]["images"].items():
        assert built[name] == f"{image['repository']}:{tag}"
    defaults = Images()
    assert {built["proxy"], built["antivirus"], built["logstore"]} == {
        defaults.proxy,
        defaults.antivirus,
        defaults.logstore,
    }
    assert defaults.pull_policy == values["dataplane"]["pullPolicy"] == "IfNotPresent"
    assert values["image"]["pullPolicy"] == "IfNotPresent"


@pytest.mark.parametrize("spec", images.specs(), ids=lambda s: s.name)
def test_every_input_is_in_the_build_context(spec: images.ImageSpec) -> None:
    """What the digest hashes is what the builder is given: the ignore file lets it through."""
    if spec.ignorefile is None:
        assert spec.context == spec.dockerfile.parent
        return
    allowed = [
        line[1:].rstrip("/")
        for line in spec.ignorefile.read_text().splitlines()
        if line.startswith("!")
    ]
    for path in spec.inputs()[2:]:
        rel = path.relative_to(spec.context).as_posix()
        assert any(rel == a or rel.startswith(a + "/") for a in allowed), rel


def _layer(files: dict[str, bytes | None]) -> bytes:
    """A layer tar: path -> content (None: a directory)."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            if content is None:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
            else:
                info.size = len(content)
                info.mode = 0o644
                tar.addfile(info, io.BytesIO(content))
    return out.getvalue()


def test_unpack_applies_layers_and_whiteouts(tmp_path: Path) -> None:
    layers = {
        "l1.tar": _layer(
            {
                "etc": None,
                "etc/keep": b"1",
                "etc/gone": b"x",
                "opaque": None,
                "opaque/old": b"x",
                "tmp": None,
                "tmp/packages.txt": b"x",
            }
        ),
        "l2.tar": _layer(
            {
                "etc/.wh.gone": b"",
                "opaque/.wh..wh..opq": b"",
                "opaque/new": b"2",
                "tmp/.wh.packages.txt": b"",
                "etc/keep": b"3",
            }
        ),
    }
    manifest = [{"Config": "c.json", "RepoTags": ["x:1"], "Layers": list(layers)}]
    archive = tmp_path / "image.tar"
    with tarfile.open(archive, "w") as tar:
        for name, data in {**layers, "manifest.json": json.dumps(manifest).encode()}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    root = tmp_path / "root"
    images.unpack(archive, root)
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    assert files == ["etc/keep", "opaque/new"]
    assert (root / "etc" / "keep").read_bytes() == b"3"
    assert (root / "tmp").is_dir()


def test_documentation_is_no_input_of_any_image() -> None:
    """Editing the README or docs/ must not rebuild images (the wheels leave the README out)."""
    for spec in images.specs():
        inputs = {p.relative_to(REPO_ROOT).as_posix() for p in spec.inputs()}
        assert "README.md" not in inputs, spec.name
        assert not any(p.startswith("docs/") for p in inputs), spec.name
