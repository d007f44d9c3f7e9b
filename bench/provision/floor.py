"""The floor of the provisioning benchmark: the tenants' objects applied by a minimal client.

Every tenant's objects are rendered first (`swg_operator.render.render_tenant`, the same
function the operator calls; the render time is reported apart), then applied by a minimal
client: one server-side apply per object, in the renderer's order within a tenant, all tenants
at once through at most `concurrency` connections (the operator's adapter has 16). It ends when
every tenant's proxy and anti-virus Deployments are available by the operator's own test (what
the operator's `Ready` waits for); when the log stores are available too is reported beside.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.kubeclient import KubeClient
from bench.localcluster import (
    FLOOR_ACCOUNT,
    BenchControlPlane,
    client_throttle,
    plane_processes,
    throttle_delta,
)
from bench.provision.audit import summary, window
from bench.provision.harness import (
    DEPLOYMENTS_PATH,
    MANAGED,
    OPERATOR_NS,
    READY_COMPONENTS,
    Options,
    account_kubeconfig,
    bench_tenant,
    fresh_plane,
    log,
    plane_settings,
    user_of,
)
from bench.provision.measure import (
    AuditTail,
    apiserver_requests_by_verb,
    counter_delta,
    deployment_available,
    quantiles,
)
from bench.sysinfo import load_average


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

        log(f"Floor: applying {sum(len(o) for o in rendered.values())} objects")
        t0 = time.time()
        await asyncio.gather(*(provision(name) for name in rendered))
        t_applied = time.time()
        log(f"Floor: applied in {t_applied - t0:.1f}s; waiting for the Deployments")
        await asyncio.wait_for(done.wait(), timeout=opts.ready_timeout)
        t_ready = max(ready_at.values())
        t_all = max(all_at.values())
        log(f"Floor: ready in {t_ready - t0:.1f}s (log stores too: {t_all - t0:.1f}s)")
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
    log(f"Floor: rendering {len(names)} tenants")
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
