"""The operator phase of the provisioning benchmark: `swg-operator run` provisioning N tenants.

`swg-operator run` as a process; N `SecureWebGateway` objects are created at once (through the
admin identity, at most `concurrency` at a time), and a watch records when each one's `Ready`
condition turns True. Then the operator is left alone until it has written nothing for `quiet`
seconds, and an idle window measures what Ready tenants cost.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from e2e.operator_process import OperatorProcess, install_prerequisites

from bench.kubeclient import KubeClient
from bench.localcluster import (
    OPERATOR_ACCOUNT,
    BenchControlPlane,
    client_throttle,
    plane_processes,
    throttle_delta,
)
from bench.provision.audit import MUTATING, summary, window
from bench.provision.errors import transient_errors
from bench.provision.harness import (
    OPERATOR_NS,
    SWG_PATH,
    Options,
    account_kubeconfig,
    bench_tenant,
    fresh_plane,
    log,
    plane_settings,
    user_of,
    wait_quiet,
)
from bench.provision.measure import (
    AuditTail,
    ProcessSampler,
    apiserver_requests_by_verb,
    condition_true,
    counter_delta,
    quantiles,
)
from bench.provision.memtrace import peak_snapshot
from bench.provision.memtrace import summarise as summarise_memory
from bench.provision.profile import summarise
from bench.sysinfo import MIB, load_average


async def _create_tenants(
    admin: KubeClient, names: Sequence[str], *, concurrency: int
) -> dict[str, float]:
    created: dict[str, float] = {}
    semaphore = asyncio.Semaphore(concurrency)

    async def create(name: str) -> None:
        async with semaphore:
            await admin.request("POST", SWG_PATH, body=bench_tenant(name))
        created[name] = time.time()

    await asyncio.gather(*(create(name) for name in names))
    return created


def _stamp_seconds(obj: dict[str, Any]) -> float | None:
    """Ready's lastTransitionTime minus creationTimestamp (whole seconds, as stored)."""
    import datetime

    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == "Ready" and c.get("status") == "True":

            def epoch(stamp: str) -> float:
                return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

            return epoch(c["lastTransitionTime"]) - epoch(obj["metadata"]["creationTimestamp"])
    return None


async def _operator(
    plane: BenchControlPlane, operator: OperatorProcess, names: Sequence[str], opts: Options
) -> dict[str, Any]:
    assert operator.proc is not None
    tail = AuditTail(plane.audit_log)
    user = user_of(OPERATOR_ACCOUNT)
    wanted = set(names)
    ready: dict[str, float] = {}
    done = asyncio.Event()
    sampler = ProcessSampler(operator.proc.pid)
    profiler = None

    async with KubeClient(plane.kubeconfig, limit=opts.concurrency + 2) as admin:

        async def watch() -> None:
            async for _, obj in admin.watch(SWG_PATH):
                name = obj["metadata"]["name"]
                if name in wanted and name not in ready and condition_true(obj, "Ready"):
                    ready[name] = time.time()
                    if len(ready) == len(wanted):
                        done.set()

        await asyncio.sleep(5.0)  # the operator's initial listings are done
        tail.poll()
        baseline = sampler.now()
        watcher = asyncio.create_task(watch())
        sampler.start()
        before = await apiserver_requests_by_verb(admin)
        throttle_before = await asyncio.to_thread(client_throttle, plane)
        load_start = load_average()
        if opts.profile is not None:
            profiler = await asyncio.create_subprocess_exec(
                str(opts.profile),
                "record",
                "--pid",
                str(operator.proc.pid),
                "--rate",
                str(opts.profile_rate),
                "--format",
                "raw",
                "--output",
                str(opts.state_dir / "operator-profile.txt"),
                "--nonblocking",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
        log(f"Operator: creating {len(names)} tenants")
        t0 = time.time()
        created = await _create_tenants(admin, names, concurrency=opts.concurrency)
        t_created = time.time()
        log(f"Operator: created in {t_created - t0:.1f}s; waiting for Ready")
        try:
            await asyncio.wait_for(done.wait(), timeout=opts.ready_timeout)
        except TimeoutError:
            log(f"Operator: only {len(ready)}/{len(names)} Ready after {opts.ready_timeout}s")
            raise
        t_ready = max(ready.values())
        at_ready = sampler.now()
        after_ready = await apiserver_requests_by_verb(admin)
        throttle_ready = await asyncio.to_thread(client_throttle, plane)
        metrics_ready = operator.metrics()
        load_ready = load_average()
        log(f"Operator: all Ready in {t_ready - t0:.1f}s; waiting for it to go quiet")
        if profiler is not None:
            profiler.send_signal(2)  # SIGINT: py-spy writes its output and exits
            await profiler.wait()

        last_write, quiet = await wait_quiet(
            tail,
            user=user,
            since=t_ready,
            quiet=opts.quiet_seconds,
            limit=opts.settle_max_seconds,
        )
        settled = sampler.now()
        t_settled = time.time()
        memory = await _memory_snapshot(operator, opts) if opts.memtrace else None
        log(
            f"Operator: last write {last_write - t_ready:.1f}s after Ready; idle window of "
            f"{opts.idle_seconds:.0f}s"
        )
        idle_before = await apiserver_requests_by_verb(admin)
        t_idle = time.time()
        await asyncio.sleep(opts.idle_seconds)
        t_idle_end = time.time()
        idle_end = sampler.now()
        idle_after = await apiserver_requests_by_verb(admin)
        metrics_end = operator.metrics()
        processes = plane_processes(plane)
        listed = await admin.request("GET", SWG_PATH)
        watcher.cancel()
        await sampler.stop()
        tail.poll()

    requests = tail.requests
    provisioning = list(window(requests, user=user, start=t0, end=t_settled))
    until_ready = list(window(requests, user=user, start=t0, end=t_ready + 0.001))
    idle = list(window(requests, user=user, start=t_idle, end=t_idle_end))
    idle_seconds = max(t_idle_end - t_idle, 1e-3)  # --idle-seconds 0 skips the window
    minutes = idle_seconds / 60
    idle_writes = sum(1 for r in idle if r.verb in MUTATING)
    stamps = [s for s in (_stamp_seconds(o) for o in listed["items"]) if s is not None]
    n = len(names)
    cpu_ready = at_ready.cpu_seconds - baseline.cpu_seconds
    cpu_quiet = settled.cpu_seconds - baseline.cpu_seconds
    return {
        "tenants": n,
        "concurrency": opts.concurrency,
        "operatorArgs": list(operator.argv[3:]),
        "totalSeconds": round(t_ready - t0, 2),
        "createSeconds": round(t_created - t0, 2),
        "timeToReadySinceCreate": quantiles(ready[k] - created[k] for k in names),
        "timeToReadySinceStart": quantiles(ready[k] - t0 for k in names),
        "timeToReadyFromTimestamps": quantiles(stamps),
        "lastWriteAfterReadySeconds": round(last_write - t_ready, 2),
        "wentQuiet": quiet,
        "apiRequests": {
            "untilReady": summary(until_ready, per=n),
            "untilQuiet": summary(provisioning, per=n),
        },
        "apiserverRequestTotalDelta": counter_delta(before, after_ready),
        "controlPlane": plane_settings(plane),
        "controlPlaneLimitsUntilReady": throttle_delta(throttle_before, throttle_ready),
        "controlPlaneProcessesAtEnd": processes,
        "transientErrors": transient_errors(
            operator.log_text(),
            [r for r in requests if r.user == user and r.at >= t0],
            metrics_end,
        ),
        "process": {
            "baselineRssMiB": round(baseline.rss_bytes / MIB, 1),
            "peakRssMiB": round(max(sampler.peak_rss, idle_end.peak_rss_bytes) / MIB, 1),
            "rssAtReadyMiB": round(at_ready.rss_bytes / MIB, 1),
            "rssAfterIdleMiB": round(idle_end.rss_bytes / MIB, 1),
            "cpuSecondsUntilReady": round(cpu_ready, 2),
            "cpuSecondsUntilQuiet": round(cpu_quiet, 2),
            "cpuMsPerTenantUntilReady": round(1000 * cpu_ready / n, 1),
            "cpuMsPerTenantUntilQuiet": round(1000 * cpu_quiet / n, 1),
            "timeline": sampler.timeline[:: max(1, len(sampler.timeline) // 200)],
        },
        "idle": {
            "seconds": round(t_idle_end - t_idle, 1),
            "cpuSeconds": round(idle_end.cpu_seconds - settled.cpu_seconds, 3),
            "cpuPercent": round(
                100 * (idle_end.cpu_seconds - settled.cpu_seconds) / idle_seconds, 2
            ),
            "apiRequests": summary(idle),
            "writesPerMinute": round(idle_writes / minutes, 2),
            "writesPerTenantPerMinute": round(idle_writes / minutes / n, 4),
            "apiserverRequestTotalDelta": counter_delta(idle_before, idle_after),
        },
        "operatorMetrics": {
            "atReady": _interesting(metrics_ready),
            "atEnd": _interesting(metrics_end),
        },
        "loadAverageStart": load_start,
        "loadAverageAtReady": load_ready,
        "loadAverageEnd": load_average(),
        "profile": _profile(opts),
        "memory": memory,
    }


class TracedOperator(OperatorProcess):
    """The operator under tracemalloc (`bench.provision.memtrace`); SIGUSR1 dumps a snapshot."""

    def __init__(self, *args: Any, snapshot: Path, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot = snapshot

    @property
    def argv(self) -> list[str]:
        base = super().argv  # python -m swg_operator.cli run ...
        return [base[0], "-m", "bench.provision.memtrace", str(self.snapshot), "--", *base[3:]]


async def _memory_snapshot(operator: OperatorProcess, opts: Options) -> dict[str, Any] | None:
    if not isinstance(operator, TracedOperator) or operator.proc is None:
        return None
    operator.snapshot.unlink(missing_ok=True)
    os.kill(operator.proc.pid, signal.SIGUSR1)
    size = -1
    for _ in range(300):  # the dump takes a while with hundreds of MiB traced
        await asyncio.sleep(2.0)
        now = operator.snapshot.stat().st_size if operator.snapshot.exists() else -1
        if now > 0 and now == size:
            break
        size = now
    return {
        "tool": "tracemalloc (12 frames), snapshot once every tenant was Ready and the operator "
        "quiet; grouped by the most recent frame of swg_operator, kopf or aiohttp",
        "snapshot": str(operator.snapshot),
        **summarise_memory(operator.snapshot),
        "atPeak": (
            summarise_memory(peak_snapshot(operator.snapshot))
            if peak_snapshot(operator.snapshot).exists()
            else None
        ),
    }


def _profile(opts: Options) -> dict[str, Any] | None:
    recorded = opts.state_dir / "operator-profile.txt"
    if opts.profile is None or not recorded.exists():
        return None
    return {
        "tool": f"py-spy record --nonblocking --rate {opts.profile_rate}, from the first create "
        "until every tenant was Ready",
        "rawStacks": str(recorded),
        **summarise(recorded, top=20),
    }


def _interesting(samples: dict[str, float]) -> dict[str, float]:
    keep = (
        "swg_operator_reconciles_total",
        "swg_operator_child_changes_total",
        "swg_operator_api_requests_total",
        "swg_operator_watch_events_total",
        "swg_operator_reconcile_duration_seconds_sum",
        "swg_operator_reconcile_duration_seconds_count",
    )
    return {k: v for k, v in sorted(samples.items()) if k.startswith(keep) and v}


def run_operator(opts: Options, names: Sequence[str]) -> dict[str, Any]:
    plane = fresh_plane(opts)
    operator: OperatorProcess | None = None
    try:
        install_prerequisites(plane, operator_namespace=OPERATOR_NS)
        kubeconfig = account_kubeconfig(plane, OPERATOR_ACCOUNT)
        common: dict[str, Any] = {
            "log_path": opts.state_dir / "logs" / "operator.log",
            "operator_namespace": OPERATOR_NS,
            "args": opts.operator_args,
        }
        cluster = plane.with_kubeconfig(kubeconfig)
        if opts.memtrace:
            snapshot = opts.state_dir / "operator.tracemalloc"
            operator = TracedOperator(cluster, snapshot=snapshot, **common)
        else:
            operator = OperatorProcess(cluster, **common)
        operator.start()
        return asyncio.run(_operator(plane, operator, names, opts))
    finally:
        if operator is not None:
            operator.stop(timeout=60)
        plane.stop()
