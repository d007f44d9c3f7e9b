"""`python -m devtools.dashboard`: the Grafana dashboard drawn with matplotlib, from real scrapes.

    python -m devtools.dashboard [--out docs/images/dashboard.png] [--seconds 120]
                                 [--interval 3] [--no-operator] [--scrapes FILE]
    python -m devtools.dashboard --replay FILE [--out PNG]

Starts two tenants' log stores and shippers and, unless --no-operator, the operator on a
local control plane with kwok nodes (sources.py); scrapes every /metrics each `--interval`
seconds for `--seconds`; evaluates each panel's queries (promql.py) at every scrape and draws
the panels where the dashboard's gridPos puts them. A query without any series is drawn as
"no data", as Grafana would. --scrapes also writes every scrape's text (JSON); --replay draws
from such a file again without starting anything.

Not Grafana: a rendering of the dashboard's queries against real scrapes of this run.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from devtools.dashboard import promql
from devtools.dashboard.sources import REPO, OperatorRun, TenantTraffic, _samples, scrape

DASHBOARD = REPO / "charts" / "swg-operator" / "dashboards" / "swg-operator.json"
OUT = REPO / "docs" / "images" / "dashboard.png"
TENANTS = ("acme", "globex")
CANCELLED = "initech"
UNITS = {"ops": "ops/s", "reqps": "req/s", "s": "s", "short": ""}
VARIABLES = {"$tenant": ".*"}  # the dashboard's `All`


def load_panels(path: Path = DASHBOARD) -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(path.read_text())["panels"]
    return panels


def query_text(expr: str) -> str:
    for name, value in VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def panel_series(
    panel: Mapping[str, Any], scrapes: promql.Scrapes
) -> tuple[list[tuple[str, promql.Points]], str | None]:
    """Each series a panel shows (legend, points), or why it shows none."""
    out: list[tuple[str, promql.Points]] = []
    missing: set[str] = set()
    for target in panel.get("targets", []):
        try:
            node = promql.parse(query_text(target["expr"]))
        except promql.UnsupportedQueryError as err:
            return [], f"query not supported by this rendering: {err}"
        missing |= {n for n in promql.metric_names(node) if n not in scrapes.names()}
        for labels, points in sorted(promql.timeline(node, scrapes).items()):
            out.append((promql.legend(target.get("legendFormat", ""), labels), points))
    if out:
        return out, None
    if missing:
        return [], "no data: this run exported no " + ", ".join(sorted(missing))
    return [], "no data: the series exist but the query yields nothing yet"


def draw(panels: list[dict[str, Any]], scrapes: promql.Scrapes, out: Path, caption: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_height = 0.42
    inches = rows * unit_height + 1.6
    fig = plt.figure(figsize=(18, inches), facecolor="#111217")
    top = 1 - 0.6 / inches
    bottom = 1.0 / inches
    height = top - bottom
    start = scrapes.times[0] if scrapes.times else 0.0
    fig.text(0.01, 1 - 0.3 / inches, "swg-operator", color="white", fontsize=15, weight="bold",
             va="center")  # fmt: skip
    fig.text(0.01, 0.35 / inches, caption, color="#9fa7b3", fontsize=8.5, va="center")
    for panel in panels:
        grid = panel["gridPos"]
        pad_x, pad_y = 0.004, 0.012
        box = (
            grid["x"] / 24 * 0.965 + 0.03 + pad_x,
            top - (grid["y"] + grid["h"]) / rows * height + pad_y,
            grid["w"] / 24 * 0.965 - 2 * pad_x - 0.012,
            grid["h"] / rows * height - 2 * pad_y - 0.018,
        )
        ax = fig.add_axes(box, facecolor="#181b1f")
        ax.set_title(panel["title"], color="white", fontsize=10, loc="left")
        for spine in ax.spines.values():
            spine.set_color("#2c3235")
        ax.tick_params(colors="#9fa7b3", labelsize=7.5)
        series, reason = panel_series(panel, scrapes)
        unit = UNITS.get(panel.get("fieldConfig", {}).get("defaults", {}).get("unit", ""), "")
        if reason is not None:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.55, "No data", color="#ccccdc", fontsize=13, ha="center",
                    transform=ax.transAxes)  # fmt: skip
            ax.text(0.5, 0.35, reason, color="#8e8e8e", fontsize=7.5, ha="center",
                    transform=ax.transAxes, wrap=True)  # fmt: skip
            continue
        if panel["type"] == "stat":
            ax.set_xticks([])
            ax.set_yticks([])
            for i, (name, points) in enumerate(series):
                value = points[-1][1]
                x = (i + 0.5) / len(series)
                ax.text(x, 0.45, f"{value:g}", color="#73bf69", fontsize=26, ha="center",
                        weight="bold", transform=ax.transAxes)  # fmt: skip
                if name != "value":  # a single unlabelled value: no legend, as Grafana
                    ax.text(x, 0.25, name, color="#ccccdc", fontsize=9, ha="center",
                            transform=ax.transAxes)  # fmt: skip
            continue
        for name, points in series:
            xs = [t - start for t, _ in points]
            ys = [v for _, v in points]
            ax.plot(xs, ys, linewidth=1.4, label=name)
        ax.set_xlabel("seconds into the run", color="#9fa7b3", fontsize=7.5)
        if unit:
            ax.set_ylabel(unit, color="#9fa7b3", fontsize=7.5)
        ax.grid(color="#2c3235", linewidth=0.6)
        legend = ax.legend(fontsize=7, loc="upper left", frameon=False, ncol=2)
        for text in legend.get_texts():
            text.set_color("#ccccdc")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=80, facecolor=fig.get_facecolor())
    plt.close(fig)


def load(t: float, seconds: float) -> float:
    """The share of the busiest rate at `t` seconds: a quiet start, a peak, a tail."""
    return 0.25 + 0.75 * math.exp(-(((t / seconds) - 0.6) ** 2) / 0.03)


def run(args: argparse.Namespace) -> int:
    work = Path(tempfile.mkdtemp(prefix="swg-dashboard-"))
    rng = random.Random(20261205)
    samples = _samples()
    tenants = [
        TenantTraffic("acme", work / "acme", rate=18, blocks=0.12),
        TenantTraffic("globex", work / "globex", rate=7, blocks=0.3, sandbox=True),
    ]
    operator = None if args.no_operator else OperatorRun(REPO / ".local" / "dashboard-cluster")
    scrapes = promql.Scrapes()
    texts: list[dict[str, Any]] = []
    began = time.time()
    try:
        for tenant in tenants:
            tenant.start()
        if operator is not None:
            print("starting a control plane (kwok nodes) and the operator ...", flush=True)
            operator.start([*TENANTS, CANCELLED])
        began = time.time()
        cancelled = False
        while (elapsed := time.time() - began) < args.seconds:
            for tenant in tenants:
                tenant.emit(load(elapsed, args.seconds), rng, samples)
            if operator is not None and not cancelled and elapsed > args.seconds / 3:
                operator.cancel(CANCELLED)
                cancelled = True
            now = time.time()
            urls = [t.metrics_url for t in tenants]
            urls += [operator.metrics_url] if operator is not None else []
            for url in urls:
                text = scrape(url)
                scrapes.add(now, text)
                texts.append({"t": now, "url": url, "text": text})
            time.sleep(max(0.0, args.interval - (time.time() - now)))
    finally:
        for tenant in tenants:
            tenant.stop()
        if operator is not None:
            operator.stop()
        shutil.rmtree(work, ignore_errors=True)
    day = datetime.fromtimestamp(began, UTC).strftime("%Y-%m-%d %H:%M UTC")
    sources = "two log stores (acme, globex)" + (
        ", the operator (3 tenants on kwok nodes, initech cancelled)" if operator else ""
    )
    caption = (
        f"matplotlib rendering of charts/swg-operator/dashboards/swg-operator.json's queries over "
        f"{len(scrapes.times)} real scrapes ({args.interval:g} s apart) of {sources}, {day}; "
        "not a Grafana screenshot.\nData-plane traffic: log lines written by the script from "
        "lines captured from Squid and c-icap, shipped by the real shipper to the real log "
        "stores. rate() and increase() without extrapolation. `python -m devtools.dashboard`"
    )
    if args.scrapes:
        args.scrapes.write_text(json.dumps({"caption": caption, "scrapes": texts}))
    return render(scrapes, caption, args.out)


def replay(path: Path, out: Path) -> int:
    """Draw again from the scrapes a run wrote with --scrapes."""
    saved = json.loads(path.read_text())
    scrapes = promql.Scrapes()
    for entry in saved["scrapes"]:
        scrapes.add(entry["t"], entry["text"])
    return render(scrapes, saved["caption"], out)


def render(scrapes: promql.Scrapes, caption: str, out: Path) -> int:
    draw(load_panels(), scrapes, out, caption)
    print(f"{out}: {len(scrapes.times)} scrapes")
    for panel in load_panels():
        series, reason = panel_series(panel, scrapes)
        print(f"  {panel['title']}: " + (reason or f"{len(series)} series"))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m devtools.dashboard",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--out", type=Path, default=OUT, help="the PNG (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--interval", type=float, default=3.0)
    parser.add_argument("--no-operator", action="store_true", help="log stores only")
    parser.add_argument("--scrapes", type=Path, help="also write every scrape's text (JSON)")
    parser.add_argument(
        "--replay", type=Path, metavar="FILE", help="draw from a --scrapes FILE; start nothing"
    )
    args = parser.parse_args(argv)
    if args.replay is not None:
        return replay(args.replay, args.out)
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
