"""Reading a tenant's live state for the evidence, with the caller's own identity.

Every read goes through two callables (`get(path)`, `post(path, body)`, each returning the HTTP
status and the JSON body), so what is read is plain data and what is concluded from it
(`judge.py`) stays pure. A refused read is kept as such: the check it feeds says `unknown`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final

from swg_operator import naming
from swg_operator.commands.evidence.judge import QUESTIONS
from swg_operator.commands.evidence.model import AccessAnswer, Facts, Reading

Getter = Callable[[str], Reading]
Poster = Callable[[str, Mapping[str, Any]], Reading]

TENANTS: Final = "/apis/swg.dev/v1alpha1/securewebgateways"
AUTHORIZATION: Final = "/apis/authorization.k8s.io/v1"
RECEIPT_SELECTOR: Final = "swg.dev/purge-receipt=true,swg.dev/purged-tenant="


def _contract_of(spec: Mapping[str, Any]) -> dict[str, Any] | None:
    """The admins' view of a spec as the operator mirrors it; None for an invalid spec."""
    from pydantic import ValidationError

    from swg_operator.api import parse_spec
    from swg_operator.render.contract_view import contract_view

    try:
        return contract_view(parse_spec(dict(spec)))
    except (ValidationError, ValueError):
        return None


def _from_mirror(reading: Reading) -> tuple[dict[str, Any], dict[str, Any] | None]:
    from swg_operator.render.status_mirror import read_status_data

    status = read_status_data(reading.data())
    contract = status.pop("contract", None)
    return status, contract if isinstance(contract, dict) else None


def _attributes(
    namespace: str, verb: str, resource: str, subresource: str, name: str
) -> dict[str, str]:
    attrs = {"namespace": namespace, "verb": verb, "resource": resource}
    if subresource:
        attrs["subresource"] = subresource
    if name:
        attrs["name"] = name
    return attrs


def ask(
    post: Poster,
    who: str,
    identity: Mapping[str, Any] | None,
    namespace: str,
    other: str | None,
) -> list[AccessAnswer]:
    """Every question of `judge.QUESTIONS` for one identity (None: the caller), as
    `kubectl auth can-i` asks it."""
    answers = []
    for verb, resource, subresource, name, expected, elsewhere in QUESTIONS:
        if elsewhere and other is None:
            continue
        where = other if elsewhere and other else namespace
        attrs = _attributes(where, verb, resource, subresource, name)
        kind = "SubjectAccessReview" if identity else "SelfSubjectAccessReview"
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": kind,
            "spec": {"resourceAttributes": attrs, **(identity or {})},
        }
        reading = post(f"{AUTHORIZATION}/{kind.lower()}s", body)
        allowed = None
        if reading.status in (200, 201) and isinstance(reading.body, dict):
            allowed = bool((reading.body.get("status") or {}).get("allowed"))
        full = f"{resource}/{subresource}" if subresource else resource
        answers.append(
            AccessAnswer(who, where, verb, full, name, expected, allowed, reading.status)
        )
        if allowed is None and reading.status in (401, 403):
            break  # not the caller's to ask: the remaining questions would be refused alike
    return answers


def admin_access(
    post: Poster, spec: Mapping[str, Any] | None, namespace: str, other: str | None
) -> tuple[AccessAnswer, ...]:
    answers: list[AccessAnswer] = []
    for admin in (spec or {}).get("admins") or ():
        subject = str(admin.get("name", ""))
        if admin.get("kind") == "Group":
            answers += ask(post, f"group {subject}", {"groups": [subject]}, namespace, other)
        else:
            answers += ask(post, f"user {subject}", {"user": subject}, namespace, other)
    if not answers or all(a.allowed is None for a in answers):
        answers += ask(post, "you", None, namespace, other)  # the caller's own view
    return tuple(answers)


def collect(tenant: str, get: Getter, post: Poster, *, operator_namespace: str) -> Facts:
    ns = naming.tenant_namespace(tenant)
    api, core = f"/apis/apps/v1/namespaces/{ns}", f"/api/v1/namespaces/{ns}"
    tenant_reading = get(f"{TENANTS}/{tenant}")
    spec: Mapping[str, Any] | None = None
    status: Mapping[str, Any] = {}
    contract: Mapping[str, Any] | None = None
    if tenant_reading.ok and isinstance(tenant_reading.body, dict):
        spec = tenant_reading.body.get("spec") or {}
        status = tenant_reading.body.get("status") or {}
        contract = _contract_of(spec)
    else:  # the tenant's admins read the mirror instead
        mirror = get(f"{core}/configmaps/{naming.tenant_status_name()}")
        if mirror.ok:
            status, contract = _from_mirror(mirror)
    listed = get(TENANTS)
    others = tuple(
        naming.tenant_namespace(str(t["metadata"]["name"]))
        for t in listed.items()
        if t["metadata"]["name"] != tenant
    )
    selector = RECEIPT_SELECTOR + naming.tenant_label_value(tenant)
    return Facts(
        tenant=tenant,
        namespace=ns,
        tenant_reading=tenant_reading,
        spec=spec,
        status=status,
        contract=contract,
        namespace_object=get(f"/api/v1/namespaces/{ns}"),
        policies=get(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies"),
        quotas=get(f"{core}/resourcequotas"),
        deployments=get(f"{api}/deployments"),
        claims=get(f"{core}/persistentvolumeclaims"),
        ca_certificate=get(f"{core}/configmaps/{naming.inspection_ca_certificate_name()}"),
        notices=get(f"{core}/configmaps/{naming.notices_config_map_name()}"),
        receipts=get(
            f"/api/v1/namespaces/{operator_namespace}/configmaps?labelSelector={selector}"
        ),
        access=admin_access(post, spec, ns, others[0] if others else None),
        other_namespaces=others,
    )


def verify_receipts(facts: Facts, public_key_pem: bytes) -> Facts:
    """`facts` with each purge receipt's signature checked against the operator's public key."""
    from dataclasses import replace

    from swg_operator.receipts import load_public_key, verify_receipt

    key = load_public_key(public_key_pem, where="the receipt public key")
    verdicts = {
        str(r["metadata"]["name"]): verify_receipt(
            {str(k): str(v) for k, v in (r.get("data") or {}).items()}, key
        ).problems
        for r in facts.receipts.items()
    }
    return replace(facts, receipt_verdicts=verdicts)


def describe(facts: Facts) -> dict[str, Any]:
    """Where the facts came from, for the report's header."""
    return {
        "tenant": facts.tenant,
        "namespace": facts.namespace,
        "phase": facts.phase or None,
        "source": "SecureWebGateway" if facts.spec is not None else "tenant-status mirror",
        "contract": json.loads(json.dumps(facts.contract)) if facts.contract else None,
    }
