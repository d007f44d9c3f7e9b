"""Measuring helpers of the provisioning benchmark: quantiles, the audit log's tail, the API
server's request counters, a sampler of the operator's CPU and memory, readiness tests."""

from __future__ import annotations

import asyncio
import contextlib
import math
import re
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from bench.kubeclient import KubeClient
from bench.provision.audit import Request, parse_event
from bench.sysinfo import MIB, ProcSample, sample


def quantiles(values: Iterable[float]) -> dict[str, float]:
    """p50/p90/p99 (nearest rank), min, max and mean of `values`, in seconds rounded to 0.01."""
    ordered = sorted(values)
    if not ordered:
        return {}

    def rank(p: float) -> float:
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)]

    return {
        "count": len(ordered),
        "min": round(ordered[0], 2),
        "p50": round(rank(0.50), 2),
        "p90": round(rank(0.90), 2),
        "p99": round(rank(0.99), 2),
        "max": round(ordered[-1], 2),
        "mean": round(sum(ordered) / len(ordered), 2),
    }


class AuditTail:
    """Reads the audit log incrementally (it can reach hundreds of MB at 1,000 tenants)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.requests: list[Request] = []

    def poll(self) -> list[Request]:
        import json

        if not self.path.exists():
            return []
        new: list[Request] = []
        with self.path.open("rb") as log:
            log.seek(self.offset)
            chunk = log.read()
        end = chunk.rfind(b"\n") + 1  # complete lines only; the rest is read next time
        self.offset += end
        for line in chunk[:end].splitlines():
            if not line.strip():
                continue
            request = parse_event(json.loads(line))
            if request is not None:
                new.append(request)
        self.requests += new
        return new


_REQUEST_TOTAL = re.compile(r"^apiserver_request_total\{([^}]*)\}\s+(\S+)$", re.M)
_VERB = re.compile(r'verb="([^"]*)"')


async def apiserver_requests_by_verb(client: KubeClient) -> dict[str, float]:
    """`apiserver_request_total` summed by verb: every client of the API server together."""
    async with client.session.get("/metrics") as response:
        text = await response.text()
    totals: dict[str, float] = {}
    for labels, value in _REQUEST_TOTAL.findall(text):
        verb = _VERB.search(labels)
        key = verb.group(1) if verb else "?"
        totals[key] = totals.get(key, 0.0) + float(value)
    return totals


def counter_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, int]:
    return {
        key: int(after[key] - before.get(key, 0.0))
        for key in sorted(after)
        if after[key] - before.get(key, 0.0) > 0
    }


class ProcessSampler:
    """Samples one process's CPU and memory every `interval` seconds in the background."""

    def __init__(self, pid: int, *, interval: float = 1.0) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_rss = 0
        self.timeline: list[tuple[float, float, float]] = []  # (t, cpu s, RSS MiB)
        self._task: asyncio.Task[None] | None = None

    def now(self) -> ProcSample:
        got = sample(self.pid)
        if got is None:
            raise RuntimeError(f"process {self.pid} is gone")
        self.peak_rss = max(self.peak_rss, got.rss_bytes)
        return got

    async def _run(self) -> None:
        started = time.monotonic()
        while True:
            got = sample(self.pid)
            if got is not None:
                self.peak_rss = max(self.peak_rss, got.rss_bytes)
                self.timeline.append(
                    (
                        round(time.monotonic() - started, 1),
                        round(got.cpu_seconds, 2),
                        round(got.rss_bytes / MIB, 1),
                    )
                )
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def condition_true(obj: Mapping[str, Any], kind: str) -> bool:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == kind:
            return bool(c.get("status") == "True")
    return False


def deployment_available(obj: Mapping[str, Any]) -> bool:
    """The same test the operator's status uses (kstatus' rules for a Deployment)."""
    want = int((obj.get("spec") or {}).get("replicas", 1))
    status = obj.get("status") or {}
    if status.get("observedGeneration", -1) < obj["metadata"].get("generation", 0):
        return False
    return (
        condition_true(obj, "Available")
        and status.get("updatedReplicas", 0) >= want
        and status.get("availableReplicas", 0) >= want
        and status.get("replicas", 0) <= want
    )
