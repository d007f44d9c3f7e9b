"""`swg-operator evidence` (and `kubectl swg evidence`): what software can show of a tenant's
ISO/IEC 27017 controls, read from live state with the caller's own identity.

    swg-operator evidence TENANT [-o text|json|yaml] [--kubeconfig PATH] [--context NAME]

Each check names its control, what was read, and the result: `pass`, `fail`, or `unknown` (not
readable with this identity, or not there to judge). Checks: the isolation NetworkPolicies of
the tenant namespace (present, and a default deny of ingress and egress among them); the admins'
access as the API server's authorizer answers it (SelfSubjectAccessReview for the caller,
SubjectAccessReview for each declared admin when the caller may ask); quota and sizing; region
placement of the workloads; log retention and legal hold; the HTTPS-inspection CA's age and
expiry; the recent notices and their mail; the purge state and receipt. `text` is Markdown.
docs/compliance.md maps each control to where it is built and which test shows it.
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from swg_operator.naming import (
    inspection_ca_certificate_name,
    notices_config_map_name,
    tenant_label_value,
    tenant_namespace,
    tenant_status_name,
)
from swg_operator.notices.model import MailState, NoticeError, decode

REGION_LABEL: Final = "topology.kubernetes.io/region"
RECENT: Final = 5
CA_WARN_DAYS: Final = 30

Getter = Callable[[str], tuple[int, Any]]
Poster = Callable[[str, Mapping[str, Any]], tuple[int, Any]]


@dataclass(frozen=True)
class Check:
    control: str  # ISO/IEC 27017 control
    field: str  # the evidence field (docs/compliance.md)
    checked: str
    result: str  # pass, fail, unknown
    detail: str
    data: Any = None


def _unknown(control: str, field: str, checked: str, status: int) -> Check:
    why = {403: "not readable with this identity (403)", 404: "not found (404)"}.get(
        status, f"HTTP {status}"
    )
    return Check(control, field, checked, "unknown", why)


# --- pure judgements ------------------------------------------------------------------------


def isolation(policies: list[Mapping[str, Any]]) -> Check:
    """A default deny of ingress and egress (empty pod selector, both types, no rule) and the
    allow policies next to it."""
    names = sorted(str(p["metadata"]["name"]) for p in policies)
    deny = {
        t
        for p in policies
        for t in (p.get("spec") or {}).get("policyTypes") or ()
        if not (p.get("spec") or {}).get("podSelector") and not (p.get("spec") or {}).get(t.lower())
    }
    ok = {"Ingress", "Egress"} <= deny
    detail = (
        f"{len(names)} NetworkPolicies; default deny of "
        f"{', '.join(sorted(deny)) or 'nothing'}"
        + ("" if ok else ": ingress and egress must both be denied by default")
    )
    return Check(
        "CLD.9.5.1 / 13.1.3 segregation in networks",
        "isolation",
        "NetworkPolicies of the tenant namespace",
        "pass" if ok else "fail",
        detail,
        {"policies": names, "defaultDeny": sorted(deny)},
    )


def ca_age(pem: str, now: datetime.datetime) -> Check:
    from cryptography import x509

    control, field = "10.1.2 key management", "inspectionCa"
    try:
        cert = x509.load_pem_x509_certificate(pem.encode())
    except ValueError as err:
        return Check(control, field, "ca.crt", "fail", f"not a PEM certificate: {err}")
    start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
    age, left = (now - start).days, (end - now).days
    result = "pass" if left > CA_WARN_DAYS else "fail"
    return Check(
        control,
        field,
        f"ConfigMap {inspection_ca_certificate_name()} key ca.crt",
        result,
        f"{age} days old, expires {end:%Y-%m-%d} ({left} days left)",
        {"notBefore": start.isoformat(), "notAfter": end.isoformat(), "ageDays": age},
    )


def notices_check(data: Mapping[str, str]) -> Check:
    control, field = "12.1.2 change management / 16.1.2 reporting events", "notices"
    try:
        history = decode(data)
    except NoticeError as err:
        return Check(control, field, "tenant-notices", "fail", str(err))
    recent = list(reversed(history.entries))[:RECENT]
    failed = sum(d.state is MailState.FAILED for e in history.entries for d in e.deliveries)
    rows = [
        {
            "time": e.notice.time,
            "kind": str(e.notice.kind),
            "subject": e.notice.subject,
            "mail": sorted({str(d.state) for d in e.deliveries}) or ["no contacts"],
        }
        for e in recent
    ]
    return Check(
        control,
        field,
        f"ConfigMap {notices_config_map_name()}",
        "fail" if failed else "pass",
        f"{len(history.entries)} notices kept; {failed} mail(s) failed",
        rows,
    )


def placement(spec: Mapping[str, Any], deployments: list[Mapping[str, Any]]) -> Check:
    control, field = "CLD.6.3.1 / 18.1.1 location of data", "placement"
    region = ((spec.get("placement") or {}).get("region")) or None
    if region is None:
        return Check(control, field, "spec.placement.region", "pass", "no region declared")
    unpinned = [
        str(d["metadata"]["name"])
        for d in deployments
        if region not in json.dumps(((d.get("spec") or {}).get("template") or {}).get("spec"))
    ]
    return Check(
        control,
        field,
        f"Deployments' node affinity on {REGION_LABEL}",
        "fail" if unpinned else "pass",
        f"region {region}: "
        + (f"not pinned: {', '.join(unpinned)}" if unpinned else f"{len(deployments)} pinned"),
        {"region": region, "unpinned": unpinned},
    )


def retention(spec: Mapping[str, Any], status: Mapping[str, Any]) -> Check:
    logs = spec.get("logs") or {}
    cancel = spec.get("cancellation") or {}
    data = {
        "retentionDays": logs.get("retentionDays", 90),
        "timeZone": logs.get("timeZone", "UTC"),
        "legalHold": bool(cancel.get("legalHold", False)),
        "purgeAfterDays": cancel.get("purgeAfterDays"),
        "cancellation": status.get("cancellation"),
    }
    hold = " (legal hold set)" if data["legalHold"] else ""
    return Check(
        "12.4.1 event logging / 18.1.3 protection of records",
        "retention",
        "spec.logs, spec.cancellation, status.cancellation",
        "pass",
        f"logs kept {data['retentionDays']} days{hold}",
        data,
    )


def purge_state(status: Mapping[str, Any], receipts: list[Mapping[str, Any]]) -> Check:
    cancel = status.get("cancellation") or {}
    states = [str((r.get("data") or {}).get("state", "")) for r in receipts]
    signed = all("signature" in (r.get("data") or {}) for r in receipts)
    detail = (
        f"cancelled at {cancel.get('cancelledAt')}, purge due {cancel.get('purgeAt')}"
        if cancel
        else "not cancelled"
    )
    if receipts:
        detail += f"; receipt(s): {', '.join(states)}" + ("" if signed else " (unsigned)")
    return Check(
        "CLD.8.1.5 removal of assets",
        "purge",
        "status.cancellation, purge receipts",
        "pass" if signed else "fail",
        detail,
        {"cancellation": cancel or None, "receipts": [r["metadata"]["name"] for r in receipts]},
    )


# --- reading --------------------------------------------------------------------------------


ACCESS: Final = (
    ("get", "", "configmaps", tenant_status_name(), True),
    ("get", "", "configmaps", notices_config_map_name(), True),
    ("list", "", "pods", "", True),
    ("get", "", "secrets", "", False),
    ("delete", "", "pods", "", False),
    ("create", "", "configmaps", "", False),
)


def _attributes(namespace: str, verb: str, group: str, resource: str, name: str) -> dict[str, Any]:
    attrs = {"namespace": namespace, "verb": verb, "group": group, "resource": resource}
    if name:
        attrs["name"] = name
    return attrs


def access(
    post: Poster, namespace: str, admins: list[Mapping[str, Any]], other: str | None
) -> Check:
    """`kubectl auth can-i` as the authorizer answers: what the caller and each admin may do in
    the tenant namespace (read yes, write no), and nothing in another tenant's."""
    rows: list[dict[str, Any]] = []
    problems: list[str] = []
    who: list[tuple[str, dict[str, Any] | None]] = [("you", None)]
    for admin in admins:
        subject = str(admin.get("name", ""))
        if admin.get("kind") == "Group":
            who.append((f"group {subject}", {"groups": [subject], "user": "swg-evidence-probe"}))
        else:
            who.append((f"user {subject}", {"user": subject}))
    for label, identity in who:
        checks = [(namespace, *a) for a in ACCESS]
        if other and identity is not None:
            checks.append((other, "get", "", "configmaps", tenant_status_name(), False))
        for ns, verb, group, resource, name, expected in checks:
            attrs = _attributes(ns, verb, group, resource, name)
            if identity is None:
                kind = "selfsubjectaccessreviews"
                review: dict[str, Any] = {"resourceAttributes": attrs}
            else:
                kind = "subjectaccessreviews"
                review = {"resourceAttributes": attrs, **identity}
            status, answer = post(
                f"/apis/authorization.k8s.io/v1/{kind}",
                {"apiVersion": "authorization.k8s.io/v1", "kind": kind, "spec": review},
            )
            if status not in (200, 201):
                rows.append({"who": label, **attrs, "allowed": None, "http": status})
                continue
            allowed = bool((answer.get("status") or {}).get("allowed"))
            rows.append({"who": label, **attrs, "allowed": allowed})
            if identity is not None and allowed != expected:
                problems.append(f"{label} {'may' if allowed else 'may not'} {verb} {resource}")
    unknown = [r for r in rows if r["allowed"] is None]
    result = "fail" if problems else ("unknown" if len(unknown) == len(rows) else "pass")
    detail = "; ".join(problems) or (
        f"{len(rows) - len(unknown)} answers as expected"
        + (f", {len(unknown)} not askable with this identity" if unknown else "")
    )
    return Check(
        "9.2.3 privileged access / 9.4.1 access restriction",
        "access",
        "SelfSubjectAccessReview, SubjectAccessReview in the tenant namespace",
        result,
        detail,
        rows,
    )


def gather(
    tenant: str, get: Getter, post: Poster, *, operator_namespace: str, now: datetime.datetime
) -> list[Check]:
    ns = tenant_namespace(tenant)
    code, body = get(f"/apis/swg.dev/v1alpha1/securewebgateways/{tenant}")
    spec: Mapping[str, Any] = (body or {}).get("spec") or {} if code == 200 else {}
    status: Mapping[str, Any] = (body or {}).get("status") or {} if code == 200 else {}
    if code != 200:  # an admin reads the status mirror instead
        mcode, mirror = get(f"/api/v1/namespaces/{ns}/configmaps/{tenant_status_name()}")
        if mcode == 200:
            raw = ((mirror or {}).get("data") or {}).get("status.json") or "{}"
            status = json.loads(raw)
    checks: list[Check] = []
    pcode, policies = get(f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies")
    checks.append(
        isolation(policies.get("items") or [])
        if pcode == 200
        else _unknown("CLD.9.5.1 / 13.1.3", "isolation", "NetworkPolicies", pcode)
    )
    others = [
        str(t["metadata"]["name"])
        for t in (get("/apis/swg.dev/v1alpha1/securewebgateways")[1] or {}).get("items") or []
        if t["metadata"]["name"] != tenant
    ]
    other = tenant_namespace(others[0]) if others else None
    checks.append(access(post, ns, list(spec.get("admins") or ()), other))
    qcode, quotas = get(f"/api/v1/namespaces/{ns}/resourcequotas")
    sizing = status.get("sizing")
    if qcode == 200:
        hard = [dict((q.get("status") or {}).get("hard") or {}) for q in quotas.get("items") or []]
        used = [dict((q.get("status") or {}).get("used") or {}) for q in quotas.get("items") or []]
        checks.append(
            Check(
                "12.1.3 capacity management",
                "quota",
                "ResourceQuota of the tenant namespace, status.sizing",
                "pass" if hard else "fail",
                f"{len(hard)} quota(s); sizing {json.dumps(sizing) if sizing else 'unknown'}",
                {"hard": hard, "used": used, "sizing": sizing},
            )
        )
    else:
        checks.append(_unknown("12.1.3 capacity management", "quota", "ResourceQuota", qcode))
    dcode, deployments = get(f"/apis/apps/v1/namespaces/{ns}/deployments")
    checks.append(
        placement(spec, deployments.get("items") or [])
        if dcode == 200
        else _unknown("CLD.6.3.1", "placement", "Deployments", dcode)
    )
    checks.append(retention(spec, status))
    ccode, ca = get(f"/api/v1/namespaces/{ns}/configmaps/{inspection_ca_certificate_name()}")
    pem = ((ca or {}).get("data") or {}).get("ca.crt") if ccode == 200 else None
    checks.append(ca_age(pem, now) if pem else _unknown("10.1.2", "inspectionCa", "ca.crt", ccode))
    ncode, notices = get(f"/api/v1/namespaces/{ns}/configmaps/{notices_config_map_name()}")
    checks.append(
        notices_check((notices or {}).get("data") or {})
        if ncode == 200
        else _unknown("12.1.2 / 16.1.2", "notices", "tenant-notices", ncode)
    )
    selector = f"swg.dev/purge-receipt=true,swg.dev/purged-tenant={tenant_label_value(tenant)}"
    rcode, receipts = get(
        f"/api/v1/namespaces/{operator_namespace}/configmaps?labelSelector={selector}"
    )
    if rcode == 200:
        checks.append(purge_state(status, receipts.get("items") or []))
    elif status.get("cancellation"):
        checks.append(_unknown("CLD.8.1.5", "purge", "purge receipts", rcode))
    else:
        checks.append(
            Check("CLD.8.1.5 removal of assets", "purge", "status", "pass", "not cancelled")
        )
    return checks


def render(tenant: str, checks: list[Check], form: str) -> str:
    records = {"tenant": tenant, "checks": [asdict(c) for c in checks]}
    if form == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if form == "yaml":
        import yaml

        return str(yaml.safe_dump(records, sort_keys=False, allow_unicode=True))
    lines = [
        f"# Evidence for tenant {tenant}",
        "",
        "| Control | Field | Checked | Result | Detail |",
        "|---|---|---|---|---|",
    ]
    for c in checks:
        cells = [c.control, c.field, c.checked, c.result, c.detail]
        lines.append("| " + " | ".join(x.replace("|", "/") for x in cells) + " |")
    return "\n".join(lines) + "\n"


# --- command --------------------------------------------------------------------------------


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant", metavar="TENANT", help="the SecureWebGateway's name")
    parser.add_argument(
        "-o", "--output", choices=["text", "json", "yaml"], default="text", help="text: Markdown"
    )
    parser.add_argument("--operator-namespace", default="swg-system", help="for purge receipts")
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.set_defaults(handler=run)


def add_parser(subparsers: Any) -> None:
    configure(
        subparsers.add_parser(
            "evidence",
            help="what live state shows of a tenant's ISO/IEC 27017 controls",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def run(args: argparse.Namespace) -> int:
    from swg_operator.commands.cluster_client import ClusterClientError, http_client

    try:
        client = http_client(kubeconfig=args.kubeconfig, context=args.context)
    except ClusterClientError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    def answer(response: Any) -> tuple[int, Any]:
        try:
            return int(response.status_code), response.json()
        except ValueError:
            return int(response.status_code), None

    def get(path: str) -> tuple[int, Any]:
        return answer(client.get(path))

    def post(path: str, body: Mapping[str, Any]) -> tuple[int, Any]:
        return answer(client.post(path, json=dict(body)))

    try:
        with client:
            checks = gather(
                args.tenant,
                get,
                post,
                operator_namespace=args.operator_namespace,
                now=datetime.datetime.now(datetime.UTC),
            )
    except Exception as err:  # the cluster did not answer: say so, never a traceback
        print(f"error: the cluster did not answer: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render(args.tenant, checks, args.output))
    return 0 if all(c.result != "fail" for c in checks) else 2
