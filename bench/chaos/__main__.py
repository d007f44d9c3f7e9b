"""`python -m bench.chaos [--kills 100] [--seed S]`: a long chaos run on a control plane of its own.

Writes bench/results/chaos-<date>.json: the seed, every round (how long the operator lived,
what changed, the last line it logged before SIGKILL), the API server pause and the etcd
restart with how long the same operator took to reconcile a change afterwards, the time the
final operator took to converge, every invariant's violations (none, to pass), the machine,
versions and load averages. Exits 1 when an invariant is violated or nothing converged.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from e2e.cluster import ControlPlane
from e2e.operator_process import install_prerequisites

from bench.chaos.model import Options
from bench.chaos.scenario import Chaos
from bench.localcluster import BIG_NODES
from bench.sysinfo import load_average, machine, now_iso, today, versions

REPO_ROOT = Path(__file__).resolve().parents[2]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    parser.add_argument("--tenants", type=int, default=12, help="created before the kills")
    parser.add_argument("--late-tenants", type=int, default=8, help="created during the kills")
    parser.add_argument("--cancellations", type=int, default=10)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".local" / "bench-chaos")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    opts = Options(
        seed=seed,
        kills=args.kills,
        tenants=args.tenants,
        late_tenants=args.late_tenants,
        cancellations=args.cancellations,
    )
    started, load_start = now_iso(), load_average()
    plane = ControlPlane(args.dir.resolve(), nodes=BIG_NODES)
    plane.stop()
    plane.start()
    try:
        install_prerequisites(plane, operator_namespace=opts.operator_namespace)
        report = Chaos(plane, opts, log_dir=plane.logs_dir).run()
    finally:
        plane.stop()
    result = {
        "benchmark": "chaos",
        "date": started,
        "finished": now_iso(),
        "command": " ".join(["python -m bench.chaos", *sys.argv[1:]]),
        "replay": f"python -m bench.chaos --seed {seed} --kills {args.kills}",
        "machine": machine(),
        "versions": versions(REPO_ROOT),
        "loadAverageStart": load_start,
        "loadAverageEnd": load_average(),
        "options": {
            "kills": opts.kills,
            "tenants": opts.tenants + opts.late_tenants,
            "cancellations": opts.cancellations,
            "maxOperatorLifeSeconds": opts.max_run_seconds,
            "apiServerPauseSeconds": opts.pause_seconds,
            "etcdDownSeconds": opts.etcd_down_seconds,
        },
        **report.to_json(),
    }
    out = args.out or REPO_ROOT / "bench" / "results" / f"chaos-{today()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"Wrote {out}: {'passed' if report.passed else 'FAILED'} (seed {seed})")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
