"""One provisioning benchmark run: the floor, then the operator, each on a fresh control plane.

Floor: every tenant's objects are rendered first (`swg_operator.render.render_tenant`, the same
function the operator calls; the render time is reported apart), then applied by a minimal
client: one server-side apply per object, in the renderer's order within a tenant, all tenants
at once through at most `concurrency` connections (the operator's adapter has 16). It ends when
every tenant's proxy and anti-virus Deployments are available by the operator's own test (what
the operator's `Ready` waits for); when the log stores are available too is reported beside.

Operator: `swg-operator run` as a process; N `SecureWebGateway` objects are created at once
(through the admin identity, at most `concurrency` at a time), and a watch records when each
one's `Ready` condition turns True. Then the operator is left alone until it has written
nothing for `quiet` seconds, and an idle window measures what Ready tenants cost.

Both clients run as ServiceAccounts bound to cluster-admin, so API Priority and Fairness treats
them alike; the audit log attributes every request to one of them.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from e2e.cluster import ControlPlane, service_account_kubeconfig
from e2e.operator_process import OperatorProcess, install_prerequisites, tenant_manifest

from bench.kubeclient import KubeClient
from bench.localcluster import (
    BENCH_NAMESPACE,
    FLOOR_ACCOUNT,
    OPERATOR_ACCOUNT,
    BenchControlPlane,
    client_throttle,
    plane_processes,
    throttle_delta,
)
from bench.provision.audit import MUTATING, summary, window
from bench.provision.errors import transient_errors
from bench.provision.measure import (
    AuditTail,
    ProcessSampler,
    apiserver_requests_by_verb,
    condition_true,
    counter_delta,
    deployment_available,
    quantiles,
)
from bench.provision.memtrace import summarise as summarise_memory
from bench.provision.profile import summarise
from bench.sysinfo import MIB, load_average

REPO_ROOT = Path(__file__).resolve().parents[2]
OPERATOR_NS = "swg-system"
SWG_PATH = "/apis/swg.dev/v1alpha1/securewebgateways"
DEPLOYMENTS_PATH = "/apis/apps/v1/deployments"
MANAGED = "app.kubernetes.io/managed-by=swg-operator"
READY_COMPONENTS = ("proxy", "antivirus")  # the Deployments the operator's Ready waits for


@dataclass(frozen=True)
class Options:
    tenants: int
    state_dir: Path
    concurrency: int = 16
    idle_seconds: float = 180.0
    quiet_seconds: float = 15.0
    settle_max_seconds: float = 300.0
    ready_timeout: float = 3600.0
    floor: bool = True
    operator_args: tuple[str, ...] = ()
    profile: Path | None = None  # py-spy binary: record the operator while it provisions
    profile_rate: int = 20  # samples per second (py-spy runs beside, --nonblocking)
    memtrace: bool = False  # run the operator under tracemalloc (slower; for the memory profile)


def tenant_names(count: int) -> list[str]:
    return [f"bench-{i:04d}" for i in range(count)]


def bench_tenant(name: str) -> dict[str, Any]:
    """The e2e tier's tenant: 50 endpoints, 20 requests/s (2 proxies, 2 anti-virus, 1 store)."""
    return tenant_manifest(name)


def _log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def fresh_plane(opts: Options) -> BenchControlPlane:
    plane = BenchControlPlane(opts.state_dir, tenants=opts.tenants)
    plane.stop()  # whatever ran in this state dir before: start() then starts from scratch
    plane.start()
    return plane


def account_kubeconfig(plane: ControlPlane, name: str) -> Path:
    """A ServiceAccount of the benchmark bound to cluster-admin, as a kubeconfig."""
    plane.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": BENCH_NAMESPACE}},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": f"swg-bench-{name}"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "cluster-admin",
            },
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": BENCH_NAMESPACE}],
        },
    )
    return service_account_kubeconfig(
        plane,
        namespace=BENCH_NAMESPACE,
        name=name,
        path=plane.state_dir / f"{name}.kubeconfig",
        duration="12h",
    )


def plane_settings(plane: BenchControlPlane) -> dict[str, Any]:
    """The control plane's flags and Nodes that differ from `make up`'s (for the result)."""
    tuning = plane.tuning
    return {
        "etcd": tuning.etcd_args(),
        "kube-apiserver": tuning.apiserver_args(),
        "kube-controller-manager": tuning.controller_manager_args(),
        "kube-scheduler": tuning.client_args(),
        "kwokNodes": len(plane.nodes),
        "podsPerNode": int(plane.nodes[0].pods),
    }


def user_of(account: str) -> str:
    return f"system:serviceaccount:{BENCH_NAMESPACE}:{account}"


async def _wait_quiet(
    tail: AuditTail, *, user: str, since: float, quiet: float, limit: float
) -> tuple[float, bool]:
    """Wait until `user` made no mutating request for `quiet` seconds; (when it last wrote,
    whether it went quiet before `limit` seconds)."""
    deadline = time.time() + limit
    last = since
    while time.time() < deadline:
        await asyncio.sleep(min(quiet / 3, 5.0))
        for r in tail.poll():
            if r.user == user and r.verb in MUTATING:
                last = max(last, r.at)
        if time.time() - last >= quiet:
            return last, True
    return last, False


# --- the floor -----------------------------------------------------------------------------------


def render_all(names: Sequence[str]) -> tuple[dict[str, tuple[dict[str, Any], ...]], float]:
    from swg_operator.api import OperatorSettings, parse_spec
    from swg_operator.commands.render import read_catalogue
    from swg_operator.render import render_tenant
    from swg_operator.sizing_io import load_capacity

    catalogue = read_catalogue(None)  # examples/catalogue: what the operator's run imports
    settings = OperatorSettings.model_validate({"operatorNamespace": OPERATOR_NS})
    capacity = load_capacity()
    started = time.process_time()
    rendered = {
        name: render_tenant(
            name,
            parse_spec(bench_tenant(name)["spec"]),
            catalogue=catalogue,
            settings=settings,
            capacity=capacity,
        ).objects
        for name in names
    }
    return rendered, time.process_time() - started


async def _floor(
    plane: BenchControlPlane,
    kubeconfig: Path,
    rendered: dict[str, tuple[dict[str, Any], ...]],
    opts: Options,
) -> dict[str, Any]:
    tail = AuditTail(plane.audit_log)
    user = user_of(FLOOR_ACCOUNT)
    namespace_of = {f"swg-{name}": name for name in rendered}
    expected = {
        name: {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
        for name, objects in rendered.items()
    }
    available: dict[str, dict[str, float]] = {name: {} for name in rendered}
    ready_at: dict[str, float] = {}
    all_at: dict[str, float] = {}
    done = asyncio.Event()

    async with (
        KubeClient(plane.kubeconfig, limit=4) as admin,
        KubeClient(kubeconfig, limit=opts.concurrency) as client,
    ):

        async def watch() -> None:
            async for _, obj in admin.watch(DEPLOYMENTS_PATH, params={"labelSelector": MANAGED}):
                name = namespace_of.get(obj["metadata"].get("namespace", ""))
                if name is None or not deployment_available(obj):
                    continue
                seen = available[name]
                seen.setdefault(obj["metadata"]["name"], time.time())
                if name not in ready_at and all(c in seen for c in READY_COMPONENTS):
                    ready_at[name] = max(seen[c] for c in READY_COMPONENTS)
                if name not in all_at and expected[name] <= seen.keys():
                    all_at[name] = max(seen.values())
                if len(ready_at) == len(rendered) and len(all_at) == len(rendered):
                    done.set()

        watcher = asyncio.create_task(watch())
        before = await apiserver_requests_by_verb(admin)
        throttle_before = await asyncio.to_thread(client_throttle, plane)
        load_start = load_average()
        applied_at: dict[str, float] = {}
        semaphore = asyncio.Semaphore(opts.concurrency)

        async def provision(name: str) -> None:
            for obj in rendered[name]:
                async with semaphore:
                    await client.apply(obj, field_manager="swg-floor")
            applied_at[name] = time.time()

        _log(f"Floor: applying {sum(len(o) for o in rendered.values())} objects")
        t0 = time.time()
        await asyncio.gather(*(provision(name) for name in rendered))
        t_applied = time.time()
        _log(f"Floor: applied in {t_applied - t0:.1f}s; waiting for the Deployments")
        await asyncio.wait_for(done.wait(), timeout=opts.ready_timeout)
        t_ready = max(ready_at.values())
        t_all = max(all_at.values())
        _log(f"Floor: ready in {t_ready - t0:.1f}s (log stores too: {t_all - t0:.1f}s)")
        after = await apiserver_requests_by_verb(admin)
        throttle_after = await asyncio.to_thread(client_throttle, plane)
        processes = plane_processes(plane)
        watcher.cancel()
        tail.poll()

    requests = list(window(tail.requests, user=user, start=t0 - 1))
    return {
        "tenants": len(rendered),
        "objectsPerTenant": round(sum(len(o) for o in rendered.values()) / len(rendered), 2),
        "concurrency": opts.concurrency,
        "totalSeconds": round(t_ready - t0, 2),
        "applySeconds": round(t_applied - t0, 2),
        "allDeploymentsSeconds": round(t_all - t0, 2),
        "timeToReadySinceStart": quantiles(ready_at[n] - t0 for n in rendered),
        "apiRequests": summary(requests, per=len(rendered)),
        "apiserverRequestTotalDelta": counter_delta(before, after),
        "controlPlane": plane_settings(plane),
        "controlPlaneLimitsUntilReady": throttle_delta(throttle_before, throttle_after),
        "controlPlaneProcessesAtReady": processes,
        "loadAverageStart": load_start,
        "loadAverageEnd": load_average(),
    }


def run_floor(opts: Options, names: Sequence[str]) -> dict[str, Any]:
    _log(f"Floor: rendering {len(names)} tenants")
    rendered, render_seconds = render_all(names)
    plane = fresh_plane(opts)
    try:
        kubeconfig = account_kubeconfig(plane, FLOOR_ACCOUNT)
        result = asyncio.run(_floor(plane, kubeconfig, rendered, opts))
    finally:
        plane.stop()
    result["renderCpuSeconds"] = round(render_seconds, 2)
    result["renderMsPerTenant"] = round(1000 * render_seconds / len(names), 2)
    return result


# --- the operator --------------------------------------------------------------------------------


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
        _log(f"Operator: creating {len(names)} tenants")
        t0 = time.time()
        created = await _create_tenants(admin, names, concurrency=opts.concurrency)
        t_created = time.time()
        _log(f"Operator: created in {t_created - t0:.1f}s; waiting for Ready")
        try:
            await asyncio.wait_for(done.wait(), timeout=opts.ready_timeout)
        except TimeoutError:
            _log(f"Operator: only {len(ready)}/{len(names)} Ready after {opts.ready_timeout}s")
            raise
        t_ready = max(ready.values())
        at_ready = sampler.now()
        after_ready = await apiserver_requests_by_verb(admin)
        throttle_ready = await asyncio.to_thread(client_throttle, plane)
        metrics_ready = operator.metrics()
        load_ready = load_average()
        _log(f"Operator: all Ready in {t_ready - t0:.1f}s; waiting for it to go quiet")
        if profiler is not None:
            profiler.send_signal(2)  # SIGINT: py-spy writes its output and exits
            await profiler.wait()

        last_write, quiet = await _wait_quiet(
            tail,
            user=user,
            since=t_ready,
            quiet=opts.quiet_seconds,
            limit=opts.settle_max_seconds,
        )
        settled = sampler.now()
        t_settled = time.time()
        memory = await _memory_snapshot(operator, opts) if opts.memtrace else None
        _log(
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
