"""Command-line conventions: `-o` is an output format in every command (a path is --output-dir
or --file), and errors name the file and say what to do."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from swg_operator.cli import build_parser, main
from swg_operator.commands import kubectl
from swg_operator.commands.status import format_text

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "examples" / "tenants" / "minimal.yaml"
FORMATS = {"text", "wide", "json", "yaml", "markdown", "ndjson", "tar"}


# Commands without an output format: `run` is the operator itself (it logs), `completion` prints
# a shell script.
NO_FORMAT = {"swg-operator run", "swg-operator completion"}
# The only names an option that takes a path written to may have.
OUTPUT_PATH_OPTIONS = {"--file", "--output-dir", "--public-key-out"}


def parsers(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, Any]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}")


def leaves(root: argparse.ArgumentParser, prog: str) -> list[tuple[str, argparse.ArgumentParser]]:
    """Every command that runs something: the parsers that set a handler."""
    return [(n, p) for n, p in parsers(root, prog) if p.get_default("handler") is not None]


def kubectl_parser() -> argparse.ArgumentParser:
    return kubectl.build_parser()


ROOTS = [(build_parser(), "swg-operator"), (kubectl.build_parser(), "kubectl swg")]


@pytest.mark.parametrize(("root", "prog"), ROOTS, ids=["swg-operator", "kubectl"])
def test_every_o_is_an_output_format_with_json(root: argparse.ArgumentParser, prog: str) -> None:
    seen = 0
    for name, parser in parsers(root, prog):
        for action in parser._actions:
            if "-o" in action.option_strings:
                seen += 1
                assert action.choices is not None, f"{name}: -o takes a path"
                assert action.type is None, f"{name}: -o converts its value ({action.type})"
                assert action.nargs is None, name
                assert set(action.choices) <= FORMATS | {"table"}, name
                assert "json" in action.choices, f"{name}: -o json is missing"
                assert action.dest in ("output", "form"), name
                assert action.option_strings == ["-o", "--output"], name
    assert seen >= 2


@pytest.mark.parametrize(("root", "prog"), ROOTS, ids=["swg-operator", "kubectl"])
def test_every_command_that_prints_data_takes_o(root: argparse.ArgumentParser, prog: str) -> None:
    commands = leaves(root, prog)
    assert len(commands) >= (10 if prog == "swg-operator" else 3)
    for name, parser in commands:
        has_o = any("-o" in action.option_strings for action in parser._actions)
        assert has_o or name in NO_FORMAT, f"{name}: no -o output format"


@pytest.mark.parametrize(("root", "prog"), ROOTS, ids=["swg-operator", "kubectl"])
def test_paths_written_to_are_file_or_output_dir_never_o(
    root: argparse.ArgumentParser, prog: str
) -> None:
    """A path option is never -o or --output: output files are --file, directories
    --output-dir (and the receipt key's --public-key-out); inputs are named by what they are."""
    for name, parser in parsers(root, prog):
        for action in parser._actions:
            takes_path = action.type is Path or (action.metavar or "") in ("FILE", "DIR", "PATH")
            if not takes_path or not action.option_strings:
                continue
            assert not {"-o", "--output", "--out"} & set(action.option_strings), name
            if "out" in action.dest or action.dest == "file":
                assert set(action.option_strings) <= OUTPUT_PATH_OPTIONS, (name, action.dest)


def test_the_kubectl_plugin_has_every_tenant_admin_command() -> None:
    names = {name for name, _ in leaves(kubectl.build_parser(), "kubectl swg")}
    assert names == {
        "kubectl swg logs",
        "kubectl swg status",
        "kubectl swg notices",
        "kubectl swg evidence",
    }


def test_evidence_is_a_command_of_both_programs() -> None:
    for root, prog in ROOTS:
        names = [name for name, _ in parsers(root, prog)]
        assert any(name.endswith("evidence") for name in names), names
    args = build_parser().parse_args(["evidence", "acme", "-o", "markdown"])
    assert (args.tenant, args.output) == ("acme", "markdown")


def test_render_on_a_missing_file_names_it_and_says_what_to_do(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.yaml"
    assert main(["render", str(missing), "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err
    assert "[Errno" not in err
    assert "no such file or directory; check the path" in err


def test_render_summary_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert main(["render", str(EXAMPLE), "--output-dir", str(out), "-o", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["namespace"] == f"swg-{summary['tenant']}"
    assert all(Path(p).is_file() for p in summary["manifests"] + summary["config"])
    assert summary["manifests"]


def test_crd_as_json_and_to_a_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd", "-o", "json"]) == 0
    crd = json.loads(capsys.readouterr().out)
    assert crd["kind"] == "CustomResourceDefinition"
    target = tmp_path / "missing-dir" / "crd.yaml"
    assert main(["crd", "--file", str(target)]) == 1
    assert f"{target}: could not write the CRD" in capsys.readouterr().err


def test_kubectl_get_wide_shows_the_proxy_endpoint_and_ready_message() -> None:
    crd = yaml.safe_load((REPO / "crds" / "swg.dev_securewebgateways.yaml").read_text())
    columns = {c["name"]: c for c in crd["spec"]["versions"][0]["additionalPrinterColumns"]}
    assert columns["Proxy"]["jsonPath"] == ".status.proxyEndpoint"
    assert columns["Proxy"]["priority"] == 1
    assert columns["Message"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].message'
    assert columns["Message"]["priority"] == 1
    assert "priority" not in columns["Ready"]


def test_sizing_and_catalogue_speak_yaml_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sizing", "--endpoints", "50", "--rps", "20", "-o", "yaml"]) == 0
    assert yaml.safe_load(capsys.readouterr().out)["inputs"]["endpoints"] == 50
    assert main(["catalogue", "check", str(REPO / "examples" / "catalogue"), "-o", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["errors"] == 0
    assert report["categories"]


def test_sizing_on_a_missing_capacity_file_names_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "capacity.yaml"
    assert main(["sizing", "--endpoints", "5", "--rps", "2", "--capacity", str(missing)]) == 1
    err = capsys.readouterr().err
    assert f"{missing}: could not be read: no such file or directory" in err


def test_run_refuses_a_missing_settings_file_by_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "settings.json"
    assert main(["run", "--settings", str(missing)]) == 2
    assert f"{missing}: could not be read (--settings)" in capsys.readouterr().err


def test_run_names_the_invalid_setting(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = tmp_path / "settings.yaml"
    settings.write_text("images:\n  pullSecrets: ['Not A Name']\n")
    assert main(["run", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err
    assert f"{settings}: invalid operator settings: images.pullSecrets.0" in err


def test_status_wide_adds_the_observed_generation() -> None:
    status = {
        "tenant": "acme",
        "conditions": [
            {"type": "Ready", "status": "True", "reason": "Ready", "observedGeneration": 4}
        ],
    }
    assert "GENERATION" not in format_text(status)
    wide = format_text(status, wide=True)
    assert "GENERATION" in wide
    assert " 4 " in wide.splitlines()[-1] + " "


def test_logs_takes_json_as_its_json_lines_format() -> None:
    args = kubectl_parser().parse_args(["logs", "acme", "-o", "json", "--file", "out.ndjson"])
    assert (args.form, args.file) == ("json", Path("out.ndjson"))
    legacy = kubectl_parser().parse_args(["logs", "acme", "--format", "tar"])
    assert legacy.form == "tar"
    assert kubectl_parser().parse_args(["logs", "acme"]).form == "ndjson"


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["catalogue", "check", "{missing}"], "{missing}: could not be read: no such file"),
        (["catalogue", "import", "{missing}"], "{missing}: no such directory; give the"),
        (
            ["render", str(EXAMPLE), "--output-dir", "{tmp}/out", "--catalogue", "{missing}"],
            "{missing}: no such directory; give the",
        ),
        (
            ["render", str(EXAMPLE), "--output-dir", "{tmp}/out", "--settings", "{missing}"],
            "{missing}: could not be read: no such file or directory; check the path",
        ),
        (
            ["render", str(EXAMPLE), "--output-dir", "{tmp}/out", "--platform-signatures",
             "{missing}"],
            "{missing}: no such directory; --platform-signatures takes the directory",
        ),
        (
            ["receipt", "verify", "{missing}", "--public-key", "{missing}"],
            "{missing}: could not be read: no such file or directory; check the path",
        ),
        (
            ["receipt", "keygen", "--public-key-out", "{missing}/key.pem"],
            "{missing}/key.pem: could not write the public key: no such file or directory",
        ),
        (
            ["status", "acme", "--kubeconfig", "{missing}"],
            "{missing} not found; check --kubeconfig",
        ),
        (
            ["logs", "acme", "--file", "{missing}/out.ndjson", "--server", "http://127.0.0.1:9"],
            "{missing}/out.ndjson: cannot be written: the directory {missing} does not exist; "
            "create it or choose another --file",
        ),
    ],
    ids=["catalogue-check", "catalogue-import", "render-catalogue", "render-settings",
         "render-signatures", "receipt-verify", "receipt-keygen", "status-kubeconfig",
         "logs-file"],
)  # fmt: skip
def test_a_missing_file_is_named_with_what_to_do(
    argv: list[str], expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "missing")
    argv = [a.format(missing=missing, tmp=tmp_path) for a in argv]
    assert main(argv) in (1, 2)
    err = capsys.readouterr().err
    assert expected.format(missing=missing) in err
    assert "[Errno" not in err
    assert "Traceback" not in err


def test_receipt_keygen_and_verify_speak_json(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pub = tmp_path / "key.pem"
    assert main(["receipt", "keygen", "--public-key-out", str(pub), "-o", "json"]) == 0
    secret = json.loads(capsys.readouterr().out)
    assert secret["kind"] == "Secret"
    receipt = tmp_path / "receipt.json"
    receipt.write_text(json.dumps({"tenant": "acme", "state": "Completed"}))
    assert main(["receipt", "verify", str(receipt), "--public-key", str(pub), "-o", "json"]) == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["valid"] is False
    assert verdict["tenant"] == "acme"
    assert verdict["problems"]
