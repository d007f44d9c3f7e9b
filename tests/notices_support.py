"""Shared parts of the outbox tests against the real SMTP relay of `devtools.smtp_relay` (its
fixtures, `relay_cert`, `relay_port` and `relay`, are in conftest.py): the notices' ConfigMap
lives in the in-memory API server of `fakes`, which outlives the "operator" (a mailer and a
pass): a restart is a new mailer and a new pass over what the API server stored."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Mapping
from typing import Any

from devtools.smtp_relay import HOST, RelayCertificate

from fakes import FakeKube
from swg_operator.kube import KubeApiError, ResourceKind
from swg_operator.notices import Notice, NoticeKind, RetryPolicy, read, tenant_box
from swg_operator.notices.mail import Credentials, Relay, SmtpMailer
from swg_operator.notices.model import format_time

NOW = datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.UTC)
USER, PASSWORD = "swg-operator", "s3cret-relay-password"
POLICY = RetryPolicy(max_tries=3, first_wait=60, max_wait=600)
CONTACTS = ("ops@acme.example", "security@acme.example")


def mailer(cert: RelayCertificate, port: int, *, password: str = PASSWORD) -> SmtpMailer:
    """A new operator process's mailer."""
    relay = Relay(host=HOST, port=port, sender="swg@provider.example", timeout_seconds=5)
    return SmtpMailer(relay, credentials=Credentials(USER, password), tls=cert.client_context())


class Kube(FakeKube):
    """FakeKube whose merge patch honours a `metadata.resourceVersion` precondition (409), as
    the API server does."""

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        expected = (patch.get("metadata") or {}).get("resourceVersion")
        stored = self.objects.get((kind.api_version, kind.kind, namespace, name))
        current = None if stored is None else stored["metadata"].get("resourceVersion")
        if expected is not None and current is not None and current != expected:
            raise KubeApiError(409, "the object has been modified", reason="Conflict")
        return await super().patch(kind, name, patch, namespace=namespace)


def cluster(kube: Kube | None = None) -> Kube:
    """`kube` (a new `Kube` by default) with the tenant's namespace."""
    kube = kube or Kube(now=NOW)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-acme"}})
    return kube


def change_notice(key: str = "generation-2") -> Notice:
    return Notice(
        kind=NoticeKind.CHANGE,
        tenant="acme",
        service_code="SWG-0001",
        time=format_time(NOW),
        subject="Your gateway's settings changed",
        body=("Sizing: 50 endpoints, 20 requests/s",),
        key=key,
    )


def run(coro: Any) -> Any:
    return asyncio.run(coro)


async def deliveries(kube: Kube) -> dict[str, Any]:
    history, _ = await read(kube, tenant_box("acme"))
    return {d.recipient: d for e in history.entries for d in e.deliveries}


def later(minutes: float) -> datetime.datetime:
    return NOW + datetime.timedelta(minutes=minutes)
