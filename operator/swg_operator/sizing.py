"""The sizing model: declared endpoints and requests/s -> replicas, resources, quota, log volume.

Pure (no I/O, no clock, no cluster): the capacity constants come in as a `capacity.Capacity`
(`sizing_io.load_capacity` reads `data/capacity.yaml`), the plan goes out as plain numbers
(`sizing_plan.SizingPlan`: millicores, bytes, counts); `render.resources` writes them as
Kubernetes quantities. All arithmetic is on integers and every rounding is upwards, so each
output is a non-decreasing function of endpoints and requests/s. docs/sizing.md derives the
formulas; tests/test_sizing.py proves the properties.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

from swg_logstore.retention import MAX_RETENTION_DAYS
from swg_operator.capacity import Capacity
from swg_operator.quantities import GIB, MIB
from swg_operator.sizing_plan import (
    CICAP,
    CLAMD,
    FRESHCLAM,
    LOGSTORE,
    SHIPPER,
    SQUID,
    ClamavDatabase,
    LimitRangePlan,
    QuotaPlan,
    Resources,
    SizingPlan,
    WorkloadPlan,
)

SECONDS_PER_DAY: Final = 86_400
SECONDS_PER_MINUTE: Final = 60

# Highly available workloads never run fewer replicas than this.
HA_MIN_REPLICAS: Final = 2
# Rounding steps: requests and limits are rounded up to them so rendered values stay readable.
CPU_STEP_MILLICORES: Final = 50
MEMORY_STEP_BYTES: Final = 16 * MIB
QUOTA_CPU_STEP_MILLICORES: Final = 100
QUOTA_MEMORY_STEP_BYTES: Final = 64 * MIB
# Rounding step of a pod's log spool (its share of the state emptyDir's sizeLimit).
SPOOL_STEP_BYTES: Final = 64 * MIB

# Inputs the model accepts (the CRD enforces the same bounds on the spec).
MAX_ENDPOINTS: Final = 1_000_000
MAX_REQUESTS_PER_SECOND: Final = 1_000_000


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _round_up(value: int, step: int) -> int:
    return _ceil_div(value, step) * step


def _percent_of(value: int, percent: int) -> int:
    """ceil(value x percent / 100)."""
    return _ceil_div(value * percent, 100)


# ------------------------------------------------------------------------------------------------
# The model
# ------------------------------------------------------------------------------------------------


def _millicores_needed(rate: int, per_core: int, capacity: Capacity) -> int:
    """CPU for `rate` units/s at `per_core` units/s per core, run at the utilisation target."""
    return _ceil_div(rate * 1000 * 100, per_core * capacity.target_utilisation_percent)


def _cpu_request(needed: int, *, low: int, high: int) -> int:
    return max(low, min(_round_up(needed, CPU_STEP_MILLICORES), high))


def _cpu_limit(request: int, *, high: int, capacity: Capacity) -> int:
    limit = min(_round_up(_percent_of(request, capacity.cpu_limit_percent), 10), high)
    return max(request, limit)


def _memory(request: int, capacity: Capacity) -> tuple[int, int]:
    request = _round_up(request, MEMORY_STEP_BYTES)
    limit = _round_up(_percent_of(request, capacity.memory_limit_percent), MEMORY_STEP_BYTES)
    return request, limit


def _rollout(replicas: int, capacity: Capacity) -> tuple[int, int]:
    """(maxSurge, PDB maxUnavailable) for a highly available workload."""
    surge = max(1, _percent_of(replicas, capacity.max_surge_percent))
    disruption = max(1, replicas * capacity.disruption_budget_percent // 100)
    return surge, disruption


def _fixed(cpu: int, memory: int, capacity: Capacity) -> Resources:
    """A container of a fixed size; limits by the shared percentages."""
    memory, memory_limit = _memory(memory, capacity)
    return Resources(
        cpu_request=cpu,
        cpu_limit=_round_up(_percent_of(cpu, capacity.cpu_limit_percent), 10),
        memory_request=memory,
        memory_limit=memory_limit,
    )


def _init_container(capacity: Capacity) -> Resources:
    return _fixed(capacity.init_container_cpu, capacity.init_container_memory, capacity)


def _pod_rate(rps: int, per_core: int, cpu_max: int, capacity: Capacity) -> int:
    """Requests/s one pod of a workload carries at most: the whole declared load up to what
    one replica at its CPU maximum serves at the utilisation target (beyond that the workload
    scales out)."""
    per_replica = _ceil_div(cpu_max * per_core * capacity.target_utilisation_percent, 1000 * 100)
    return min(rps, per_replica)


def _shipper(lines_per_second: int, capacity: Capacity) -> Resources:
    """The log shipper sidecar of a pod writing `lines_per_second` raw log lines."""
    needed = _millicores_needed(lines_per_second, capacity.shipper_lines_per_core, capacity)
    cpu = max(capacity.shipper_cpu_min, _round_up(needed, CPU_STEP_MILLICORES))
    return _fixed(cpu, capacity.shipper_memory, capacity)


def _log_spool(bytes_per_second: int, capacity: Capacity) -> int:
    """What a pod's log spool must hold: `bytes_per_second` of raw log lines for a log store
    outage of logSpoolOutageMinutes (the shipper gives back what was shipped)."""
    outage = capacity.log_spool_outage_minutes * SECONDS_PER_MINUTE
    return _round_up(max(1, bytes_per_second * outage), SPOOL_STEP_BYTES)


def _proxy_plan(*, endpoints: int, rps: int, acl_entries: int, capacity: Capacity) -> WorkloadPlan:
    needed = _millicores_needed(rps, capacity.proxy_rps_per_core, capacity)
    connections = endpoints * capacity.connections_per_endpoint
    replicas = max(
        HA_MIN_REPLICAS,
        _ceil_div(needed, capacity.proxy_cpu_max),
        _ceil_div(connections, capacity.max_connections_per_replica),
    )
    # Until the per-replica maximum, every replica is sized for the whole load, so one
    # replica can carry the tenant while the other is disrupted.
    cpu = _cpu_request(needed, low=capacity.proxy_cpu_min, high=capacity.proxy_cpu_max)
    memory, memory_limit = _memory(
        capacity.proxy_memory_base
        + min(connections, capacity.max_connections_per_replica) * capacity.memory_per_connection
        + acl_entries * capacity.acl_entry_memory,
        capacity,
    )
    surge, disruption = _rollout(replicas, capacity)
    squid = Resources(
        cpu_request=cpu,
        cpu_limit=_cpu_limit(cpu, high=capacity.proxy_cpu_max, capacity=capacity),
        memory_request=memory,
        memory_limit=memory_limit,
    )
    # One access-log line per request (the URL-filter record comes from the same line).
    pod_rps = _pod_rate(rps, capacity.proxy_rps_per_core, capacity.proxy_cpu_max, capacity)
    return WorkloadPlan(
        replicas=replicas,
        max_surge=surge,
        max_unavailable=0,
        pdb_max_unavailable=disruption,
        containers=MappingProxyType({SQUID: squid, SHIPPER: _shipper(pod_rps, capacity)}),
        init_container=_init_container(capacity),
        log_spool=_log_spool(pod_rps * capacity.access_log_line_bytes, capacity),
    )


def _antivirus_plan(*, rps: int, database: ClamavDatabase, capacity: Capacity) -> WorkloadPlan:
    needed = _millicores_needed(rps, capacity.antivirus_rps_per_core, capacity)
    replicas = max(HA_MIN_REPLICAS, _ceil_div(needed, capacity.antivirus_cpu_max))
    cpu = _cpu_request(needed, low=capacity.antivirus_cpu_min, high=capacity.antivirus_cpu_max)
    share = capacity.icap_cpu_share_percent
    icap_cpu = _round_up(_percent_of(cpu, share), CPU_STEP_MILLICORES)
    clamd_cpu = _round_up(_percent_of(cpu, 100 - share), CPU_STEP_MILLICORES)
    icap_high = max(
        icap_cpu, _round_up(_percent_of(capacity.antivirus_cpu_max, share), CPU_STEP_MILLICORES)
    )
    clamd_high = max(
        clamd_cpu,
        _round_up(_percent_of(capacity.antivirus_cpu_max, 100 - share), CPU_STEP_MILLICORES),
    )

    icap_memory, icap_memory_limit = _memory(
        capacity.icap_memory_base + _ceil_div(icap_cpu * capacity.icap_memory_per_core, 1000),
        capacity,
    )
    database_memory = (
        capacity.clamd_database_memory_full
        if database is ClamavDatabase.FULL
        else capacity.clamd_database_memory_custom
    )
    clamd_memory = _round_up(
        database_memory + _ceil_div(clamd_cpu * capacity.clamd_scan_memory_per_core, 1000),
        MEMORY_STEP_BYTES,
    )
    # A concurrent database reload holds the old and the new database at once.
    clamd_memory_limit = _round_up(clamd_memory + database_memory, MEMORY_STEP_BYTES)
    surge, disruption = _rollout(replicas, capacity)
    # At most one c-icap log line per request (a scanned body).
    pod_rps = _pod_rate(rps, capacity.antivirus_rps_per_core, capacity.antivirus_cpu_max, capacity)
    containers = {
        CICAP: Resources(
            cpu_request=icap_cpu,
            cpu_limit=_cpu_limit(icap_cpu, high=icap_high, capacity=capacity),
            memory_request=icap_memory,
            memory_limit=icap_memory_limit,
        ),
        CLAMD: Resources(
            cpu_request=clamd_cpu,
            cpu_limit=_cpu_limit(clamd_cpu, high=clamd_high, capacity=capacity),
            memory_request=clamd_memory,
            memory_limit=clamd_memory_limit,
        ),
        SHIPPER: _shipper(pod_rps, capacity),
    }
    if database is ClamavDatabase.FULL:
        containers[FRESHCLAM] = _fixed(capacity.freshclam_cpu, capacity.freshclam_memory, capacity)
    return WorkloadPlan(
        replicas=replicas,
        max_surge=surge,
        max_unavailable=0,
        pdb_max_unavailable=disruption,
        containers=MappingProxyType(containers),
        init_container=_init_container(capacity),
        log_spool=_log_spool(pod_rps * capacity.antivirus_log_line_bytes, capacity),
    )


def _log_store_plan(*, rps: int, antivirus: bool, capacity: Capacity) -> WorkloadPlan:
    lines_per_second = rps * (2 if antivirus else 1)
    needed = _millicores_needed(lines_per_second, capacity.logstore_lines_per_core, capacity)
    cpu = _cpu_request(needed, low=capacity.logstore_cpu_min, high=capacity.logstore_cpu_max)
    memory, memory_limit = _memory(capacity.logstore_memory, capacity)
    return WorkloadPlan(
        # One writer owns the volume: no HA floor and no PDB (a PDB that allows no disruption
        # would block node drains). The quota still keeps room for one surge pod.
        replicas=1,
        max_surge=1,
        max_unavailable=0,
        pdb_max_unavailable=None,
        containers=MappingProxyType(
            {
                LOGSTORE: Resources(
                    cpu_request=cpu,
                    cpu_limit=_cpu_limit(cpu, high=capacity.logstore_cpu_max, capacity=capacity),
                    memory_request=memory,
                    memory_limit=memory_limit,
                )
            }
        ),
        init_container=_init_container(capacity),
    )


def log_volume_bytes(
    *, requests_per_second: int, retention_days: int, antivirus_enabled: bool, capacity: Capacity
) -> int:
    """Log volume size: a day of logs at the average load (averageToPeakRatioPercent of the
    declared peak), kept raw for the uncompressed days and compressed for every retained day,
    plus headroom, rounded up to a whole GiB."""
    line_bytes = capacity.access_log_line_bytes + (
        capacity.antivirus_log_line_bytes if antivirus_enabled else 0
    )
    per_day = _percent_of(
        requests_per_second * line_bytes * SECONDS_PER_DAY, capacity.average_to_peak_percent
    )
    stored = _ceil_div(
        per_day
        * (
            capacity.uncompressed_log_days * 100
            + retention_days * capacity.compression_ratio_percent
        ),
        100,
    )
    with_headroom = _percent_of(stored, 100 + capacity.log_volume_headroom_percent)
    return max(GIB, _round_up(with_headroom, GIB))


def _quota(
    workloads: list[WorkloadPlan], *, storage: int, default: Resources, capacity: Capacity
) -> QuotaPlan:
    spare = capacity.quota_spare_pods

    def total(pick: str, step: int) -> int:
        used = sum(w.pods_during_rollout * getattr(w.pod, pick) for w in workloads)
        used += spare * getattr(default, pick)
        return _round_up(_percent_of(used, 100 + capacity.quota_headroom_percent), step)

    return QuotaPlan(
        requests_cpu=total("cpu_request", QUOTA_CPU_STEP_MILLICORES),
        limits_cpu=total("cpu_limit", QUOTA_CPU_STEP_MILLICORES),
        requests_memory=total("memory_request", QUOTA_MEMORY_STEP_BYTES),
        limits_memory=total("memory_limit", QUOTA_MEMORY_STEP_BYTES),
        pods=sum(w.pods_during_rollout for w in workloads) + spare,
        requests_storage=storage,
        persistent_volume_claims=1,
    )


def _check_input(name: str, value: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= high:
        raise ValueError(f"{name} must be an integer in 1..{high}, got {value!r}")


def compute_sizing(
    *,
    endpoints: int,
    requests_per_second: int,
    retention_days: int,
    antivirus_enabled: bool,
    capacity: Capacity,
    clamav_database: ClamavDatabase = ClamavDatabase.FULL,
    acl_entries: int = 0,
    log_volume_override: int | None = None,
) -> SizingPlan:
    """Size one tenant from its declared endpoints and peak requests/s.

    `clamav_database` picks clamd's memory floor (FULL also gives every anti-virus pod the
    freshclam sidecar that keeps the public database current); `acl_entries` (the number of
    domains and URLs in the tenant's filter lists) adds Squid memory for them.
    `log_volume_override` (bytes, the spec's `logs.storage.size`) replaces the modelled log
    volume; the storage quota keeps room for the larger of the two. Raises ValueError for
    inputs outside 1..1,000,000 (endpoints, requests/s) or 1..90 (retention days).
    """
    _check_input("endpoints", endpoints, MAX_ENDPOINTS)
    _check_input("requests_per_second", requests_per_second, MAX_REQUESTS_PER_SECOND)
    _check_input("retention_days", retention_days, MAX_RETENTION_DAYS)
    if isinstance(acl_entries, bool) or not isinstance(acl_entries, int) or acl_entries < 0:
        raise ValueError(f"acl_entries must be a non-negative integer, got {acl_entries!r}")
    if log_volume_override is not None and (
        isinstance(log_volume_override, bool)
        or not isinstance(log_volume_override, int)
        or log_volume_override < 1
    ):
        raise ValueError(
            f"log_volume_override must be a positive number of bytes, got {log_volume_override!r}"
        )

    proxy = _proxy_plan(
        endpoints=endpoints, rps=requests_per_second, acl_entries=acl_entries, capacity=capacity
    )
    antivirus = (
        _antivirus_plan(rps=requests_per_second, database=clamav_database, capacity=capacity)
        if antivirus_enabled
        else None
    )
    log_store = _log_store_plan(
        rps=requests_per_second, antivirus=antivirus_enabled, capacity=capacity
    )
    modelled_volume = log_volume_bytes(
        requests_per_second=requests_per_second,
        retention_days=retention_days,
        antivirus_enabled=antivirus_enabled,
        capacity=capacity,
    )
    workloads = [w for w in (proxy, antivirus, log_store) if w is not None]
    default = _init_container(capacity)
    every_container = [r for w in workloads for r in (*w.containers.values(), w.init_container)]
    return SizingPlan(
        endpoints=endpoints,
        requests_per_second=requests_per_second,
        retention_days=retention_days,
        antivirus_enabled=antivirus_enabled,
        clamav_database=clamav_database,
        acl_entries=acl_entries,
        proxy=proxy,
        antivirus=antivirus,
        log_store=log_store,
        log_volume=modelled_volume if log_volume_override is None else log_volume_override,
        log_volume_override=log_volume_override,
        quota=_quota(
            workloads,
            storage=max(modelled_volume, log_volume_override or 0),
            default=default,
            capacity=capacity,
        ),
        limit_range=LimitRangePlan(
            default=default,
            max_cpu=max(r.cpu_limit for r in every_container),
            max_memory=max(r.memory_limit for r in every_container),
        ),
        provisional=capacity.provisional,
    )
