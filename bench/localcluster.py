"""The local control plane as the benchmarks and the chaos tests need it.

* `BenchControlPlane`: `e2e.cluster.ControlPlane` with an audit log (who made which request:
  `apiserver_request_total` has no user label), kwok Nodes sized for the tenants' pods
  (`nodes_for`; the default three Nodes hold 110 pods each, a tenant runs five) and
  `BENCH_TUNING`: no client throttle in kube-controller-manager or kube-scheduler, more
  controller workers, more API server seats, a larger etcd quota (for 10,000 tenants).
* `client_throttle`: what the control plane's own limits held back (client rate limiter waits of
  the controller manager and the scheduler, API Priority and Fairness queueing and rejections), so
  a run shows that neither the floor nor the operator waited on them.
* Faults on any running local control plane, through its state file: `pause` (SIGSTOP) and
  `resume` (SIGCONT) one daemon, `restart` one daemon with the exact command line and
  environment it ran with. `ControlPlane` has no public API for either; these helpers keep its
  state file true (the restarted daemon's pid and start time replace the old ones), so its own
  `stop()` and `is_healthy()` keep working.
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2e.cluster import NODES, ControlPlane, KwokNode, Tuning, wait_until
from e2e.cluster.config import Ports
from e2e.cluster.controlplane import http_get
from e2e.cluster.pki import KeyPair, Pki
from e2e.cluster.processes import ProcessRecord, is_alive, spawn
from e2e.cluster.processes import stop as stop_processes

from bench.sysinfo import MIB, sample

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

PODS_PER_TENANT = 5  # the benchmark's tenant: 2 proxies, 2 anti-virus, 1 log store
MAX_PODS_PER_NODE = 1000
GIB_PER_POD = 4  # the anti-virus pod requests 1376Mi; the others less

# Neither the floor nor the operator may wait on a client throttle of the controllers: 1,000
# requests/s is more than this machine's API server serves. 50 workers per controller keep
# hundreds of tenants' Deployments moving at once (5 by default). The API server's seats are
# doubled (APF shares 600 by default); etcd gets 8 GiB (10,000 tenants with their pods,
# ReplicaSets, Events and the history kept between compactions exceed the default 2 GiB).
BENCH_TUNING = Tuning(
    client_qps=1000.0,
    client_burst=2000,
    controller_workers=50,
    max_requests_inflight=800,
    max_mutating_requests_inflight=400,
    etcd_quota_bytes=8 * 1024**3,
)


def nodes_for(tenants: int, *, pods_per_tenant: int = PODS_PER_TENANT) -> tuple[KwokNode, ...]:
    """kwok Nodes with room for twice the tenants' pods (rolling updates surge), at most
    `MAX_PODS_PER_NODE` each, in a multiple of three: one node per zone of the default
    topology (region-a's two zones, region-b's one) in turn, so the spread the renderer asks
    for (replicas over nodes and zones, preferred) is possible at every size."""
    if tenants < 1:
        raise ValueError(f"tenants must be at least 1, got {tenants}")
    room = 2 * tenants * pods_per_tenant
    count = 3 * max(1, math.ceil(room / MAX_PODS_PER_NODE / 3))
    pods = math.ceil(room / count)
    return tuple(
        KwokNode(
            f"{NODES[i % 3].name}-{i // 3}",
            region=NODES[i % 3].region,
            zone=NODES[i % 3].zone,
            cpu=str(pods),
            memory=f"{pods * GIB_PER_POD}Gi",
            pods=str(pods),
        )
        for i in range(count)
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
    """A local control plane with an audit log of the benchmark's users, kwok Nodes sized for
    `tenants` and `BENCH_TUNING`."""

    def __init__(
        self,
        state_dir: Path,
        *,
        tenants: int,
        audited_users: Sequence[str] = AUDITED_USERS,
        tuning: Tuning = BENCH_TUNING,
    ) -> None:
        super().__init__(state_dir, nodes=nodes_for(tenants), start_timeout=300.0, tuning=tuning)
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


# --- what the control plane's own limits held back -------------------------------------------

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$", re.M)
# Per component: the counters to read, and the label to keep them apart by ("" sums them all).
THROTTLE_METRICS: dict[str, tuple[tuple[str, ...], str]] = {
    "kube-controller-manager": (
        (
            "rest_client_rate_limiter_duration_seconds_sum",
            "rest_client_rate_limiter_duration_seconds_count",
        ),
        "",
    ),
    "kube-scheduler": (
        (
            "rest_client_rate_limiter_duration_seconds_sum",
            "rest_client_rate_limiter_duration_seconds_count",
        ),
        "",
    ),
    "kube-apiserver": (
        (
            "apiserver_flowcontrol_rejected_requests_total",
            "apiserver_flowcontrol_request_wait_duration_seconds_sum",
            "apiserver_flowcontrol_request_wait_duration_seconds_count",
        ),
        "priority_level",
    ),
}


def metric_sums(text: str, names: Sequence[str], *, by: str = "") -> dict[str, float]:
    """Each of `names` summed over its label sets in a Prometheus text exposition (0 if
    absent); with `by`, one sum per value of that label, as `name{by="value"}`."""
    totals = dict.fromkeys(names, 0.0) if not by else {}
    for name, labels, value in _SAMPLE.findall(text):
        if name not in names:
            continue
        key = name
        if by:
            found = re.search(rf'{by}="([^"]*)"', labels)
            key = f'{name}{{{by}="{found.group(1) if found else ""}"}}'
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def client_throttle(plane: ControlPlane) -> dict[str, dict[str, float]]:
    """The counters of `THROTTLE_METRICS` now, per component (read with the admin certificate,
    which the controllers' delegated authorization admits); a component that does not answer
    is left out."""
    pki = plane.pki_dir
    admin = KeyPair(pki / "admin.crt", pki / "admin.key")
    ports = {
        "kube-controller-manager": plane.ports.controller_manager,
        "kube-scheduler": plane.ports.scheduler,
        "kube-apiserver": plane.ports.apiserver,
    }
    found: dict[str, dict[str, float]] = {}
    for component, (names, by) in THROTTLE_METRICS.items():
        host = plane.api_address if component == "kube-apiserver" else "127.0.0.1"
        got = http_get(
            f"https://{host}:{ports[component]}/metrics",
            ca=pki / "ca.crt",
            client=admin,
            timeout=30.0,
        )
        if got is not None and got[0] == 200:
            found[component] = metric_sums(got[1], names, by=by)
    return found


def throttle_delta(
    before: dict[str, dict[str, float]], after: dict[str, dict[str, float]]
) -> dict[str, dict[str, float]]:
    """`after - before` per component and counter, rounded to milliseconds."""
    return {
        component: {
            name: round(value - before.get(component, {}).get(name, 0.0), 3)
            for name, value in counters.items()
        }
        for component, counters in after.items()
    }


def plane_processes(plane: ControlPlane) -> dict[str, dict[str, float]]:
    """CPU seconds and peak RSS (VmHWM) of each running daemon of the control plane: what a
    larger run needs from the machine."""
    found: dict[str, dict[str, float]] = {}
    for record in plane.records():
        got = sample(record.pid) if is_alive(record) else None
        if got is not None:
            found[record.name] = {
                "cpuSeconds": round(got.cpu_seconds, 1),
                "peakRssMiB": round(got.peak_rss_bytes / MIB, 1),
                "rssMiB": round(got.rss_bytes / MIB, 1),
            }
    return found


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
