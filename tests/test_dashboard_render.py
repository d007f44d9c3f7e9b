"""The dashboard's rendering (devtools/dashboard): the PromQL subset evaluated over scrapes as
Prometheus would (rate, increase, sums by label, histogram_quantile), every query of the real
dashboard parsed, and a panel whose metrics no scrape had drawn as "no data"."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from devtools.dashboard import promql
from devtools.dashboard.__main__ import draw, load_panels, main, panel_series, query_text

COUNTER = """# TYPE req counter
req_total{tenant="a",decision="allow"} {a}
req_total{tenant="a",decision="block"} {b}
req_total{tenant="b",decision="allow"} {c}
"""
HISTOGRAM = """# TYPE lat histogram
lat_bucket{{tenant="a",le="0.1"}} {x}
lat_bucket{{tenant="a",le="1.0"}} {y}
lat_bucket{{tenant="a",le="+Inf"}} {z}
lat_count{{tenant="a"}} {z}
lat_sum{{tenant="a"}} 1
"""


def counter(a: float, b: float, c: float) -> str:
    return COUNTER.replace("{a}", str(a)).replace("{b}", str(b)).replace("{c}", str(c))


def scrapes_of(*texts: str, step: float = 10.0) -> promql.Scrapes:
    scrapes = promql.Scrapes()
    for i, text in enumerate(texts):
        scrapes.add(1000.0 + i * step, text)
    return scrapes


def at_end(query: str, scrapes: promql.Scrapes) -> dict[str, float]:
    vector = promql.evaluate(promql.parse(query), scrapes, scrapes.times[-1])
    return {",".join(f"{k}={v}" for k, v in labels): value for labels, value in vector.items()}


def test_rate_is_the_increase_over_the_samples_in_range() -> None:
    scrapes = scrapes_of(counter(0, 0, 5), counter(10, 2, 5), counter(30, 4, 5))
    assert at_end("sum by (tenant) (rate(req_total[5m]))", scrapes) == {
        "tenant=a": pytest.approx((30 + 4) / 20),
        "tenant=b": 0.0,
    }
    assert at_end('sum(rate(req_total{decision="block"}[5m]))', scrapes) == {"": 0.2}
    # Only the last two scrapes are inside a 15 s range.
    assert at_end('rate(req_total{tenant="a",decision="allow"}[15s])', scrapes) == {
        "decision=allow,tenant=a": 2.0
    }


def test_increase_survives_a_counter_reset() -> None:
    scrapes = scrapes_of(counter(5, 0, 0), counter(8, 0, 0), counter(2, 0, 0))
    assert at_end('increase(req_total{decision="allow",tenant="a"}[1h])', scrapes) == {
        "decision=allow,tenant=a": 5.0
    }


def test_a_single_sample_has_no_rate() -> None:
    assert at_end("rate(req_total[5m])", scrapes_of(counter(1, 1, 1))) == {}


def test_regex_matchers_and_the_all_variable() -> None:
    scrapes = scrapes_of(counter(1, 2, 3))
    query = query_text('sum by (tenant) (req_total{tenant=~"$tenant"})')
    assert at_end(query, scrapes) == {"tenant=a": 3.0, "tenant=b": 3.0}
    assert at_end('max(req_total{tenant=~"b|c"})', scrapes) == {"": 3.0}
    assert at_end('req_total{decision!="allow"}', scrapes) == {"decision=block,tenant=a": 2.0}


def test_histogram_quantile_interpolates_inside_the_bucket() -> None:
    first = HISTOGRAM.format(x=0, y=0, z=0)
    second = HISTOGRAM.format(x=50, y=90, z=100)
    scrapes = scrapes_of(first, second)
    query = "histogram_quantile(0.5, sum by (tenant, le) (rate(lat_bucket[5m])))"
    assert at_end(query, scrapes) == {"tenant=a": pytest.approx(0.1)}
    p95 = at_end(query.replace("0.5", "0.95"), scrapes)["tenant=a"]
    assert p95 == pytest.approx(1.0)  # in +Inf: the highest finite bound, as Prometheus
    p70 = at_end(query.replace("0.5", "0.7"), scrapes)["tenant=a"]
    assert p70 == pytest.approx(0.1 + 0.9 * (70 - 50) / 40)


def test_an_empty_histogram_has_no_quantile() -> None:
    scrapes = scrapes_of(HISTOGRAM.format(x=0, y=0, z=0), HISTOGRAM.format(x=0, y=0, z=0))
    query = "histogram_quantile(0.99, sum by (le) (rate(lat_bucket[5m])))"
    assert math.isnan(at_end(query, scrapes)[""])
    assert promql.timeline(promql.parse(query), scrapes) == {}


def test_what_the_evaluator_does_not_know_is_refused_by_name() -> None:
    for query in ("topk(3, req_total)", "sum without (le) (req_total)", "req_total[5m]"):
        with pytest.raises(promql.UnsupportedQueryError):
            promql.evaluate(promql.parse(query), scrapes_of(counter(1, 1, 1)), 1000.0)


def test_every_query_of_the_dashboard_parses() -> None:
    panels = load_panels()
    assert len(panels) >= 12
    for panel in panels:
        for target in panel["targets"]:
            node = promql.parse(query_text(target["expr"]))
            assert promql.metric_names(node), target["expr"]


def test_a_panel_without_its_metrics_says_no_data_and_names_them(tmp_path: Path) -> None:
    scrapes = scrapes_of(counter(1, 1, 1), counter(2, 2, 2))
    panels = load_panels()
    errors = next(p for p in panels if p["title"] == "Reconcile errors by kind")
    series, reason = panel_series(errors, scrapes)
    assert series == []
    assert reason == "no data: this run exported no swg_operator_reconcile_errors_total"
    out = tmp_path / "dashboard.png"
    draw(panels, scrapes, out, "test")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_legend_format() -> None:
    labels = (("category", "gambling"), ("tenant", "acme"))
    assert promql.legend("{{tenant}} {{category}}", labels) == "acme gambling"
    assert promql.legend("", labels) == "category=gambling, tenant=acme"
    assert promql.legend("p99", ()) == "p99"


def test_replay_draws_from_saved_scrapes(tmp_path: Path) -> None:
    saved = tmp_path / "scrapes.json"
    entries = [{"t": 1000.0 + 3 * i, "text": counter(i, i, i)} for i in range(3)]
    saved.write_text(json.dumps({"caption": "a run", "scrapes": entries}))
    out = tmp_path / "replayed.png"
    assert main(["--replay", str(saved), "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
