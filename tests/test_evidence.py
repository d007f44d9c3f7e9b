"""The evidence command's judgements (commands/evidence/judge.py, records.py): a tenant exactly as
the renderer makes it passes every check; each deliberately broken copy fails the check that
covers it, naming what is wrong. The facts are the rendered objects (tests/evidence_support.py);
the cluster tier (e2e/test_evidence.py) reads them from a real API server."""

from __future__ import annotations

import copy
import datetime
from dataclasses import replace
from typing import Any

import pytest

from evidence_support import NOW, OTHER, edit, facts_for, listing, notices_data
from swg_operator.commands.evidence.collect import verify_receipts
from swg_operator.commands.evidence.judge import (
    QUESTIONS,
    access,
    hardening,
    isolation,
    judge,
    placement,
    quota,
)
from swg_operator.commands.evidence.model import AccessAnswer, Facts, Reading, Result
from swg_operator.commands.evidence.records import inspection_ca, notices, purge, retention
from swg_operator.render import Lifecycle
from swg_operator.render.rbac import reader_rules

GENERATED_CA: dict[str, Any] = {"enabled": True}


@pytest.mark.parametrize(
    ("example", "lifecycle"),
    [
        ("full", Lifecycle.ACTIVE),
        ("minimal", Lifecycle.ACTIVE),
        ("full", Lifecycle.SUSPENDED),
        ("full", Lifecycle.CANCELLED),
    ],
)
def test_a_tenant_as_rendered_passes_every_check(example: str, lifecycle: Lifecycle) -> None:
    checks = judge(facts_for(example, lifecycle=lifecycle), NOW)
    assert [c.field for c in checks] == [
        "isolation",
        "hardening",
        "access",
        "quota",
        "placement",
        "retention",
        "inspectionCa",
        "notices",
        "purge",
    ]
    assert {c.field: c.result for c in checks if c.result not in (Result.PASS,)} == (
        {"inspectionCa": Result.NOT_APPLICABLE}
        | ({"placement": Result.NOT_APPLICABLE} if example == "minimal" else {})
    )


# --- isolation ----------------------------------------------------------------------------------


def _isolation_with(facts: Facts, name: str, change: Any) -> Any:
    return isolation(replace(facts, policies=edit(facts.policies, name, change)))


def test_isolation_fails_without_the_default_deny() -> None:
    check = _isolation_with(facts_for(), "default-deny", lambda p: None)
    assert check.result is Result.FAIL
    assert "default-deny missing" in check.detail


def test_isolation_fails_when_the_default_deny_allows_something() -> None:
    def allow_all(policy: dict[str, Any]) -> dict[str, Any]:
        policy["spec"]["ingress"] = [{}]
        return policy

    check = _isolation_with(facts_for(), "default-deny", allow_all)
    assert check.result is Result.FAIL
    assert "does not deny all ingress and egress" in check.detail


@pytest.mark.parametrize(
    ("selector", "words"),
    [
        ({}, "does not name one namespace"),
        ({"matchLabels": {"kubernetes.io/metadata.name": OTHER}}, "another tenant's namespace"),
        ({"matchExpressions": [{"key": "x", "operator": "Exists"}]}, "does not name one"),
    ],
)
def test_isolation_fails_when_a_rule_admits_another_namespace(
    selector: dict[str, Any], words: str
) -> None:
    def admit(policy: dict[str, Any]) -> dict[str, Any]:
        policy["spec"]["ingress"].append({"from": [{"namespaceSelector": selector}]})
        return policy

    check = _isolation_with(facts_for(), "logstore", admit)
    assert check.result is Result.FAIL
    assert f"logstore admits {'a namespaceSelector' if not selector else ''}" in check.detail
    assert words in check.detail


def test_isolation_fails_on_a_rule_that_lists_no_peer() -> None:
    """A rule without `from` admits every source: the renderer never writes one."""

    def open_up(policy: dict[str, Any]) -> dict[str, Any]:
        policy["spec"]["ingress"].append({"ports": [{"protocol": "TCP", "port": 8080}]})
        return policy

    check = _isolation_with(facts_for(), "logstore", open_up)
    assert check.result is Result.FAIL
    assert "logstore has a rule open to every peer" in check.detail


def test_isolation_fails_on_a_policy_that_is_not_the_operators() -> None:
    facts = facts_for()
    extra = dict(copy.deepcopy(facts.policies.items()[0]))
    extra["metadata"]["name"] = "allow-everything"
    extra["spec"] = {"podSelector": {}, "ingress": [{}], "policyTypes": ["Ingress"]}
    check = isolation(replace(facts, policies=listing([*facts.policies.items(), extra])))
    assert check.result is Result.FAIL
    assert "allow-everything is not the operator's" in check.detail


def test_a_cancelled_tenant_must_have_no_client_or_internet_policy() -> None:
    serving = facts_for().policies.items()
    cancelled = facts_for(lifecycle=Lifecycle.CANCELLED)
    check = isolation(replace(cancelled, policies=listing(serving)))
    assert check.result is Result.FAIL
    assert "proxy-egress present though the tenant serves no traffic" in check.detail


def test_a_serving_tenant_misses_its_proxy_policies() -> None:
    check = _isolation_with(facts_for(), "proxy-ingress-clients", lambda p: None)
    assert check.result is Result.FAIL
    assert "proxy-ingress-clients missing" in check.detail


def test_isolation_is_unknown_when_the_policies_cannot_be_read() -> None:
    check = isolation(replace(facts_for(), policies=Reading(403)))
    assert check.result is Result.UNKNOWN
    assert "403" in check.detail


# --- hardening ----------------------------------------------------------------------------------


def test_hardening_fails_on_a_namespace_below_restricted() -> None:
    facts = facts_for()
    namespace = copy.deepcopy(facts.namespace_object.body)
    namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] = "baseline"
    check = hardening(replace(facts, namespace_object=Reading(200, namespace)))
    assert check.result is Result.FAIL
    assert "Pod Security enforce is 'baseline'" in check.detail


def test_hardening_fails_on_a_container_that_may_escalate() -> None:
    def escalate(deployment: dict[str, Any]) -> dict[str, Any]:
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        container["securityContext"]["allowPrivilegeEscalation"] = True
        return deployment

    facts = facts_for()
    check = hardening(replace(facts, deployments=edit(facts.deployments, "proxy", escalate)))
    assert check.result is Result.FAIL
    assert "proxy/" in check.detail
    assert "privilege escalation allowed" in check.detail


# --- access -------------------------------------------------------------------------------------


def _can(rules: list[dict[str, Any]], verb: str, resource: str, name: str) -> bool:
    return any(
        verb in rule["verbs"]
        and resource in rule["resources"]
        and (not rule.get("resourceNames") or name in rule["resourceNames"])
        for rule in rules
    )


def test_the_questions_expect_what_the_admins_cluster_role_grants() -> None:
    """The expected answers are the ClusterRole's (render/rbac.py), not a second opinion."""
    rules = reader_rules()
    for verb, resource, sub, name, expected, elsewhere in QUESTIONS:
        full = f"{resource}/{sub}" if sub else resource
        granted = _can(rules, verb, full, name)
        assert (False if elsewhere else granted) == expected, (verb, full, name)


def test_access_fails_when_an_admin_may_read_secrets_or_not_their_status() -> None:
    facts = facts_for()
    changed = tuple(
        replace(a, allowed=True)
        if a.resource == "secrets"
        else replace(a, allowed=False)
        if a.name == "tenant-status" and a.expected
        else a
        for a in facts.access
    )
    check = access(replace(facts, access=changed))
    assert check.result is Result.FAIL
    assert "user alice@example-corp.example may get secrets in ns" in check.detail
    assert "may not get configmaps/tenant-status" in check.detail


def test_access_fails_when_an_admin_reaches_another_tenant() -> None:
    facts = facts_for()
    changed = tuple(replace(a, allowed=True) if a.namespace == OTHER else a for a in facts.access)
    check = access(replace(facts, access=changed))
    assert check.result is Result.FAIL
    assert f"in {OTHER}" in check.detail


def test_access_is_unknown_when_the_caller_may_not_ask_for_others() -> None:
    mine = (AccessAnswer("you", "ns", "get", "configmaps", "tenant-status", True, True),)
    refused = (AccessAnswer("user a", "ns", "get", "secrets", "", False, None, 403),)
    check = access(replace(facts_for(), access=refused + mine))
    assert check.result is Result.UNKNOWN
    assert {"who": "you", "allowed": True}.items() <= check.data[-1].items()


# --- quota and placement ------------------------------------------------------------------------


def test_quota_fails_without_a_resource_quota() -> None:
    check = quota(replace(facts_for(), quotas=listing([])))
    assert check.result is Result.FAIL
    assert "no ResourceQuota" in check.detail


def test_quota_fails_when_the_limits_are_not_the_sized_ones() -> None:
    def shrink(q: dict[str, Any]) -> dict[str, Any]:
        q["spec"]["hard"]["limits.cpu"] = "1"
        return q

    facts = facts_for()
    check = quota(
        replace(
            facts, quotas=edit(facts.quotas, facts.quotas.items()[0]["metadata"]["name"], shrink)
        )
    )
    assert check.result is Result.FAIL
    assert "limits.cpu 1 is not the sized" in check.detail


def test_quota_fails_when_the_proxy_runs_other_replicas_than_sized() -> None:
    def scale(d: dict[str, Any]) -> dict[str, Any]:
        d["spec"]["replicas"] = 7
        return d

    facts = facts_for()
    check = quota(replace(facts, deployments=edit(facts.deployments, "proxy", scale)))
    assert check.result is Result.FAIL
    assert "proxy runs 7 replicas" in check.detail


def test_placement_fails_on_a_workload_not_pinned_to_the_region() -> None:
    def unpin(d: dict[str, Any]) -> dict[str, Any]:
        d["spec"]["template"]["spec"]["affinity"].pop("nodeAffinity")
        return d

    facts = facts_for()
    check = placement(replace(facts, deployments=edit(facts.deployments, "logstore", unpin)))
    assert check.result is Result.FAIL
    assert "not pinned to region-local: logstore" in check.detail


def test_placement_reads_the_region_from_the_mirrored_contract() -> None:
    """An admin reads no spec: the region comes from the contract in `tenant-status`."""
    check = placement(replace(facts_for(), spec=None))
    assert check.result is Result.PASS
    assert check.data["region"] == "region-local"


# --- records ------------------------------------------------------------------------------------


def _logstore_env(facts: Facts, name: str, value: str | None) -> Facts:
    def change(d: dict[str, Any]) -> dict[str, Any]:
        for container in d["spec"]["template"]["spec"]["containers"]:
            env = [e for e in container.get("env") or () if e["name"] != name]
            container["env"] = env + ([{"name": name, "value": value}] if value else [])
        return d

    return replace(facts, deployments=edit(facts.deployments, "logstore", change))


def test_retention_fails_when_the_log_store_keeps_other_days_than_contracted() -> None:
    check = retention(_logstore_env(facts_for(), "SWG_LOG_RETENTION_DAYS", "7"))
    assert check.result is Result.FAIL
    assert "log store keeps 7 days, contract 60" in check.detail


def test_retention_fails_when_the_legal_hold_is_not_applied() -> None:
    held = facts_for(cancellation={"legalHold": True, "legalHoldReason": "court order"})
    assert retention(held).result is Result.PASS
    check = retention(_logstore_env(held, "SWG_LOG_LEGAL_HOLD", None))
    assert check.result is Result.FAIL
    assert "legal hold not on" in check.detail


def test_retention_fails_without_the_log_volume_claim() -> None:
    check = retention(replace(facts_for(), claims=listing([])))
    assert check.result is Result.FAIL
    assert "no log volume claim logstore-data" in check.detail


def _generated(**kwargs: Any) -> Facts:
    name, spec = "full", facts_for().spec or {}
    options = copy.deepcopy(spec["options"])
    options["httpsInspection"].pop("caSecret")
    return facts_for(name, options=options, **kwargs)


def test_the_generated_ca_is_judged_by_its_expiry() -> None:
    facts = _generated()
    assert inspection_ca(facts, NOW).result is Result.PASS
    late = NOW + datetime.timedelta(days=2 * 365 - 10)
    check = inspection_ca(facts, late)
    assert check.result is Result.FAIL
    assert "expires" in check.detail
    assert check.data["ageDays"] == 2 * 365 - 10


def test_a_missing_generated_ca_certificate_fails() -> None:
    check = inspection_ca(replace(_generated(), ca_certificate=Reading(404)), NOW)
    assert check.result is Result.FAIL
    assert "no readable CA certificate" in check.detail


def test_notices_fail_when_a_mail_failed_or_none_is_kept() -> None:
    facts = facts_for()
    failed = notices(replace(facts, notices=Reading(200, {"data": notices_data(failed=True)})))
    assert failed.result is Result.FAIL
    assert "1 mail(s) failed" in failed.detail
    missing = notices(replace(facts, notices=Reading(404)))
    assert missing.result is Result.FAIL
    assert notices(replace(facts, notices=Reading(403))).result is Result.UNKNOWN


def test_an_overdue_purge_fails_unless_a_legal_hold_postpones_it() -> None:
    cancelled = facts_for(lifecycle=Lifecycle.CANCELLED)
    assert purge(cancelled, NOW).result is Result.PASS
    late = datetime.datetime(2027, 3, 2, tzinfo=datetime.UTC)
    overdue = purge(cancelled, late)
    assert overdue.result is Result.FAIL
    assert "purge overdue since 2027-02-28T12:00:00Z" in overdue.detail
    held = {
        **cancelled.status,
        "cancellation": {**cancelled.status["cancellation"], "legalHold": True},
    }
    assert purge(replace(cancelled, status=held), late).result is Result.PASS


def _purged(receipt_data: dict[str, str]) -> Facts:
    receipt = {"metadata": {"name": "purge-acme-1234"}, "data": receipt_data}
    return replace(facts_for(), tenant_reading=Reading(404), status={}, receipts=listing([receipt]))


def test_a_purged_tenant_shows_its_receipt_and_a_forged_one_fails() -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swg_operator.receipts import public_key_pem, sign_receipt

    key = Ed25519PrivateKey.generate()
    signed = sign_receipt({"tenant": "acme", "completedAt": "2026-11-30T12:00:00Z"}, key)
    pem = public_key_pem(key.public_key())
    unchecked = purge(_purged(signed), NOW)
    assert unchecked.result is Result.PASS
    assert "signatures not checked" in unchecked.detail
    assert purge(verify_receipts(_purged(signed), pem), NOW).result is Result.PASS
    forged = verify_receipts(_purged({**signed, "completedAt": "2027-01-01T00:00:00Z"}), pem)
    check = purge(forged, NOW)
    assert check.result is Result.FAIL
    assert "field completedAt was changed after signing" in check.detail


def test_a_tenant_gone_without_a_receipt_fails() -> None:
    gone = replace(facts_for(), tenant_reading=Reading(404), status={}, receipts=listing([]))
    check = purge(gone, NOW)
    assert check.result is Result.FAIL
    assert "no purge receipt" in check.detail


def test_of_a_purged_tenant_only_the_purge_is_judged() -> None:
    receipt = {"metadata": {"name": "purge-acme-1234"}, "data": {"tenant": "acme"}}
    purged = replace(
        facts_for(),
        tenant_reading=Reading(404),
        namespace_object=Reading(404),
        policies=Reading(404),
        status={},
        receipts=listing([receipt]),
    )
    checks = judge(purged, NOW)
    assert [c.result for c in checks[:-1]] == [Result.NOT_APPLICABLE] * (len(checks) - 1)
    assert checks[-1].field == "purge"
    assert checks[-1].result is Result.PASS
    assert "tenant purged; receipt(s) purge-acme-1234" in checks[-1].detail
