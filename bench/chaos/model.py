"""The chaos scenario's inputs and record: options, the tenants it drives, its report.

`Options` fixes a run together with its seed; `Tenant` is what the scenario did to one tenant
(turned into the `Expected` state the checks of `bench.chaos.checks` judge); `Report` is the
run's outcome as written to JSON.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from bench.chaos.checks import Expected

WATCH_SERVER_TIMEOUT = 10
WATCH_CLIENT_TIMEOUT = 15
RESYNC_SECONDS = 3600  # far away: convergence must come from the watches
SPEC_VARIANTS: tuple[Mapping[str, Any], ...] = (
    {"sizing": {"endpoints": 500, "requestsPerSecond": 200}},
    {"sizing": {"endpoints": 50, "requestsPerSecond": 20}},
    {"clients": {"allowedCIDRs": ["198.51.100.0/24"]}},
    {"clients": {"allowedCIDRs": ["192.0.2.0/24", "203.0.113.0/25"]}},
    {"suspended": True},
    {"suspended": False},
)


@dataclass(frozen=True)
class Options:
    seed: int
    kills: int = 20
    tenants: int = 8  # created before the first kill
    late_tenants: int = 4  # created during the kills
    cancellations: int = 5  # tenants cancelled during the kills
    max_run_seconds: float = 4.0  # the operator lives uniform(0, this) before SIGKILL
    pause_seconds: float = 20.0  # > WATCH_CLIENT_TIMEOUT
    etcd_down_seconds: float = 3.0
    recovery_timeout: float = 90.0
    converge_timeout: float = 180.0
    operator_namespace: str = "swg-system"
    prefix: str = "chaos"


@dataclass
class Tenant:
    name: str
    purge_after_days: int
    spec: dict[str, Any]
    uid: str = ""
    created: bool = False
    deleted: bool = False
    # False when the tenant was deleted before the operator ever put its finalizer on it: the
    # API server then removes it at once, nothing of it was ever created, and no purge (so no
    # receipt) is owed. The orphan check still proves nothing of it exists.
    finalized: bool = True
    # False when its namespace did not exist right after the deletion: the operator then keeps
    # nothing for export (it never made the namespace), unless a reconcile already past its
    # last look at the tenant made it meanwhile.
    provisioned: bool = True

    def expected(self) -> Expected:
        return Expected(
            name=self.name,
            uid=self.uid,
            spec=copy.deepcopy(self.spec),
            purge_after_days=self.purge_after_days,
            deleted=self.deleted,
            finalized=self.finalized,
            provisioned=self.provisioned,
        )


@dataclass
class Report:
    seed: int
    tenants: list[dict[str, Any]] = field(default_factory=list)
    rounds: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    kills: int = 0
    converge_seconds: float | None = None
    total_seconds: float = 0.0
    violations: dict[str, list[str]] = field(default_factory=dict)
    # Tenants left with a quota charged for a log claim that does not exist (a figure; the
    # operator recovers these, so a run that converged has none).
    quota_charge_leaks: list[str] = field(default_factory=list)
    operator_errors: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every tenant settled within the deadline, every invariant held, no quota leak."""
        return (
            self.converge_seconds is not None
            and bool(self.violations)
            and not any(self.violations.values())
            and not self.quota_charge_leaks
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "kills": self.kills,
            "faults": self.faults,
            "convergeSeconds": self.converge_seconds,
            "totalSeconds": round(self.total_seconds, 1),
            "passed": self.passed,
            "violations": self.violations,
            "quotaChargeLeaks": self.quota_charge_leaks,
            "operatorErrors": self.operator_errors,
            "tenants": self.tenants,
            "rounds": self.rounds,
        }
