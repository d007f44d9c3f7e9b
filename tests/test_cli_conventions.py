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


def parsers(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, Any]]:
    yield path or "swg-operator", parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from parsers(sub, f"{path} {name}".strip())


def kubectl_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubectl swg")
    sub = parser.add_subparsers()
    kubectl.logs.add_parser(sub)
    kubectl.status.add_parser(sub)
    kubectl.notices.add_parser(sub)
    kubectl.evidence.add_parser(sub)
    return parser


@pytest.mark.parametrize(
    "root", [build_parser(), kubectl_parser()], ids=["swg-operator", "kubectl"]
)
def test_every_o_is_an_output_format_with_json(root: argparse.ArgumentParser) -> None:
    seen = 0
    for name, parser in parsers(root):
        for action in parser._actions:
            if "-o" in action.option_strings:
                seen += 1
                assert action.choices is not None, f"{name}: -o takes a path"
                assert set(action.choices) <= FORMATS | {"table"}, name
                assert "json" in action.choices, f"{name}: -o json is missing"
                assert action.dest in ("output", "form"), name
    assert seen >= 2


def test_evidence_is_a_command_of_both_programs() -> None:
    for root in (build_parser(), kubectl_parser()):
        names = [name for name, _ in parsers(root)]
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
