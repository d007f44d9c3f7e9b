"""The sizing model's properties over every valid input, with the packaged constants: outputs
never shrink as the load grows, quotas cover rollouts, quantities read back."""

from __future__ import annotations

import json
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from swg_operator.quantities import GIB, parse_cpu
from swg_operator.render.resources import (
    container_resources,
    quota_hard,
    sizing_document,
)
from swg_operator.sizing import HA_MIN_REPLICAS, compute_sizing
from swg_operator.sizing_io import load_capacity
from swg_operator.sizing_plan import (
    FRESHCLAM,
    SHIPPER,
    SQUID,
    ClamavDatabase,
    SizingPlan,
)

PACKAGED = load_capacity()

CPU_QUANTITY = re.compile(r"^[0-9]+m?$")
MEMORY_QUANTITY = re.compile(r"^[0-9]+(Ki|Mi|Gi|Ti)?$")


# ------------------------------------------------------------------------------------------------
# Properties over every valid input, with the packaged constants
# ------------------------------------------------------------------------------------------------

endpoints_st = st.integers(min_value=1, max_value=1_000_000)
rps_st = st.integers(min_value=1, max_value=1_000_000)
retention_st = st.integers(min_value=1, max_value=90)
databases_st = st.sampled_from(list(ClamavDatabase))


def _metrics(plan: SizingPlan) -> dict[str, int]:
    """Every number that must not shrink when the declared load grows."""
    out = {
        "log_volume": plan.log_volume,
        "quota.requests_cpu": plan.quota.requests_cpu,
        "quota.limits_cpu": plan.quota.limits_cpu,
        "quota.requests_memory": plan.quota.requests_memory,
        "quota.limits_memory": plan.quota.limits_memory,
        "quota.pods": plan.quota.pods,
        "quota.requests_storage": plan.quota.requests_storage,
        "limit_range.max_cpu": plan.limit_range.max_cpu,
        "limit_range.max_memory": plan.limit_range.max_memory,
    }
    for name, workload in plan.workloads().items():
        out[f"{name}.replicas"] = workload.replicas
        out[f"{name}.max_surge"] = workload.max_surge
        pod = workload.pod
        for field in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
            out[f"{name}.pod.{field}"] = getattr(pod, field)
            out[f"{name}.total.{field}"] = workload.replicas * getattr(pod, field)
        for container, res in workload.containers.items():
            for field in ("cpu_request", "cpu_limit", "memory_request", "memory_limit"):
                out[f"{name}.{container}.{field}"] = getattr(res, field)
    return out


def _assert_not_smaller(smaller: SizingPlan, larger: SizingPlan) -> None:
    low, high = _metrics(smaller), _metrics(larger)
    assert low.keys() == high.keys()
    shrunk = {key: (low[key], high[key]) for key in low if low[key] > high[key]}
    assert not shrunk, shrunk


@settings(max_examples=150, deadline=None)
@given(
    endpoints=st.tuples(endpoints_st, endpoints_st).map(sorted),
    rps=rps_st,
    retention=retention_st,
    antivirus=st.booleans(),
    database=databases_st,
)
def test_monotonic_in_endpoints(
    endpoints: list[int], rps: int, retention: int, antivirus: bool, database: ClamavDatabase
) -> None:
    common: dict[str, Any] = {
        "requests_per_second": rps,
        "retention_days": retention,
        "antivirus_enabled": antivirus,
        "capacity": PACKAGED,
        "clamav_database": database,
    }
    _assert_not_smaller(
        compute_sizing(endpoints=endpoints[0], **common),
        compute_sizing(endpoints=endpoints[1], **common),
    )


@settings(max_examples=150, deadline=None)
@given(
    endpoints=endpoints_st,
    rps=st.tuples(rps_st, rps_st).map(sorted),
    retention=retention_st,
    antivirus=st.booleans(),
    database=databases_st,
)
def test_monotonic_in_requests_per_second(
    endpoints: int, rps: list[int], retention: int, antivirus: bool, database: ClamavDatabase
) -> None:
    common: dict[str, Any] = {
        "endpoints": endpoints,
        "retention_days": retention,
        "antivirus_enabled": antivirus,
        "capacity": PACKAGED,
        "clamav_database": database,
    }
    _assert_not_smaller(
        compute_sizing(requests_per_second=rps[0], **common),
        compute_sizing(requests_per_second=rps[1], **common),
    )


@settings(max_examples=100, deadline=None)
@given(endpoints=endpoints_st, rps=rps_st, retention=st.tuples(retention_st, retention_st))
def test_log_volume_monotonic_in_retention(
    endpoints: int, rps: int, retention: tuple[int, int]
) -> None:
    low, high = sorted(retention)
    plans = [
        compute_sizing(
            endpoints=endpoints,
            requests_per_second=rps,
            retention_days=days,
            antivirus_enabled=True,
            capacity=PACKAGED,
        )
        for days in (low, high)
    ]
    assert plans[0].log_volume <= plans[1].log_volume


@settings(max_examples=200, deadline=None)
@given(
    endpoints=endpoints_st,
    rps=rps_st,
    retention=retention_st,
    antivirus=st.booleans(),
    database=databases_st,
    acl_entries=st.integers(min_value=0, max_value=5_000_000),
)
def test_every_plan_is_consistent(
    endpoints: int,
    rps: int,
    retention: int,
    antivirus: bool,
    database: ClamavDatabase,
    acl_entries: int,
) -> None:
    capacity = PACKAGED
    plan = compute_sizing(
        endpoints=endpoints,
        requests_per_second=rps,
        retention_days=retention,
        antivirus_enabled=antivirus,
        capacity=capacity,
        clamav_database=database,
        acl_entries=acl_entries,
    )
    # HA floor.
    assert plan.proxy.replicas >= HA_MIN_REPLICAS
    if antivirus:
        assert plan.antivirus is not None
        assert plan.antivirus.replicas >= HA_MIN_REPLICAS
    else:
        assert plan.antivirus is None

    workloads = list(plan.workloads().values())
    # The quota covers a rolling update of every workload (log store and init containers
    # included): replicas + surge pods at their limits, and also the old pods still terminating.
    quota = plan.quota
    for field, hard in (
        ("cpu_request", quota.requests_cpu),
        ("cpu_limit", quota.limits_cpu),
        ("memory_request", quota.requests_memory),
        ("memory_limit", quota.limits_memory),
    ):
        during_update = sum((w.replicas + w.max_surge) * getattr(w.pod, field) for w in workloads)
        assert during_update <= hard, field
        with_terminating = sum(w.pods_during_rollout * getattr(w.pod, field) for w in workloads)
        assert with_terminating <= hard, field
        for w in workloads:
            assert getattr(w.pod, field) >= getattr(w.init_container, field)
    assert sum(w.replicas + 2 * w.max_surge for w in workloads) <= quota.pods
    assert quota.requests_storage >= plan.log_volume
    for w in workloads:
        assert w.max_unavailable == 0
        assert w.max_surge >= 1
        if w.pdb_max_unavailable is not None:
            assert 1 <= w.pdb_max_unavailable < w.replicas

    # Every container passes the LimitRange and has limits at least its requests.
    for w in workloads:
        for res in (*w.containers.values(), w.init_container):
            assert 0 < res.cpu_request <= res.cpu_limit <= plan.limit_range.max_cpu
            assert 0 < res.memory_request <= res.memory_limit <= plan.limit_range.max_memory

    # The plan serves the declared load at the utilisation target.
    squid = plan.proxy.containers[SQUID]
    served = plan.proxy.replicas * squid.cpu_request * capacity.proxy_rps_per_core
    assert served * capacity.target_utilisation_percent >= rps * 1000 * 100
    connections = endpoints * capacity.connections_per_endpoint
    assert plan.proxy.replicas * capacity.max_connections_per_replica >= connections
    if plan.antivirus is not None:
        scan_cpu = sum(r.cpu_request for r in plan.antivirus.containers.values())
        served = plan.antivirus.replicas * scan_cpu * capacity.antivirus_rps_per_core
        assert served * capacity.target_utilisation_percent >= rps * 1000 * 100

    # The log volume holds the retained days and is a whole number of GiB.
    assert plan.log_volume % GIB == 0
    assert (
        plan.log_volume
        >= rps
        * capacity.average_to_peak_percent
        * capacity.access_log_line_bytes
        * 86_400
        * (capacity.uncompressed_log_days * 100 + retention * capacity.compression_ratio_percent)
        // (100 * 100)
    )
    # Every proxy and anti-virus pod ships its logs through a sized sidecar, with a spool for a
    # log store outage at the pod's peak.
    outage = capacity.log_spool_outage_minutes * 60
    for w, per_core, cpu_max, line_bytes in (
        (
            plan.proxy,
            capacity.proxy_rps_per_core,
            capacity.proxy_cpu_max,
            capacity.access_log_line_bytes,
        ),
        (
            plan.antivirus,
            capacity.antivirus_rps_per_core,
            capacity.antivirus_cpu_max,
            capacity.antivirus_log_line_bytes,
        ),
    ):
        if w is None:
            continue
        assert SHIPPER in w.containers
        per_replica = cpu_max * per_core * capacity.target_utilisation_percent // 100_000
        assert w.log_spool >= min(rps, per_replica) * line_bytes * outage
        shipped = w.containers[SHIPPER].cpu_request * capacity.shipper_lines_per_core
        assert shipped * capacity.target_utilisation_percent >= min(rps, per_replica) * 100_000
    assert (FRESHCLAM in (plan.antivirus.containers if plan.antivirus else {})) == (
        antivirus and database is ClamavDatabase.FULL
    )

    # Quantities are Kubernetes quantity strings that read back to the same integers.
    document = sizing_document(plan)
    json.dumps(document)
    for key, value in quota_hard(quota).items():
        if key in ("pods", "persistentvolumeclaims"):
            assert value.isdigit()
        elif key.endswith("cpu"):
            assert CPU_QUANTITY.match(value), value
        else:
            assert MEMORY_QUANTITY.match(value), value
    for w in workloads:
        for res in (*w.containers.values(), w.init_container):
            rendered = container_resources(res)
            for kind in ("requests", "limits"):
                assert parse_cpu(rendered[kind]["cpu"]) in (
                    res.cpu_request,
                    res.cpu_limit,
                )
                assert MEMORY_QUANTITY.match(rendered[kind]["memory"])
