"""The sizing model's output: plain numbers (millicores, bytes, counts) per workload and container.

`sizing.compute_sizing` builds a `SizingPlan`; the renderer turns it into Kubernetes shapes
(`render.resources`: container resources, the ResourceQuota, the LimitRange, and the JSON form
that `swg-operator sizing` prints).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

# Container names the plan's resources are keyed by; the renderer uses the same names.
SQUID: Final = "squid"
CICAP: Final = "c-icap"
CLAMD: Final = "clamd"
LOGSTORE: Final = "logstore"
# Native sidecars (restartable init containers): they run for the pod's whole life, so the plan
# keys them with the containers and the quota counts them like any running container.
SHIPPER: Final = "shipper"  # ships the pod's log spool to the log store (proxy, anti-virus)
FRESHCLAM: Final = "freshclam"  # keeps the public signature database current (anti-virus)


class ClamavDatabase(StrEnum):
    """Which signatures clamd loads, which decides its memory floor."""

    # The public ClamAV database (about 1.2 GiB resident), kept current by a freshclam sidecar
    # in every anti-virus pod (settings antivirus.signatureSource freshclam).
    FULL = "full"
    # Only the platform's and the tenant's own signature files (signatureSource configMap).
    CUSTOM = "custom"


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


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


@dataclass(frozen=True)
class LimitRangePlan:
    """The tenant namespace's LimitRange for containers."""

    default: Resources  # `default` (limits) and `defaultRequest` for containers without any
    max_cpu: int  # no container we render exceeds these; anything larger is refused
    max_memory: int


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
    # Bytes the log volume claim requests: `log_volume_override` when given, else the model's
    # figure (a whole number of GiB).
    log_volume: int
    # The storage override (`logs.storage.size`) the plan was computed with; None: the model's.
    log_volume_override: int | None
    quota: QuotaPlan
    limit_range: LimitRangePlan
    provisional: bool

    def workloads(self) -> dict[str, WorkloadPlan]:
        out = {"proxy": self.proxy}
        if self.antivirus is not None:
            out["antivirus"] = self.antivirus
        out["logStore"] = self.log_store
        return out
