"""Figures from a results file: the sizing inputs it yields and Markdown tables.

`python -m bench.dataplane.report bench/results/dataplane-<date>.json` prints the tables that
docs/benchmarks.md shows.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.dataplane.origin import OBJECTS
from bench.dataplane.run import ANTIVIRUS, DIRECT, NOACL
from bench.dataplane.tenants import RenderedTenant

MIB = 1024 * 1024
OVERHEAD_GOAL = 0.9
GOAL_ENTRIES = 100_000
OBJECT_LABELS = {"1k.bin": "1 KiB", "1m.bin": "1 MiB"}


def run_line(run: Mapping[str, Any]) -> str:
    wrk = run["wrk"]
    cores = " ".join(f"{k}={v:.2f}" for k, v in sorted(run["cpuCores"].items()))
    flag = "" if run["valid"] else f" INVALID errors={wrk['errors']}"
    return (
        f"round {run['round']} {run['case']:<20} {run['object']:<7} {wrk['rps']:>9.1f} req/s "
        f"p50 {wrk['latency_ms']['p50']:.2f} ms p99 {wrk['latency_ms']['p99']:.2f} ms "
        f"cores: {cores} load {run['loadAverage']['after'][0]}{flag}"
    )


def _rss(facts: Mapping[str, Any], tenant: str, daemon: str, when: str) -> int | None:
    value = facts.get(tenant, {}).get(when, {}).get(daemon, {}).get("rssBytes")
    return int(value) if value is not None else None


def derived(
    summary: Mapping[str, Any],
    facts: Mapping[str, Any],
    rendered: Sequence[RenderedTenant],
) -> dict[str, Any]:
    """The sizing model's inputs this run measured (docs/sizing.md, data/capacity.yaml)."""
    out: dict[str, Any] = {}
    filters = [t for t in rendered if t.acl_entries]
    one_k = "1k.bin"
    out["squidRpsPerCore1KiB"] = {
        t: summary[t][one_k]["rpsPerCore"]["squid"]
        for t in summary
        if t != DIRECT and one_k in summary[t]
    }
    if ANTIVIRUS in summary and one_k in summary[ANTIVIRUS]:
        out["antivirusRpsPerCore1KiB"] = summary[ANTIVIRUS][one_k]["rpsPerCore"]["antivirus"]
    for key in ("ratioVsSquidNoAcl", "squidPerCoreRatioVsSquidNoAcl"):
        out[f"filtering{key[0].upper()}{key[1:]}"] = {
            t.name: {obj: summary[t.name][obj][key] for obj in summary[t.name]}
            for t in filters
            if t.name in summary
        }
    goal = next((t for t in filters if t.acl_entries == GOAL_ENTRIES), None)
    if goal is not None and goal.name in summary:
        figures = summary[goal.name].get(one_k, {})
        per_core = figures.get("squidPerCoreRatioVsSquidNoAcl")
        out["filteringGoal"] = {
            "case": goal.name,
            "goal": OVERHEAD_GOAL,
            "judgedOn": "squidPerCoreRatioVsSquidNoAcl, 1 KiB",
            "squidPerCoreRatio1KiB": per_core,
            "throughputRatio1KiB": figures.get("ratioVsSquidNoAcl"),
            "met": per_core is not None and per_core >= OVERHEAD_GOAL,
        }
    base = _rss(facts, NOACL, "squid", "memoryIdle")
    per_entry = {}
    for tenant in filters:
        rss = _rss(facts, tenant.name, "squid", "memoryIdle")
        if base is not None and rss is not None:
            per_entry[tenant.name] = round((rss - base) / tenant.acl_entries, 1)
    out["squidBytesPerAclEntry"] = per_entry
    out["squidIdleRssBytes"] = base
    out["squidRssAfterLoadBytes"] = _rss(facts, NOACL, "squid", "memoryAfterLoad")
    for daemon, key in (("c-icap", "cIcap"), ("clamd", "clamd")):
        out[f"{key}IdleRssBytes"] = _rss(facts, ANTIVIRUS, daemon, "memoryIdle")
        out[f"{key}RssAfterLoadBytes"] = _rss(facts, ANTIVIRUS, daemon, "memoryAfterLoad")
    if filters:
        largest = max(filters, key=lambda t: t.acl_entries)
        out["largestCatalogue"] = {
            "case": largest.name,
            "aclEntries": largest.acl_entries,
            "squidStartSeconds": facts.get(largest.name, {}).get("squidStartSeconds"),
            "squidStartCpuSeconds": facts.get(largest.name, {}).get("squidStartCpuSeconds"),
            "squidReconfigureSeconds": facts.get(largest.name, {}).get("squidReconfigureSeconds"),
            "squidReconfigureCpuSeconds": facts.get(largest.name, {}).get(
                "squidReconfigureCpuSeconds"
            ),
            "squidIdleRssBytes": _rss(facts, largest.name, "squid", "memoryIdle"),
        }
    return out


def _mib(value: int | None) -> str:
    return "-" if value is None else f"{value / MIB:.1f}"


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _timing(facts: Mapping[str, Any], key: str) -> str:
    seconds = facts.get(f"{key}Seconds")
    if seconds is None:
        return "-"
    cpu = facts.get(f"{key}CpuSeconds")
    return f"{seconds}" if cpu is None else f"{seconds} ({cpu})"


def markdown(results: Mapping[str, Any]) -> str:
    summary = results["summary"]
    lines: list[str] = []
    for obj in OBJECTS:
        if not any(obj in figures for figures in summary.values()):
            continue
        lines += [
            f"**{OBJECT_LABELS[obj]} objects**",
            "",
            "| case | req/s (min-max) | p50 ms | p99 ms | req/s vs Squid no ACLs "
            "| Squid req/s per core vs no ACLs | req/s vs direct | CPU cores used "
            "| req/s per core |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        ]
        for case, figures in summary.items():
            if obj not in figures:
                continue
            f = figures[obj]
            cores = ", ".join(f"{k} {v:.2f}" for k, v in f["cpuCores"].items())
            per_core = ", ".join(f"{k} {v:,.0f}" for k, v in f["rpsPerCore"].items())
            valid = "" if f["valid"] else " (errors)"
            lines.append(
                f"| {case}{valid} | {f['rps']:,.0f} ({f['rpsMin']:,.0f}-{f['rpsMax']:,.0f}) "
                f"| {f['latencyMs']['p50']:.2f} | {f['latencyMs']['p99']:.2f} "
                f"| {_ratio(f['ratioVsSquidNoAcl'])} "
                f"| {_ratio(f['squidPerCoreRatioVsSquidNoAcl'])} | {_ratio(f['ratioVsDirect'])} "
                f"| {cores} | {per_core} |"
            )
        lines.append("")
    lines += [
        "**Daemons** (Squid restarted and reconfigured with each catalogue, before any load)",
        "",
        "| tenant | ACL entries | Squid start s (CPU s) | Squid reconfigure s (CPU s) "
        "| RSS idle MiB | peak RSS MiB | RSS after load MiB |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, facts in results["daemons"].items():
        entries = results["tenants"][name]["aclEntries"]
        for daemon, idle in facts.get("memoryIdle", {}).items():
            after = facts.get("memoryAfterLoad", {}).get(daemon, {})
            peak = facts.get("memoryAfterReconfigure", idle).get(daemon, idle)
            squid = daemon == "squid"
            start = _timing(facts, "squidStart") if squid else "-"
            reconf = _timing(facts, "squidReconfigure") if squid else "-"
            label = name if squid else f"{name} ({daemon})"
            lines.append(
                f"| {label} | {entries:,} | {start} | {reconf} | {_mib(idle.get('rssBytes'))} "
                f"| {_mib(peak.get('peakRssBytes'))} | {_mib(after.get('rssBytes'))} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    paths = list(argv if argv is not None else sys.argv[1:])
    if len(paths) != 1:
        print("usage: python -m bench.dataplane.report RESULTS.json", file=sys.stderr)
        return 2
    results = json.loads(Path(paths[0]).read_text())
    print(markdown(results))
    print("derived: " + json.dumps(results["derived"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
