"""Manifest security analysis: checkov's Kubernetes checks over every object the renderer emits
for a range of tenants, and over the chart's `helm template` output; and no RBAC wildcard.

checkov runs once, without skips, over all of it (pinned, in its own venv, offline: see
`devtools.security.analysis.run_checkov`). Every failure must be listed in `JUSTIFIED` below, by
check and resource, with the reason the check does not apply; anything else fails the test, and
so does a justification that no longer matches any failure (so the list cannot rot). This is
narrower than checkov's `--skip-check`, which would switch a check off for every object.

The renderer and the chart are run as production runs them: images pinned by digest (the
chart's `image.digest` and `dataplane.images.*.digest` values, which reach the operator's
settings). With tags only, CKV_K8S_43 fails by design: that is the platform team's choice.
"""

from __future__ import annotations

import copy
import fnmatch
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from devtools.security.analysis import CheckovFinding, CheckovReport, run_checkov
from devtools.security.manifests import chart_objects, example_spec, render

from swg_operator.api import Images, OperatorSettings
from swg_operator.render import Lifecycle

DIGEST = "sha256:" + "ab" * 32
SETTINGS = OperatorSettings(
    images=Images(
        proxy=f"ghcr.io/swg-operator/proxy:0.1.0@{DIGEST}",
        antivirus=f"ghcr.io/swg-operator/antivirus:0.1.0@{DIGEST}",
        logstore=f"ghcr.io/swg-operator/logstore:0.1.0@{DIGEST}",
    ),
    api_server_cidrs=("172.18.0.2/32",),
)
CHART_VALUES = {
    "image.digest": DIGEST,
    "dataplane.images.proxy.digest": DIGEST,
    "dataplane.images.antivirus.digest": DIGEST,
    "dataplane.images.logstore.digest": DIGEST,
    "metrics.serviceMonitor.enabled": "true",
    "metrics.prometheusRule.enabled": "true",
    "networkPolicy.apiServer.cidrs[0]": "172.18.0.2/32",
}

# (check, resource pattern) -> why the check does not apply. Resource patterns are checkov's
# `Kind.namespace.name` (namespace "default" for cluster-scoped objects), fnmatch-style.
JUSTIFIED: dict[tuple[str, str], str] = {
    # Ensure that Service Account Tokens are only mounted where necessary.
    ("CKV_K8S_38", "Deployment.swg-system.swg-swg-operator"): (
        "the operator talks to the API server: its token is the one mount that is necessary "
        "(every tenant pod and the test pod set automountServiceAccountToken: false)"
    ),
    # Liveness and readiness probes should be configured.
    ("CKV_K8S_8", "Pod.swg-system.swg-swg-operator-test-health"): (
        "the `helm test` hook: a one-shot Pod (restartPolicy Never) that exits after one "
        "request; a probe has nothing to watch"
    ),
    ("CKV_K8S_9", "Pod.swg-system.swg-swg-operator-test-health"): (
        "the `helm test` hook: a one-shot Pod (restartPolicy Never); nothing routes to it"
    ),
}


def _spec(**extra: Any) -> dict[str, Any]:
    return {
        "serviceCode": "SWG-0007000",
        "sizing": {"endpoints": 300, "requestsPerSecond": 150},
        "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
        **extra,
    }


# name -> (spec, lifecycle, settings overrides)
TENANTS: dict[str, tuple[dict[str, Any], Lifecycle, dict[str, Any]]] = {
    "minimal": (example_spec("minimal"), Lifecycle.ACTIVE, {}),
    "full": (example_spec("full"), Lifecycle.ACTIVE, {}),
    "full-suspended": (example_spec("full"), Lifecycle.SUSPENDED, {}),
    "full-cancelled": (example_spec("full"), Lifecycle.CANCELLED, {}),
    "no-antivirus": (
        _spec(antivirus={"enabled": False}, placement={"region": "region-b"}),
        Lifecycle.ACTIVE,
        {},
    ),
    # HTTPS inspection with the CA the operator generates, a large tenant (several replicas,
    # disruption budgets), a NodePort Service.
    "inspect-large": (
        _spec(
            sizing={"endpoints": 200_000, "requestsPerSecond": 40_000},
            options={"httpsInspection": {"enabled": True}},
            logs={"retentionDays": 30, "timeZone": "Europe/Paris"},
        ),
        Lifecycle.ACTIVE,
        {"proxy_service_type": "NodePort"},
    ),
    "clusterip": (_spec(), Lifecycle.ACTIVE, {"proxy_service_type": "ClusterIP"}),
}


def tenant_objects() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    for name, (spec, lifecycle, overrides) in TENANTS.items():
        settings = SETTINGS.model_copy(update=overrides)
        yield name, list(render(name, spec, settings=settings, lifecycle=lifecycle).objects)


def write(directory: Path, name: str, objects: list[dict[str, Any]]) -> None:
    (directory / f"{name}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))


@cache
def analysed(directory: Path) -> tuple[CheckovReport, tuple[dict[str, Any], ...]]:
    objects: list[dict[str, Any]] = []
    for name, tenant in tenant_objects():
        write(directory, f"tenant-{name}", tenant)
        objects += tenant
    chart = chart_objects(CHART_VALUES)
    write(directory, "chart", chart)
    objects += chart
    return run_checkov(directory), tuple(objects)


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[CheckovReport, tuple[Any, ...]]:
    return analysed(tmp_path_factory.mktemp("checkov"))


def justification(finding: CheckovFinding) -> str | None:
    for (check, pattern), reason in JUSTIFIED.items():
        if finding.check_id == check and fnmatch.fnmatchcase(finding.resource, pattern):
            return reason
    return None


def test_no_unjustified_checkov_failure(report: tuple[CheckovReport, Any]) -> None:
    checkov, _ = report
    assert not checkov.parsing_errors
    unjustified = [str(f) for f in checkov.failed if justification(f) is None]
    assert not unjustified, "\n".join(unjustified)
    assert not checkov.skipped  # no inline skip annotation anywhere: every skip is listed here


def test_every_justification_still_matches_a_failure(report: tuple[CheckovReport, Any]) -> None:
    checkov, _ = report
    stale = [
        f"{check} {pattern}"
        for check, pattern in JUSTIFIED
        if not any(
            f.check_id == check and fnmatch.fnmatchcase(f.resource, pattern) for f in checkov.failed
        )
    ]
    assert not stale, "no longer failing, remove the justification: " + ", ".join(stale)


CHECKED_KINDS = frozenset(
    {"Deployment", "Pod", "Service", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"}
)


def test_checkov_judged_every_workload_service_and_role(
    report: tuple[CheckovReport, tuple[dict[str, Any], ...]],
) -> None:
    checkov, objects = report
    wanted = {
        f"{o['kind']}.{o['metadata'].get('namespace', 'default')}.{o['metadata']['name']}"
        for o in objects
        if o["kind"] in CHECKED_KINDS
    }
    assert wanted
    assert not (wanted - checkov.resources), sorted(wanted - checkov.resources)
    assert len(checkov.passed) > 10 * len(wanted)


def test_a_privileged_pod_fails_checkov(tmp_path: Path) -> None:
    """The analysis can fail: one tenant's proxy made privileged, root, with a writable root
    filesystem, host network and its token mounted."""
    _, objects = next(tenant_objects())
    objects = copy.deepcopy(objects)
    proxy = next(
        o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "proxy"
    )
    pod = proxy["spec"]["template"]["spec"]
    pod["hostNetwork"] = True
    pod["automountServiceAccountToken"] = True
    pod["securityContext"] = {}
    pod["containers"][0]["securityContext"] = {"privileged": True, "runAsUser": 0}
    write(tmp_path, "bad", objects)
    failed = {(f.check_id, f.resource) for f in run_checkov(tmp_path).failed}
    resource = "Deployment.swg-minimal.proxy"
    for check in ("CKV_K8S_16", "CKV_K8S_19", "CKV_K8S_22", "CKV_K8S_23", "CKV_K8S_38"):
        assert (check, resource) in failed, check


# --- RBAC --------------------------------------------------------------------------------------


def _roles(objects: tuple[dict[str, Any], ...]) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in objects:
        if obj["kind"] in ("Role", "ClusterRole"):
            where = (
                f"{obj['kind']} {obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            )
            for index, rule in enumerate(obj.get("rules") or []):
                yield f"{where} rules[{index}]", rule


def test_no_role_or_cluster_role_has_a_wildcard(
    report: tuple[CheckovReport, tuple[dict[str, Any], ...]],
) -> None:
    _, objects = report
    roles = list(_roles(objects))
    assert any("ClusterRole /swg-swg-operator" in where for where, _ in roles)
    assert any("ClusterRole /swg-tenant-reader" in where for where, _ in roles)
    for where, rule in roles:
        for key in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
            for value in rule.get(key) or []:
                assert "*" not in value, f"{where}.{key}: {value!r}"
    assert not any(o["kind"] == "ClusterRole" and o.get("aggregationRule") for o in objects)


def test_the_operator_cannot_read_secrets_or_customer_logs(
    report: tuple[CheckovReport, tuple[dict[str, Any], ...]],
) -> None:
    _, objects = report
    operator = [
        rule
        for o in objects
        if o["kind"] in ("Role", "ClusterRole") and o["metadata"]["name"] == "swg-swg-operator"
        for rule in o["rules"]
    ]
    assert operator
    granted = {
        (res, verb)
        for rule in operator
        for res in rule.get("resources", [])
        for verb in rule["verbs"]
    }
    for resource in ("pods/log", "pods/exec", "pods/portforward", "services/proxy", "pods/proxy"):
        assert not [g for g in granted if g[0] == resource], resource
    # Secrets: `create` (the generated inspection CA, the receipts' signing key; a POST
    # discloses nothing), `get` of the CA's Secret by name (checked against the certificate
    # published to the admins), and `get` of the signing key's by name (the operator's own).
    secrets = {
        (verb, tuple(rule.get("resourceNames", ())))
        for rule in operator
        if "secrets" in rule.get("resources", [])
        for verb in rule["verbs"]
    }
    allowed = {
        ("create", ()),
        ("get", ("https-inspection-ca", "proxy-access-tls")),
        ("get", ("swg-receipt-signing-key",)),
    }
    assert secrets <= allowed, secrets


OPERATOR_ROLE = "ClusterRole.default.swg-swg-operator"


def test_checkov_finds_no_escalation_in_the_operator_role(
    report: tuple[CheckovReport, tuple[dict[str, Any], ...]],
) -> None:
    """CKV_K8S_158 (escalate on roles) and CKV_K8S_157 (bind) judged the operator's
    ClusterRole and passed it. CKV_K8S_157 looks for `bind` on rolebindings, where the verb
    means nothing: the test below covers `bind` on roles as Kubernetes checks it."""
    checkov, _ = report
    passed = {(f.check_id, f.resource) for f in checkov.passed}
    assert ("CKV_K8S_158", OPERATOR_ROLE) in passed
    assert ("CKV_K8S_157", OPERATOR_ROLE) in passed


def test_nothing_escalates_and_bind_names_the_tenant_admins_role_only(
    report: tuple[CheckovReport, tuple[dict[str, Any], ...]],
) -> None:
    """No role, of a tenant or of the chart, grants `escalate` or `impersonate`; `bind` is the
    operator's, on the one ClusterRole it binds for tenant admins (by name), nothing else."""
    _, objects = report
    binds = []
    for where, rule in _roles(objects):
        assert not {"escalate", "impersonate"} & set(rule["verbs"]), where
        if "bind" in rule["verbs"]:
            binds.append((where, rule))
    assert len(binds) == 1, binds
    where, rule = binds[0]
    assert where.startswith("ClusterRole /swg-swg-operator")
    assert rule["verbs"] == ["bind"]
    assert rule["resources"] == ["clusterroles"]
    assert rule["resourceNames"] == ["swg-tenant-reader"]
