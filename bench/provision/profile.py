"""Where the operator's time went: a summary of a py-spy recording (`--format raw`: one line per
distinct stack, frames separated by `;`, then the number of samples).

`python -m bench.provision.profile FILE [--top 25]` prints the frames with the most samples on
top of the stack (self) and anywhere in the stack (inclusive), and the share of each package.
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
_PACKAGES = (
    "swg_operator",
    "kopf",
    "aiohttp",
    "yarl",
    "multidict",
    "json",
    "asyncio",
    "ssl",
    "pydantic",
    "jinja2",
    "yaml",
    "prometheus_client",
    "logging",
    "copy",
)


def _frame(raw: str) -> tuple[str, str]:
    """(function with its file's tail, package) of one py-spy frame `func (file:line)`."""
    match = _FRAME.match(raw.strip())
    if match is None:
        return raw.strip(), "other"
    path = match["file"]
    package = next((p for p in _PACKAGES if f"/{p}/" in path or path.endswith(f"/{p}.py")), "")
    if not package:
        package = "python" if "/lib/python3" in path else "other"
    tail = "/".join(Path(path).parts[-2:])
    return f"{match['func']} ({tail})", package


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
        for name in {f for f, _ in frames}:
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
