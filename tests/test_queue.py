"""The operator's work queue: bounded, first reconciles first, coalesced, backoff with jitter
that honours Retry-After. Driven with real asyncio and short waits on events, no clock patched."""

from __future__ import annotations

import asyncio

from swg_operator.reconcile.queue import BACKOFF_CAP, RetryLater, TenantQueue, backoff


class Counted:
    """How many times the work ran, with an event per count reached."""

    def __init__(self) -> None:
        self.count = 0
        self._waiting: dict[int, asyncio.Event] = {}

    def tick(self) -> None:
        self.count += 1
        for count, event in self._waiting.items():
            if self.count >= count:
                event.set()

    async def reach(self, count: int) -> None:
        event = self._waiting.setdefault(count, asyncio.Event())
        if self.count >= count:
            event.set()
        await asyncio.wait_for(event.wait(), timeout=10)


def test_backoff_grows_is_capped_and_jittered() -> None:
    assert backoff(1, jitter=lambda: 1.0) == 2.0
    assert backoff(3, jitter=lambda: 1.0) == 8.0
    assert backoff(3, jitter=lambda: 0.0) == 4.0
    assert backoff(30, jitter=lambda: 1.0) == BACKOFF_CAP


def test_in_flight_is_capped_and_first_reconciles_go_first() -> None:
    async def scenario() -> None:
        order: list[str] = []
        running = 0
        most = 0
        gate = asyncio.Event()
        done = Counted()

        async def work(tenant: str) -> None:
            nonlocal running, most
            running += 1
            most = max(most, running)
            order.append(tenant)
            await gate.wait()
            running -= 1
            done.tick()

        queue = TenantQueue(work, workers=2)
        for n in range(5):
            queue.request(f"old-{n}")
        await asyncio.sleep(0.05)
        assert queue.in_flight == 2
        queue.request("new", first=True)  # arrives behind three waiting re-reconciles
        gate.set()
        await done.reach(6)
        await queue.close()
        assert most == 2
        # The two workers took the first two requests at once; the new tenant goes next.
        assert order[2] == "new"
        assert sorted(order) == sorted([*(f"old-{n}" for n in range(5)), "new"])

    asyncio.run(scenario())


def test_requests_coalesce_and_one_made_while_running_runs_again() -> None:
    async def scenario() -> None:
        runs: list[str] = []
        started = asyncio.Event()
        gate = asyncio.Event()

        done = Counted()

        async def work(tenant: str) -> None:
            runs.append(tenant)
            started.set()
            await gate.wait()
            done.tick()

        queue = TenantQueue(work, workers=1)
        for _ in range(3):
            queue.request("acme")
        await started.wait()
        for _ in range(3):
            queue.request("acme")  # while it runs: once more afterwards
        gate.set()
        await done.reach(2)
        await asyncio.sleep(0.05)  # a third run, were there one, would have started by now
        await queue.close()
        assert runs == ["acme", "acme"]

    asyncio.run(scenario())


def test_a_transient_failure_waits_for_retry_after() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        times: list[float] = []
        done = Counted()

        async def work(tenant: str) -> None:
            times.append(loop.time())
            done.tick()
            if len(times) == 1:
                raise RetryLater("429", retry_after=0.3)

        queue = TenantQueue(work, workers=1, jitter=lambda: 0.0)
        queue.request("acme")
        await done.reach(2)
        await queue.close()
        # backoff(1) is 1 s at the least jitter; Retry-After (0.3 s) is a floor, not a ceiling.
        assert times[1] - times[0] >= 0.99

    asyncio.run(scenario())
