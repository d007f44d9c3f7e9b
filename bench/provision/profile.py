"""Where the operator's time went: a summary of a py-spy recording (`--format raw`: one line per
distinct stack, frames separated by `;`, then the number of samples).

`python -m bench.provision.profile FILE [--top 25]` prints the frames with the most samples on
top of the stack (self), the frames of the operator and of kopf anywhere in the stack
(inclusive, entry points left out), and the share of each top-level package (self).
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]+)(?::\d+)?\)$")


def _frame(raw: str) -> tuple[str, str]:
    """(`func (path)`, top-level package) of one py-spy frame `func (path:line)`; py-spy writes
    paths relative to their sys.path entry, so the first part is the package."""
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip(), "other"
    path = match["file"]
    package = path.split("/")[0].removesuffix(".py")
    return f"{match['func']} ({path})", package


_OWN = ("swg_operator", "kopf")  # inclusive time is reported for these packages' frames
_ROOTS = ("<module> (", "main (swg_operator/cli.py)", "run (swg_operator/commands/run.py)")


def name_is_root(name: str) -> bool:
    """Frames under which every sample sits (the entry point, kopf's reactor)."""
    return name.startswith(_ROOTS) or name.startswith("run (kopf/_core/reactor/running.py")


def summarise(path: Path, *, top: int = 25) -> dict[str, Any]:
    total = 0
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        total += samples
        frames = [_frame(f) for f in stack.split(";") if f.strip()]
        if not frames:
            continue
        # py-spy's raw stacks start with the thread (and process) names, root first.
        leaf, package = frames[-1]
        self_time[leaf] += samples
        packages[package] += samples
        for name in {f for f, pkg in frames if pkg in _OWN and not name_is_root(f)}:
            inclusive[name] += samples

    def share(counter: Counter[str]) -> list[tuple[str, float]]:
        return [(k, round(100 * v / total, 1)) for k, v in counter.most_common(top)]

    return {
        "samples": total,
        "selfPercent": share(self_time),
        "inclusivePercent": share(inclusive),
        "packageSelfPercent": share(packages),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.provision.profile", description=__doc__)
    parser.add_argument("file", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    result = summarise(args.file, top=args.top)
    print(f"{result['samples']} samples")
    for title in ("packageSelfPercent", "selfPercent", "inclusivePercent"):
        print(f"\n{title}:")
        for name, percent in result[title]:
            print(f"  {percent:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
