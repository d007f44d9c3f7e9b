"""The scenario of the chart's RBAC tests (test_chart_rbac.py): the reconcile loop, the purge
and the outbox run end to end against `rbac_support.RecordingKube`, so that every request the
operator's code makes is noted (`recorded`), and what the code needs of the chart in all
(`code_needs`)."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

from fakes import FakeKube, bind_log_volume, make_available
from rbac_support import (
    NOW,
    SETTINGS,
    Need,
    RecordingKube,
    chart_lease_name,
    group_of,
    kopf_needs,
    lease_needs,
)
from reconcile_support import stored_tenant
from swg_operator.api import SecureWebGatewaySpec
from swg_operator.kube.kinds import OWNED_KINDS
from swg_operator.naming import legacy_reader_role_name
from swg_operator.notices import deliver_pending
from swg_operator.receipts import signing_key
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge
from swg_operator.reconcile.region import region_problems


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return stored_tenant(name, uid=f"{name}-uid-0001", **spec)


def _fresh(kube: FakeKube, name: str) -> dict[str, Any]:
    found = kube.find("SecureWebGateway", name)
    assert found is not None
    return copy.deepcopy(found)


async def _lifecycle(kube: RecordingKube) -> None:
    """Every path of the loop: create, available, spec changes with pruning, admins, a region, HTTPS
    inspection with a generated CA and with the customer's, custom signatures, suspension,
    cancellation and purge (of a log volume of a `Retain` storage class); an invalid spec; an
    upgrade from the version that wrote a Role for the admins."""
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    # As the leader starts: the receipts' signing key (created, then read back by name).
    ctx.receipt_key = await signing_key(
        kube,
        secret=SETTINGS.receipts.signing_key_secret,
        namespace=SETTINGS.operator_namespace,
    )
    _legacy_tenant(kube, "old")
    await reconcile(_fresh(kube, "old"), ctx=ctx)
    assert kube.find("Role", legacy_reader_role_name(), "swg-old") is None
    bad = tenant("old")
    bad["spec"]["sizing"] = {"endpoints": 0, "requestsPerSecond": 1}
    bad["metadata"]["generation"] = 2
    kube.put(bad)
    await reconcile(_fresh(kube, "old"), ctx=ctx)
    kube.put(
        tenant(
            "byo",
            antivirus={"customSignatures": {"name": "signatures"}},
            options={"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}},
            access={
                "hostname": "proxy.byo.example",
                "tls": {"enabled": True, "certificateSecret": {"name": "own-listener"}},
            },
            logs={"storage": {"storageClassName": "no-such-class"}},
        )
    )
    await reconcile(_fresh(kube, "byo"), ctx=ctx)  # its claim does not bind: class looked up
    # Pinned to a region: its Ready nodes and the default StorageClass are listed.
    kube.put(tenant("pinned", placement={"region": "ap-northeast-1"}))
    await reconcile(_fresh(kube, "pinned"), ctx=ctx)
    # Its claim not stored (refused by the quota): the default StorageClass is looked for.
    pinned = SecureWebGatewaySpec.model_validate(_fresh(kube, "pinned")["spec"])
    await region_problems(kube, pinned, [], namespace="swg-pinned")
    name = "acme"
    kube.put(
        tenant(
            name,
            admins=[{"kind": "User", "name": "alice@example.com"}],
            contacts=["noc@example.com"],
            options={"httpsInspection": {"enabled": True}},
            access={"hostname": "proxy.acme.example", "tls": {"enabled": True}},
            cancellation={"purgeAfterDays": 0},
        )
    )
    await reconcile(_fresh(kube, name), ctx=ctx)
    make_available(kube)
    await reconcile(_fresh(kube, name), ctx=ctx)
    body = _fresh(kube, name)
    body["spec"]["antivirus"] = {"enabled": False}
    body["spec"]["admins"] = []
    body["spec"]["suspended"] = True
    body["metadata"]["generation"] = 2
    kube.put(body)
    await reconcile(_fresh(kube, name), ctx=ctx)
    bind_log_volume(kube, f"swg-{name}", policy="Retain")
    body = _fresh(kube, name)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    body["metadata"]["finalizers"] = ["swg.dev/purge"]
    kube.put(body)
    for _ in range(10):
        try:
            await cancel_and_purge(_fresh(kube, name), ctx=ctx)
        except NotYet:
            continue
        break
    # The outbox: every notices ConfigMap listed, its deliveries written, a settled purged box
    # deleted (two passes: the first mails, the second finds the box settled).
    for _ in range(2):
        await deliver_pending(kube, AcceptingMailer(), now=NOW)  # type: ignore[arg-type]


class AcceptingMailer:
    sender = "swg@example.net"

    async def send(self, message: Any) -> None:
        return None


def _legacy_tenant(kube: FakeKube, name: str) -> None:
    """A tenant as an earlier version left it: its namespace (the tenant's labels, no UID
    stamp; the tenant's status names it) with a Role for the admins."""
    body = tenant(name, admins=[{"kind": "User", "name": "carol@example.com"}])
    body["status"] = {"observedGeneration": 1, "phase": "Ready", "namespace": f"swg-{name}"}
    kube.put(body)
    labels = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": name}
    namespace = f"swg-{name}"
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}
    )
    kube.put(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-reader", "namespace": namespace, "labels": labels},
            "rules": [],
        }
    )


def recorded() -> RecordingKube:
    """The in-memory API server after the scenario, with what it was asked for."""
    kube = RecordingKube(SETTINGS.operator_namespace, now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    asyncio.run(_lifecycle(kube))
    return kube


def code_needs() -> set[Need]:
    needs = set(recorded().needs)
    # observe() lists every owned kind and the prune deletes whatever labelled object the
    # desired state does not contain, of any owned kind (an object left by an older version, or
    # labelled by hand): list and delete for each, whether or not this scenario met one.
    for kind in OWNED_KINDS:
        needs.add(Need(group_of(kind), kind.plural, "list"))
        needs.add(Need(group_of(kind), kind.plural, "delete"))
    needs |= kopf_needs()
    needs |= lease_needs(chart_lease_name())
    return needs
