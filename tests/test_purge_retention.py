"""Retention and deletion promises of the purge: a legal hold holds whatever else the spec says,
the deadline cannot be brought forward by editing the spec after the deletion, the log volume's
data goes even from a `Retain` storage class (or the tenant says which volume is left), and the
receipt that outlives the tenant names no person."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
from typing import Any

import pytest

from fakes import FakeKube
from reconcile_support import fake_cluster, stored_tenant
from swg_operator.api import OperatorSettings
from swg_operator.kube.kinds import TENANT
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge

SETTINGS = OperatorSettings(operator_namespace="swg-system")
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
DELETED = "2026-01-01T12:00:00Z"
LAST_HANDLED = "swg.dev/last-handled-configuration"


def tenant(**spec: Any) -> dict[str, Any]:
    return stored_tenant(**spec)


def setup(body: dict[str, Any]) -> tuple[FakeKube, Context]:
    kube, ctx = fake_cluster(body, SETTINGS, NOW)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    return kube, ctx


def fresh(kube: FakeKube) -> dict[str, Any]:
    found = kube.find("SecureWebGateway", "acme")
    assert found is not None
    return copy.deepcopy(found)


def store(kube: FakeKube, body: dict[str, Any]) -> None:
    kube.objects[(TENANT.api_version, TENANT.kind, None, "acme")] = copy.deepcopy(body)


def delete(kube: FakeKube, **spec_changes: Any) -> dict[str, Any]:
    """`kubectl delete` (and, with `spec_changes`, an edit of the spec the operator has not
    handled yet: the status keeps the purge days as the operator last handled them)."""
    body = fresh(kube)
    body["spec"].update(spec_changes)
    body["metadata"]["deletionTimestamp"] = DELETED
    store(kube, body)
    return body


def purge_until_done(kube: FakeKube, ctx: Context, attempts: int = 6) -> Any:
    for _ in range(attempts):
        try:
            return asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
        except NotYet:
            continue
    raise AssertionError("the purge did not complete")


def after(days: float) -> datetime.datetime:
    return NOW + datetime.timedelta(days=days)


# --- 7. legal hold ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cancellation",
    [
        # Held, and another field the operator's validation refuses.
        {"purgeAfterDays": 0, "legalHold": True, "legalHoldReason": "x" * 300},
        # A hold that cannot be read is a hold.
        {"purgeAfterDays": 0, "legalHold": "maybe"},
    ],
    ids=["invalid-spec", "unreadable-hold"],
)
def test_a_legal_hold_holds_whatever_else_the_spec_says(cancellation: dict[str, Any]) -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 0}))
    body = delete(kube)
    body["spec"]["cancellation"] = cancellation
    store(kube, body)
    kube.server_now = after(1)
    for _ in range(3):
        with pytest.raises(NotYet, match="LegalHold"):
            asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert kube.find("Namespace", "swg-acme") is not None
    assert fresh(kube)["status"]["cancellation"]["legalHold"] is True


def test_the_tenant_is_read_again_just_before_the_purge() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 0}))
    delete(kube)
    stale = fresh(kube)  # what the handler was called with
    held = fresh(kube)
    held["spec"]["cancellation"] = {"purgeAfterDays": 0, "legalHold": True}
    store(kube, held)  # the hold arrived since
    kube.server_now = after(1)
    with pytest.raises(NotYet, match="LegalHold"):
        asyncio.run(cancel_and_purge(stale, ctx=ctx))
    assert kube.find("Namespace", "swg-acme") is not None
    assert kube.find("PersistentVolumeClaim", "logstore-data", "swg-acme") is not None


def test_a_legal_hold_reaches_the_log_store_retention() -> None:
    kube, _ = setup(tenant(cancellation={"legalHold": True}))
    store_env = kube.find("Deployment", "logstore", "swg-acme")
    assert store_env is not None
    (container,) = [
        c for c in store_env["spec"]["template"]["spec"]["containers"] if c["name"] == "logstore"
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SWG_LOG_LEGAL_HOLD"] == "true"


# --- 9. the deadline ---------------------------------------------------------------------------


def test_editing_purge_after_days_after_the_deletion_does_not_bring_the_purge_forward() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 30}))
    delete(kube, cancellation={"purgeAfterDays": 0})
    kube.server_now = after(1)
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["cancellation"]["purgeAt"] == "2026-01-31T12:00:00Z"
    assert kube.find("Namespace", "swg-acme") is not None


def test_a_deadline_is_never_shortened() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 30}))
    delete(kube)
    kube.server_now = after(1)
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    body = fresh(kube)
    body["spec"]["cancellation"] = {"purgeAfterDays": 0}
    body["status"]["purgeAfterDays"] = 0
    store(kube, body)
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["cancellation"]["purgeAt"] == "2026-01-31T12:00:00Z"


def test_the_purge_days_handled_are_kept_in_status_and_not_moved_by_the_deletion() -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 30}))
    assert fresh(kube)["status"]["purgeAfterDays"] == 30
    delete(kube, cancellation={"purgeAfterDays": 0})
    kube.server_now = after(1)
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["purgeAfterDays"] == 30


def deadline_a_day_later(kube: FakeKube, ctx: Context, body: dict[str, Any]) -> str:
    """Store `body` (being deleted), look a day later: not due yet; the purge deadline set."""
    store(kube, body)
    kube.server_now = after(1)
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    purge_at: str = fresh(kube)["status"]["cancellation"]["purgeAt"]
    return purge_at


def test_a_tenant_handled_by_an_earlier_version_keeps_its_last_handled_days() -> None:
    """Before the status kept them, kopf's last-handled annotation did: a tenant deleted
    before this version rewrote its status still counts the days it had then."""
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 30}))
    body = fresh(kube)
    del body["status"]["purgeAfterDays"]
    handled = {"spec": copy.deepcopy(body["spec"])}
    body["metadata"].setdefault("annotations", {})[LAST_HANDLED] = json.dumps(handled)
    body["spec"]["cancellation"] = {"purgeAfterDays": 0}
    body["metadata"]["deletionTimestamp"] = DELETED
    assert deadline_a_day_later(kube, ctx, body) == "2026-01-31T12:00:00Z"


@pytest.mark.parametrize("kept", [-1, 91, "30", True], ids=["negative", "over", "text", "bool"])
def test_purge_days_in_status_that_cannot_be_read_count_as_the_longest(kept: Any) -> None:
    kube, ctx = setup(tenant(cancellation={"purgeAfterDays": 0}))
    body = delete(kube)
    body["status"]["purgeAfterDays"] = kept
    assert deadline_a_day_later(kube, ctx, body) == "2026-04-01T12:00:00Z"


def test_a_legal_hold_stops_the_log_store_expiring_days(tmp_path: Any) -> None:
    from swg_logstore.__main__ import build_parser
    from swg_logstore.batch import Batch
    from swg_logstore.formats import LogType
    from swg_logstore.store import LogStore, StoreConfig

    start = datetime.datetime(2026, 1, 1, 10, 0, tzinfo=datetime.UTC)
    record = {
        "ts": "2026-01-01T10:00:00.000Z",
        "type": "access",
        "id": "r1:access",
        "requestId": "r1",
        "url": "http://example.test/",
    }
    held = StoreConfig(
        root=tmp_path, tenant="acme", service_code="SWG-1", retention_days=1, legal_hold=True
    )
    store_ = LogStore(held)
    store_.ingest(Batch(stream="s", to=1, records=[(1, record)]), now=start)
    store_.maintain(now=start + datetime.timedelta(days=30))
    assert store_.days(LogType.ACCESS) == [datetime.date(2026, 1, 1)]
    lifted = LogStore(
        StoreConfig(root=tmp_path, tenant="acme", service_code="SWG-1", retention_days=1)
    )
    lifted.maintain(now=start + datetime.timedelta(days=30))
    assert lifted.days(LogType.ACCESS) == []
    args = build_parser().parse_args(["serve", "--tenant", "t", "--service-code", "c"])
    assert args.legal_hold is False
    args = build_parser().parse_args(
        ["serve", "--tenant", "t", "--service-code", "c", "--legal-hold"]
    )
    assert args.legal_hold is True
