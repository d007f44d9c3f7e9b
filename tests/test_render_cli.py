"""`swg-operator render`: files on disk, exit codes and messages."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from render_support import EXAMPLES, SAMPLE_CATALOGUE
from swg_operator.cli import main


def test_render_writes_one_file_per_object_and_the_config(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "full"
    assert main(["render", str(EXAMPLES / "full.yaml"), "--output-dir", str(out)]) == 0
    manifests = sorted((out / "manifests").iterdir())
    documents = [yaml.safe_load(path.read_text()) for path in manifests]
    assert documents[0]["kind"] == "Namespace"
    assert [p.name[:3] for p in manifests] == [f"{i:02d}-" for i in range(len(manifests))]
    proxy_config = next(d for d in documents if d["metadata"]["name"] == "proxy-config")
    squid_conf = (out / "config" / "squid.conf").read_text()
    assert proxy_config["data"]["squid.conf"] == squid_conf
    assert "Rendered tenant example-corp (namespace swg-example-corp)" in capsys.readouterr().out


def test_render_refuses_to_mix_with_an_earlier_render(tmp_path: Path) -> None:
    tenant = str(EXAMPLES / "minimal.yaml")
    assert main(["render", tenant, "--output-dir", str(tmp_path)]) == 0
    stale = tmp_path / "manifests" / "99-stale.yaml"
    stale.write_text("stale")
    assert main(["render", tenant, "--output-dir", str(tmp_path)]) == 2
    assert stale.exists()
    assert main(["render", tenant, "--output-dir", str(tmp_path), "--overwrite"]) == 0
    assert not stale.exists()


def test_render_lifecycle_and_settings(tmp_path: Path) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("proxyServiceType: ClusterIP\n")
    out = tmp_path / "out"
    code = main(
        [
            "render",
            str(EXAMPLES / "minimal.yaml"),
            "--output-dir",
            str(out),
            "--lifecycle",
            "Suspended",
            "--settings",
            str(settings),
            "--catalogue",
            str(SAMPLE_CATALOGUE),
        ]
    )
    assert code == 0
    proxy = yaml.safe_load(next((out / "manifests").glob("*-deployment-proxy.yaml")).read_text())
    assert proxy["spec"]["replicas"] == 0
    service = yaml.safe_load(next((out / "manifests").glob("*-service-proxy.yaml")).read_text())
    assert service["spec"]["type"] == "ClusterIP"


def _tenant_file(tmp_path: Path, spec: dict[str, object], name: str = "bad") -> Path:
    path = tmp_path / "tenant.yaml"
    document = {
        "apiVersion": "swg.dev/v1alpha1",
        "kind": "SecureWebGateway",
        "metadata": {"name": name},
        "spec": spec,
    }
    path.write_text(yaml.safe_dump(document))
    return path


BASE = {
    "serviceCode": "SWG-0000009",
    "sizing": {"endpoints": 5, "requestsPerSecond": 5},
    "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
}


def test_an_invalid_spec_is_reported_by_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {**BASE, "clients": {"allowedCIDRs": ["192.0.2.1/24"]}}
    assert (
        main(["render", str(_tenant_file(tmp_path, spec)), "--output-dir", str(tmp_path / "o")])
        == 1
    )
    assert "spec.clients.allowedCIDRs[0]" in capsys.readouterr().err
    assert not (tmp_path / "o" / "manifests").exists()


def test_an_unknown_category_is_reported_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = {**BASE, "urlFiltering": {"blockedCategories": ["no-such"]}}
    assert (
        main(["render", str(_tenant_file(tmp_path, spec)), "--output-dir", str(tmp_path / "o")])
        == 1
    )
    err = capsys.readouterr().err
    assert "UnknownCategory" in err
    assert "spec.urlFiltering.blockedCategories[0]" in err


@pytest.mark.parametrize("name", ["Upper", "with.dot", "x" * 60])
def test_a_tenant_name_that_cannot_name_a_namespace_is_refused(
    tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _tenant_file(tmp_path, BASE, name=name)
    assert main(["render", str(path), "--output-dir", str(tmp_path / "o")]) == 1
    assert "metadata.name" in capsys.readouterr().err


def test_not_a_tenant_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "cm.yaml"
    path.write_text("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n")
    assert main(["render", str(path), "--output-dir", str(tmp_path / "o")]) == 1
    assert "expected apiVersion swg.dev/v1alpha1" in capsys.readouterr().err
