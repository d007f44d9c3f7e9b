"""Notices on the real API server: recorded into a tenant namespace's ConfigMap through the
operator's own adapter (`kube.http.HttpKubeApi`), their mail state moved on by the outbox with
resourceVersion-checked merge patches, and read back with `kubectl swg notices` by a
ServiceAccount holding only the tenant admins' ClusterRole (bound in its tenant's namespace, as
the operator binds it); the admin of another tenant is refused.

The mailer here records what it is given (the relay itself is tested in
tests/test_notices_smtp.py and tests/test_notices_once.py against a real SMTP server); what this
tier proves is the API server's part: the writes, the 409 on a stale resourceVersion, and the
admins' RBAC.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import Callable, Iterator
from email.message import EmailMessage
from typing import Any

import kopf
import pytest

from e2e.cluster import Cluster, unique_name
from e2e.operator_process import install_tenant_reader
from swg_operator.commands.kubectl import main as kubectl_main
from swg_operator.kube import KubeApiError
from swg_operator.kube.http import HttpKubeApi
from swg_operator.kube.kinds import CONFIG_MAP
from swg_operator.naming import (
    admin_binding_name,
    notices_config_map_name,
    tenant_namespace,
    tenant_reader_cluster_role_name,
)
from swg_operator.notices import (
    MailState,
    Notice,
    NoticeKind,
    deliver_pending,
    read,
    record,
    tenant_box,
)
from swg_operator.notices.model import format_time

pytestmark = pytest.mark.cluster


class RecordingMailer:
    sender = "noc@provider.example"

    def __init__(self) -> None:
        self.sent: list[EmailMessage] = []

    async def send(self, message: EmailMessage) -> None:
        self.sent.append(message)


def _admin_binding(namespace: str, user: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": admin_binding_name("User", user), "namespace": namespace},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": tenant_reader_cluster_role_name(),
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }


@pytest.fixture
def tenants(
    cluster: Cluster,
    make_namespace: Callable[..., str],
    as_service_account: Callable[..., Cluster],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[dict[str, Any]]:
    install_tenant_reader(cluster)
    identities = make_namespace("notices-admins")
    found: dict[str, Any] = {
        "alice": as_service_account(identities, "alice"),
        "bob": as_service_account(identities, "bob"),
    }
    for key, admin in (("a", "alice"), ("b", "bob")):
        tenant = unique_name(f"notices-{key}")
        namespace = tenant_namespace(tenant)
        cluster.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            _admin_binding(namespace, f"system:serviceaccount:{identities}:{admin}"),
        )
        found[key] = tenant
    monkeypatch.setenv("KUBECONFIG", str(cluster.kubeconfig))
    yield found
    for key in ("a", "b"):
        cluster.kubectl(
            "delete", "namespace", tenant_namespace(found[key]), "--wait=false", check=False
        )


def _notice(tenant: str, kind: NoticeKind, key: str, at: datetime.datetime) -> Notice:
    return Notice(
        kind=kind,
        tenant=tenant,
        service_code="SWG-E2E",
        time=format_time(at),
        subject=f"{kind} of {tenant}",
        body=(f"event {key}",),
        key=key,
    )


async def _record_and_deliver(tenants: dict[str, Any]) -> tuple[RecordingMailer, list[str]]:
    credentials = kopf.login_with_kubeconfig(settings=kopf.OperatorSettings())
    assert credentials is not None, "the cluster's kubeconfig gave no credentials"
    kube = HttpKubeApi(credentials)
    try:
        now = await kube.server_time()
        a, b = tenants["a"], tenants["b"]
        await record(
            kube,
            _notice(a, NoticeKind.CHANGE, "generation-2", now),
            recipients=["ops@a.example", "sec@a.example"],
            now=now,
        )
        await record(
            kube,
            _notice(a, NoticeKind.INCIDENT, "ready-lost-1", now + datetime.timedelta(seconds=1)),
            recipients=["ops@a.example"],
            now=now,
        )
        await record(
            kube, _notice(b, NoticeKind.CHANGE, "generation-2", now), recipients=[], now=now
        )
        mailer = RecordingMailer()
        report = await deliver_pending(kube, mailer, now=now, namespace=tenant_namespace(a))
        assert (report.sent, report.failed) == (3, 0)
        again = await deliver_pending(kube, mailer, now=now, namespace=tenant_namespace(a))
        assert again.sent == 0
        history, version = await read(kube, tenant_box(a))
        assert version
        states = [d.state for e in history.entries for d in e.deliveries]
        assert states == [MailState.SENT] * 3
        # A write computed from an old resourceVersion is refused by the API server.
        stale = {"metadata": {"resourceVersion": str(int(version) - 1)}, "data": {}}
        with pytest.raises(KubeApiError) as refused:
            await kube.patch(
                CONFIG_MAP, notices_config_map_name(), stale, namespace=tenant_namespace(a)
            )
        assert refused.value.status == 409
        return mailer, [str(m["Message-ID"]) for m in mailer.sent]
    finally:
        await kube.close()


def _notices(
    who: Cluster, tenant: str, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    code = kubectl_main(["notices", tenant, "--kubeconfig", str(who.kubeconfig), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_admins_read_their_tenants_notices_and_no_other(
    tenants: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    mailer, ids = asyncio.run(_record_and_deliver(tenants))
    alice, bob = tenants["alice"], tenants["bob"]

    code, out, err = _notices(alice, tenants["a"], capsys, "-o", "json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["kind"] for r in records] == ["incident", "change"]  # newest first
    assert sorted(m["messageId"] for r in records for m in r["mail"]) == sorted(ids)
    assert {m["state"] for r in records for m in r["mail"]} == {"sent"}
    assert len(mailer.sent) == 3

    code, out, _ = _notices(alice, tenants["a"], capsys)
    assert code == 0
    assert "mail: 2 sent" in out

    code, _, err = _notices(bob, tenants["a"], capsys)
    assert code == 1
    assert "may not read the notices" in err
    assert "(403)" in err
    code, _, err = _notices(alice, tenants["b"], capsys)
    assert code == 1
    assert "(403)" in err
    code, out, _ = _notices(bob, tenants["b"], capsys, "-o", "yaml")
    assert code == 0
    assert "mail: []" in out  # no contacts: recorded, nothing to mail

    ns_a = tenant_namespace(tenants["a"])
    can = alice.kubectl("auth", "can-i", "list", "configmaps", "-n", ns_a, check=False)
    assert can.stdout.strip() == "no"  # the one ConfigMap by name, no listing
    can = alice.kubectl(
        "auth", "can-i", "patch", "configmap/tenant-notices", "-n", ns_a, check=False
    )
    assert can.stdout.strip() == "no"
