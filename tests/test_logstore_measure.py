"""The log-volume measurement runs the real parsers on generated traffic; its figures are sane."""

from __future__ import annotations

from typing import Any

from bench.logstore_measure import measure, throughput


def test_measurement_of_a_small_day() -> None:
    result: dict[str, Any] = measure(3000, seed=7, inspect_share=0.4)
    assert result["access"]["records"] == 3000
    assert 0 < result["urlfilter"]["records"] < 3000 * 0.2
    assert 0 < result["antivirus"]["records"] < 3000
    for key in ("access", "urlfilter", "antivirus"):
        assert 250 < result[key]["bytesPerRecord"] < 1000
        assert 5 < result[key]["gzipPercent"] < 30
    assert result["allTypes"]["bytesPerRequest"] > result["access"]["bytesPerRequest"]
    assert measure(500, seed=7, inspect_share=0.4) == measure(500, seed=7, inspect_share=0.4)


def test_throughput_run_ships_everything_through_real_processes() -> None:
    result: dict[str, Any] = throughput(2000, seed=3, inspect_share=0.4)
    assert result["rawLines"] > 2000
    assert result["storeLinesPerCpuSecond"] > 0
    assert result["shipperLinesPerCpuSecond"] > 0
    assert result["storePeakRssKiB"] > 0
