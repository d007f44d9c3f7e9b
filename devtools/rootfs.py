"""Debian 13 (trixie) root filesystem for the data-plane test tier.

The images install their daemons from ``images/*/packages.txt`` on ``debian:trixie-slim``. This
module installs the union of the same lists into a debootstrap root filesystem so that the tests
run the very packages the images ship, without a container runtime. The result is cached under
``~/.cache/swg-operator/rootfs/<key>/`` where the key hashes the package lists, the suite and
this module's ``ROOTFS_VERSION``; a cached tree is reused as is. Builds happen in a temporary
directory beside the cache entry and are renamed into place when complete, so a half-built tree
is never used.

Usage::

    python -m devtools.rootfs build     # build if missing, print the path
    python -m devtools.rootfs path      # print the path it would use (exit 1 if absent)
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_LISTS = (
    REPO / "images" / "proxy" / "packages.txt",
    REPO / "images" / "antivirus" / "packages.txt",
)
SUITE = "trixie"
MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")
# Bump when the build steps change in a way that changes the tree.
ROOTFS_VERSION = "1"

# The same sources a debian:trixie-slim image has, so point releases and security fixes match.
SOURCES = f"""Types: deb
URIs: {MIRROR}
Suites: {SUITE} {SUITE}-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: {SECURITY_MIRROR}
Suites: {SUITE}-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""

# Keep package maintainer scripts from starting daemons inside the build chroot.
POLICY_RC_D = "#!/bin/sh\nexit 101\n"


def read_package_list(path: Path) -> list[str]:
    """Package names (optionally ``name=version``) of one list: comments and blanks dropped."""
    names: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            names.append(line)
    return names


def wanted_packages(lists: Sequence[Path] = PACKAGE_LISTS) -> list[str]:
    """Sorted union of the image package lists."""
    return sorted({name for path in lists for name in read_package_list(path)})


def cache_key(packages: Sequence[str]) -> str:
    digest = hashlib.sha256()
    digest.update(f"v={ROOTFS_VERSION}\nsuite={SUITE}\nmirror={MIRROR}\n".encode())
    digest.update("\n".join(sorted(packages)).encode())
    return digest.hexdigest()[:16]


def cache_root() -> Path:
    override = os.environ.get("SWG_ROOTFS_CACHE")
    if override:
        return Path(override)
    return Path.home() / ".cache" / "swg-operator" / "rootfs"


@dataclass(frozen=True)
class Rootfs:
    """A built root filesystem: ``root`` is the chroot target, ``manifest`` its package versions."""

    entry: Path

    @property
    def root(self) -> Path:
        return self.entry / "root"

    @property
    def manifest(self) -> Path:
        return self.entry / "manifest.json"

    def exists(self) -> bool:
        return self.manifest.is_file() and os.path.lexists(self.root / "usr" / "sbin" / "squid")

    def versions(self) -> dict[str, str]:
        data = json.loads(self.manifest.read_text(encoding="utf-8"))
        versions: dict[str, str] = data["packages"]
        return versions


def expected_rootfs() -> Rootfs:
    return Rootfs(cache_root() / cache_key(wanted_packages()))


def _log(message: str) -> None:
    print(f"[rootfs] {message}", file=sys.stderr, flush=True)


def _run(argv: Sequence[str], *, log: Path) -> None:
    _log(" ".join(argv[:6]) + (" ..." if len(argv) > 6 else ""))
    with log.open("ab") as out:
        out.write(f"\n$ {' '.join(argv)}\n".encode())
        out.flush()
        proc = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-40:]
        raise RuntimeError(
            f"{argv[0]} exited {proc.returncode}; last lines of {log}:\n" + "\n".join(tail)
        )


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _chroot_install(root: Path, packages: Sequence[str], *, log: Path) -> None:
    """apt-get install inside the chroot, in a private mount namespace (no mount outlives it)."""
    script = (
        "set -eu; "
        f"mount -t proc proc {root}/proc; "
        f"chroot {root} /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "
        "DEBIAN_FRONTEND=noninteractive LC_ALL=C.UTF-8 sh -eu -c "
        '\'apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" '
        "&& apt-get clean' sh " + " ".join(packages)
    )
    _run(["unshare", "--mount", "--propagation", "private", "--fork", "sh", "-c", script], log=log)


def _installed_versions(root: Path) -> dict[str, str]:
    out = subprocess.run(
        ["chroot", str(root), "dpkg-query", "-W", "-f", "${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def build(*, force: bool = False) -> Rootfs:
    """Return the cached root filesystem, building it first when absent (needs root)."""
    packages = wanted_packages()
    target = Rootfs(cache_root() / cache_key(packages))
    if target.exists() and not force:
        return target
    if os.geteuid() != 0:
        raise PermissionError("building the trixie rootfs needs root (debootstrap, chroot)")
    if shutil.which("debootstrap") is None:
        raise FileNotFoundError("debootstrap is missing: run `make deps` (hack/install-apt.sh)")
    with _lock(target.entry.with_suffix(".lock")):
        if target.exists() and not force:
            return target
        started = time.monotonic()
        tmp = target.entry.with_name(f".{target.entry.name}.build-{os.getpid()}")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        work = Rootfs(tmp)
        log = tmp / "build.log"
        _log(f"building {SUITE} rootfs in {tmp} (log: {log})")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--keyring={KEYRING}",
                SUITE,
                str(work.root),
                MIRROR,
            ],
            log=log,
        )
        (work.root / "etc/apt/sources.list.d/debian.sources").write_text(SOURCES)
        with contextlib.suppress(FileNotFoundError):
            (work.root / "etc/apt/sources.list").unlink()
        policy = work.root / "usr/sbin/policy-rc.d"
        policy.write_text(POLICY_RC_D)
        policy.chmod(0o755)
        shutil.copyfile("/etc/resolv.conf", work.root / "etc/resolv.conf")
        _chroot_install(work.root, packages, log=log)
        policy.unlink()
        (work.root / "etc/resolv.conf").write_text("# the test tier resolves via hosts_file\n")
        shutil.rmtree(work.root / "var/lib/apt/lists", ignore_errors=True)
        (work.root / "var/lib/apt/lists/partial").mkdir(parents=True)
        manifest = {
            "suite": SUITE,
            "key": target.entry.name,
            "rootfsVersion": ROOTFS_VERSION,
            "requested": packages,
            "builtAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "buildSeconds": round(time.monotonic() - started, 1),
            "packages": _installed_versions(work.root),
        }
        work.manifest.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if target.entry.exists():  # only with force: replace the old tree
            old = target.entry.with_name(f".{target.entry.name}.old-{os.getpid()}")
            target.entry.rename(old)
            shutil.rmtree(old)
        tmp.rename(target.entry)
        _log(f"built {target.root} in {manifest['buildSeconds']} s")
        return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.rootfs")
    parser.add_argument("command", choices=["build", "path", "key", "versions"])
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = parser.parse_args(argv)
    if args.command == "key":
        print(cache_key(wanted_packages()))
        return 0
    if args.command == "build":
        print(build(force=args.force).root)
        return 0
    rootfs = expected_rootfs()
    if not rootfs.exists():
        print(f"not built: {rootfs.root}", file=sys.stderr)
        return 1
    if args.command == "path":
        print(rootfs.root)
    else:
        for name, version in sorted(rootfs.versions().items()):
            print(f"{name}\t{version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
