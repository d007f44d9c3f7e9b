"""Waiting for tenants to be Ready, as `make up` does, and saying why when they are not.

`wait_ready` polls each tenant through `fetch` and writes progress: a line whenever a tenant's
phase changes, and a "still waiting" line every `interval` seconds when nothing changed, so a
slow start never looks like a hang. On time-out it raises `TenantsNotReadyError`, whose message
lists every tenant that is not Ready with its conditions (type, status, reason, message); a
tenant the operator has not reconciled yet is said to have no status, and one that is gone is
said to be missing. Clock, sleep and output are parameters, so tests drive it without a cluster.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

Body = Mapping[str, Any] | None

READY = "Ready"
NO_STATUS = "(no status yet)"
MISSING = "(not found)"


class TenantsNotReadyError(TimeoutError):
    """Tenants not Ready within the time-out; the message is `timeout_report`'s."""


def phase_of(body: Body) -> str:
    """The tenant's phase, or a plain word for a tenant without one."""
    if body is None:
        return MISSING
    status = body.get("status") or {}
    return str(status.get("phase") or NO_STATUS)


def _ready_reason(body: Body) -> str:
    for cond in _conditions(body):
        if cond.get("type") == READY and cond.get("reason"):
            return str(cond["reason"])
    return ""


def _conditions(body: Body) -> list[Mapping[str, Any]]:
    status = (body or {}).get("status") or {}
    return [c for c in status.get("conditions") or [] if isinstance(c, Mapping)]


def summary(body: Body) -> str:
    """`Reconciling (Ready: ProxyNotAvailable)`: the phase and the Ready condition's reason."""
    phase, reason = phase_of(body), _ready_reason(body)
    return f"{phase} (Ready: {reason})" if reason and phase != READY else phase


def condition_lines(name: str, body: Body, *, operator_log: str = "") -> list[str]:
    """What a person needs to see of a tenant that is not Ready: each condition's type,
    status, reason and message, or why there are none."""
    where = f" (operator log: {operator_log})" if operator_log else ""
    if body is None:
        return [f"{name}: not found: it was deleted or never applied (kubectl get swg {name})"]
    status = body.get("status") or {}
    if not status:
        return [
            f"{name}: no status yet: the operator has not reconciled it; is the operator "
            f"running?{where}"
        ]
    conditions = _conditions(body)
    head = f"{name}: phase {phase_of(body)}"
    if not conditions:
        return [f"{head}, no conditions yet{where}"]
    lines = [head]
    for cond in conditions:
        reason = cond.get("reason") or "-"
        message = cond.get("message") or "-"
        lines.append(f"  {cond.get('type')}={cond.get('status')} reason={reason}: {message}")
    return lines


def timeout_report(bodies: Mapping[str, Body], timeout: float, *, operator_log: str = "") -> str:
    """The message of a time-out: which tenants are not Ready and their conditions."""
    waiting = [name for name, body in bodies.items() if phase_of(body) != READY]
    lines = [f"tenants not Ready after {timeout:.0f}s: {', '.join(waiting)}"]
    for name in waiting:
        lines.extend("  " + line for line in condition_lines(name, bodies[name], operator_log=""))
    if operator_log:
        lines.append(f"The operator's log: {operator_log}")
    return "\n".join(lines)


class Progress:
    """Writes a line per change of a tenant's summary, and `still waiting` after `interval`
    seconds without one."""

    def __init__(
        self, write: Callable[[str], object], *, interval: float, clock: Callable[[], float]
    ) -> None:
        self._write = write
        self._interval = interval
        self._clock = clock
        self._start = clock()
        self._last_line = self._start
        self._seen: dict[str, str] = {}

    def update(self, summaries: Mapping[str, str]) -> None:
        now = self._clock()
        changed = [name for name, text in summaries.items() if self._seen.get(name) != text]
        for name in changed:
            self._write(f"  {name}: {summaries[name]} ({now - self._start:.0f}s)\n")
        if changed:
            self._last_line = now
        elif now - self._last_line >= self._interval:
            waiting = ", ".join(
                f"{name} {text}" for name, text in summaries.items() if text != READY
            )
            self._write(f"  still waiting ({now - self._start:.0f}s): {waiting}\n")
            self._last_line = now
        self._seen = dict(summaries)


def wait_ready(
    fetch: Callable[[str], Body],
    names: Sequence[str],
    *,
    timeout: float,
    write: Callable[[str], object],
    interval: float = 15.0,
    poll: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], object] = time.sleep,
    operator_log: str = "",
) -> dict[str, Body]:
    """Every tenant of `names` once all are Ready; TenantsNotReadyError after `timeout` s."""
    progress = Progress(write, interval=interval, clock=clock)
    deadline = clock() + timeout
    while True:
        bodies = {name: fetch(name) for name in names}
        progress.update({name: summary(body) for name, body in bodies.items()})
        if all(phase_of(body) == READY for body in bodies.values()):
            return bodies
        if clock() >= deadline:
            raise TenantsNotReadyError(timeout_report(bodies, timeout, operator_log=operator_log))
        sleep(poll)
