"""Judging the collected facts: one `Check` per control software can show (pure, no I/O). The
workloads' side is here; the records' side (logs, CA, notices, purge) in records.py.

Each judgement reads only `Facts` (and the time given), so every one can be tested on objects the
renderer makes, and on broken copies of them.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import Any, Final

from swg_operator import naming
from swg_operator.commands.evidence.model import (
    ACCESS,
    CAPACITY,
    HARDENING,
    ISOLATION,
    LOCATION,
    Check,
    Facts,
    Result,
    unknown,
)
from swg_operator.commands.evidence.records import inspection_ca, notices, purge, retention
from swg_operator.naming import Component
from swg_operator.quantities import same_quantity

REGION_LABEL: Final = "topology.kubernetes.io/region"
NAMESPACE_NAME_LABEL: Final = "kubernetes.io/metadata.name"
NOT_SERVING_PHASES: Final = frozenset({"Cancelled", "Purging", "Purged"})

# The admins' questions (`kubectl auth can-i VERB RESOURCE[/NAME]`), and the answer the
# ClusterRole `swg-tenant-reader` must give (render/rbac.py): read their status, notices, CA
# certificate, pods and logs; nothing else, no write, and nothing of another tenant.
# (verb, resource, subresource, name, expected, in another tenant's namespace)
QUESTIONS: Final = (
    ("get", "configmaps", "", naming.tenant_status_name(), True, False),
    ("get", "configmaps", "", naming.notices_config_map_name(), True, False),
    ("get", "configmaps", "", naming.inspection_ca_certificate_name(), True, False),
    ("list", "pods", "", "", True, False),
    ("get", "pods", "log", "", True, False),
    ("get", "services", "proxy", "logstore:http", True, False),
    ("get", "secrets", "", "", False, False),
    ("get", "configmaps", "", "proxy-config", False, False),
    ("create", "pods", "exec", "", False, False),
    ("delete", "pods", "", "", False, False),
    ("patch", "deployments", "", "", False, False),
    ("get", "configmaps", "", naming.tenant_status_name(), False, True),
    ("get", "services", "proxy", "logstore:http", False, True),
)


def serving(facts: Facts) -> bool | None:
    """Whether the proxy should carry traffic (None when neither spec nor contract is known)."""
    if facts.status.get("cancellation") or facts.phase in NOT_SERVING_PHASES:
        return False
    suspended = facts.contract_value("suspended")
    return None if suspended is None else not suspended


# --- isolation ----------------------------------------------------------------------------------


def expected_policies(facts: Facts) -> tuple[set[str], set[str]]:
    """(must exist, must not exist) among the NetworkPolicies, as the renderer makes them
    (render/network.py) for the tenant's lifecycle."""
    must = {naming.POLICY_DEFAULT_DENY, naming.POLICY_ALLOW_DNS, naming.POLICY_LOGSTORE}
    proxy = {naming.POLICY_PROXY_INGRESS, naming.POLICY_PROXY_EGRESS}
    serves = serving(facts)
    if serves:
        must |= proxy
        if facts.contract_value("options", "antivirus", "enabled"):
            must.add(naming.POLICY_ANTIVIRUS)
    return must, (proxy if serves is False else set())


def _rules(policy: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    spec = policy.get("spec") or {}
    for rule in spec.get("ingress") or ():
        yield "from", rule
    for rule in spec.get("egress") or ():
        yield "to", rule


def _namespace_problem(peer: Mapping[str, Any], others: tuple[str, ...]) -> str | None:
    """Why a rule's peer reaches outside the tenant namespace where it must not: a namespace
    selector must name one namespace, never another tenant's."""
    selector = peer.get("namespaceSelector")
    if selector is None:
        return None
    labels = selector.get("matchLabels") or {}
    if selector.get("matchExpressions") or set(labels) != {NAMESPACE_NAME_LABEL}:
        return "a namespaceSelector that does not name one namespace"
    if labels[NAMESPACE_NAME_LABEL] in others:
        return f"another tenant's namespace {labels[NAMESPACE_NAME_LABEL]}"
    return None


def _is_default_deny(policy: Mapping[str, Any]) -> bool:
    spec = policy.get("spec") or {}
    return (
        not (spec.get("podSelector") or {})
        and set(spec.get("policyTypes") or ()) == {"Ingress", "Egress"}
        and not spec.get("ingress")
        and not spec.get("egress")
    )


def isolation(facts: Facts) -> Check:
    """The namespace's NetworkPolicies are the renderer's set: a default deny of ingress and
    egress, each allow policy the lifecycle needs and no other (policies add up, so any extra
    one can only open a path), and no rule that admits another tenant's namespace."""
    checked = f"NetworkPolicies of namespace {facts.namespace}"
    if not facts.policies.ok:
        return unknown(ISOLATION, "isolation", checked, facts.policies)
    policies = {str(p["metadata"]["name"]): p for p in facts.policies.items()}
    must, must_not = expected_policies(facts)
    known = must | {
        naming.POLICY_ANTIVIRUS,
        naming.POLICY_PROXY_INGRESS,
        naming.POLICY_PROXY_EGRESS,
    }
    problems = [f"{name} missing" for name in sorted(must - set(policies))]
    deny = policies.get(naming.POLICY_DEFAULT_DENY)
    if deny is not None and not _is_default_deny(deny):
        problems.append(f"{naming.POLICY_DEFAULT_DENY} does not deny all ingress and egress")
    problems += [
        f"{name} present though the tenant serves no traffic"
        for name in sorted(must_not & set(policies))
    ]
    problems += [f"{name} is not the operator's" for name in sorted(set(policies) - known)]
    for name, policy in sorted(policies.items()):
        for side, rule in _rules(policy):
            if not rule.get(side):  # no peer listed: every address and pod of the cluster
                problems.append(f"{name} has a rule open to every peer")
            for peer in rule.get(side) or ():
                problem = _namespace_problem(peer, facts.other_namespaces)
                if problem:
                    problems.append(f"{name} admits {problem}")
    return Check(
        ISOLATION,
        "isolation",
        checked,
        Result.FAIL if problems else Result.PASS,
        "; ".join(problems)
        or f"{len(policies)} NetworkPolicies, default deny of ingress and egress, no other "
        "tenant admitted",
        {"policies": sorted(policies), "required": sorted(must), "problems": problems},
    )


# --- hardening ----------------------------------------------------------------------------------


def _container_problems(name: str, pod: Mapping[str, Any]) -> list[str]:
    problems = []
    pod_context = pod.get("securityContext") or {}
    for container in [*(pod.get("initContainers") or ()), *(pod.get("containers") or ())]:
        context = container.get("securityContext") or {}
        where = f"{name}/{container.get('name')}"
        if not context.get("readOnlyRootFilesystem"):
            problems.append(f"{where}: root filesystem writable")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: privilege escalation allowed")
        if not (context.get("runAsNonRoot") or pod_context.get("runAsNonRoot")):
            problems.append(f"{where}: may run as root")
    return problems


def hardening(facts: Facts) -> Check:
    """Pod Security `restricted` enforced on the namespace, and every container of the
    workloads read-only, non-root, without privilege escalation."""
    checked = f"Namespace {facts.namespace} labels, Deployments' pod templates"
    if not facts.namespace_object.ok or not facts.deployments.ok:
        reading = facts.namespace_object if not facts.namespace_object.ok else facts.deployments
        return unknown(HARDENING, "hardening", checked, reading)
    labels = (facts.namespace_object.body.get("metadata") or {}).get("labels") or {}
    enforce = labels.get("pod-security.kubernetes.io/enforce")
    problems = [] if enforce == "restricted" else [f"Pod Security enforce is {enforce!r}"]
    for deployment in facts.deployments.items():
        pod = ((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}
        problems += _container_problems(str(deployment["metadata"]["name"]), pod)
    return Check(
        HARDENING,
        "hardening",
        checked,
        Result.FAIL if problems else Result.PASS,
        "; ".join(problems) or "Pod Security restricted enforced; containers hardened",
        {"podSecurityEnforce": enforce, "problems": problems},
    )


# --- access -------------------------------------------------------------------------------------


def access(facts: Facts) -> Check:
    """Each declared admin's rights as the authorizer answers them (SubjectAccessReview), against
    what the admins' ClusterRole grants; the caller's own (SelfSubjectAccessReview) are shown
    when the caller may not ask for others."""
    checked = "SubjectAccessReview per declared admin (SelfSubjectAccessReview for the caller)"
    rows = [a.row() for a in facts.access]
    admins = [a for a in facts.access if a.who != "you"]
    wrong = [a for a in admins if a.allowed is not None and a.allowed != a.expected]
    problems = [
        f"{a.who} {'may' if a.allowed else 'may not'} {a.verb} {a.resource}"
        f"{'/' + a.name if a.name else ''} in {a.namespace}"
        for a in wrong
    ]
    answered = [a for a in admins if a.allowed is not None]
    if problems:
        result = Result.FAIL
    elif facts.spec is not None and not facts.spec.get("admins"):
        return Check(ACCESS, "access", checked, Result.PASS, "no admins declared", rows)
    elif not answered:
        result = Result.UNKNOWN
    else:
        result = Result.PASS
    asked = len({a.who for a in answered})
    detail = "; ".join(problems) or (
        f"{asked} admin(s), {len(answered)} answers as the ClusterRole grants"
        if answered
        else "the caller may not ask for the admins' rights (no SubjectAccessReview)"
    )
    return Check(ACCESS, "access", checked, result, detail, rows)


# --- capacity -----------------------------------------------------------------------------------


def _replicas(facts: Facts, component: Component) -> int | None:
    for deployment in facts.deployments.items():
        if deployment["metadata"]["name"] == naming.workload_name(component):
            return int((deployment.get("spec") or {}).get("replicas", 1))
    return None


def quota(facts: Facts) -> Check:
    """The ResourceQuota is there and is the sizing the status reports; the workloads run the
    reported replicas while serving."""
    checked = "ResourceQuota and Deployments of the namespace, status.sizing"
    if not facts.quotas.ok:
        return unknown(CAPACITY, "quota", checked, facts.quotas)
    quotas = facts.quotas.items()
    sizing = facts.status.get("sizing") or {}
    declared = facts.contract_value("sizing")
    hard = dict((quotas[0].get("spec") or {}).get("hard") or {}) if quotas else {}
    used = dict((quotas[0].get("status") or {}).get("used") or {}) if quotas else {}
    problems = [] if quotas else ["no ResourceQuota"]
    for key, field in (("limits.cpu", "quotaCpu"), ("limits.memory", "quotaMemory")):
        if (
            quotas
            and sizing.get(field)
            and not same_quantity(str(hard.get(key, "0")), sizing[field])
        ):
            problems.append(f"{key} {hard.get(key)} is not the sized {sizing[field]}")
    if serving(facts) and facts.deployments.ok:
        for component, field in (
            (Component.PROXY, "proxyReplicas"),
            (Component.ANTIVIRUS, "antivirusReplicas"),
        ):
            live = _replicas(facts, component)
            if field in sizing and live is not None and live != int(sizing[field]):
                problems.append(f"{component} runs {live} replicas, sized {sizing[field]}")
    return Check(
        CAPACITY,
        "quota",
        checked,
        Result.FAIL if problems else Result.PASS,
        "; ".join(problems)
        or f"quota limits {hard.get('limits.cpu')} CPU, {hard.get('limits.memory')} memory, "
        f"as sized for {(declared or {}).get('endpoints', '?')} endpoints and "
        f"{(declared or {}).get('requestsPerSecond', '?')} requests/s",
        {"hard": hard, "used": used, "sizing": sizing or None, "declared": declared},
    )


# --- location -----------------------------------------------------------------------------------


def _pinned(pod: Mapping[str, Any], region: str) -> bool:
    """Every node this pod template may be scheduled on is in `region`."""
    if (pod.get("nodeSelector") or {}).get(REGION_LABEL) == region:
        return True
    node = (pod.get("affinity") or {}).get("nodeAffinity") or {}
    terms = (node.get("requiredDuringSchedulingIgnoredDuringExecution") or {}).get(
        "nodeSelectorTerms"
    ) or []
    return bool(terms) and all(
        any(
            e.get("key") == REGION_LABEL
            and e.get("operator") == "In"
            and e.get("values") == [region]
            for e in term.get("matchExpressions") or ()
        )
        for term in terms
    )


def placement(facts: Facts) -> Check:
    checked = f"Deployments' node affinity on {REGION_LABEL}"
    spec_region = ((facts.spec or {}).get("placement") or {}).get("region")
    region = spec_region or facts.contract_value("region")
    if region in (None, "(any)"):
        known = facts.spec is not None or facts.contract is not None
        result = Result.NOT_APPLICABLE if known else Result.UNKNOWN
        return Check(
            LOCATION,
            "placement",
            checked,
            result,
            "no region declared" if known else "contract not readable",
        )
    if not facts.deployments.ok:
        return unknown(LOCATION, "placement", checked, facts.deployments)
    names = [str(d["metadata"]["name"]) for d in facts.deployments.items()]
    unpinned = [
        str(d["metadata"]["name"])
        for d in facts.deployments.items()
        if not _pinned(((d.get("spec") or {}).get("template") or {}).get("spec") or {}, region)
    ]
    problems = [f"not pinned to {region}: {', '.join(unpinned)}"] if unpinned else []
    if not names:
        problems.append("no workload found")
    return Check(
        LOCATION,
        "placement",
        checked,
        Result.FAIL if problems else Result.PASS,
        "; ".join(problems) or f"{len(names)} workloads pinned to region {region}",
        {"region": region, "workloads": names, "unpinned": unpinned},
    )


def gone(facts: Facts) -> bool:
    """The tenant and its namespace no longer exist (purged, or never were)."""
    return facts.tenant_reading.status == 404 and facts.namespace_object.status == 404


def judge(facts: Facts, now: datetime.datetime) -> list[Check]:
    """Every check, in the order of docs/compliance.md. Of a tenant that is gone only the purge
    is left to judge; the rest does not apply."""
    steps: list[Callable[[], Check]] = [
        lambda: isolation(facts),
        lambda: hardening(facts),
        lambda: access(facts),
        lambda: quota(facts),
        lambda: placement(facts),
        lambda: retention(facts),
        lambda: inspection_ca(facts, now),
        lambda: notices(facts),
    ]
    checks = [step() for step in steps]
    if gone(facts):
        checks = [
            replace(c, result=Result.NOT_APPLICABLE, detail="the tenant and its namespace are gone")
            for c in checks
        ]
    return [*checks, purge(facts, now)]
