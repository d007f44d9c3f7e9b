"""`python -m bench.dataplane` (`make bench-dataplane`): run the data-plane benchmark and write
bench/results/dataplane-<date>.json. Needs root (network namespaces, chroot, mounts), like the
data-plane test tier whose harness it uses. See docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import shlex
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools import rootfs

from bench.dataplane import machine, report, run, tenants
from bench.dataplane.loadgen import WrkParams, wrk_version
from bench.dataplane.origin import OBJECTS, nginx_binary, nginx_version

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
TOOLS = ("wrk", "ip", "nsenter", "unshare", "chroot", "curl", "openssl", "apt-get", "dpkg-deb")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.dataplane", description=__doc__)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument(
        "--acl-sizes",
        default="1000,100000,1000000",
        help="catalogue sizes (domains) of the filtering cases, comma-separated",
    )
    parser.add_argument("--objects", default=",".join(OBJECTS), help="objects to fetch")
    parser.add_argument("--no-antivirus", action="store_true", help="skip the anti-virus case")
    parser.add_argument("--out", type=Path, help="results file (default: bench/results/...)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 10 or not 1 <= args.duration <= 60:
        parser.error("--rounds must be 1..10 and --duration 1..60 seconds")
    if not 1 <= args.threads <= 8 or not args.threads <= args.connections <= 512:
        parser.error("--threads must be 1..8 and --connections threads..512")
    args.acl_sizes = [int(size) for size in args.acl_sizes.split(",") if size]
    args.objects = [obj for obj in args.objects.split(",") if obj]
    if any(obj not in OBJECTS for obj in args.objects):
        parser.error(f"--objects must be among {', '.join(OBJECTS)}")
    if any(not 1 <= size <= 2_000_000 for size in args.acl_sizes):
        parser.error("--acl-sizes must be 1..2,000,000 each")
    return args


def preflight() -> Path:

    if os.geteuid() != 0:
        sys.exit("the data-plane benchmark needs root (network namespaces, chroot, mounts)")
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        sys.exit(f"missing tools: {' '.join(missing)} (run `make deps`)")
    return rootfs.build().root


def render_all(args: argparse.Namespace, workdir: Path) -> list[tenants.RenderedTenant]:
    wanted: list[tuple[str, int, bool]] = [(run.NOACL, 0, False)]
    wanted += [(run.filter_case(size), size, False) for size in args.acl_sizes]
    if not args.no_antivirus:
        wanted.append((run.ANTIVIRUS, 0, True))
    rendered = []
    for name, domains, antivirus in wanted:
        started = time.monotonic()
        tenant = tenants.render(
            name, workdir / f"conf-{name}", domains=domains, antivirus=antivirus
        )
        run.log(
            f"rendered {name}: {tenant.files} files, {tenant.config_bytes} bytes "
            f"in {time.monotonic() - started:.1f}s"
        )
        rendered.append(tenant)
    return rendered


def lifecycle(stack: run.Stack) -> dict[str, Any]:
    """Start-up, reconfigure and idle memory of one stack's daemons (before any load)."""
    facts: dict[str, Any] = {}
    if not stack.tenant.antivirus:
        seconds, cpu = run.squid_restart(stack)
        facts["squidStartSeconds"] = round(seconds, 3)
        facts["squidStartCpuSeconds"] = round(cpu, 2)
    run.check_stack(stack)
    facts["memoryIdle"] = run.daemon_memory(stack)
    if not stack.tenant.antivirus:
        seconds, cpu = run.squid_reconfigure(stack)
        facts["squidReconfigureSeconds"] = round(seconds, 3)
        facts["squidReconfigureCpuSeconds"] = round(cpu, 2)
        run.check_stack(stack)
        facts["memoryAfterReconfigure"] = run.daemon_memory(stack)
    return facts


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    # `timeout` (make bench-dataplane) sends SIGTERM: exit through the finally blocks, which
    # stop the daemons and delete the namespaces.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started_at = datetime.datetime.now(datetime.UTC)
    load_start = machine.load_average()
    root = preflight()
    for name in run.cleanup_stale_benchmarks():
        run.log(f"removed the namespace of a dead benchmark run: {name}")
    params = WrkParams(threads=args.threads, connections=args.connections, duration_s=args.duration)
    workdir = Path(tempfile.mkdtemp(prefix="swg-bench-dataplane-"))
    workdir.chmod(0o755)
    run.log(f"work directory {workdir}; load average {load_start}")
    try:
        rendered = render_all(args, workdir)
        nginx = nginx_binary()
        versions = machine.versions(root, wrk=wrk_version(), nginx=nginx_version(nginx))
        cases = [run.DIRECT, *(t.name for t in rendered)]
        runs: list[dict[str, Any]] = []
        with run.running(rendered, rootfs=root, workdir=workdir) as stacks:
            facts = {}
            for name, stack in stacks.items():
                facts[name] = lifecycle(stack)
                run.log(f"{name}: {json.dumps(facts[name])}")
            for round_index in range(args.rounds):
                # Every other round runs the cases in reverse, so that a drift of the
                # background load does not always favour the same case.
                order = cases if round_index % 2 == 0 else cases[::-1]
                for obj in args.objects:
                    for case in order:
                        stack = stacks[run.NOACL if case == run.DIRECT else case]
                        result = run.measure(case, stack, obj, params=params, workdir=workdir)
                        result["round"] = round_index
                        runs.append(result)
                        run.log(report.run_line(result))
                        time.sleep(1)
            for name, stack in stacks.items():
                facts[name]["memoryAfterLoad"] = run.daemon_memory(stack)
        summary = run.summarise(runs, cases)
        results = {
            "schema": "swg-operator/bench-dataplane/v1",
            "date": started_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "finished": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": "python -m bench.dataplane " + shlex.join(argv or sys.argv[1:]),
            "machine": machine.machine(),
            "loadAverage": {"start": load_start, "end": machine.load_average()},
            "versions": versions,
            "parameters": {
                "wrk": {
                    "threads": params.threads,
                    "connections": params.connections,
                    "durationSeconds": params.duration_s,
                    "timeoutSeconds": params.timeout_s,
                },
                "rounds": args.rounds,
                "objects": {obj: OBJECTS[obj] for obj in args.objects},
                "aclSizes": args.acl_sizes,
                "origin": "nginx, 1 worker, 127.0.0.2:8080, sendfile, access log off",
                "network": "one loopback-only network namespace per tenant stack",
                "signatures": [path.name for path in tenants.SIGNATURES],
            },
            "tenants": {
                t.name: {
                    "aclEntries": t.acl_entries,
                    "antivirus": t.antivirus,
                    "configFiles": t.files,
                    "configBytes": t.config_bytes,
                    "spec": t.spec,
                }
                for t in rendered
            },
            "daemons": facts,
            "runs": runs,
            "summary": summary,
            "derived": report.derived(summary, facts, rendered),
        }
        out = args.out or RESULTS / f"dataplane-{started_at:%Y-%m-%d}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")
        print(report.markdown(results))
        run.log(f"wrote {out}")
        return 0
    finally:
        if args.keep:
            run.log(f"kept {workdir}")
        else:
            with contextlib.suppress(OSError):
                shutil.rmtree(workdir)


if __name__ == "__main__":
    raise SystemExit(main())
