"""`swg-operator completion bash`, run by a real bash: subcommands, options and -o choices."""

from __future__ import annotations

import shlex
import shutil
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


def _script(shell: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Path:
    assert main(["completion", shell]) == 0
    script = tmp_path / f"swg-operator.{shell}"
    script.write_text(capsys.readouterr().out)
    return script


def test_fish_completes_commands_options_and_formats(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fish = shutil.which("fish")
    if fish is None:
        pytest.skip("fish is not installed")
    script = _script("fish", tmp_path, capsys)

    def fish_complete(line: str) -> list[str]:
        program = f"source {script}; complete -C {shlex.quote(line)}"
        result = subprocess.run(
            [fish, "--no-config", "-c", program], capture_output=True, text=True, check=True
        )
        return [row.split("\t")[0] for row in result.stdout.splitlines()]

    assert "render" in fish_complete("swg-operator ren")
    assert fish_complete("swg-operator render t.yaml -o ") == ["json", "text", "yaml"]
    assert "--output-dir" in fish_complete("swg-operator render --")
    assert fish_complete("swg-operator sizing --output j") == ["json"]


def test_zsh_loads_the_script_and_registers_the_completion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    zsh = shutil.which("zsh")
    if zsh is None:
        pytest.skip("zsh is not installed")
    script = _script("zsh", tmp_path, capsys)
    program = (
        f"source {script}; echo ${{_comps[swg-operator]}}; "
        "emulate sh; setopt kshglob noshglob braceexpand; "  # as bashcompinit's compgen does
        'COMP_WORDS=(swg-operator render t.yaml -o ""); COMP_CWORD=4; _swg_operator; '
        'echo "${COMPREPLY[*]}"'
    )
    result = subprocess.run(
        [zsh, "-f", "-c", program], capture_output=True, text=True, check=True, timeout=60
    )
    registered, choices = result.stdout.splitlines()[-2:]
    assert registered  # compdef registered a completer for swg-operator
    assert sorted(choices.split()) == ["json", "text", "yaml"]
