"""What the HTTPS-inspection CA tests share: a tenant, the in-memory API and a reconcile of
it, and readers of what the reconcile wrote (the CA Secret, the published certificate, the proxy's
config digest)."""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import functools
from typing import Any

from fakes import FakeKube
from reconcile_support import fake_cluster, stored_tenant
from swg_operator.api import OperatorSettings
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.secret_checks import RECHECK
from swg_operator.reconcile.secrets import GeneratedCa, generate_inspection_ca

SETTINGS = OperatorSettings()
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
NS = "swg-acme"
SECRET = "https-inspection-ca"
CERT_CM = "https-inspection-ca-cert"
INSPECTION = {"httpsInspection": {"enabled": True}}
# The tenant brings its own CA, in its namespace's Secret `own-ca`.
OWN_CA = {"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}


def new_ca() -> GeneratedCa:
    """A CA generated for the tenant `acme` now, another than every other."""
    return generate_inspection_ca(tenant="acme", service_code="SWG-0001", now=NOW)


@functools.cache
def generated_ca() -> GeneratedCa:
    """One generated CA shared by the tests (the `ca` fixture of conftest.py): an RSA 3072 key
    takes a moment."""
    return new_ca()


def tenant(name: str = "acme", **spec: Any) -> dict[str, Any]:
    return stored_tenant(name, **spec)


def setup(body: dict[str, Any]) -> tuple[FakeKube, Context]:
    return fake_cluster(body, SETTINGS, NOW)


def run(kube: FakeKube, ctx: Context, name: str = "acme") -> dict[str, Any]:
    body = kube.find("SecureWebGateway", name)
    assert body is not None
    asyncio.run(reconcile(copy.deepcopy(body), ctx=ctx))
    status: dict[str, Any] = copy.deepcopy(kube.find("SecureWebGateway", name) or {})["status"]
    return status


def respec(kube: FakeKube, **spec: Any) -> None:
    body = kube.find("SecureWebGateway", "acme")
    assert body is not None
    body["spec"].update(spec)
    body["metadata"]["generation"] += 1


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in status["conditions"] if c["type"] == kind)


def secret_certificate(kube: FakeKube) -> str:
    secret = kube.find("Secret", SECRET, NS)
    assert secret is not None
    return base64.b64decode(secret["data"]["tls.crt"]).decode()


def published(kube: FakeKube) -> str | None:
    cm = kube.find("ConfigMap", CERT_CM, NS)
    return None if cm is None else str(cm["data"]["ca.crt"])


def proxy_digest(kube: FakeKube) -> str:
    deployment = kube.find("Deployment", "proxy", NS)
    assert deployment is not None
    return str(deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION])


def secret_reads(kube: FakeKube) -> list[tuple[str, str, str | None]]:
    return [r for r in kube.reads if r[1] == "Secret"]


def kube_kind(kind: str) -> Any:
    from swg_operator.kube import kind_of

    return kind_of({"apiVersion": "v1", "kind": kind})


def tls_secret(name: str, certificate: str, key: str) -> dict[str, Any]:
    """A `kubernetes.io/tls` Secret as the API server stores it (data in base64)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "type": "kubernetes.io/tls",
        "data": {
            "tls.crt": base64.b64encode(certificate.encode()).decode(),
            "tls.key": base64.b64encode(key.encode()).decode(),
        },
    }


def signatures(**data: str) -> dict[str, Any]:
    return {"kind": "ConfigMap", "metadata": {"name": "sigs", "namespace": NS}, "data": data}


def later(ctx: Context) -> None:
    """The CA Secrets' recheck interval passes: a change by hand to a Secret (Secrets are not
    watched) is seen by the next reconcile."""
    then = ctx.clock() + RECHECK
    ctx.clock = lambda: then
