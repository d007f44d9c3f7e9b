"""Coalesced re-reconciles of tenants asked for by watch events (drift, availability, catalogue).

A burst of child events (a rollout, a namespace deletion) becomes one reconcile per tenant:
a request for a tenant that is already waiting is dropped. Transient failures are retried with
exponential backoff, a bounded number of times; the periodic resync picks up anything left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger("swg_operator.queue")


class RetryLater(Exception):  # noqa: N818 - a signal, not a failure
    """Raised by the work function: the tenant should be tried again after a backoff."""


class TenantQueue:
    def __init__(
        self,
        work: Callable[[str], Awaitable[None]],
        *,
        settle: float = 0.5,
        backoff: tuple[float, ...] = (1.0, 2.0, 5.0, 15.0, 30.0, 60.0),
    ) -> None:
        self._work = work
        self._settle = settle
        self._backoff = backoff
        self._waiting: dict[str, asyncio.Task[None]] = {}

    def request(self, tenant: str) -> None:
        if tenant in self._waiting:
            return
        self._waiting[tenant] = asyncio.create_task(self._run(tenant), name=f"reconcile-{tenant}")

    async def _run(self, tenant: str) -> None:
        try:
            await asyncio.sleep(self._settle)
            for attempt, delay in enumerate((*self._backoff, None)):
                # From here on, a new event asks for a fresh run after this one.
                self._waiting.pop(tenant, None)
                try:
                    await self._work(tenant)
                    return
                except RetryLater as exc:
                    if delay is None:
                        logger.error(
                            "Gave up re-reconciling tenant %s after %d attempts: %s",
                            tenant,
                            attempt + 1,
                            exc,
                        )
                        return
                    await asyncio.sleep(delay)
                except Exception:  # logged by the reconcile; the next event or resync retries
                    return
        finally:
            if self._waiting.get(tenant) is asyncio.current_task():
                self._waiting.pop(tenant, None)

    async def close(self) -> None:
        tasks = list(self._waiting.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
