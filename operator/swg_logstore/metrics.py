"""The tenant's data-plane figures, from the records the log store keeps (`prometheus_client`).

The store sees every record of its tenant exactly once (duplicates are dropped before they get
here), so counting what it stores gives the gateway's figures without touching Squid, c-icap or
clamd: requests and their decisions (by category and list), anti-virus and sandbox verdicts,
bytes, latency, scanner and sandbox errors. The store adds its own: how late records arrive
(ingest lag), the disk its days use, and its ingestion counters.

Every series carries a `tenant` label (one store serves one tenant; the label keeps the figures
apart once the platform's Prometheus scrapes many). `samples` is the pure mapping of one record
to what it counts; `DataPlaneMetrics` applies it to a registry of its own.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from swg_logstore.formats import LogType

JsonScalar = str | int | float | bool | None

LATENCY_BUCKETS: Final = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
LAG_BUCKETS: Final = (0.5, 1, 2, 5, 10, 30, 60, 120, 300, 900)
NONE: Final = "none"  # label value for an absent category or list


@dataclass(frozen=True)
class Sample:
    """One increment: a metric (by its key in `DataPlaneMetrics`), label values, an amount."""

    metric: str
    labels: tuple[tuple[str, str], ...]
    amount: float = 1.0


def _label(value: JsonScalar) -> str:
    return NONE if value is None or value == "" else str(value)


def _number(value: JsonScalar) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if value >= 0 else None


def samples(record: Mapping[str, JsonScalar]) -> list[Sample]:
    """What one stored record counts. Pure; records of an unknown type count nothing."""
    kind = record.get("type")
    out: list[Sample] = []
    if kind == LogType.ACCESS:
        decision = _label(record.get("decision"))
        out.append(Sample("requests", (("decision", decision),)))
        out.append(
            Sample(
                "decisions",
                (
                    ("decision", decision),
                    ("category", _label(record.get("category"))),
                    ("list", _label(record.get("list"))),
                ),
            )
        )
        for key, direction in (("bytesOut", "out"), ("bytesIn", "in")):
            amount = _number(record.get(key))
            if amount:
                out.append(Sample("bytes", (("direction", direction),), amount))
        duration = _number(record.get("durationMs"))
        if duration is not None:
            out.append(Sample("latency", (), duration / 1000))
        if record.get("av") == "error":
            out.append(Sample("scanner_errors", (("source", "proxy"),)))
    elif kind == LogType.ANTIVIRUS:
        verdict = _label(record.get("verdict"))
        out.append(
            Sample("av", (("direction", _label(record.get("direction"))), ("verdict", verdict)))
        )
        if verdict == "error":
            out.append(Sample("scanner_errors", (("source", "scanner"),)))
    elif kind == LogType.SANDBOX:
        verdict = _label(record.get("verdict"))
        out.append(
            Sample(
                "sandbox", (("direction", _label(record.get("direction"))), ("verdict", verdict))
            )
        )
        if verdict == "error":
            out.append(Sample("sandbox_errors", ()))
    return out


def record_time(record: Mapping[str, JsonScalar]) -> datetime | None:
    """The record's `ts` as a datetime (None when it does not parse)."""
    ts = record.get("ts")
    if not isinstance(ts, str):
        return None
    try:
        return datetime.fromisoformat(ts.replace("Z", "+00:00"))
    except ValueError:
        return None


def tree_bytes(root: Path) -> int:
    """Bytes of the regular files under `root` (0 when it is missing)."""
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except FileNotFoundError:  # removed by retention meanwhile
                continue
    return total


class _StoreCollector(Collector):
    """Figures read at scrape time: disk use per log type and the store's own counters."""

    def __init__(self, tenant: str, root: Path, counters: Callable[[], Mapping[str, int]]):
        self._tenant = tenant
        self._root = root
        self._counters = counters

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        disk = GaugeMetricFamily(
            "swg_logstore_disk_bytes",
            "Bytes the tenant's stored logs use on the log volume, by log type.",
            labels=["tenant", "type"],
        )
        for log_type in LogType:
            disk.add_metric([self._tenant, log_type.value], tree_bytes(self._root / log_type))
        yield disk
        try:
            stat = os.statvfs(self._root)
        except OSError:
            stat = None
        if stat is not None:
            free = GaugeMetricFamily(
                "swg_logstore_volume_free_bytes",
                "Free bytes on the log volume (for unprivileged writers).",
                labels=["tenant"],
            )
            free.add_metric([self._tenant], stat.f_bavail * stat.f_frsize)
            yield free
        for name, value in self._counters().items():
            family = CounterMetricFamily(
                f"swg_logstore_{name}",  # the family adds `_total`
                f"Log store events: {name.replace('_', ' ')}.",
                labels=["tenant"],
            )
            family.add_metric([self._tenant], value)
            yield family


class DataPlaneMetrics:
    """The registry of one log store: record-derived counters and the store's own figures."""

    def __init__(
        self,
        tenant: str,
        root: Path,
        counters: Callable[[], Mapping[str, int]] | None = None,
        *,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.tenant = tenant
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self._counters: dict[str, Counter] = {
            "requests": Counter(
                "swg_dataplane_requests",
                "Requests through the tenant's proxy, by decision (allow, block, bypass).",
                ["tenant", "decision"],
                registry=r,
            ),
            "decisions": Counter(
                "swg_dataplane_decisions",
                "Requests by decision, category (none when no category rule decided) and the "
                "list that decided (docs/logs.md).",
                ["tenant", "decision", "category", "list"],
                registry=r,
            ),
            "bytes": Counter(
                "swg_dataplane_bytes",
                "Bytes through the proxy: out to clients, in from clients.",
                ["tenant", "direction"],
                registry=r,
            ),
            "av": Counter(
                "swg_dataplane_antivirus_verdicts",
                "Anti-virus scans by direction and verdict (clean, infected, over-limit, "
                "encrypted, error).",
                ["tenant", "direction", "verdict"],
                registry=r,
            ),
            "sandbox": Counter(
                "swg_dataplane_sandbox_verdicts",
                "Sandbox analyses by direction and verdict (clean, modified, malicious, error).",
                ["tenant", "direction", "verdict"],
                registry=r,
            ),
            "scanner_errors": Counter(
                "swg_dataplane_scanner_errors",
                "Anti-virus failures: seen by the proxy (ICAP failure) or reported by the scanner.",
                ["tenant", "source"],
                registry=r,
            ),
            "sandbox_errors": Counter(
                "swg_dataplane_sandbox_errors",
                "Sandbox analyses that failed.",
                ["tenant"],
                registry=r,
            ),
        }
        self._latency = Histogram(
            "swg_dataplane_request_duration_seconds",
            "Time Squid took to answer a request.",
            ["tenant"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self._lag = Histogram(
            "swg_logstore_ingest_lag_seconds",
            "Time from a record's timestamp to its storage in the log store.",
            ["tenant"],
            buckets=LAG_BUCKETS,
            registry=r,
        )
        if counters is not None:
            r.register(_StoreCollector(tenant, root, counters))

    def observe(self, record: Mapping[str, JsonScalar], now: datetime) -> None:
        """Count one stored record (its lag measured against `now`)."""
        for sample in samples(record):
            if sample.metric == "latency":
                self._latency.labels(self.tenant).observe(sample.amount)
                continue
            labels = dict(sample.labels)
            self._counters[sample.metric].labels(tenant=self.tenant, **labels).inc(sample.amount)
        moment = record_time(record)
        if moment is not None and moment.tzinfo is not None:
            self._lag.labels(self.tenant).observe(max(0.0, (now - moment).total_seconds()))
