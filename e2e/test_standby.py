"""Two operator processes on one leader Lease: exactly one reconciles, the other stands by (not
ready, `swg_operator_leader` 0, no request but reading the Lease), takes over within 15 s of
the leader's SIGKILL, and a graceful stop hands over at once.

The takeover is measured with the API server's timestamps: from the tenant change made right
after the kill (its managedFields time) to the first status write that reports it (the
operator's managedFields entry on the status subresource), both of the API server's clock,
to the second. Polling only makes the figure larger, never smaller.
"""

from __future__ import annotations

import datetime
import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from e2e.cluster import Cluster, unique_name, wait_until
from e2e.operator_process import (
    LOG_DIR,
    OperatorProcess,
    tenant_manifest,
    wait_phase,
)

pytestmark = pytest.mark.cluster

OPERATOR_NS = "swg-system"
TAKEOVER_LIMIT = 15.0  # seconds from the leader's SIGKILL to a change reconciled (issue 13)


def _ready(op: OperatorProcess) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{op.port}/readyz", timeout=2) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def _leader(op: OperatorProcess) -> float:
    return op.metrics().get("swg_operator_leader", -1.0)


def _requests(op: OperatorProcess) -> float:
    """Requests of the operator's adapter and its reconciles: none in a standby."""
    return sum(
        v
        for k, v in op.metrics().items()
        if k.startswith(("swg_operator_api_requests_total{", "swg_operator_reconciles_total{"))
    )


def _lease(cluster: Cluster, name: str) -> dict[str, Any]:
    return dict(cluster.kubectl_json("get", "lease", name, "-n", OPERATOR_NS))


def _time(value: str) -> datetime.datetime:
    return datetime.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def _changed_at(body: dict[str, Any], manager: str) -> datetime.datetime:
    """When `manager` last wrote the tenant's spec (API server clock)."""
    times = [
        _time(entry["time"])
        for entry in body["metadata"]["managedFields"]
        if entry["manager"] == manager and not entry.get("subresource")
    ]
    return max(times)


def _status_written_at(body: dict[str, Any]) -> datetime.datetime:
    """When the status was last written (API server clock): the status subresource entry."""
    times = [
        _time(entry["time"])
        for entry in body["metadata"]["managedFields"]
        if entry.get("subresource") == "status"
    ]
    return max(times)


def _start(cluster: Cluster, lease: str, identity: str, log: str) -> OperatorProcess:
    return OperatorProcess(
        cluster,
        log_path=LOG_DIR / log,
        operator_namespace=OPERATOR_NS,
        args=(f"--lease={lease}", f"--lease-identity={identity}", "--resync-seconds=0"),
    ).start()


@pytest.mark.timeout(300)
def test_a_standby_takes_over_within_15_seconds_of_the_leaders_sigkill(
    prepared: Cluster, tenant_name: str
) -> None:
    cluster = prepared
    lease = unique_name("swg-leader")
    first = _start(cluster, lease, "op-first", "standby-first.log")
    second: OperatorProcess | None = None
    third: OperatorProcess | None = None
    try:
        wait_until(lambda: _leader(first) == 1.0, timeout=30, what="the first operator leads")
        second = _start(cluster, lease, "op-second", "standby-second.log")
        standby = second
        wait_until(
            lambda: "Standing by" in standby.log_text(), timeout=30, what="the second stands by"
        )
        assert _lease(cluster, lease)["spec"]["holderIdentity"] == "op-first"
        wait_until(lambda: _ready(first) == 200, timeout=30, what="the leader is ready")
        assert _ready(second) == 503
        assert _leader(second) == 0.0

        # Exactly one reconciles: the tenant is handled, by the first only.
        cluster.apply(tenant_manifest(tenant_name))
        wait_phase(cluster, tenant_name, "Ready", generation=1, timeout=120)
        assert _requests(first) > 0
        assert _requests(second) == 0, "the standby made requests besides reading the Lease"
        assert tenant_name not in second.log_text()

        # SIGKILL the leader, change the tenant at once: the standby must reconcile it.
        first.kill()
        cluster.kubectl(
            "patch",
            "swg",
            tenant_name,
            "--type=merge",
            "--field-manager=standby-test",
            "-p",
            json.dumps({"spec": {"clients": {"allowedCIDRs": ["198.51.100.0/24"]}}}),
        )

        def reconciled() -> dict[str, Any] | None:
            body = cluster.kubectl_json("get", "swg", tenant_name, "--show-managed-fields")
            status = (body or {}).get("status") or {}
            return body if status.get("observedGeneration") == 2 else None

        body = wait_until(
            reconciled, timeout=TAKEOVER_LIMIT + 30, what="the change reconciled by the standby"
        )
        killed_at = _changed_at(body, "standby-test")
        handled_at = _status_written_at(body)
        takeover = (handled_at - killed_at).total_seconds()
        held = _lease(cluster, lease)["spec"]
        print(
            f"takeover: change at {killed_at:%H:%M:%S} (right after the SIGKILL), reconciled "
            f"at {handled_at:%H:%M:%S}: {takeover:.0f} s by the API server's clock; Lease "
            f"acquired {held.get('acquireTime')}, transitions {held.get('leaseTransitions')}"
        )
        assert held["holderIdentity"] == "op-second"
        assert takeover <= TAKEOVER_LIMIT, f"took {takeover:.0f} s"
        assert _leader(second) == 1.0
        wait_until(lambda: _ready(second) == 200, timeout=30, what="the new leader is ready")
        assert "Became the leader" in second.log_text()

        # A graceful stop releases the Lease: a third process takes it at its next poll.
        third = _start(cluster, lease, "op-third", "standby-third.log")
        later = third
        wait_until(lambda: "Standing by" in later.log_text(), timeout=30, what="third stands by")
        second.stop()
        assert "Released the leader Lease" in second.log_text()
        wait_until(lambda: _leader(later) == 1.0, timeout=10, what="the third leads at once")
        assert _lease(cluster, lease)["spec"]["holderIdentity"] == "op-third"
    finally:
        for op in (first, second, third):
            if op is not None:
                op.stop()
