"""The benchmark run: start every stack, drive each case with wrk, measure, summarise.

Cases (each in a loopback-only namespace of its own, with its own nginx origin):

  nginx-direct        wrk -> nginx: what loopback, wrk and the origin can do
  squid-noacl         wrk -> Squid -> nginx, the tenant with no URL filtering
  squid-filter-<N>    the same with one blocked category of N domains (bench.test is not in it)
  squid-antivirus     the tenant with no URL filtering and anti-virus on (Squid -> ICAP ->
                      c-icap -> clamd with the custom signature database of the test tier)

Rounds interleave the cases so that a change of background load hits all of them alike; the
summary takes the median over rounds, and ratios are taken within a round.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from e2e.dataplane.netns import NETNS_DIR, PREFIX, NetNamespace
from e2e.dataplane.payloads import write_payloads
from e2e.dataplane.stack import DataplaneStack

from bench.dataplane import machine, procstat
from bench.dataplane.loadgen import Wrk, WrkParams, lua_script
from bench.dataplane.origin import ADDRESS, OBJECTS, PORT, NginxOrigin
from bench.dataplane.tenants import BENCH_HOST, SIGNATURES, RenderedTenant, blocked_domain

DIRECT = "nginx-direct"
NOACL = "squid-noacl"
ANTIVIRUS = "squid-antivirus"


def filter_case(domains: int) -> str:
    if domains % 1_000_000 == 0:
        return f"squid-filter-{domains // 1_000_000}m"
    if domains % 1000 == 0:
        return f"squid-filter-{domains // 1000}k"
    return f"squid-filter-{domains}"


def netns_of(stack: DataplaneStack) -> NetNamespace:
    assert stack.netns is not None, "the stack is not started"
    return stack.netns


def cleanup_stale_benchmarks() -> list[str]:
    """Delete the namespaces (and stop the daemons) of benchmark runs that died; the test
    tier's namespaces are left to the test tier."""
    removed = []
    if NETNS_DIR.is_dir():
        for entry in NETNS_DIR.iterdir():
            match = re.match(rf"{PREFIX}(\d+)-bench-", entry.name)
            if match and not Path(f"/proc/{match.group(1)}").exists():
                NetNamespace(entry.name).delete()
                removed.append(entry.name)
    return removed


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


@dataclass
class Stack:
    """One running tenant: its data-plane stack and its origin."""

    tenant: RenderedTenant
    stack: DataplaneStack
    origin: NginxOrigin
    lifecycle: dict[str, Any] = field(default_factory=dict)

    def roots(self) -> dict[str, int]:
        """Process trees measured in a run, by the name reported."""
        roots = {name: daemon.process.pid for name, daemon in self.stack.daemons.items()}
        return roots | {"nginx": self.origin.pid}

    def daemon_pids(self, name: str) -> list[int]:
        return procstat.pids_named(self.stack.daemons[name].process.pid, name)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.origin.close()
        try:
            self.stack.close()
        except Exception as exc:
            log(f"closing {self.tenant.name} failed ({exc!r}); deleting its namespace")
            if self.stack.netns is not None:
                self.stack.netns.delete()
                self.stack.netns = None


def start_stack(tenant: RenderedTenant, *, rootfs: Path, workdir: Path) -> Stack:
    daemons = ("clamd", "c-icap", "squid") if tenant.antivirus else ("squid",)
    blocked = (blocked_domain(0),) if tenant.acl_entries else ()
    stack = DataplaneStack(
        rootfs=rootfs,
        conf_dir=tenant.conf_dir,
        workdir=workdir / f"stack-{tenant.name}",
        payloads=write_payloads(workdir / f"stack-{tenant.name}-payloads"),
        label=f"bench-{tenant.name}",
        names=(BENCH_HOST, *blocked),
        daemons=daemons,
        extra_conf=SIGNATURES if tenant.antivirus else (),
    )
    stack.start()
    try:
        origin = NginxOrigin(netns_of(stack), workdir / f"nginx-{tenant.name}")
    except BaseException:
        stack.close()
        raise
    return Stack(tenant, stack, origin)


# ------------------------------------------------------------------------------ checks
def check_stack(stack: Stack) -> None:
    """Before any load: the benchmark URL is served, and filtering and scanning really apply."""
    url = f"http://{BENCH_HOST}:{PORT}/1k.bin"
    response = stack.stack.request(url)
    if response.status != 200 or len(response.body) != OBJECTS["1k.bin"]:
        raise RuntimeError(f"{stack.tenant.name}: {url} gave {response.status}: {response.error}")
    if stack.tenant.acl_entries:
        blocked = stack.stack.request(f"http://{blocked_domain(0)}:{PORT}/1k.bin")
        if blocked.status != 403:
            raise RuntimeError(f"{stack.tenant.name}: a listed domain gave {blocked.status}")
    if stack.tenant.antivirus:
        entry = stack.stack.wait_for_access_log(r'"url":"http://bench\.test')
        # Squid logs the request id it sent to the ICAP service ("-" when nothing was scanned).
        if entry.get("icap") in ("", "-", None):
            raise RuntimeError(f"{stack.tenant.name}: the response was not scanned: {entry}")


# ------------------------------------------------------------------------------ lifecycle
def squid_restart(stack: Stack) -> tuple[float, float]:
    """Stop Squid (SIGINT: at once) and start it again: wall seconds until it accepts
    connections, and the CPU seconds Squid used until then (steadier on shared cores)."""
    stack.stack.stop_daemon("squid", timeout=30, sig=signal.SIGINT)
    started = time.monotonic()
    stack.stack.start_daemon("squid", timeout=600)
    elapsed = time.monotonic() - started
    return elapsed, procstat.cpu_seconds(stack.daemon_pids("squid"))


def squid_reconfigure(stack: Stack, *, timeout: float = 600) -> tuple[float, float]:
    """SIGHUP (what `squid -k reconfigure` sends): wall seconds until Squid accepts again, and
    the CPU seconds it used for that."""
    daemon = stack.stack.daemons["squid"]
    marker = "Accepting HTTP Socket connections"

    def accepted() -> int:
        return daemon.stderr.read_text(errors="replace").count(marker)

    before = accepted()
    (pid,) = stack.daemon_pids("squid")
    cpu_before = procstat.cpu_seconds([pid])
    started = time.monotonic()
    os.kill(pid, signal.SIGHUP)
    while accepted() <= before:
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{stack.tenant.name}: Squid did not reconfigure in {timeout}s")
        time.sleep(0.01)
    return time.monotonic() - started, procstat.cpu_seconds([pid]) - cpu_before


def memory_json(pids: Sequence[int]) -> dict[str, int]:
    mem = procstat.memory(pids)
    return {
        "rssBytes": mem.rss_bytes,
        "pssBytes": mem.pss_bytes,
        "peakRssBytes": mem.hwm_bytes,
        "processes": mem.processes,
    }


def daemon_memory(stack: Stack) -> dict[str, dict[str, int]]:
    return {name: memory_json(stack.daemon_pids(name)) for name in stack.stack.daemons}


# ------------------------------------------------------------------------------ one run
@dataclass(frozen=True)
class Target:
    """Where wrk connects and what it asks for."""

    address: str  # http://host:port of the first hop
    path: str  # request target: origin-form (direct) or absolute-form (proxied)


def target_of(case: str, stack: Stack, obj: str) -> Target:
    if case == DIRECT:
        return Target(f"http://{ADDRESS}:{PORT}", f"/{obj}")
    host, port = stack.stack.proxy_address
    return Target(f"http://{host}:{port}", f"http://{BENCH_HOST}:{PORT}/{obj}")


def measure(
    case: str, stack: Stack, obj: str, *, params: WrkParams, workdir: Path
) -> dict[str, Any]:
    target = target_of(case, stack, obj)
    script = lua_script(
        workdir, name=f"{case}-{obj}", host=f"{BENCH_HOST}:{PORT}", path=target.path
    )
    roots = {"nginx": stack.origin.pid} if case == DIRECT else stack.roots()
    load_before = machine.load_average()
    before = {name: procstat.cpu_seconds([pid]) for name, pid in roots.items()}
    started = time.monotonic()
    wrk = Wrk(netns_of(stack.stack), target=target.address, script=script, params=params)
    # Wait for wrk's exit without reaping it, so that its CPU time can still be read.
    os.waitid(os.P_PID, wrk.pid, os.WEXITED | os.WNOWAIT)
    elapsed = time.monotonic() - started
    cpu = {name: procstat.cpu_seconds([pid]) - before[name] for name, pid in roots.items()}
    cpu["wrk"] = procstat.cpu_seconds([wrk.pid])
    result = wrk.result()
    cores = {name: seconds / elapsed for name, seconds in cpu.items()}
    for daemon in stack.stack.daemons.values():  # keep the access logs from filling the disk
        with contextlib.suppress(FileNotFoundError):
            daemon.stdout.write_bytes(b"")
    return {
        "case": case,
        "object": obj,
        "wrk": result.as_json(),
        "valid": sum(result.errors.values()) == 0 and result.requests > 0,
        "wallSeconds": round(elapsed, 3),
        "cpuSeconds": {k: round(v, 2) for k, v in cpu.items()},
        "cpuCores": {k: round(v, 3) for k, v in cores.items()},
        "loadAverage": {"before": load_before, "after": machine.load_average()},
    }


@contextlib.contextmanager
def running(
    tenants: Sequence[RenderedTenant], *, rootfs: Path, workdir: Path
) -> Iterator[dict[str, Stack]]:
    stacks: dict[str, Stack] = {}
    try:
        for tenant in tenants:
            log(f"starting {tenant.name} ({tenant.acl_entries} ACL entries)")
            stacks[tenant.name] = start_stack(tenant, rootfs=rootfs, workdir=workdir)
        yield stacks
    finally:
        for stack in stacks.values():
            stack.close()


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else 0.0


# ------------------------------------------------------------------------------ summary
# Which processes a case's per-core capacity divides by.
def capacity_processes(case: str) -> dict[str, tuple[str, ...]]:
    if case == DIRECT:
        return {"nginx": ("nginx",)}
    if case == ANTIVIRUS:
        return {"squid": ("squid",), "antivirus": ("c-icap", "clamd")}
    return {"squid": ("squid",)}


def per_core(run: dict[str, Any], names: Sequence[str]) -> float:
    cores = sum(run["cpuCores"].get(name, 0.0) for name in names)
    rps = float(run["wrk"]["rps"])
    return rps / cores if cores > 0 else 0.0


def summarise(runs: Sequence[dict[str, Any]], cases: Sequence[str]) -> dict[str, Any]:
    by_key: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for run in runs:
        by_key.setdefault((run["case"], run["object"]), []).append(run)

    def same_round_ratio(
        case: str, obj: str, base: str, value: Callable[[dict[str, Any]], float]
    ) -> float | None:
        ratios = []
        for run in by_key.get((case, obj), []):
            peer = next(
                (r for r in by_key.get((base, obj), []) if r["round"] == run["round"]), None
            )
            if peer and value(peer):
                ratios.append(value(run) / value(peer))
        return round(median(ratios), 3) if ratios else None

    def rps(run: dict[str, Any]) -> float:
        return float(run["wrk"]["rps"])

    def squid_per_core(run: dict[str, Any]) -> float:
        return per_core(run, ("squid",))

    summary: dict[str, Any] = {}
    for case in cases:
        for obj in OBJECTS:
            group = by_key.get((case, obj))
            if not group:
                continue
            processes = sorted({name for run in group for name in run["cpuCores"]})
            summary.setdefault(case, {})[obj] = {
                "rounds": len(group),
                "valid": all(run["valid"] for run in group),
                "rps": round(median([run["wrk"]["rps"] for run in group]), 1),
                "rpsMin": round(min(run["wrk"]["rps"] for run in group), 1),
                "rpsMax": round(max(run["wrk"]["rps"] for run in group), 1),
                "latencyMs": {
                    p: round(median([run["wrk"]["latency_ms"][p] for run in group]), 3)
                    for p in ("p50", "p99")
                },
                "cpuCores": {
                    name: round(median([run["cpuCores"].get(name, 0.0) for run in group]), 3)
                    for name in processes
                },
                "rpsPerCore": {
                    label: round(median([per_core(run, names) for run in group]), 1)
                    for label, names in capacity_processes(case).items()
                },
                # Throughput within the same round (what a client sees; noisy when the cores
                # are shared) and Squid's CPU cost per request (robust to shared cores).
                "ratioVsSquidNoAcl": (
                    None if case == DIRECT else same_round_ratio(case, obj, NOACL, rps)
                ),
                "squidPerCoreRatioVsSquidNoAcl": (
                    None if case == DIRECT else same_round_ratio(case, obj, NOACL, squid_per_core)
                ),
                "ratioVsDirect": same_round_ratio(case, obj, DIRECT, rps),
            }
    return summary
