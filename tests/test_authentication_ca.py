"""spec.authentication.ldap.caSecret: the directory's own CA. The model's validation, the proxy
pod's mount of the `ca.crt` key alone, the CA file Squid's helper lines hand to swg-ldap-helper,
and the reconcile's check of the Secret (`LDAPCASecretNotFound`, `LDAPCASecretInvalid`).
The helpers trusting that CA, and only it, against a real directory: e2e/dataplane/
test_authentication_ca.py."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from fakes import FakeKube, make_available, watch_cache
from inspection_support import (
    NOW,
    NS,
    SETTINGS,
    condition,
    later,
    run,
    secret_reads,
    setup,
    tenant,
)
from render_support import catalogue, dataplane_files, find, minimal_spec, render
from swg_operator.api import OperatorSettings, SpecError, parse_spec
from swg_operator.api.spec import SecureWebGatewaySpec
from swg_operator.kube import KubeApiError
from swg_operator.reconcile.ca_pair import pem, self_signed
from swg_operator.reconcile.context import Context
from swg_operator.reconcile.directory_secrets import (
    LDAP_CA_SECRET_INVALID,
    LDAP_CA_SECRET_NOT_FOUND,
    ca_text_problem,
)

LDAP: dict[str, Any] = {
    "url": "ldaps://ldap.example-corp.example:636",
    "baseDN": "ou=People,dc=example-corp,dc=example",
    "bindDN": "cn=SWG Proxy,ou=Service Accounts,dc=example-corp,dc=example",
    "bindSecret": {"name": "ldap-bind"},
    "caSecret": {"name": "ldap-ca"},
}
CA_FILE = "/etc/swg/ldap-ca/ca.crt"
FIELD = "spec.authentication.ldap.caSecret.name"


def _ca_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = self_signed(
        key,
        names=("Example Corp", "IT", "Example Corp Root CA"),
        now=NOW,
        backdate=datetime.timedelta(hours=1),
        validity=datetime.timedelta(days=365),
        ca=True,
    )
    return pem(certificate)


def _key_pem() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


CA = _ca_pem()
OTHER_CA = _ca_pem()


def _spec(ldap: dict[str, Any]) -> SecureWebGatewaySpec:
    return SecureWebGatewaySpec.model_validate(minimal_spec(authentication={"ldap": ldap}))


def _secret(name: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": NS},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }


BIND = _secret("ldap-bind", {"password": "secret"})


# --- the model ---------------------------------------------------------------------------------


def test_the_ca_secret_is_optional_and_a_bad_name_is_refused_naming_the_field() -> None:
    without = {k: v for k, v in LDAP.items() if k != "caSecret"}
    ldap = _spec(without).authentication.ldap
    assert ldap is not None
    assert ldap.ca_secret is None
    ldap = _spec(LDAP).authentication.ldap
    assert ldap is not None
    assert ldap.ca_secret is not None
    assert ldap.ca_secret.name == "ldap-ca"
    for bad in ("Ldap_CA", "", "a" * 64):
        with pytest.raises(SpecError) as info:
            parse_spec(minimal_spec(authentication={"ldap": {**LDAP, "caSecret": {"name": bad}}}))
        assert any(FIELD in problem for problem in info.value.problems), info.value.problems
    with pytest.raises(SpecError) as info:
        parse_spec(minimal_spec(authentication={"ldap": {**LDAP, "caSecret": {"key": "x"}}}))
    assert any("spec.authentication.ldap.caSecret" in p for p in info.value.problems)


# --- the rendered configuration ----------------------------------------------------------------


def _helper_lines(spec: SecureWebGatewaySpec) -> list[str]:
    conf = dataplane_files(spec, catalogue=catalogue(), settings=OperatorSettings())["squid.conf"]
    return [line for line in conf.splitlines() if "/usr/local/bin/swg-ldap-helper" in line]


def test_both_helpers_are_given_the_ca_file_after_their_arguments() -> None:
    lines = _helper_lines(_spec(LDAP))
    assert len(lines) == 2
    assert lines[0] == (
        "auth_param basic program /usr/local/bin/swg-ldap-helper auth "
        f"/etc/swg/conf/ldap-auth.args {CA_FILE}"
    )
    assert lines[1].endswith(
        f"%LOGIN /usr/local/bin/swg-ldap-helper group /etc/swg/conf/ldap-group.args {CA_FILE}"
    )
    # Without caSecret: no third argument (the image's CA bundle).
    without = {k: v for k, v in LDAP.items() if k != "caSecret"}
    for line in _helper_lines(_spec(without)):
        assert line.endswith(".args"), line


def test_the_proxy_mounts_the_ca_key_only_read_only() -> None:
    manifests = render("acme", minimal_spec(authentication={"ldap": LDAP}))
    deployment = find(manifests, "Deployment", "proxy")
    pod = deployment["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "ldap-ca")
    assert volume["secret"] == {
        "secretName": "ldap-ca",
        "defaultMode": 0o440,
        "items": [{"key": "ca.crt", "path": "ca.crt"}],
    }
    squid = next(c for c in pod["containers"] if c["name"] == "squid")
    mount = next(m for m in squid["volumeMounts"] if m["name"] == "ldap-ca")
    assert mount == {"name": "ldap-ca", "mountPath": "/etc/swg/ldap-ca", "readOnly": True}
    assert not [o for o in manifests.objects if o["kind"] == "Secret"]
    # Another CA Secret rolls the proxy pods (Squid's helpers are told the file at startup).
    other = render(
        "acme", minimal_spec(authentication={"ldap": {**LDAP, "caSecret": {"name": "new-ca"}}})
    )
    digest = "swg.dev/config-digest"
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    other_annotations = find(other, "Deployment", "proxy")["spec"]["template"]["metadata"][
        "annotations"
    ]
    assert annotations[digest] != other_annotations[digest]


def test_without_a_ca_secret_nothing_is_mounted() -> None:
    without = {k: v for k, v in LDAP.items() if k != "caSecret"}
    pod = find(
        render("acme", minimal_spec(authentication={"ldap": without})), "Deployment", "proxy"
    )
    assert "ldap-ca" not in str(pod)


# --- what ca.crt may hold ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "no PEM certificate"),
        ("not a certificate\n", "no PEM certificate"),
        ("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "cannot be parsed"),
        (CA + _key_pem(), "other than certificates (PRIVATE KEY)"),
    ],
    ids=["empty", "text", "garbage", "with-a-key"],
)
def test_ca_text_that_is_not_pem_certificates_is_refused(text: str, expected: str) -> None:
    problem = ca_text_problem(text.encode())
    assert problem is not None
    assert expected in problem


def test_one_or_more_pem_certificates_are_accepted() -> None:
    assert ca_text_problem(CA.encode()) is None
    assert ca_text_problem((CA + OTHER_CA).encode()) is None
    assert ca_text_problem(("# the company root\n" + CA).encode()) is None


# --- the reconcile's check -----------------------------------------------------------------------


def test_a_missing_ca_secret_stalls_then_one_without_certificates_then_fine() -> None:
    kube, ctx = setup(tenant(authentication={"ldap": LDAP}))
    kube.put(BIND)
    run(kube, ctx)
    make_available(kube)
    stalled = condition(run(kube, ctx), "Stalled")
    assert stalled["reason"] == LDAP_CA_SECRET_NOT_FOUND
    assert FIELD in stalled["message"]
    assert f"{NS}/ldap-ca" in stalled["message"]
    kube.put(_secret("ldap-ca", {"tls.crt": CA}))
    stalled = condition(run(kube, ctx), "Stalled")
    assert stalled["reason"] == LDAP_CA_SECRET_INVALID
    assert "'ca.crt'" in stalled["message"]
    assert FIELD in stalled["message"]
    kube.put(_secret("ldap-ca", {"ca.crt": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n"}))
    stalled = condition(run(kube, ctx), "Stalled")
    assert stalled["reason"] == LDAP_CA_SECRET_INVALID
    assert "AAAA" not in stalled["message"]
    kube.put(_secret("ldap-ca", {"ca.crt": CA + OTHER_CA}))
    assert run(kube, ctx)["phase"] == "Ready"


def test_an_unchanged_tenant_with_a_sound_ca_secret_reads_it_no_more() -> None:
    kube, ctx = setup(tenant(authentication={"ldap": LDAP}))
    ctx.cache = watch_cache(kube, "swg-system")
    kube.put(BIND)
    kube.put(_secret("ldap-ca", {"ca.crt": CA}))
    run(kube, ctx)
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    run(kube, ctx)
    kube.reads.clear()
    for _ in range(3):
        assert run(kube, ctx)["phase"] == "Ready"
    assert secret_reads(kube) == []
    kube.put(_secret("ldap-ca", {"ca.crt": "replaced by hand"}))
    later(ctx)
    assert condition(run(kube, ctx), "Stalled")["reason"] == LDAP_CA_SECRET_INVALID
    # Both directory Secrets read again once the recheck interval passed; the bad one each time.
    assert sorted(secret_reads(kube)) == [("get", "Secret", NS)] * 2
    kube.reads.clear()
    run(kube, ctx)
    assert secret_reads(kube) == [("get", "Secret", NS)]


class _NoSecretReads(FakeKube):
    """RBAC without `get` on Secrets, as the chart grants for a customer's Secret."""

    async def get(self, kind: Any, name: str, *, namespace: str | None = None) -> Any:
        if kind.kind == "Secret":
            raise KubeApiError(403, f'secrets "{name}" is forbidden', reason="Forbidden")
        return await super().get(kind, name, namespace=namespace)


def test_a_ca_secret_the_operator_may_not_read_is_checked_for_existence_only() -> None:
    kube = _NoSecretReads(now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    kube.put(tenant(authentication={"ldap": LDAP}))
    kube.put(BIND)
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    run(kube, ctx)
    make_available(kube)
    assert condition(run(kube, ctx), "Stalled")["reason"] == LDAP_CA_SECRET_NOT_FOUND
    kube.put(_secret("ldap-ca", {"ca.crt": "not read: not judged"}))
    assert run(kube, ctx)["phase"] == "Ready"
