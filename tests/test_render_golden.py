"""Golden files: what the example tenants render to, object by object and config file by config
file, exactly as `swg-operator render` writes them. A change to the renderer, the data-plane
templates, the sample catalogue or the sizing constants shows up here as a readable diff.

Regenerate after an intended change (tests/golden/README.md):

    SWG_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_golden.py
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from render_support import EXAMPLE_NAMES, render_example
from swg_operator.commands.render import write_manifests

GOLDEN = Path(__file__).resolve().parent / "golden"
UPDATE = os.environ.get("SWG_UPDATE_GOLDEN") == "1"
REGENERATE = "SWG_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_render_golden.py"


def tree(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): path.read_text(encoding="utf-8")
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_example_renders_to_its_golden_files(example: str, tmp_path: Path) -> None:
    manifests = render_example(example)
    if UPDATE:
        write_manifests(manifests, GOLDEN / example)
        return
    write_manifests(manifests, tmp_path)
    expected, actual = tree(GOLDEN / example), tree(tmp_path)
    assert expected, f"no golden files for {example}: run {REGENERATE}"
    problems = []
    for name in sorted(expected.keys() - actual.keys()):
        problems.append(f"no longer rendered: {name}")
    for name in sorted(actual.keys() - expected.keys()):
        problems.append(f"newly rendered: {name}")
    for name in sorted(expected.keys() & actual.keys()):
        if expected[name] != actual[name]:
            diff = difflib.unified_diff(
                expected[name].splitlines(keepends=True),
                actual[name].splitlines(keepends=True),
                fromfile=f"golden/{example}/{name}",
                tofile=f"rendered/{name}",
                n=2,
            )
            problems.append("".join(list(diff)[:60]))
    assert not problems, (
        f"{example} no longer renders to its golden files; if the change is intended, run "
        f"{REGENERATE} and review the diff.\n" + "\n".join(problems)
    )
