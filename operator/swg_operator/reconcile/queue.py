"""The operator's own work queue: every reconcile of a tenant runs from it, never more than
`workers` at a time.

* **Bounded**: `workers` reconciles in flight at most (below the HTTP connection pool's size, so
  no reconcile waits for a connection long enough to fail on it).
* **First things first**: a tenant's first reconcile (a new tenant, a changed spec) goes before
  the re-reconciles (drift, availability, resync), so a burst of existing tenants' events never
  holds back a new tenant.
* **Coalesced**: a tenant waiting is queued once however many events ask for it; one asked for
  while it runs runs once more right after.
* **Backoff with jitter**: a transient failure (`RetryLater`) is retried after an exponential,
  jittered delay, no sooner than the API server's `Retry-After`; a bug is retried later still.
* **Resync with jitter**: `resync` asks for every tenant every `interval` seconds, give or take
  a tenth, so many operators (or restarts) do not line up.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import random
from collections.abc import Awaitable, Callable, Iterable

logger = logging.getLogger("swg_operator.queue")

BACKOFF_BASE = 1.0
BACKOFF_CAP = 300.0
BUG_OFFSET = 3  # a bug waits as long as a transient error three attempts later


class RetryLater(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by the work function: the tenant should be tried again after a backoff (no
    sooner than `retry_after` seconds when given)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def backoff(attempt: int, *, jitter: Callable[[], float] = random.random) -> float:
    """Attempt 1, 2, 3 ... waits 2, 4, 8 ... seconds (capped at 5 minutes), each scaled by a
    random factor between 0.5 and 1 so that retries of many tenants spread out."""
    ceiling = min(BACKOFF_CAP, BACKOFF_BASE * 2.0**attempt)
    return ceiling * (0.5 + jitter() / 2)


class TenantQueue:
    def __init__(
        self,
        work: Callable[[str], Awaitable[None]],
        *,
        workers: int = 12,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self._work = work
        self._jitter = jitter
        self._heap: list[tuple[int, int, str]] = []
        self._queued: dict[str, tuple[int, int]] = {}  # tenant -> (priority, order) in the heap
        self._running: set[str] = set()
        self._again: dict[str, bool] = {}  # asked for while running: first?
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._attempts: dict[str, int] = {}
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._tasks = [
            asyncio.create_task(self._worker(), name=f"reconcile-worker-{n}")
            for n in range(workers)
        ]

    @property
    def in_flight(self) -> int:
        return len(self._running)

    def request(self, tenant: str, *, first: bool = False, after: float = 0.0) -> None:
        """Ask for a reconcile of `tenant`: now (`first`: before the re-reconciles), or in
        `after` seconds (a pending earlier request is kept)."""
        if after > 0:
            if tenant not in self._timers:
                loop = asyncio.get_running_loop()
                self._timers[tenant] = loop.call_later(after, self._due, tenant, first)
            return
        if tenant in self._running:
            self._again[tenant] = self._again.get(tenant, False) or first
            return
        priority = 0 if first else 1
        queued = self._queued.get(tenant)
        if queued is not None and queued[0] <= priority:
            return
        entry = (priority, next(self._order))
        self._queued[tenant] = entry
        heapq.heappush(self._heap, (*entry, tenant))
        self._wake.set()

    def _due(self, tenant: str, first: bool) -> None:
        self._timers.pop(tenant, None)
        self.request(tenant, first=first)

    async def _next(self) -> str:
        while True:
            while self._heap:
                priority, order, tenant = heapq.heappop(self._heap)
                if self._queued.get(tenant) == (priority, order):
                    del self._queued[tenant]
                    return tenant
            self._wake.clear()
            await self._wake.wait()

    async def _worker(self) -> None:
        while True:
            tenant = await self._next()
            self._running.add(tenant)
            try:
                await self._work(tenant)
                self._attempts.pop(tenant, None)
            except RetryLater as exc:
                attempt = self._attempts[tenant] = self._attempts.get(tenant, 0) + 1
                delay = max(backoff(attempt, jitter=self._jitter), exc.retry_after or 0.0)
                logger.info("Retrying tenant %s in %.1fs: %s", tenant, delay, exc)
                self.request(tenant, after=delay)
            except Exception:  # a bug, logged (and Degraded) by the reconcile
                attempt = self._attempts[tenant] = self._attempts.get(tenant, 0) + 1
                self.request(tenant, after=backoff(attempt + BUG_OFFSET, jitter=self._jitter))
            finally:
                self._running.discard(tenant)
                if tenant in self._again:
                    self.request(tenant, first=self._again.pop(tenant))

    async def resync(self, interval: float, tenants: Callable[[], Iterable[str]]) -> None:
        """Ask for every tenant every `interval` seconds, jittered by up to a tenth; runs until
        cancelled."""
        while True:
            await asyncio.sleep(interval * (0.9 + 0.2 * self._jitter()))
            for tenant in list(tenants()):
                self.request(tenant)

    async def close(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
