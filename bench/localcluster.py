"""The local control plane as the benchmarks and the chaos tests need it.

* `BenchControlPlane`: `e2e.cluster.ControlPlane` with an audit log (who made which request:
  `apiserver_request_total` has no user label) and kwok Nodes large enough for 1,000 tenants (the
  default three Nodes hold 110 pods each; a tenant runs five).
* Faults on any running local control plane, through its state file: `pause` (SIGSTOP) and
  `resume` (SIGCONT) one daemon, `restart` one daemon with the exact command line and
  environment it ran with. `ControlPlane` has no public API for either; these helpers keep its
  state file true (the restarted daemon's pid and start time replace the old ones), so its own
  `stop()` and `is_healthy()` keep working.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2e.cluster import NODES, ControlPlane, KwokNode, wait_until
from e2e.cluster.controlplane import Ports
from e2e.cluster.pki import Pki
from e2e.cluster.processes import ProcessRecord, is_alive, spawn
from e2e.cluster.processes import stop as stop_processes

# Users whose requests the audit log records (everything else is level None): the operator's
# and the floor client's ServiceAccounts. Both are ordinary ServiceAccounts, so API Priority and
# Fairness treats them alike (system:masters, the admin kubeconfig, is exempt from it).
BENCH_NAMESPACE = "swg-bench"
OPERATOR_ACCOUNT = "swg-operator"
FLOOR_ACCOUNT = "swg-floor"
AUDITED_USERS = tuple(
    f"system:serviceaccount:{BENCH_NAMESPACE}:{name}" for name in (OPERATOR_ACCOUNT, FLOOR_ACCOUNT)
)

BIG_NODES: tuple[KwokNode, ...] = tuple(
    KwokNode(n.name, region=n.region, zone=n.zone, cpu="20000", memory="200Ti", pods="20000")
    for n in NODES
)


def audit_policy(users: Sequence[str]) -> dict[str, Any]:
    return {
        "apiVersion": "audit.k8s.io/v1",
        "kind": "Policy",
        # One record per request: ResponseComplete (ResponseStarted as well for watches, which
        # may still be open when the log is read).
        "omitStages": ["RequestReceived"],
        "rules": [
            {"level": "Metadata", "users": list(users)},
            {"level": "None"},
        ],
    }


class BenchControlPlane(ControlPlane):
    """A local control plane with an audit log of the benchmark's users and big kwok Nodes."""

    def __init__(self, state_dir: Path, *, audited_users: Sequence[str] = AUDITED_USERS) -> None:
        super().__init__(state_dir, nodes=BIG_NODES, start_timeout=300.0)
        self.audited_users = tuple(audited_users)
        self.audit_log = self.logs_dir / "audit.log"
        self.audit_policy_file = self.state_dir / "audit-policy.json"

    def _apiserver_args(self, ports: Ports, pki: Pki) -> list[str]:
        # `ControlPlane` takes no extra flags: this override is the narrowest way to add two.
        self.audit_policy_file.parent.mkdir(parents=True, exist_ok=True)
        self.audit_policy_file.write_text(json.dumps(audit_policy(self.audited_users)))
        self.audit_log.unlink(missing_ok=True)
        return [
            *super()._apiserver_args(ports, pki),
            f"--audit-policy-file={self.audit_policy_file}",
            f"--audit-log-path={self.audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=0",  # never rotate: the benchmark reads one file
        ]


# --- faults ----------------------------------------------------------------------------------


def _record(plane: ControlPlane, component: str) -> ProcessRecord:
    for record in plane.records():
        if record.name == component and is_alive(record):
            return record
    raise RuntimeError(f"{component} of {plane.state_dir} is not running")


def pid_of(plane: ControlPlane, component: str) -> int:
    return _record(plane, component).pid


def pause(plane: ControlPlane, component: str) -> int:
    """SIGSTOP the daemon: it holds its sockets open and answers nothing, as a hung server."""
    pid = pid_of(plane, component)
    os.kill(pid, signal.SIGSTOP)
    return pid


def resume(plane: ControlPlane, component: str) -> None:
    os.kill(pid_of(plane, component), signal.SIGCONT)


def _proc_strings(pid: int, name: str) -> list[str]:
    raw = Path(f"/proc/{pid}/{name}").read_bytes()
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def restart(plane: ControlPlane, component: str, *, down_seconds: float = 0.0) -> float:
    """Stop `component` (SIGTERM, SIGKILL after 15 s), wait `down_seconds`, start it again with
    the same command line and environment, record it in the state file, and wait until the API
    server answers /readyz again. Returns the seconds the API server was not ready."""
    old = _record(plane, component)
    argv = _proc_strings(old.pid, "cmdline")
    env = dict(item.split("=", 1) for item in _proc_strings(old.pid, "environ") if "=" in item)
    started = time.monotonic()
    if stop_processes([old]):
        raise RuntimeError(f"{component} (pid {old.pid}) did not stop")
    time.sleep(down_seconds)
    proc, record = spawn(component, argv, log_path=plane.logs_dir / f"{component}.log", env=env)
    _replace_record(plane, old, record)
    _adopt(proc)
    wait_until(
        lambda: (
            plane.kubectl("get", "--raw", "/readyz", check=False, timeout=10).stdout.strip() == "ok"
        ),
        timeout=120,
        what=f"/readyz after restarting {component}",
        interval=0.5,
    )
    return time.monotonic() - started


_adopted: list[subprocess.Popen[bytes]] = []


def _adopt(proc: subprocess.Popen[bytes]) -> None:
    """Keep the restarted daemon's Popen so it is reaped when it exits (no zombie)."""
    _adopted[:] = [p for p in _adopted if p.poll() is None]
    _adopted.append(proc)


def _replace_record(plane: ControlPlane, old: ProcessRecord, new: ProcessRecord) -> None:
    state = json.loads(plane.state_file.read_text())
    state["processes"] = [
        new.to_json() if p["name"] == old.name and p["pid"] == old.pid else p
        for p in state["processes"]
    ]
    text = json.dumps(state, indent=2) + "\n"
    tmp = plane.state_file.with_suffix(".tmp")
    tmp.touch(mode=0o600)
    tmp.write_text(text)
    tmp.replace(plane.state_file)
