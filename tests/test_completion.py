"""`swg-operator completion bash`, run by a real bash: subcommands, options and -o choices."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from swg_operator.cli import build_parser, main
from swg_operator.commands.completion import bash_script


def complete(script: Path, *words: str) -> list[str]:
    line = " ".join(f'"{w}"' for w in words)
    program = (
        f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; "
        '_swg_operator; echo "${COMPREPLY[*]}"'
    )
    result = subprocess.run(["bash", "-c", program], capture_output=True, text=True, check=True)
    return result.stdout.split()


def test_bash_completes_commands_options_and_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["completion", "bash"]) == 0
    script = tmp_path / "swg-operator.bash"
    script.write_text(capsys.readouterr().out)
    assert complete(script, "swg-operator", "ren") == ["render"]
    assert complete(script, "swg-operator", "render", "t.yaml", "-o", "") == [
        "text",
        "json",
        "yaml",
    ]
    assert "--output-dir" in complete(script, "swg-operator", "render", "--")
    assert complete(script, "swg-operator", "catalogue", "ch") == ["check"]
    assert complete(script, "swg-operator", "sizing", "-o", "j") == ["json"]


def test_hidden_options_are_not_offered() -> None:
    assert "--format" not in bash_script(build_parser()).split('"logs")')[-1].split(";;")[0]
