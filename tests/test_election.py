"""Leader election (`swg_operator.election`) with an injected clock and an in-memory Lease: who
leads, when a standby takes over, that a holder steps down before anyone may take over, and
that a graceful stop hands over at once. No cluster, no real waits, no mock.patch."""

from __future__ import annotations

import asyncio
import datetime
from dataclasses import replace

import pytest

from swg_operator.election import Elector, LeaseConflictError, LeaseRecord, Timing
from swg_operator.kube.lease import to_lease, to_record

EPOCH = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
TIMING = Timing(lease_duration=10.0, renew_every=2.0, renew_deadline=6.0, poll_every=1.0)


class Clock:
    """Monotonic seconds that move only when a test (or a fake sleep) moves them."""

    def __init__(self) -> None:
        self.now = 0.0
        self._waiters: list[tuple[float, asyncio.Event]] = []

    def __call__(self) -> float:
        return self.now

    def wall(self) -> datetime.datetime:
        return EPOCH + datetime.timedelta(seconds=self.now)

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        for when, reached in self._waiters:
            if self.now >= when:
                reached.set()
        await asyncio.sleep(0)

    async def reach(self, when: float) -> None:
        """Wait until fake sleeps have moved the clock to `when`."""
        reached = asyncio.Event()
        self._waiters.append((when, reached))
        await reached.wait()


class MemoryLeases:
    """One Lease with the API server's optimistic concurrency: every write bumps the version,
    an update with a stale version is a conflict. Calls are recorded; `down` fails them all."""

    def __init__(self) -> None:
        self.record: LeaseRecord | None = None
        self.calls: list[str] = []
        self.down = False
        self._version = 0

    def _check(self, method: str) -> None:
        self.calls.append(method)
        if self.down:
            raise ConnectionError("API server unreachable")

    def _stored(self, record: LeaseRecord) -> LeaseRecord:
        self._version += 1
        self.record = replace(record, version=str(self._version))
        return self.record

    async def get(self) -> LeaseRecord | None:
        self._check("get")
        return self.record

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        self._check("create")
        if self.record is not None:
            raise LeaseConflictError("exists")
        return self._stored(record)

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        self._check("update")
        if self.record is None or record.version != self.record.version:
            raise LeaseConflictError("stale")
        return self._stored(record)


def elector(store: MemoryLeases, name: str, clock: Clock, log: list[str] | None = None) -> Elector:
    return Elector(
        store,
        name,
        timing=TIMING,
        clock=clock,
        wall_clock=clock.wall,
        sleep=clock.sleep,
        on_change=lambda leading: (log if log is not None else []).append(
            f"{name}:{'lead' if leading else 'stand by'}"
        ),
    )


def step(e: Elector) -> bool:
    return asyncio.run(e.try_acquire_or_renew())


def test_the_first_process_creates_the_lease_and_leads() -> None:
    store, clock = MemoryLeases(), Clock()
    changes: list[str] = []
    a = elector(store, "pod-a", clock, changes)
    assert step(a)
    assert store.record is not None
    assert store.record.holder == "pod-a"
    assert store.record.duration == 10.0
    assert store.record.acquired == store.record.renewed == EPOCH
    assert changes == ["pod-a:lead"]


def test_a_second_process_stands_by_while_the_holder_renews() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, "pod-a", clock), elector(store, "pod-b", clock)
    assert step(a)
    for _ in range(30):  # a minute of renewals every 2 s, b polling in between
        clock.now += 1.0
        assert not step(b)
        clock.now += 1.0
        assert step(a)
    assert store.record is not None
    assert store.record.holder == "pod-a"
    assert not b.leading
    assert store.record.transitions == 0


def test_the_standby_takes_over_one_lease_duration_after_it_last_saw_a_renewal() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, "pod-a", clock), elector(store, "pod-b", clock)
    assert step(a)
    assert not step(b)  # b sees a's Lease at t=0
    # a dies here. b keeps polling; the Lease holds until 10 s after b first saw it.
    while clock.now < 9.9:
        clock.now += 0.3
        assert not step(b), f"took over at {clock.now:.1f}s, before the Lease expired"
    clock.now = 10.0
    assert step(b)
    assert store.record is not None
    assert store.record.holder == "pod-b"
    assert store.record.transitions == 1
    assert store.record.acquired == clock.wall()


def test_expiry_is_judged_by_the_standbys_clock_not_the_holders_renew_time() -> None:
    """A holder whose wall clock is an hour behind writes an old renewTime: the standby still
    waits a full Lease duration from when it saw the Lease change."""
    store, clock = MemoryLeases(), Clock()
    skewed = Clock()
    skewed.now = -3600.0
    a = Elector(store, "pod-a", timing=TIMING, clock=clock, wall_clock=skewed.wall)
    b = elector(store, "pod-b", clock)
    assert step(a)
    clock.now = 5.0
    assert not step(b)
    clock.now = 14.0
    assert not step(b)
    clock.now = 15.0
    assert step(b)


def test_a_renewal_restarts_the_standbys_countdown() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, "pod-a", clock), elector(store, "pod-b", clock)
    assert step(a)
    assert not step(b)
    clock.now = 8.0
    assert step(a)  # renewed late, but renewed
    clock.now = 11.0
    assert not step(b)  # first sees the renewal now: holds until 21
    clock.now = 20.5
    assert not step(b)
    clock.now = 21.0
    assert step(b)


def test_two_standbys_racing_for_an_expired_lease_give_one_leader() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b, c = (elector(store, n, clock) for n in ("pod-a", "pod-b", "pod-c"))
    assert step(a)
    assert not step(b)
    assert not step(c)
    clock.now = 10.0

    async def race() -> list[bool]:
        return list(await asyncio.gather(b.try_acquire_or_renew(), c.try_acquire_or_renew()))

    assert sorted(asyncio.run(race())) == [False, True]
    assert store.record is not None
    assert store.record.holder in ("pod-b", "pod-c")
    assert [b.leading, c.leading].count(True) == 1


def test_a_released_lease_is_taken_at_the_next_poll() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, "pod-a", clock), elector(store, "pod-b", clock)
    assert step(a)
    assert not step(b)
    assert asyncio.run(a.release())
    assert store.record is not None
    assert store.record.holder == ""
    assert not a.leading
    clock.now += 1.0
    assert step(b)


def test_release_of_a_lease_held_by_another_process_changes_nothing() -> None:
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, "pod-a", clock), elector(store, "pod-b", clock)
    assert step(a)
    assert not asyncio.run(b.release())
    store.record = replace(store.record or LeaseRecord(), holder="pod-b")
    assert not asyncio.run(a.release())
    assert store.record.holder == "pod-b"


def test_a_restarted_process_of_the_same_pod_resumes_its_own_lease_at_once() -> None:
    store, clock = MemoryLeases(), Clock()
    assert step(elector(store, "pod-a", clock))
    clock.now = 1.0
    again = elector(store, "pod-a", clock)
    assert step(again)
    assert store.record is not None
    assert store.record.transitions == 0


def test_acquire_stands_by_then_returns_once_the_holder_stops_renewing() -> None:
    store, clock = MemoryLeases(), Clock()
    changes: list[str] = []
    a, b = elector(store, "pod-a", clock, changes), elector(store, "pod-b", clock, changes)
    assert step(a)
    asyncio.run(b.acquire())  # a never renews: b polls once a second
    assert 10.0 <= clock.now <= 10.0 + TIMING.poll_every
    assert b.leading
    assert changes == ["pod-a:lead", "pod-b:lead"]
    assert set(store.calls[2:-1]) == {"get"}, "a standby only reads the Lease"


def test_acquire_rides_out_an_unreachable_api_server() -> None:
    store, clock = MemoryLeases(), Clock()
    b = elector(store, "pod-b", clock)
    store.down = True

    async def scenario() -> None:
        waiting = asyncio.create_task(b.acquire())
        await clock.reach(5.0)
        assert not waiting.done()
        store.down = False
        await waiting

    asyncio.run(scenario())
    assert b.leading


def test_hold_renews_until_another_process_holds_the_lease() -> None:
    store, clock = MemoryLeases(), Clock()
    a = elector(store, "pod-a", clock)
    assert step(a)

    async def scenario() -> None:
        holding = asyncio.create_task(a.hold())
        await clock.reach(7.0)
        assert not holding.done()
        assert store.calls.count("update") >= 3
        assert store.record is not None
        store.record = replace(store.record, holder="pod-b", version="999")
        await holding

    asyncio.run(scenario())
    assert not a.leading


def test_hold_steps_down_before_a_standby_may_take_over() -> None:
    """The API server is unreachable from the holder: it gives up `renew_deadline` after the
    last renewal it sent, while a standby that saw that renewal waits a full Lease duration."""
    store, clock = MemoryLeases(), Clock()
    a, b = elector(store, "pod-a", clock), elector(store, "pod-b", clock)
    assert step(a)
    assert not step(b)
    store.down = True
    asyncio.run(a.hold())
    stepped_down = clock.now
    assert not a.leading
    assert stepped_down <= TIMING.renew_deadline
    assert stepped_down < TIMING.lease_duration  # before b may take over
    store.down = False
    clock.now = 9.9
    assert not step(b)
    clock.now = 10.0
    assert step(b)


def test_timing_refuses_a_deadline_that_outlasts_the_lease() -> None:
    with pytest.raises(ValueError, match="renew deadline < lease duration"):
        Timing(lease_duration=5.0, renew_every=2.0, renew_deadline=6.0)
    with pytest.raises(ValueError, match="0 < renew interval"):
        Timing(renew_every=0.0)
    with pytest.raises(ValueError, match="poll interval must be positive"):
        Timing(poll_every=0.0)


def test_the_lease_object_round_trips() -> None:
    record = LeaseRecord(
        holder="pod-a",
        duration=10.0,
        acquired=EPOCH,
        renewed=EPOCH + datetime.timedelta(seconds=2.5),
        transitions=3,
        version="42",
    )
    lease = to_lease(record, name="swg-operator", namespace="swg-system")
    assert lease["apiVersion"] == "coordination.k8s.io/v1"
    assert lease["metadata"]["resourceVersion"] == "42"
    assert lease["spec"] == {
        "holderIdentity": "pod-a",
        "leaseDurationSeconds": 10,
        "acquireTime": "2026-01-01T00:00:00.000000Z",
        "renewTime": "2026-01-01T00:00:02.500000Z",
        "leaseTransitions": 3,
    }
    assert to_record(lease) == record
    released = to_lease(replace(record, holder=""), name="x", namespace="y")
    assert "holderIdentity" not in released["spec"]
    assert to_record(released).holder == ""
