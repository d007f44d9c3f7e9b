"""The sizing model: declared endpoints and requests/s -> replicas, resources, quota, log volume.

Pure (no I/O, no clock, no cluster): the capacity constants come in as a `Capacity`, parsed and
validated from `data/capacity.yaml` by `parse_capacity` (`sizing_io.load_capacity` reads the
file). All arithmetic is on integers (millicores, bytes) and every rounding is upwards, so each
output is a non-decreasing function of endpoints and requests/s. docs/sizing.md derives the
formulas; tests/test_sizing.py proves the properties.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Final

from swg_logstore.retention import MAX_RETENTION_DAYS

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB
SECONDS_PER_DAY: Final = 86_400

# Highly available workloads never run fewer replicas than this.
HA_MIN_REPLICAS: Final = 2
# Rounding steps: requests and limits are rounded up to them so rendered values stay readable.
CPU_STEP_MILLICORES: Final = 50
MEMORY_STEP_BYTES: Final = 16 * MIB
QUOTA_CPU_STEP_MILLICORES: Final = 100
QUOTA_MEMORY_STEP_BYTES: Final = 64 * MIB

# Inputs the model accepts (the CRD enforces the same bounds on the spec).
MAX_ENDPOINTS: Final = 1_000_000
MAX_REQUESTS_PER_SECOND: Final = 1_000_000

# Container names the plan's resources are keyed by; the renderer uses the same names.
SQUID: Final = "squid"
CICAP: Final = "c-icap"
CLAMD: Final = "clamd"
LOGSTORE: Final = "logstore"
# Native sidecars (restartable init containers): they run for the pod's whole life, so the plan
# keys them with the containers and the quota counts them like any running container.
SHIPPER: Final = "shipper"  # ships the pod's log spool to the log store (proxy, anti-virus)
FRESHCLAM: Final = "freshclam"  # keeps the public signature database current (anti-virus)
SECONDS_PER_MINUTE: Final = 60
# Rounding step of a pod's log spool (its share of the state emptyDir's sizeLimit).
SPOOL_STEP_BYTES: Final = 64 * MIB


class ClamavDatabase(StrEnum):
    """Which signatures clamd loads, which decides its memory floor."""

    # The public ClamAV database (about 1.2 GiB resident), kept current by a freshclam sidecar
    # in every anti-virus pod (settings antivirus.signatureSource freshclam).
    FULL = "full"
    # Only the platform's and the tenant's own signature files (signatureSource configMap).
    CUSTOM = "custom"


class CapacityError(ValueError):
    """The capacity data file is malformed; the message names the offending key."""


# ------------------------------------------------------------------------------------------------
# Quantities
# ------------------------------------------------------------------------------------------------

_CPU_QUANTITY = re.compile(r"(?P<n>[0-9]{1,18})(?P<m>m?)")
_BYTES_QUANTITY = re.compile(r"(?P<n>[0-9]{1,18})(?P<unit>Ki|Mi|Gi|Ti)?")
_BINARY_UNITS: Final = {"": 1, "Ki": KIB, "Mi": MIB, "Gi": GIB, "Ti": 1024 * GIB}


def cpu_quantity(millicores: int) -> str:
    """Kubernetes CPU quantity: 1500 -> "1500m", 2000 -> "2"."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def memory_quantity(num_bytes: int) -> str:
    """Kubernetes memory quantity with the largest exact binary suffix: 768 MiB -> "768Mi"."""
    for suffix, unit in (("Ti", 1024 * GIB), ("Gi", GIB), ("Mi", MIB), ("Ki", KIB)):
        if num_bytes and num_bytes % unit == 0:
            return f"{num_bytes // unit}{suffix}"
    return str(num_bytes)


def parse_cpu_quantity(text: str) -> int:
    """ "100m" -> 100, "2" -> 2000. Only the forms the capacity file uses."""
    match = _CPU_QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a CPU quantity like '250m' or '2'")
    value = int(match["n"])
    return value if match["m"] else value * 1000


def parse_memory_quantity(text: str) -> int:
    """ "64Mi" -> 67108864, "512" -> 512. Binary suffixes only."""
    match = _BYTES_QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a byte quantity like '512', '64Ki' or '1Gi'")
    return int(match["n"]) * _BINARY_UNITS[match["unit"] or ""]


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


def _round_up(value: int, step: int) -> int:
    return _ceil_div(value, step) * step


def _percent_of(value: int, percent: int) -> int:
    """ceil(value x percent / 100)."""
    return _ceil_div(value * percent, 100)


# ------------------------------------------------------------------------------------------------
# Capacity constants
# ------------------------------------------------------------------------------------------------


class _Kind(StrEnum):
    COUNT = "count"
    PERCENT = "percent"
    MILLICORES = "millicores"
    BYTES = "bytes"


# File key -> (attribute of Capacity, kind, smallest allowed, largest allowed).
_CONSTANTS: Final[Mapping[str, tuple[str, _Kind, int, int]]] = MappingProxyType(
    {
        "targetUtilisationPercent": ("target_utilisation_percent", _Kind.PERCENT, 1, 100),
        "cpuLimitPercent": ("cpu_limit_percent", _Kind.PERCENT, 100, 1000),
        "memoryLimitPercent": ("memory_limit_percent", _Kind.PERCENT, 100, 1000),
        "maxSurgePercent": ("max_surge_percent", _Kind.PERCENT, 1, 100),
        "disruptionBudgetPercent": ("disruption_budget_percent", _Kind.PERCENT, 1, 50),
        "quotaHeadroomPercent": ("quota_headroom_percent", _Kind.PERCENT, 0, 1000),
        "quotaSparePods": ("quota_spare_pods", _Kind.COUNT, 0, 100),
        "proxyRequestsPerSecondPerCore": ("proxy_rps_per_core", _Kind.COUNT, 1, 10**7),
        "proxyCpuMin": ("proxy_cpu_min", _Kind.MILLICORES, 10, 64_000),
        "proxyCpuMaxPerReplica": ("proxy_cpu_max", _Kind.MILLICORES, 10, 64_000),
        "proxyMemoryBase": ("proxy_memory_base", _Kind.BYTES, MIB, 64 * GIB),
        "connectionsPerEndpoint": ("connections_per_endpoint", _Kind.COUNT, 1, 1000),
        "memoryPerConnection": ("memory_per_connection", _Kind.BYTES, 1, 16 * MIB),
        "maxConnectionsPerReplica": ("max_connections_per_replica", _Kind.COUNT, 1, 10**7),
        "aclEntryMemory": ("acl_entry_memory", _Kind.BYTES, 1, 64 * KIB),
        "antivirusRequestsPerSecondPerCore": ("antivirus_rps_per_core", _Kind.COUNT, 1, 10**7),
        "antivirusCpuMin": ("antivirus_cpu_min", _Kind.MILLICORES, 10, 64_000),
        "antivirusCpuMaxPerReplica": ("antivirus_cpu_max", _Kind.MILLICORES, 10, 64_000),
        "icapCpuSharePercent": ("icap_cpu_share_percent", _Kind.PERCENT, 1, 99),
        "icapMemoryBase": ("icap_memory_base", _Kind.BYTES, MIB, 64 * GIB),
        "icapMemoryPerCore": ("icap_memory_per_core", _Kind.BYTES, 0, 64 * GIB),
        "clamdDatabaseMemoryFull": ("clamd_database_memory_full", _Kind.BYTES, MIB, 64 * GIB),
        "clamdDatabaseMemoryCustom": ("clamd_database_memory_custom", _Kind.BYTES, MIB, 64 * GIB),
        "clamdScanMemoryPerCore": ("clamd_scan_memory_per_core", _Kind.BYTES, 0, 64 * GIB),
        "logStoreLinesPerSecondPerCore": ("logstore_lines_per_core", _Kind.COUNT, 1, 10**8),
        "logStoreCpuMin": ("logstore_cpu_min", _Kind.MILLICORES, 10, 64_000),
        "logStoreCpuMax": ("logstore_cpu_max", _Kind.MILLICORES, 10, 64_000),
        "logStoreMemory": ("logstore_memory", _Kind.BYTES, MIB, 64 * GIB),
        "accessLogLineBytes": ("access_log_line_bytes", _Kind.BYTES, 1, 64 * KIB),
        "antivirusLogLineBytes": ("antivirus_log_line_bytes", _Kind.BYTES, 0, 64 * KIB),
        "compressionRatioPercent": ("compression_ratio_percent", _Kind.PERCENT, 1, 100),
        "averageToPeakRatioPercent": ("average_to_peak_percent", _Kind.PERCENT, 1, 100),
        "uncompressedLogDays": ("uncompressed_log_days", _Kind.COUNT, 0, 7),
        "logVolumeHeadroomPercent": ("log_volume_headroom_percent", _Kind.PERCENT, 0, 1000),
        "shipperLinesPerSecondPerCore": ("shipper_lines_per_core", _Kind.COUNT, 1, 10**8),
        "shipperCpuMin": ("shipper_cpu_min", _Kind.MILLICORES, 10, 64_000),
        "shipperMemory": ("shipper_memory", _Kind.BYTES, MIB, 64 * GIB),
        "logSpoolOutageMinutes": ("log_spool_outage_minutes", _Kind.COUNT, 1, 24 * 60),
        "freshclamCpu": ("freshclam_cpu", _Kind.MILLICORES, 10, 64_000),
        "freshclamMemory": ("freshclam_memory", _Kind.BYTES, MIB, 64 * GIB),
        "initContainerCpu": ("init_container_cpu", _Kind.MILLICORES, 10, 64_000),
        "initContainerMemory": ("init_container_memory", _Kind.BYTES, MIB, 64 * GIB),
    }
)


@dataclass(frozen=True)
class Provenance:
    """Where one constant came from."""

    source: str  # key of the source in the data file
    description: str
    date: str
    machine: str
    provisional: bool
    note: str


@dataclass(frozen=True)
class Capacity:
    """Per-replica capacities and policy constants (docs/sizing.md explains each).

    Integers only: CPU in millicores, memory in bytes, ratios in percent.
    """

    target_utilisation_percent: int
    cpu_limit_percent: int
    memory_limit_percent: int
    max_surge_percent: int
    disruption_budget_percent: int
    quota_headroom_percent: int
    quota_spare_pods: int
    proxy_rps_per_core: int
    proxy_cpu_min: int
    proxy_cpu_max: int
    proxy_memory_base: int
    connections_per_endpoint: int
    memory_per_connection: int
    max_connections_per_replica: int
    acl_entry_memory: int
    antivirus_rps_per_core: int
    antivirus_cpu_min: int
    antivirus_cpu_max: int
    icap_cpu_share_percent: int
    icap_memory_base: int
    icap_memory_per_core: int
    clamd_database_memory_full: int
    clamd_database_memory_custom: int
    clamd_scan_memory_per_core: int
    logstore_lines_per_core: int
    logstore_cpu_min: int
    logstore_cpu_max: int
    logstore_memory: int
    access_log_line_bytes: int
    antivirus_log_line_bytes: int
    compression_ratio_percent: int
    average_to_peak_percent: int
    uncompressed_log_days: int
    log_volume_headroom_percent: int
    shipper_lines_per_core: int
    shipper_cpu_min: int
    shipper_memory: int
    log_spool_outage_minutes: int
    freshclam_cpu: int
    freshclam_memory: int
    init_container_cpu: int
    init_container_memory: int
    # File key of each constant -> where its value came from.
    provenance: Mapping[str, Provenance] = field(compare=False, repr=False)

    @property
    def provisional(self) -> bool:
        """True while any constant is not yet calibrated by a benchmark."""
        return any(p.provisional for p in self.provenance.values())


def _require_mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise CapacityError(f"{where}: expected a mapping with string keys")
    return value


def _require_str(mapping: Mapping[str, Any], key: str, where: str) -> str:
    value = mapping.get(key)
    if not isinstance(value, str) or not value.strip():
        raise CapacityError(f"{where}.{key}: expected a non-empty string")
    return value.strip()


def _check_keys(mapping: Mapping[str, Any], *, required: set[str], where: str) -> None:
    missing = sorted(required - mapping.keys())
    if missing:
        raise CapacityError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(mapping.keys() - required - {"note"})
    if unknown:
        raise CapacityError(f"{where}: unknown key(s) {', '.join(unknown)}")


def _constant_value(raw: object, kind: _Kind, where: str) -> int:
    try:
        if kind in (_Kind.COUNT, _Kind.PERCENT):
            if isinstance(raw, bool) or not isinstance(raw, int):
                raise ValueError(f"{raw!r} is not an integer")
            return raw
        if not isinstance(raw, str):
            raise ValueError(f"{raw!r} must be a quoted quantity string")
        if kind is _Kind.MILLICORES:
            return parse_cpu_quantity(raw)
        return parse_memory_quantity(raw)
    except ValueError as exc:
        raise CapacityError(f"{where}.value: {exc}") from None


def parse_capacity(document: object, *, origin: str = "capacity.yaml") -> Capacity:
    """Validate the parsed capacity data file and build a `Capacity`.

    Every constant must be present exactly once, with a kind matching the model, a value within
    bounds and a declared source. Raises `CapacityError` naming `origin` and the key.
    """
    root = _require_mapping(document, origin)
    _check_keys(root, required={"schemaVersion", "sources", "constants"}, where=origin)
    if root["schemaVersion"] != 1:
        raise CapacityError(f"{origin}.schemaVersion: only version 1 is understood")
    sources = _require_mapping(root["sources"], f"{origin}.sources")
    constants = _require_mapping(root["constants"], f"{origin}.constants")
    _check_keys(constants, required=set(_CONSTANTS), where=f"{origin}.constants")

    values: dict[str, int] = {}
    provenance: dict[str, Provenance] = {}
    for key, (attribute, kind, low, high) in _CONSTANTS.items():
        where = f"{origin}.constants.{key}"
        entry = _require_mapping(constants[key], where)
        _check_keys(entry, required={"value", "kind", "source"}, where=where)
        if entry["kind"] != kind.value:
            raise CapacityError(f"{where}.kind: expected {kind.value!r}, found {entry['kind']!r}")
        value = _constant_value(entry["value"], kind, where)
        if not low <= value <= high:
            raise CapacityError(f"{where}.value: {value} is outside {low}..{high}")
        source_key = _require_str(entry, "source", where)
        if source_key not in sources:
            raise CapacityError(f"{where}.source: {source_key!r} is not declared under sources")
        source = _require_mapping(sources[source_key], f"{origin}.sources.{source_key}")
        _check_keys(
            source,
            required={"description", "date", "machine", "provisional"},
            where=f"{origin}.sources.{source_key}",
        )
        if not isinstance(source["provisional"], bool):
            raise CapacityError(f"{origin}.sources.{source_key}.provisional: expected a boolean")
        values[attribute] = value
        provenance[key] = Provenance(
            source=source_key,
            description=_require_str(source, "description", f"{origin}.sources.{source_key}"),
            date=_require_str(source, "date", f"{origin}.sources.{source_key}"),
            machine=_require_str(source, "machine", f"{origin}.sources.{source_key}"),
            provisional=source["provisional"],
            note=str(entry.get("note", "")).strip(),
        )

    for low_key, high_key in (
        ("proxyCpuMin", "proxyCpuMaxPerReplica"),
        ("antivirusCpuMin", "antivirusCpuMaxPerReplica"),
        ("logStoreCpuMin", "logStoreCpuMax"),
    ):
        if values[_CONSTANTS[low_key][0]] > values[_CONSTANTS[high_key][0]]:
            raise CapacityError(f"{origin}.constants: {low_key} exceeds {high_key}")
    return Capacity(**values, provenance=MappingProxyType(provenance))


# ------------------------------------------------------------------------------------------------
# The plan
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Resources:
    """Requests and limits of one container."""

    cpu_request: int  # millicores
    cpu_limit: int
    memory_request: int  # bytes
    memory_limit: int

    def with_requests_percent(self, percent: int) -> Resources:
        """These resources with the requests scaled to `percent` of the sized figures (rounded
        up, at least 1m and 1 byte), the limits unchanged: the platform's over-commit ratio
        (OperatorSettings.resource_requests_percent). The quota keeps the sized figures."""
        if not 1 <= percent <= 100:
            raise ValueError(f"requests percent {percent} is outside 1..100")
        return Resources(
            cpu_request=max(1, _ceil_div(self.cpu_request * percent, 100)),
            cpu_limit=self.cpu_limit,
            memory_request=max(1, _ceil_div(self.memory_request * percent, 100)),
            memory_limit=self.memory_limit,
        )

    def to_kubernetes(self) -> dict[str, dict[str, str]]:
        """The container's `resources` field."""
        return {
            "requests": {
                "cpu": cpu_quantity(self.cpu_request),
                "memory": memory_quantity(self.memory_request),
            },
            "limits": {
                "cpu": cpu_quantity(self.cpu_limit),
                "memory": memory_quantity(self.memory_limit),
            },
        }


@dataclass(frozen=True)
class WorkloadPlan:
    """One Deployment (or the log store's StatefulSet) and how it rolls out."""

    replicas: int
    # Render rollingUpdate as these integers so the quota arithmetic is exact.
    max_surge: int
    max_unavailable: int
    # PodDisruptionBudget: render maxUnavailable; min_available is for display. None: no PDB.
    pdb_max_unavailable: int | None
    # Every container that runs for the pod's life, native sidecars (SHIPPER, FRESHCLAM)
    # included: the renderer makes those restartable init containers.
    containers: Mapping[str, Resources]
    # Applies to each one-shot init container of the pod (they run one at a time, before the
    # sidecars start).
    init_container: Resources
    # Bytes of the pod's state emptyDir reserved for the log spool: the records a log store
    # outage of logSpoolOutageMinutes leaves unshipped at the pod's load (0: no spool).
    log_spool: int = 0

    @property
    def pdb_min_available(self) -> int | None:
        if self.pdb_max_unavailable is None:
            return None
        return self.replicas - self.pdb_max_unavailable

    @property
    def pod(self) -> Resources:
        """What one pod counts against a quota: the larger of its containers' sum and the
        largest init container, per resource (Kubernetes' effective pod request/limit)."""
        parts = list(self.containers.values())
        init = self.init_container
        return Resources(
            cpu_request=max(sum(r.cpu_request for r in parts), init.cpu_request),
            cpu_limit=max(sum(r.cpu_limit for r in parts), init.cpu_limit),
            memory_request=max(sum(r.memory_request for r in parts), init.memory_request),
            memory_limit=max(sum(r.memory_limit for r in parts), init.memory_limit),
        )

    @property
    def pods_during_rollout(self) -> int:
        """Most pods that can hold quota during a rolling update: the replicas, the surge, and
        as many old pods still terminating (the Deployment controller does not wait for them)."""
        return self.replicas + 2 * self.max_surge

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "replicas": self.replicas,
            "maxSurge": self.max_surge,
            "maxUnavailable": self.max_unavailable,
            "containers": {n: r.to_kubernetes() for n, r in self.containers.items()},
            "initContainer": self.init_container.to_kubernetes(),
        }
        if self.log_spool:
            out["logSpool"] = memory_quantity(self.log_spool)
        if self.pdb_max_unavailable is not None:
            out["podDisruptionBudget"] = {
                "maxUnavailable": self.pdb_max_unavailable,
                "minAvailable": self.pdb_min_available,
            }
        return out


@dataclass(frozen=True)
class QuotaPlan:
    """The tenant namespace's ResourceQuota."""

    requests_cpu: int
    limits_cpu: int
    requests_memory: int
    limits_memory: int
    pods: int
    requests_storage: int
    persistent_volume_claims: int

    def hard(self) -> dict[str, str]:
        """`spec.hard` of the ResourceQuota."""
        return {
            "requests.cpu": cpu_quantity(self.requests_cpu),
            "limits.cpu": cpu_quantity(self.limits_cpu),
            "requests.memory": memory_quantity(self.requests_memory),
            "limits.memory": memory_quantity(self.limits_memory),
            "pods": str(self.pods),
            "requests.storage": memory_quantity(self.requests_storage),
            "persistentvolumeclaims": str(self.persistent_volume_claims),
        }


@dataclass(frozen=True)
class LimitRangePlan:
    """The tenant namespace's LimitRange for containers."""

    default: Resources  # `default` (limits) and `defaultRequest` for containers without any
    max_cpu: int  # no container we render exceeds these; anything larger is refused
    max_memory: int

    def spec(self, *, requests_percent: int = 100) -> dict[str, Any]:
        """`spec` of the LimitRange; `defaultRequest` scaled like every rendered container's."""
        defaults = self.default.with_requests_percent(requests_percent).to_kubernetes()
        return {
            "limits": [
                {
                    "type": "Container",
                    "default": defaults["limits"],
                    "defaultRequest": defaults["requests"],
                    "max": {
                        "cpu": cpu_quantity(self.max_cpu),
                        "memory": memory_quantity(self.max_memory),
                    },
                }
            ]
        }


@dataclass(frozen=True)
class SizingPlan:
    endpoints: int
    requests_per_second: int
    retention_days: int
    antivirus_enabled: bool
    clamav_database: ClamavDatabase
    acl_entries: int
    proxy: WorkloadPlan
    antivirus: WorkloadPlan | None  # None when anti-virus is disabled
    log_store: WorkloadPlan
    log_volume: int  # bytes, a whole number of GiB
    quota: QuotaPlan
    limit_range: LimitRangePlan
    provisional: bool

    def workloads(self) -> dict[str, WorkloadPlan]:
        out = {"proxy": self.proxy}
        if self.antivirus is not None:
            out["antivirus"] = self.antivirus
        out["logStore"] = self.log_store
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (camelCase keys, Kubernetes quantity strings)."""
        return {
            "inputs": {
                "endpoints": self.endpoints,
                "requestsPerSecond": self.requests_per_second,
                "retentionDays": self.retention_days,
                "antivirusEnabled": self.antivirus_enabled,
                "clamavDatabase": self.clamav_database.value,
                "aclEntries": self.acl_entries,
            },
            "provisional": self.provisional,
            "workloads": {name: w.to_dict() for name, w in self.workloads().items()},
            "logVolume": memory_quantity(self.log_volume),
            "resourceQuota": {"hard": self.quota.hard()},
            "limitRange": self.limit_range.spec(),
        }


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
    workloads: list[WorkloadPlan], *, log_volume: int, default: Resources, capacity: Capacity
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
        requests_storage=log_volume,
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
) -> SizingPlan:
    """Size one tenant from its declared endpoints and peak requests/s.

    `clamav_database` picks clamd's memory floor (FULL also gives every anti-virus pod the
    freshclam sidecar that keeps the public database current); `acl_entries` (the number of
    domains and URLs in the tenant's filter lists) adds Squid memory for them. Raises
    ValueError for inputs
    outside 1..1,000,000 (endpoints, requests/s) or 1..90 (retention days).
    """
    _check_input("endpoints", endpoints, MAX_ENDPOINTS)
    _check_input("requests_per_second", requests_per_second, MAX_REQUESTS_PER_SECOND)
    _check_input("retention_days", retention_days, MAX_RETENTION_DAYS)
    if isinstance(acl_entries, bool) or not isinstance(acl_entries, int) or acl_entries < 0:
        raise ValueError(f"acl_entries must be a non-negative integer, got {acl_entries!r}")

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
    log_volume = log_volume_bytes(
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
        log_volume=log_volume,
        quota=_quota(workloads, log_volume=log_volume, default=default, capacity=capacity),
        limit_range=LimitRangePlan(
            default=default,
            max_cpu=max(r.cpu_limit for r in every_container),
            max_memory=max(r.memory_limit for r in every_container),
        ),
        provisional=capacity.provisional,
    )
