"""`python -m bench.provision [--tenants N ...]`: the provisioning benchmark (see `run.py`).

Writes bench/results/provision-<date>-N<n>.json per N: machine, date, versions, load averages,
the floor, the operator, their ratio and the targets of issue 8 (goals, not assertions).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.provision.run import REPO_ROOT, Options, run_floor, run_operator, tenant_names
from bench.sysinfo import load_average, machine, now_iso, today, versions

RESULTS = REPO_ROOT / "bench" / "results"
RSS_TARGET_MIB = 150.0
RATIO_TARGET = 1.5
MUTATING_TARGET = 20.0


def targets(floor: dict[str, Any] | None, operator: dict[str, Any]) -> dict[str, Any]:
    mutating = operator["apiRequests"]["untilQuiet"]["perTenant"]["mutating"]
    idle_writes = operator["idle"]["apiRequests"]["mutating"]
    result: dict[str, Any] = {
        "peakRssMiB": {
            "goal": f"<= {RSS_TARGET_MIB:.0f} MiB (at 1,000 tenants)",
            "measured": operator["process"]["peakRssMiB"],
            "met": operator["process"]["peakRssMiB"] <= RSS_TARGET_MIB,
        },
        "idleWritesPerTenant": {
            "goal": "0 API writes per idle tenant",
            "measured": idle_writes / operator["tenants"],
            "met": idle_writes == 0,
        },
        "mutatingCallsPerTenant": {
            "goal": f"<= {MUTATING_TARGET:.0f} mutating calls per tenant created",
            "measured": mutating,
            "floor": floor["apiRequests"]["perTenant"]["mutating"] if floor else None,
            "met": mutating <= MUTATING_TARGET,
        },
    }
    if floor is not None:
        ratio = operator["totalSeconds"] / floor["totalSeconds"]
        result["readyVersusFloor"] = {
            "goal": f"all Ready within {RATIO_TARGET}x the floor",
            "measured": round(ratio, 2),
            "met": ratio <= RATIO_TARGET,
        }
    return result


def run_one(n: int, args: argparse.Namespace) -> Path:
    opts = Options(
        tenants=n,
        state_dir=(args.dir / f"N{n}").resolve(),
        concurrency=args.concurrency,
        idle_seconds=args.idle_seconds,
        ready_timeout=args.ready_timeout,
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
    parser.add_argument("--ready-timeout", type=float, default=3600.0)
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
