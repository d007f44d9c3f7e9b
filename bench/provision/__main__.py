"""`python -m bench.provision [--tenants N ...]`: the provisioning benchmark (see `run.py`).

Writes bench/results/provision-<date>-N<n>.json per N: machine, date, versions, load averages,
the floor, the operator, their ratio and the goals of issue 13 for that size (`targets`: goals,
not assertions).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.provision.floor import run_floor
from bench.provision.harness import REPO_ROOT, Options, tenant_names
from bench.provision.operator_run import run_operator
from bench.sysinfo import load_average, machine, now_iso, today, versions

RESULTS = REPO_ROOT / "bench" / "results"


@dataclass(frozen=True)
class Goals:
    """The goals of one column of issue 13's table (a benchmark's goals, not assertions)."""

    column: str
    requests_per_tenant: float = 30.0  # API requests per tenant until Ready
    mutating_over_floor: float = 2.0  # mutating calls per tenant, above the floor's
    cpu_ms_per_tenant: float = 40.0  # operator CPU per tenant provisioned (until quiet)
    peak_rss_mib: float = 150.0
    ready_versus_floor: float = 1.1  # all Ready, operator time / floor time
    transient_errors: int = 0
    idle_writes_per_tenant: float = 0.0


GOALS_1000 = Goals(column="1,000 tenants")
GOALS_10000 = Goals(column="10,000 tenants", peak_rss_mib=400.0, ready_versus_floor=1.2)


def goals_for(tenants: int) -> Goals:
    """The 1,000-tenant column up to 1,000 tenants, the 10,000-tenant column above."""
    return GOALS_1000 if tenants <= 1000 else GOALS_10000


def _goal(
    goal: str, measured: float | int | None, met: bool | None, **extra: Any
) -> dict[str, Any]:
    return {"goal": goal, "measured": measured, **extra, "met": met}


def targets(floor: dict[str, Any] | None, operator: dict[str, Any]) -> dict[str, Any]:
    """Issue 13's goals for this size, each with the measured figure and whether it is met
    (None when the figure needs the floor and there was none)."""
    n = operator["tenants"]
    goals = goals_for(n)
    requests = operator["apiRequests"]["untilReady"]["perTenant"]["total"]
    mutating = operator["apiRequests"]["untilQuiet"]["perTenant"]["mutating"]
    floor_mutating = floor["apiRequests"]["perTenant"]["mutating"] if floor else None
    cpu_ms = operator["process"]["cpuMsPerTenantUntilQuiet"]
    rss = operator["process"]["peakRssMiB"]
    errors = operator["transientErrors"]
    idle_writes = operator["idle"]["apiRequests"]["mutating"] / n
    ratio = operator["totalSeconds"] / floor["totalSeconds"] if floor else None
    return {
        "column": goals.column
        + ("" if n in (1000, 10000) else f" (the goals of that size, applied to {n:,})"),
        "apiRequestsPerTenantUntilReady": _goal(
            f"<= {goals.requests_per_tenant:g}", requests, requests <= goals.requests_per_tenant
        ),
        "mutatingCallsPerTenant": _goal(
            f"<= floor + {goals.mutating_over_floor:g}",
            mutating,
            None
            if floor_mutating is None
            else mutating <= floor_mutating + goals.mutating_over_floor,
            floor=floor_mutating,
        ),
        "operatorCpuMsPerTenant": _goal(
            f"<= {goals.cpu_ms_per_tenant:g} ms (CPU from the first create until the operator "
            "is quiet, per tenant)",
            cpu_ms,
            cpu_ms <= goals.cpu_ms_per_tenant,
            floorRenderMsPerTenant=floor["renderMsPerTenant"] if floor else None,
        ),
        "peakRssMiB": _goal(f"<= {goals.peak_rss_mib:g} MiB", rss, rss <= goals.peak_rss_mib),
        "readyVersusFloor": _goal(
            f"all Ready within {goals.ready_versus_floor:g}x the floor",
            None if ratio is None else round(ratio, 2),
            None if ratio is None else ratio <= goals.ready_versus_floor,
        ),
        "transientErrors": _goal(
            "0 in a clean run (log lines of unanswered, 429 or 5xx requests; the audit log's "
            "429/5xx answers and the adapter's counter must be 0 too)",
            errors["logLines"],
            errors["clean"],
        ),
        "apiWritesPerIdleTenant": _goal(
            "0", round(idle_writes, 4), idle_writes <= goals.idle_writes_per_tenant
        ),
    }


def run_one(n: int, args: argparse.Namespace) -> Path:
    opts = Options(
        tenants=n,
        state_dir=(args.dir / f"N{n}").resolve(),
        concurrency=args.concurrency,
        idle_seconds=args.idle_seconds,
        ready_timeout=args.ready_timeout or max(3600.0, 4.0 * n),
        floor=not args.no_floor,
        operator_args=tuple(args.operator_arg),
        profile=args.py_spy,
        profile_rate=args.py_spy_rate,
        memtrace=args.memtrace,
    )
    names = tenant_names(n)
    started, load_start = now_iso(), load_average()
    floor = run_floor(opts, names) if opts.floor else None
    operator = run_operator(opts, names)
    result = {
        "benchmark": "provision",
        "date": started,
        "finished": now_iso(),
        "command": " ".join(["python -m bench.provision", *sys.argv[1:]]),
        "machine": machine(),
        "versions": versions(REPO_ROOT),
        "loadAverageStart": load_start,
        "loadAverageEnd": load_average(),
        "tenants": n,
        "tenantSpec": "e2e tenant_manifest: 50 endpoints, 20 req/s, anti-virus on "
        "(25 objects, 5 pods: 2 proxy, 2 anti-virus, 1 log store)",
        "method": {
            "apiRequests": "kube-apiserver audit log (level Metadata) of the operator's and the "
            "floor's ServiceAccounts; kopf's calls and the adapter's told apart by user agent",
            "timeToReady": "harness watch on SecureWebGateways (Ready=True first seen), from the "
            "create request's answer; timestamps (creationTimestamp -> Ready "
            "lastTransitionTime, whole seconds) as a cross-check",
            "process": "/proc/<pid>/stat utime+stime and /proc/<pid>/status VmRSS/VmHWM of the "
            "operator process",
        },
        **({"note": args.note} if args.note else {}),
        "floor": floor,
        "operator": operator,
        "targets": targets(floor, operator),
    }
    out = args.out or RESULTS / f"provision-{today()}-N{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Wrote {out}")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.provision", description=__doc__)
    parser.add_argument(
        "--tenants",
        type=int,
        action="append",
        help="N (repeatable; default 100 and 1000, in that order)",
    )
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".local" / "bench-provision")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--idle-seconds", type=float, default=180.0)
    parser.add_argument(
        "--ready-timeout",
        type=float,
        default=None,
        help="seconds to wait for all tenants (default: 3,600 or 4 s per tenant, the larger)",
    )
    parser.add_argument("--no-floor", action="store_true", help="skip the floor")
    parser.add_argument(
        "--operator-arg", action="append", default=[], help="extra `swg-operator run` flag"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        help="py-spy binary: record the operator while it provisions (raw stacks in --dir)",
    )
    parser.add_argument("--py-spy-rate", type=int, default=20, help="samples per second")
    parser.add_argument(
        "--memtrace",
        action="store_true",
        help="run the operator under tracemalloc and report where its memory goes (slower)",
    )
    parser.add_argument("--out", type=Path, default=None, help="result file (one N only)")
    parser.add_argument("--note", default="", help="a note kept in the result (what was measured)")
    args = parser.parse_args(argv)
    counts = args.tenants or [100, 1000]
    if args.out is not None and len(counts) > 1:
        parser.error("--out needs exactly one --tenants")
    if args.py_spy is not None and not (args.py_spy.exists() or shutil.which(str(args.py_spy))):
        parser.error(f"no py-spy at {args.py_spy}")
    for n in counts:
        run_one(n, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
