"""Stopping the real node: its pods' processes, shims and cgroups, the host processes, mounts
under the node dir, and what it changed on the host (sysctls, fixed host paths)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

from e2e.cluster import hostnet, processes
from e2e.cluster.client import wait_until
from e2e.cluster.realnode_base import (
    CGROUP_ROOT,
    FIXED_HOST_FILES,
    HOST_COMPONENTS,
    SHIM,
    NodeBase,
    RealNodeError,
)


class NodeTeardown(NodeBase):
    """`stop` and its steps."""

    def stop(self, timeout: float = 15.0) -> None:
        """Stop everything the node started and remove what it added to the host (idempotent,
        also after a crash): pods' processes, shims, host processes, mounts under the node dir,
        pod cgroups, iptables and nftables rules, the bridge, sysctls, the ownership record."""
        self._load_state()
        record = hostnet.owner()
        ours = record is None or Path(str(record.get("state_dir", ""))) == self.state_dir
        marker = f"{self.dir}/"
        names = (*HOST_COMPONENTS, SHIM)
        # kubelet first (it would restart what we kill), then every pod process, then the rest.
        kubelet = [r for r in self._records if r.name == "kubelet"]
        kubelet += [r for r in processes.find_strays(marker, ("kubelet",)) if r not in kubelet]
        survivors = processes.stop(kubelet, timeout=timeout, children=self._children)
        if ours:
            self._kill_pod_processes()
        others = [r for r in self._records if r.name != "kubelet"]
        # Shims exit once their containers are gone; a pass may find ones still on their way.
        for _ in range(3):
            known = {r.pid for r in others}
            others += [r for r in processes.find_strays(marker, names) if r.pid not in known]
            survivors += processes.stop(others, timeout=timeout, children=self._children)
            others = processes.find_strays(marker, names)
            if not others:
                break
        survivors += others
        self._children.clear()
        self._records = []
        if survivors:
            listed = ", ".join(f"{r.name} (pid {r.pid})" for r in survivors)
            raise RealNodeError(f"real node: still running after SIGKILL: {listed}")
        self._unmount_all()
        if ours:
            self._remove_pod_cgroups()
            if record is not None:
                saved = record.get("sysctls")
                if isinstance(saved, dict):
                    self._sysctls.update({str(k): str(v) for k, v in saved.items()})
            hostnet.restore_sysctls(self._sysctls)  # forwarding off before the guard goes
            if self.binaries.kube_proxy.exists():
                subprocess.run(
                    [str(self.binaries.kube_proxy), "--cleanup"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
            for tool in ("iptables", "ip6tables"):
                hostnet.remove_chains(tool)
            hostnet.remove_ipsets()
            hostnet.delete_bridge()
            shutil.rmtree("/run/swg-operator/s", ignore_errors=True)
            self._remove_fixed_host_paths(record)
            hostnet.clear_owner()
        self._sysctls = {}
        if self.dir.exists():
            self._save_state()

    @staticmethod
    def _remove_fixed_host_paths(record: dict[str, object] | None) -> None:
        for pattern in FIXED_HOST_FILES:
            for path in Path("/").glob(pattern.lstrip("/")):
                path.unlink(missing_ok=True)
        created = (record or {}).get("created_paths")
        if isinstance(created, list):
            for path in created:
                shutil.rmtree(str(path), ignore_errors=True)

    def _pod_cgroups(self) -> list[Path]:
        """Every kubepods cgroup directory, deepest first, in every hierarchy."""
        found: list[Path] = []
        if not CGROUP_ROOT.is_dir():
            return found
        for hierarchy in CGROUP_ROOT.iterdir():
            top = hierarchy / "kubepods"
            if top.is_dir():
                found += [Path(d) for d, _, _ in os.walk(top)]
        return sorted(found, key=lambda p: len(p.parts), reverse=True)

    def _kill_pod_processes(self) -> None:
        def pids() -> set[int]:
            out: set[int] = set()
            for cgroup in self._pod_cgroups():
                with contextlib.suppress(OSError):
                    out |= {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
            return out

        for pid in pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            wait_until(lambda: not pids(), timeout=15.0, what="pod processes gone", describe=pids)
        except TimeoutError as err:
            raise RealNodeError(f"real node: {err}") from None

    def _remove_pod_cgroups(self) -> None:
        for cgroup in self._pod_cgroups():
            with contextlib.suppress(OSError):
                cgroup.rmdir()

    def _unmount_all(self) -> None:
        prefix = f"{self.dir}/"
        for _ in range(3):
            mounts = []
            with contextlib.suppress(FileNotFoundError):
                for line in Path("/proc/self/mountinfo").read_text().splitlines():
                    point = line.split()[4].replace("\\040", " ")
                    if point.startswith(prefix) or point == str(self.dir):
                        mounts.append(point)
            if not mounts:
                return
            for point in sorted(mounts, key=len, reverse=True):
                if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                    subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        raise RealNodeError(f"real node: mounts left under {self.dir}")
