"""The hashed lock files the images install from (``python -m devtools.images lock``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

from devtools.images.inputs import REPO, cache_root

# Pinned tool that regenerates the lock files (`python -m devtools.images lock`).
PIP_TOOLS = "pip-tools==7.6.2"

LOCKS = {
    # lock file: (input, header)
    "images/operator/requirements.lock": ("pyproject.toml", "the operator's dependencies"),
    # `make setup` and CI install this one (--require-hashes), then the project with --no-deps.
    "requirements-dev.lock": ("pyproject.toml[dev]", "the development environment"),
    "images/logstore/requirements.txt": (
        "images/logstore/requirements.in",
        "the log store's closure: aiohttp, prometheus-client, tzdata",
    ),
}


def regenerate_locks(repo: Path = REPO, cache: Path | None = None) -> None:
    """pip-compile --generate-hashes of each lock, constrained to the versions installed in
    .venv (the versions the tests run with). Needs PyPI."""
    tools = (cache or cache_root()) / "images-tools" / "venv"
    if not (tools / "bin" / "pip-compile").exists():
        subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
        subprocess.run([str(tools / "bin/pip"), "install", "-q", PIP_TOOLS], check=True)
    freeze = subprocess.run(
        [str(repo / ".venv/bin/pip"), "freeze", "--exclude-editable"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text(freeze)
        for out, (source, what) in LOCKS.items():
            argv = [str(tools / "bin/pip-compile"), "-q", "--generate-hashes", "--allow-unsafe"]
            argv += ["--strip-extras", "--no-emit-find-links", "--no-emit-index-url"]
            input_file, _, extra = source.partition("[")
            if extra:
                argv += ["--extra", extra.rstrip("]")]
            argv += ["--no-header", "-c", str(constraints), "-o", out, input_file]
            subprocess.run(argv, check=True, cwd=repo, env={**os.environ, "PIP_FIND_LINKS": ""})
            path = repo / out
            body = path.read_text().replace(str(constraints), ".venv")
            header = (
                f"# Hashed lock of {what} ({source}), the versions .venv runs the tests with.\n"
                "# Made by pip-compile --generate-hashes; regenerate: "
                ".venv/bin/python -m devtools.images lock\n"
            )
            path.write_text(header + body)
