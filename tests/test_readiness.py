"""`make up`'s wait for the example tenants (devtools/readiness.py): progress at an interval
while it waits, and on time-out each tenant's conditions, driven by a fake clock and canned
tenants."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from devtools.readiness import (
    TenantsNotReadyError,
    condition_lines,
    summary,
    timeout_report,
    wait_ready,
)


def tenant(phase: str | None, *conditions: dict[str, str]) -> dict[str, Any]:
    body: dict[str, Any] = {"metadata": {"name": "t"}}
    if phase is not None:
        body["status"] = {"phase": phase, "conditions": list(conditions)}
    return body


NOT_READY = tenant(
    "Reconciling",
    {"type": "Ready", "status": "False", "reason": "ProxyNotAvailable", "message": "0/2 proxy"},
    {"type": "Reconciling", "status": "True", "reason": "Rollout", "message": "rolling out"},
)
READY = tenant("Ready", {"type": "Ready", "status": "True", "reason": "Ready", "message": "ok"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def run(
    timeline: Mapping[str, list[dict[str, Any] | None]], *, timeout: float, interval: float = 10
) -> tuple[list[str], dict[str, Any] | Exception]:
    """wait_ready over tenants whose bodies follow `timeline`, one entry per poll (the last one
    repeats); returns the lines written and the result or the exception."""
    clock, lines, polls = Clock(), [], {name: 0 for name in timeline}

    def fetch(name: str) -> dict[str, Any] | None:
        bodies = timeline[name]
        body = bodies[min(polls[name], len(bodies) - 1)]
        polls[name] += 1
        return body

    try:
        result: dict[str, Any] | Exception = wait_ready(
            fetch, list(timeline), timeout=timeout, write=lines.append, interval=interval,
            poll=2, clock=clock, sleep=clock.sleep, operator_log="kubectl logs deploy/op",
        )  # fmt: skip
    except TenantsNotReadyError as err:
        result = err
    return lines, result


def test_progress_lines_at_the_interval_while_nothing_changes() -> None:
    lines, result = run({"a": [tenant(None)] * 11 + [READY]}, timeout=60, interval=10)
    assert isinstance(result, dict)
    assert lines == [
        "  a: (no status yet) (0s)\n",
        "  still waiting (10s): a (no status yet)\n",
        "  still waiting (20s): a (no status yet)\n",
        "  a: Ready (22s)\n",
    ]


def test_a_change_is_written_at_once_and_restarts_the_interval() -> None:
    lines, _ = run({"a": [tenant(None), tenant(None), NOT_READY, NOT_READY, READY]}, timeout=60)
    assert lines == [
        "  a: (no status yet) (0s)\n",
        "  a: Reconciling (Ready: ProxyNotAvailable) (4s)\n",
        "  a: Ready (8s)\n",
    ]


def test_still_waiting_names_only_the_tenants_not_ready() -> None:
    lines, _ = run({"a": [READY], "b": [NOT_READY] * 6 + [READY]}, timeout=60, interval=10)
    assert "  still waiting (10s): b Reconciling (Ready: ProxyNotAvailable)\n" in lines
    assert not any("still waiting" in line and " a " in line for line in lines)


def test_time_out_reports_every_condition_of_the_tenants_not_ready() -> None:
    lines, result = run({"ok": [READY], "slow": [NOT_READY]}, timeout=30)
    assert isinstance(result, TenantsNotReadyError)
    assert str(result) == (
        "tenants not Ready after 30s: slow\n"
        "  slow: phase Reconciling\n"
        "    Ready=False reason=ProxyNotAvailable: 0/2 proxy\n"
        "    Reconciling=True reason=Rollout: rolling out\n"
        "The operator's log: kubectl logs deploy/op"
    )
    assert "None" not in str(result)
    assert any("still waiting" in line for line in lines)


def test_time_out_on_a_tenant_with_no_status_says_so_plainly() -> None:
    _, result = run({"new": [tenant(None)]}, timeout=10)
    assert isinstance(result, TenantsNotReadyError)
    assert "new: no status yet: the operator has not reconciled it" in str(result)
    assert "None" not in str(result)


def test_condition_lines_of_missing_and_condition_less_tenants() -> None:
    assert condition_lines("gone", None) == [
        "gone: not found: it was deleted or never applied (kubectl get swg gone)"
    ]
    assert condition_lines("early", tenant("Reconciling"), operator_log="L") == [
        "early: phase Reconciling, no conditions yet (operator log: L)"
    ]
    partial = tenant("Stalled", {"type": "Stalled", "status": "True"})
    assert condition_lines("p", partial)[1] == "  Stalled=True reason=-: -"


def test_summary_and_report_of_a_ready_tenant() -> None:
    assert summary(READY) == "Ready"
    assert summary(tenant(None)) == "(no status yet)"
    assert timeout_report({"a": READY, "b": None}, 5).splitlines()[0] == (
        "tenants not Ready after 5s: b"
    )
