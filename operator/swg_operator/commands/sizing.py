"""`swg-operator sizing`: print what the sizing model computes for declared endpoints and req/s."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swg_logstore.retention import MAX_RETENTION_DAYS
from swg_operator.capacity import CapacityError
from swg_operator.commands import yamltext
from swg_operator.commands.errors import file_error
from swg_operator.quantities import format_bytes as memory_quantity
from swg_operator.quantities import format_cpu as cpu_quantity
from swg_operator.render.resources import limit_range_spec, quota_hard, sizing_document
from swg_operator.sizing import (
    MAX_ENDPOINTS,
    MAX_REQUESTS_PER_SECOND,
    compute_sizing,
)
from swg_operator.sizing_io import load_capacity
from swg_operator.sizing_plan import ClamavDatabase, Resources, SizingPlan

OUTPUTS = ("text", "json", "yaml", "markdown")
# `table` was the text format's name before every command's -o took text|json|yaml.
LEGACY_OUTPUTS = ("table",)


def _bounded(high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not 1 <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is outside 1..{high}")
        return value

    return parse


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "sizing",
        help="print replicas, resources, quota and log volume for a declared tenant size",
        description="Run the sizing model (docs/sizing.md) for declared endpoints and peak "
        "requests/s. Repeat --endpoints/--rps in pairs to size several tenants at once.",
    )
    parser.add_argument(
        "--endpoints",
        type=_bounded(MAX_ENDPOINTS),
        action="append",
        required=True,
        metavar="N",
        help="declared client endpoints (1..1,000,000)",
    )
    parser.add_argument(
        "--rps",
        type=_bounded(MAX_REQUESTS_PER_SECOND),
        action="append",
        required=True,
        metavar="M",
        help="declared peak requests per second (1..1,000,000)",
    )
    parser.add_argument(
        "--retention-days",
        type=_bounded(MAX_RETENTION_DAYS),
        default=MAX_RETENTION_DAYS,
        metavar="D",
        help=f"days of logs kept, today included (1..{MAX_RETENTION_DAYS}, default the same)",
    )
    parser.add_argument(
        "--no-antivirus", action="store_true", help="size without the anti-virus workload"
    )
    parser.add_argument(
        "--clamav-database",
        choices=[d.value for d in ClamavDatabase],
        default=ClamavDatabase.FULL.value,
        help="signatures clamd loads: the full public database or custom signatures only",
    )
    parser.add_argument(
        "--acl-entries",
        type=int,
        default=0,
        metavar="K",
        help="domains and URLs in the tenant's filter lists (adds Squid memory)",
    )
    parser.add_argument(
        "--capacity",
        type=Path,
        default=None,
        metavar="FILE",
        help="capacity constants to use instead of the packaged data/capacity.yaml",
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=OUTPUTS + LEGACY_OUTPUTS,
        default="text",
        metavar="{" + ",".join(OUTPUTS) + "}",
        help="output format (default text: a table per tenant)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if len(args.endpoints) != len(args.rps):
        print("swg-operator sizing: give --endpoints and --rps in pairs", file=sys.stderr)
        return 2
    try:
        capacity = load_capacity(args.capacity)
    except OSError as exc:
        print(f"swg-operator sizing: {file_error(exc, 'could not be read')}", file=sys.stderr)
        return 1
    except CapacityError as exc:
        print(f"swg-operator sizing: {exc}", file=sys.stderr)
        return 1
    try:
        plans = [
            compute_sizing(
                endpoints=endpoints,
                requests_per_second=rps,
                retention_days=args.retention_days,
                antivirus_enabled=not args.no_antivirus,
                capacity=capacity,
                clamav_database=ClamavDatabase(args.clamav_database),
                acl_entries=args.acl_entries,
            )
            for endpoints, rps in zip(args.endpoints, args.rps, strict=True)
        ]
    except ValueError as exc:
        print(f"swg-operator sizing: {exc}", file=sys.stderr)
        return 2
    if args.output in ("json", "yaml"):
        documents = [sizing_document(plan) for plan in plans]
        document = documents[0] if len(documents) == 1 else documents
        if args.output == "json":
            json.dump(document, sys.stdout, indent=2)
            sys.stdout.write("\n")
        else:
            sys.stdout.write(yamltext.dump(document))
    elif args.output == "markdown":
        sys.stdout.write(markdown_summary(plans))
    else:
        sys.stdout.write("\n".join(table(plan) for plan in plans))
    return 0


def _columns(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        + "\n"
        for row in rows
    )


def _resource_cells(res: Resources) -> list[str]:
    return [
        cpu_quantity(res.cpu_request),
        cpu_quantity(res.cpu_limit),
        memory_quantity(res.memory_request),
        memory_quantity(res.memory_limit),
    ]


def table(plan: SizingPlan) -> str:
    """The plan for people: one row per container, then quota, limit range and log volume."""
    antivirus = (
        f"anti-virus on ({plan.clamav_database.value} ClamAV database)"
        if plan.antivirus_enabled
        else "anti-virus off"
    )
    lines = [
        f"Sizing for {plan.endpoints} endpoints, {plan.requests_per_second} req/s, "
        f"{plan.retention_days} day{'s' if plan.retention_days != 1 else ''} of logs, "
        f"{antivirus}\n"
    ]
    if plan.provisional:
        lines.append(
            "PROVISIONAL: capacity constants not yet calibrated by the data-plane benchmark\n"
        )
    header = "WORKLOAD CONTAINER REPLICAS SURGE PDB CPU-REQ CPU-LIM MEM-REQ MEM-LIM"
    rows = [header.split()]
    for name, workload in plan.workloads().items():
        pdb = (
            f"maxUnavailable={workload.pdb_max_unavailable}"
            if workload.pdb_max_unavailable is not None
            else "-"
        )
        for container, res in workload.containers.items():
            replicas = [str(workload.replicas), str(workload.max_surge), pdb]
            rows.append([name, container, *replicas, *_resource_cells(res)])
    rows.append(["(any)", "init", "-", "-", "-", *_resource_cells(plan.proxy.init_container)])
    lines.append("\n" + _columns(rows) + "\n")
    limit_range = limit_range_spec(plan.limit_range)["limits"][0]
    lines.append(
        _columns(
            [
                ["ResourceQuota", " ".join(f"{k}={v}" for k, v in quota_hard(plan.quota).items())],
                [
                    "LimitRange",
                    " ".join(
                        f"{key}: cpu={limit_range[key]['cpu']} memory={limit_range[key]['memory']};"
                        for key in ("default", "defaultRequest", "max")
                    ).rstrip(";"),
                ],
                ["Log volume", memory_quantity(plan.log_volume)],
                [
                    "Log spool",
                    ", ".join(
                        f"{name} {memory_quantity(w.log_spool)}"
                        for name, w in plan.workloads().items()
                        if w.log_spool
                    )
                    + " per pod (state emptyDir, on top of the daemons' own use)",
                ],
            ]
        )
    )
    return "".join(lines)


def markdown_summary(plans: list[SizingPlan]) -> str:
    """One markdown row per plan: the table in docs/sizing.md."""
    header = (
        "| Endpoints | req/s | Proxy replicas x (CPU, memory) | Anti-virus replicas x "
        "(CPU, memory) | Log store (CPU, memory) | Quota requests (CPU, memory) | "
        "Quota limits (CPU, memory) | Quota pods | Log volume |\n"
        "| ---: | ---: | --- | --- | --- | --- | --- | ---: | ---: |\n"
    )
    rows = []
    for plan in plans:
        cells = [f"{plan.endpoints:,}", f"{plan.requests_per_second:,}"]
        for workload in (plan.proxy, plan.antivirus):
            if workload is None:
                cells.append("-")
                continue
            pod = workload.pod
            cells.append(
                f"{workload.replicas} x ({cpu_quantity(pod.cpu_request)}, "
                f"{memory_quantity(pod.memory_request)})"
            )
        log_store = plan.log_store.pod
        quota = plan.quota
        cells += [
            f"{cpu_quantity(log_store.cpu_request)}, {memory_quantity(log_store.memory_request)}",
            f"{cpu_quantity(quota.requests_cpu)}, {memory_quantity(quota.requests_memory)}",
            f"{cpu_quantity(quota.limits_cpu)}, {memory_quantity(quota.limits_memory)}",
            str(quota.pods),
            memory_quantity(plan.log_volume),
        ]
        rows.append("| " + " | ".join(cells) + " |\n")
    return header + "".join(rows)
