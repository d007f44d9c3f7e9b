"""The ``buildah`` command line, with a storage of its own under the cache."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from devtools.images.inputs import Layout


@dataclass(frozen=True)
class Buildah:
    layout: Layout
    driver: str = "overlay"

    def argv(self, *args: str) -> list[str]:
        return [
            "buildah",
            "--root",
            str(self.layout.storage(self.driver)),
            "--runroot",
            str(self.layout.runroot(self.driver)),
            "--storage-driver",
            self.driver,
            *args,
        ]

    def run(self, *args: str, log: Path | None = None) -> str:
        argv = self.argv(*args)
        if log is None:
            proc = subprocess.run(argv, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(f"{' '.join(argv)}: {proc.stderr.strip()}")
            return proc.stdout.strip()
        with log.open("ab") as out:
            out.write(f"\n$ {' '.join(argv)}\n".encode())
            out.flush()
            code = subprocess.run(
                argv, stdout=out, stderr=subprocess.STDOUT, check=False
            ).returncode
        if code != 0:
            tail = log.read_text(errors="replace").splitlines()[-40:]
            raise RuntimeError(f"buildah exited {code}; {log}:\n" + "\n".join(tail))
        return ""

    def image_id(self, ref: str) -> str | None:
        proc = subprocess.run(
            self.argv("images", "--no-trunc", "--format", "{{.ID}}", ref),
            capture_output=True,
            text=True,
            check=False,
        )
        ids = proc.stdout.split()
        if proc.returncode != 0 or not ids:
            return None
        return ids[0] if ids[0].startswith("sha256:") else f"sha256:{ids[0]}"

    @staticmethod
    def version() -> str:
        out = subprocess.run(["buildah", "--version"], capture_output=True, text=True, check=True)
        return out.stdout.strip()


def need_buildah() -> None:
    if shutil.which("buildah") is None:
        raise FileNotFoundError("buildah is missing: hack/install-apt.sh buildah (make images)")
    if os.geteuid() != 0:
        raise PermissionError("building images needs root (debootstrap, buildah chroot)")
