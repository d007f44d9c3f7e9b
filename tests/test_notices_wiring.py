"""The reconcile and the purge record their notices: a change per generation, a maintenance
notice per operator upgrade, an incident when the tenant leaves Ready and its resolution, the
cancellation and the purge (with the signed receipt), each once however often it runs."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from fakes import FakeKube, make_available
from swg_operator.api import OperatorSettings, Phase, SecureWebGatewayStatus
from swg_operator.api.settings import MailSettings
from swg_operator.notices import NoticeKind, deliver_pending, purged_box, read, tenant_box
from swg_operator.receipts import verify_receipt
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.notices import VERSION_ANNOTATION
from swg_operator.reconcile.purge import receipt_name
from swg_operator.reconcile.status import never_ready
from test_purge_retention import (
    NOW,
    SETTINGS,
    after,
    delete,
    fresh,
    purge_until_done,
    store,
    tenant,
)

CONTACTS = ["noc@example.com", "ciso@example.com"]
# A relay is set: the purge keeps its notices in the operator's namespace until they are mailed.
MAIL_SETTINGS = SETTINGS.model_copy(update={"mail": MailSettings(host="relay.example.net")})


def setup(*, settings: OperatorSettings = MAIL_SETTINGS, **spec: Any) -> tuple[FakeKube, Context]:
    kube = FakeKube(now=NOW)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-system"}})
    kube.put(tenant(contacts=CONTACTS, **spec))
    ctx = Context(kube=kube, settings=settings, clock=lambda: NOW)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    return kube, ctx


def kinds(kube: FakeKube, *, purged: bool = False) -> list[str]:
    box = (
        purged_box("acme", operator_namespace="swg-system", service_code="SWG-0001")
        if purged
        else tenant_box("acme", service_code="SWG-0001")
    )
    history, _ = asyncio.run(read(kube, box))  # type: ignore[arg-type]
    return [str(e.notice.kind) for e in history.entries]


def subjects(kube: FakeKube) -> list[str]:
    history, _ = asyncio.run(read(kube, tenant_box("acme")))  # type: ignore[arg-type]
    return [e.notice.subject for e in history.entries]


def test_a_new_tenant_gets_one_change_notice_with_a_mail_to_each_contact() -> None:
    kube, ctx = setup()
    asyncio.run(reconcile(fresh(kube), ctx=ctx))  # the same generation again: nothing new
    history, _ = asyncio.run(read(kube, tenant_box("acme")))  # type: ignore[arg-type]
    assert [e.notice.kind for e in history.entries] == [NoticeKind.CHANGE]
    entry = history.entries[0]
    assert "generation 1" in entry.notice.subject
    assert sorted(d.recipient for d in entry.deliveries) == sorted(CONTACTS)
    assert any(line.startswith("Created ") for line in entry.notice.body)


def test_each_new_generation_is_one_change_notice() -> None:
    kube, ctx = setup()
    body = fresh(kube)
    body["spec"]["antivirus"] = {"enabled": False}
    body["metadata"]["generation"] = 2
    store(kube, body)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert kinds(kube) == ["change", "change"]
    assert "generation 2" in subjects(kube)[1]


def test_an_operator_upgrade_is_one_maintenance_notice() -> None:
    kube, ctx = setup()
    box = kube.find("ConfigMap", "tenant-notices", "swg-acme")
    assert box is not None
    assert box["metadata"]["annotations"][VERSION_ANNOTATION] == ctx.version
    for _ in range(2):  # two restarts of the new version: one notice
        upgraded = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW, version="9.9.9")
        asyncio.run(reconcile(fresh(kube), ctx=upgraded))
        asyncio.run(reconcile(fresh(kube), ctx=upgraded))
    assert kinds(kube) == ["change", "maintenance"]
    assert f"from {ctx.version} to 9.9.9" in subjects(kube)[1]


def test_leaving_ready_is_an_incident_and_coming_back_resolves_it() -> None:
    kube, ctx = setup()
    make_available(kube)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["phase"] == "Ready"
    assert kinds(kube) == ["change"]
    # The proxy's Deployment loses its available replicas.
    for key, obj in list(kube.objects.items()):
        if key[1] == "Deployment":
            obj["status"] = {"observedGeneration": obj["metadata"].get("generation", 1)}
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert kinds(kube) == ["change", "incident"]
    assert subjects(kube)[1].startswith("Incident: ")
    make_available(kube)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert kinds(kube) == ["change", "incident", "incident"]
    assert subjects(kube)[2].startswith("Resolved: ")


def test_a_new_generation_that_leaves_ready_is_an_incident_resolved_once_ready() -> None:
    """Provisioning again (a new generation) after Ready: the history is read for the incident,
    unlike a first generation's Provisioning, which was never Ready (`never_ready`)."""
    kube, ctx = setup()
    make_available(kube)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    body = fresh(kube)
    body["spec"]["antivirus"] = {"enabled": False}
    body["metadata"]["generation"] = 2
    store(kube, body)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))  # the new Deployments are not available yet
    assert fresh(kube)["status"]["phase"] == "Provisioning"
    assert kinds(kube) == ["change", "change", "incident"]
    make_available(kube)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["phase"] == "Ready"
    assert kinds(kube) == ["change", "change", "incident", "incident"]
    assert subjects(kube)[3].startswith("Resolved: ")


def test_never_ready_is_only_a_first_generation_still_provisioning() -> None:
    def status(phase: Phase, generation: int) -> SecureWebGatewayStatus:
        return SecureWebGatewayStatus(phase=phase, observed_generation=generation)

    assert never_ready(status(Phase.PROVISIONING, 1))
    assert not never_ready(None)
    assert not never_ready(status(Phase.PROVISIONING, 2))
    for phase in set(Phase) - {Phase.PROVISIONING}:
        assert not never_ready(status(phase, 1)), phase


def test_cancellation_and_purge_notices_with_a_signed_receipt() -> None:
    kube, ctx = setup(cancellation={"purgeAfterDays": 0})
    ctx.receipt_key = Ed25519PrivateKey.generate()
    delete(kube)
    kube.server_now = after(1)
    purge_until_done(kube, ctx)
    # The namespace (and its history) is gone; the purge notice waits in the operator's.
    assert kube.find("ConfigMap", "tenant-notices", "swg-acme") is None
    # The cancellation's mail was not sent yet: it went along.
    assert kinds(kube, purged=True) == ["change", "cancellation", "purge"]
    receipt = kube.find("ConfigMap", receipt_name(fresh(kube)), "swg-system")
    assert receipt is not None
    assert verify_receipt(receipt["data"], ctx.receipt_key.public_key()).valid
    box = purged_box("acme", operator_namespace="swg-system")
    history, _ = asyncio.run(read(kube, box))  # type: ignore[arg-type]
    ((name, text),) = history.entries[-1].notice.attachments
    assert name == f"{receipt_name(fresh(kube))}.json"
    attached = json.loads(text)
    assert verify_receipt(attached, ctx.receipt_key.public_key()).valid
    assert attached["state"] == "Completed"


def test_without_a_relay_no_notice_outlives_the_tenant_namespace() -> None:
    kube, ctx = setup(settings=SETTINGS, cancellation={"purgeAfterDays": 0})
    ctx.receipt_key = Ed25519PrivateKey.generate()
    assert kinds(kube) == ["change"]  # recorded in the tenant namespace all the same
    delete(kube)
    kube.server_now = after(1)
    purge_until_done(kube, ctx)
    assert kube.find("ConfigMap", "tenant-notices", "swg-acme") is None
    # No outbox would ever mail and delete a purged box: none is made, no contact is kept.
    assert kube.find("ConfigMap", "purged-notices-acme", "swg-system") is None
    assert kube.find("ConfigMap", receipt_name(fresh(kube)), "swg-system") is not None


def test_a_cancellation_before_the_deadline_is_one_notice_in_the_tenant_namespace() -> None:
    kube, ctx = setup(cancellation={"purgeAfterDays": 30})
    delete(kube)
    for _ in range(3):
        with contextlib.suppress(AssertionError):  # not due for 30 days
            purge_until_done(kube, ctx, attempts=1)
    assert kinds(kube) == ["change", "cancellation"]
    assert "purged at 2026-01-31" in subjects(kube)[1]


class Outbox:
    sender = "swg@example.net"

    def __init__(self) -> None:
        self.sent: list[str] = []

    async def send(self, message: Any) -> None:
        self.sent.append(f"{message['To']} {message['Subject']}")


def test_the_outbox_mails_each_notice_once_and_deletes_the_settled_purged_box() -> None:
    kube, ctx = setup(cancellation={"purgeAfterDays": 0})
    outbox = Outbox()
    asyncio.run(deliver_pending(kube, outbox, now=NOW))  # type: ignore[arg-type]
    assert len(outbox.sent) == 2  # the change, to each contact
    delete(kube)
    kube.server_now = after(1)
    purge_until_done(kube, ctx)
    for _ in range(3):  # the restarts' passes: nothing again
        asyncio.run(deliver_pending(kube, outbox, now=after(1)))  # type: ignore[arg-type]
    assert len(outbox.sent) == 6  # and the cancellation and the purge, to each contact
    assert sum("Cancelled" in s for s in outbox.sent) == 2
    assert sum("Purged" in s for s in outbox.sent) == 2
    assert kube.find("ConfigMap", "purged-notices-acme", "swg-system") is None
