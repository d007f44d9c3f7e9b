"""Leader election on a coordination.k8s.io Lease: one operator process reconciles, the others
stand by and take over when its Lease expires.

Pure logic: the Lease is read and written through a `LeaseStore` (`kube/lease.py` over HTTP, an
in-memory one in the tests), and time comes from injected clocks, so every step is tested
without a cluster or a real wait (tests/test_election.py). The rules are client-go's
(`leaderelection`), which every Kubernetes controller manager uses:

* **Expiry is judged by the observer's own clock.** A standby remembers when it first saw the
  current version of the Lease (its monotonic clock) and takes over once `leaseDurationSeconds`
  have passed since then with no change. The holder's `renewTime` is written for people
  (`kubectl get lease`), never compared across machines, so clock skew between nodes cannot make
  a standby take over early.
* **Every write is conditional** on the resourceVersion last read (an update, not an apply): of
  two standbys that see the Lease expire at once, one update succeeds and the other gets 409.
  A successful renewal therefore also proves that nobody took the Lease meanwhile.
* **The holder steps down before anyone may take over.** Its Lease is valid from the moment it
  *sent* its last successful renewal; when it could not renew for `renew_deadline` (shorter than
  the Lease duration by a margin), `hold()` returns and the caller stops writing at once (the
  operator process exits: see commands/run.py).
* **A graceful stop releases the Lease** (holder emptied, duration 1 s), so a rollout or a drain
  hands over at the next poll of the standby instead of after the full duration.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol

logger = logging.getLogger(__name__)

Clock = Callable[[], float]
WallClock = Callable[[], datetime.datetime]
Sleep = Callable[[float], Awaitable[None]]


class LeaseConflictError(Exception):
    """The Lease changed since it was read (409), or was created by another process."""


@dataclass(frozen=True)
class LeaseRecord:
    """What the election reads and writes of a Lease's spec, plus its resourceVersion."""

    holder: str = ""  # spec.holderIdentity; "" when released
    duration: float = 10.0  # spec.leaseDurationSeconds
    acquired: datetime.datetime | None = None  # spec.acquireTime
    renewed: datetime.datetime | None = None  # spec.renewTime
    transitions: int = 0  # spec.leaseTransitions
    version: str = ""  # metadata.resourceVersion: the precondition of an update


class LeaseStore(Protocol):
    """One named Lease: each method is one request to the API server."""

    async def get(self) -> LeaseRecord | None:
        """The Lease, or None when it does not exist (GET by name)."""
        ...

    async def create(self, record: LeaseRecord) -> LeaseRecord:
        """Create it (POST); `LeaseConflictError` when it exists already."""
        ...

    async def update(self, record: LeaseRecord) -> LeaseRecord:
        """Replace it (PUT) if its resourceVersion is still `record.version`, else raise
        `LeaseConflictError`."""
        ...


@dataclass(frozen=True)
class Timing:
    """Seconds. The defaults give a takeover within about 12 s of the holder's death."""

    lease_duration: float = 10.0  # how long a Lease holds without renewal
    renew_every: float = 2.0  # the holder renews this often
    renew_deadline: float = 6.0  # the holder steps down when it could not renew for this long
    poll_every: float = 1.0  # a standby reads the Lease this often

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.renew_deadline < self.lease_duration:
            raise ValueError(
                "leader election needs 0 < renew interval < renew deadline < lease duration"
            )
        if self.poll_every <= 0:
            raise ValueError("the standby's poll interval must be positive")


class Elector:
    """Acquires, renews and releases one Lease for `identity`."""

    def __init__(
        self,
        store: LeaseStore,
        identity: str,
        *,
        timing: Timing | None = None,
        clock: Clock,
        wall_clock: WallClock,
        sleep: Sleep = asyncio.sleep,
        on_change: Callable[[bool], None] = lambda leading: None,
    ) -> None:
        if not identity:
            raise ValueError("a leader election identity must not be empty")
        self.store = store
        self.identity = identity
        self.timing = timing or Timing()
        self.clock = clock
        self.wall_clock = wall_clock
        self.sleep = sleep
        self.on_change = on_change
        self.leading = False
        self.last_renewed: float | None = None  # clock() when the last successful write was sent
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0

    # --- one step ---------------------------------------------------------------------------

    def _observe(self, record: LeaseRecord, now: float) -> None:
        seen = self._observed
        if seen is None or (seen.holder, seen.renewed, seen.version) != (
            record.holder,
            record.renewed,
            record.version,
        ):
            self._observed = record
            self._observed_at = now

    def held_by_other(self, record: LeaseRecord, now: float) -> bool:
        """True while another process holds `record` and it has not expired by our clock."""
        if not record.holder or record.holder == self.identity:
            return False
        return now < self._observed_at + record.duration

    async def try_acquire_or_renew(self) -> bool:
        """One attempt: create, take over or renew the Lease. True when we hold it now."""
        sent = self.clock()
        now_wall = self.wall_clock()
        try:
            record = await self.store.get()
            if record is None:
                mine = LeaseRecord(
                    holder=self.identity,
                    duration=self.timing.lease_duration,
                    acquired=now_wall,
                    renewed=now_wall,
                )
                written = await self.store.create(mine)
            else:
                self._observe(record, sent)
                if self.held_by_other(record, sent):
                    self._set_leading(False)
                    return False
                ours = record.holder == self.identity
                mine = replace(
                    record,
                    holder=self.identity,
                    duration=self.timing.lease_duration,
                    acquired=record.acquired if ours else now_wall,
                    renewed=now_wall,
                    transitions=record.transitions if ours else record.transitions + 1,
                )
                written = await self.store.update(mine)
        except LeaseConflictError:
            self._set_leading(False)
            return False
        self._observe(written, sent)
        self.last_renewed = sent
        if not self.leading:
            logger.info(
                "Became the leader: Lease held by %s (takeover %d)",
                self.identity,
                written.transitions,
            )
        self._set_leading(True)
        return True

    def _set_leading(self, leading: bool) -> None:
        if leading != self.leading:
            self.leading = leading
            self.on_change(leading)

    # --- the loops ----------------------------------------------------------------------------

    async def acquire(self) -> None:
        """Stand by until the Lease is ours: read it every `poll_every` seconds, take it when it
        is missing, released, ours already (a restart of the same pod) or expired."""
        announced = False
        while True:
            try:
                if await self.try_acquire_or_renew():
                    return
            except Exception as exc:  # the API server unreachable: a standby just waits
                logger.warning("Could not read the leader Lease: %s", exc)
            if not announced and self._observed is not None:
                logger.info(
                    "Standing by: the Lease is held by %s; taking over when it expires",
                    self._observed.holder,
                )
                announced = True
            await self.sleep(self.timing.poll_every)

    async def hold(self) -> None:
        """Renew every `renew_every` seconds while leading; return when leadership is lost
        (another process holds the Lease, or no renewal succeeded for `renew_deadline`)."""
        assert self.last_renewed is not None, "hold() follows a successful acquire()"
        while True:
            await self.sleep(self.timing.renew_every)
            left = self.last_renewed + self.timing.renew_deadline - self.clock()
            if left <= 0:
                break
            try:
                renewed = await asyncio.wait_for(self.try_acquire_or_renew(), timeout=left)
            except Exception as exc:  # includes the timeout: counts as a failed renewal
                logger.warning("Could not renew the leader Lease: %r", exc)
                continue
            if not renewed:
                holder = self._observed.holder if self._observed else "?"
                logger.error("Lost the leader Lease to %s", holder)
                self._set_leading(False)
                return
        logger.error(
            "Lost the leader Lease: no renewal for %.0fs (API server unreachable?)",
            self.timing.renew_deadline,
        )
        self._set_leading(False)

    async def release(self) -> bool:
        """Give the Lease up (graceful stop): holder emptied, duration 1 s, so a standby takes
        over at its next poll. True when released; False when it was not ours or the write
        failed (a standby then waits for the expiry)."""
        if not self.leading:
            return False
        self._set_leading(False)
        try:
            record = await self.store.get()
            if record is None or record.holder != self.identity:
                return False
            await self.store.update(
                replace(record, holder="", duration=1.0, renewed=self.wall_clock())
            )
        except Exception as exc:
            logger.warning("Could not release the leader Lease: %r", exc)
            return False
        logger.info("Released the leader Lease")
        return True
