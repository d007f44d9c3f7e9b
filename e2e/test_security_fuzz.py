"""Fuzzed specs against the real API server, and the operator's verdict on specs it must judge.

* A sample of fuzzed specs that `parse_spec` accepts: the SecureWebGateway itself is admitted by
  the CRD (the API's two validators agree in that direction), and every object rendered from
  it is admitted by a server-side dry-run, with PodSecurity `restricted` and no warning, its
  pod templates dry-run as Pods. e2e/test_render_dryrun.py does this for the two examples; here
  the specs are generated (at the edges of every pattern and bound, long lists).
* Specs that pass the CRD but that only the operator can judge (an unknown category in each
  place a category is named, an ICAP sandbox inside the cluster or at the metadata address)
  end `Stalled` with a reason and a message naming the field, with the operator running.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from devtools.security.hostile import plausible_specs
from devtools.security.manifests import render
from hypothesis import HealthCheck, Phase, assume, given, settings

from e2e.cluster import Cluster, unique_name, wait_until
from e2e.operator_process import (
    LOG_DIR,
    OperatorProcess,
    condition,
    forget_tenant,
    get_tenant,
    tenant_manifest,
)
from swg_operator.api import SpecError, parse_spec
from swg_operator.render import RenderError, TenantManifests

pytestmark = pytest.mark.cluster

CREATED_FOR_REAL = ("Namespace", "ServiceAccount", "ResourceQuota", "LimitRange")
EXAMPLES = int(os.environ.get("SWG_FUZZ_EXAMPLES", "0")) or 8
TIMEOUT = 60.0


def assert_no_warning(stderr: str, what: str) -> None:
    assert "warning" not in stderr.lower(), f"{what}: {stderr}"


def pod_from_template(deployment: dict[str, Any]) -> dict[str, Any]:
    template = deployment["spec"]["template"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{deployment['metadata']['name']}-dry-run",
            "namespace": deployment["metadata"]["namespace"],
            "labels": template["metadata"]["labels"],
        },
        "spec": template["spec"],
    }


def quota_computed(cluster: Cluster, namespace: str) -> bool:
    quotas = cluster.kubectl_json("get", "resourcequota", "-n", namespace)["items"]
    return bool(quotas) and all(q.get("status", {}).get("hard") for q in quotas)


def as_list(objects: list[dict[str, Any]]) -> str:
    """The objects as one JSON List: generated strings such as `y` or `0x1` stay strings (a
    YAML 1.1 reader such as kubectl's would take them for a boolean or a number)."""
    return json.dumps({"apiVersion": "v1", "kind": "List", "items": objects})


def admit(cluster: Cluster, name: str, raw: dict[str, Any], manifests: TenantManifests) -> None:
    tenant = {**tenant_manifest(name), "spec": raw}
    result = cluster.kubectl(
        "create", "--dry-run=server", "-o", "name", "-f", "-", input=as_list([tenant])
    )
    assert_no_warning(result.stderr, "the SecureWebGateway")

    real = [o for o in manifests.objects if o["kind"] in CREATED_FOR_REAL]
    rest = [o for o in manifests.objects if o["kind"] not in CREATED_FOR_REAL]
    # POST (create), not server-side apply: kubectl sends an apply patch as unescaped JSON,
    # which the API server reads with its YAML decoder, and that refuses C1 control characters
    # that the API admits in free text (displayName); the operator's client escapes them.
    # The controllers create the `default` ServiceAccount with the namespace: wait for it (pods
    # are refused before it exists); the rendered one only turns its token off.
    assert real[0]["kind"] == "Namespace"
    created = cluster.kubectl("create", "-f", "-", input=as_list(real[:1]))
    assert_no_warning(created.stderr, "namespace")
    wait_until(
        lambda: (
            cluster.kubectl(
                "get", "serviceaccount", "default", "-n", manifests.namespace, check=False
            ).returncode
            == 0
        ),
        timeout=TIMEOUT,
        what=f"ServiceAccount {manifests.namespace}/default",
    )
    others = [
        o for o in real[1:] if (o["kind"], o["metadata"]["name"]) != ("ServiceAccount", "default")
    ]
    created = cluster.kubectl("create", "-f", "-", input=as_list(others))
    assert_no_warning(created.stderr, "namespace, accounts, quota, limits")
    wait_until(
        lambda: quota_computed(cluster, manifests.namespace),
        timeout=TIMEOUT,
        what=f"quota status in {manifests.namespace}",
    )
    dry_run = cluster.kubectl(
        "create", "--dry-run=server", "-o", "name", "-f", "-", input=as_list(rest)
    )
    assert_no_warning(dry_run.stderr, "dry-run of the tenant's objects")
    assert len(dry_run.stdout.split()) == len(rest), dry_run.stdout
    for deployment in (o for o in manifests.objects if o["kind"] == "Deployment"):
        pod = pod_from_template(deployment)
        result = cluster.kubectl(
            "create", "--dry-run=server", "-o", "name", "-f", "-", input=as_list([pod])
        )
        assert_no_warning(result.stderr, f"pod of {deployment['metadata']['name']}")


def test_fuzzed_accepted_specs_are_admitted_by_the_api_server(prepared: Cluster) -> None:
    cluster = prepared
    admitted: list[str] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        phases=(Phase.explicit, Phase.generate),  # no shrinking: each example costs seconds
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(plausible_specs())
    def check(raw: dict[str, Any]) -> None:
        try:
            parse_spec(raw)
        except SpecError:
            assume(False)
        name = unique_name("fuzz")
        try:
            manifests = render(name, raw)
        except RenderError:
            assume(False)
            return
        try:
            admit(cluster, name, raw, manifests)
        finally:
            cluster.kubectl(
                "delete",
                "namespace",
                f"swg-{name}",
                "--wait=false",
                "--ignore-not-found",
                check=False,
            )
        admitted.append(name)

    check()
    assert len(admitted) >= EXAMPLES // 2, admitted


# --- what only the operator can judge ----------------------------------------------------------


@pytest.fixture(scope="module")
def operator(prepared: Cluster) -> Iterator[OperatorProcess]:
    process = OperatorProcess(prepared, log_path=LOG_DIR / "test_security_fuzz.log")
    with process:
        yield process


JUDGED: dict[str, tuple[dict[str, Any], str, str]] = {
    "unknown-category": (
        {"urlFiltering": {"blockedCategories": ["malware", "no-such-category"]}},
        "spec.urlFiltering.blockedCategories[1]",
        "UnknownCategory",
    ),
    "unknown-policy-category": (
        {
            "urlFiltering": {
                "policies": [
                    {"name": "lab", "sourceCIDRs": ["192.0.2.0/26"], "blockedCategories": ["zz"]}
                ]
            }
        },
        "spec.urlFiltering.policies[0].blockedCategories[0]",
        "UnknownCategory",
    ),
    "unknown-no-inspect-category": (
        {
            "options": {
                "httpsInspection": {"enabled": True, "doNotInspect": {"categories": ["bank_x"]}}
            }
        },
        "spec.options.httpsInspection.doNotInspect.categories[0]",
        "UnknownCategory",
    ),
    "sandbox-inside-the-cluster": (
        {"options": {"sandbox": {"enabled": True, "icapURL": "icaps://10.1.2.3:1344/respmod"}}},
        "spec.options.sandbox.icapURL",
        "SandboxUnreachable",
    ),
    "sandbox-in-another-cluster-network": (
        {"options": {"sandbox": {"enabled": True, "icapURL": "icaps://172.16.0.9/x"}}},
        "spec.options.sandbox.icapURL",
        "SandboxUnreachable",
    ),
    "missing-signature-configmap": (
        {"antivirus": {"customSignatures": {"name": "no-such-configmap"}}},
        "spec.antivirus.customSignatures",
        "CustomSignaturesNotFound",
    ),
}


@pytest.fixture
def tenant_name(prepared: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = unique_name(f"judged-{request.node.callspec.id}"[:24])
    yield name
    forget_tenant(prepared, name)


@pytest.mark.parametrize("case", sorted(JUDGED))
def test_a_spec_only_the_operator_can_judge_ends_stalled_naming_the_field(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str, case: str
) -> None:
    spec, field, reason = JUDGED[case]
    cluster = prepared
    cluster.apply(tenant_manifest(tenant_name, **spec))  # the CRD admits it

    def stalled() -> dict[str, Any] | None:
        body = get_tenant(cluster, tenant_name)
        return body if condition(body, "Stalled").get("status") == "True" else None

    body = wait_until(stalled, timeout=TIMEOUT, what=f"{tenant_name} Stalled")
    verdict = condition(body, "Stalled")
    assert verdict["reason"] == reason, verdict
    assert field in verdict["message"], verdict
    assert body["status"]["observedGeneration"] == 1
    assert operator.proc is not None
    assert operator.proc.poll() is None, "the operator exited"


# Specs the operator should judge and does not yet (see docs/security.md, findings).
