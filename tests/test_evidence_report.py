"""The evidence command's output and its reading of answers: every `-o` format carries every
check; an admin (who may not read the `SecureWebGateway`) gets the contract from the status
mirror; the admins' rights are asked as `kubectl auth can-i` asks them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pytest
import yaml

from evidence_support import NOW, facts_for
from swg_operator.commands.evidence.collect import collect, describe
from swg_operator.commands.evidence.judge import QUESTIONS, judge
from swg_operator.commands.evidence.model import Check, Reading, Result
from swg_operator.commands.evidence.report import FORMATS, document, overall, render
from swg_operator.render.status_mirror import status_data


def _doc() -> dict[str, Any]:
    facts = facts_for()
    return document(describe(facts), judge(facts, NOW), "2026-12-01T12:00:00Z")


@pytest.mark.parametrize("form", FORMATS)
def test_every_format_names_every_check(form: str) -> None:
    doc = _doc()
    text = render(doc, form)
    for check in doc["checks"]:
        assert check["field"] in text
    if form == "json":
        assert json.loads(text) == doc
    if form == "yaml":
        assert yaml.safe_load(text) == doc
    if form == "markdown":
        rows = [line for line in text.splitlines() if line.startswith("| ")]
        assert len(rows) == 2 + len(doc["checks"])  # header, rule, a row per check


def test_the_document_says_where_it_read_and_the_overall_result() -> None:
    doc = _doc()
    assert doc["source"] == "SecureWebGateway"
    assert doc["result"] == "pass"
    assert doc["contract"]["region"] == "region-local"
    assert all(set(c) >= {"control", "field", "checked", "result", "detail"} for c in doc["checks"])


def test_overall_is_fail_when_one_check_fails_and_unknown_before_pass() -> None:
    def check(result: Result) -> Check:
        return Check("c", "f", "x", result, "d")

    assert overall([check(Result.PASS), check(Result.NOT_APPLICABLE)]) is Result.PASS
    assert overall([check(Result.PASS), check(Result.UNKNOWN)]) is Result.UNKNOWN
    assert overall([check(Result.UNKNOWN), check(Result.FAIL)]) is Result.FAIL


def test_markdown_cells_cannot_break_the_table() -> None:
    doc = _doc()
    doc["checks"][0]["detail"] = "a | b\nc"
    line = next(row for row in render(doc, "markdown").splitlines() if "isolation" in row)
    assert "a \\| b c" in line


class Api:
    """Answers of an API server for `collect`: paths to readings; posts recorded."""

    def __init__(self, answers: Mapping[str, Reading]) -> None:
        self.answers = answers
        self.posted: list[dict[str, Any]] = []

    def get(self, path: str) -> Reading:
        return self.answers.get(path, Reading(403))

    def post(self, path: str, body: Mapping[str, Any]) -> Reading:
        self.posted.append({"path": path, **body})
        return Reading(403)


def test_an_admin_reads_the_contract_from_the_status_mirror() -> None:
    from swg_operator.api import SecureWebGatewayStatus, parse_spec

    facts = facts_for()
    spec = parse_spec(dict(facts.spec or {}))
    mirror = status_data(facts.tenant, SecureWebGatewayStatus(phase="Ready"), spec)
    path = f"/api/v1/namespaces/{facts.namespace}/configmaps/tenant-status"
    api = Api({path: Reading(200, {"data": mirror})})
    collected = collect(facts.tenant, api.get, api.post, operator_namespace="swg-system")
    assert collected.spec is None
    assert collected.phase == "Ready"
    assert collected.contract == facts.contract
    assert describe(collected)["source"] == "tenant-status mirror"
    # No admins known: the caller's own rights, by SelfSubjectAccessReview, until refused.
    assert [p["kind"] for p in api.posted] == ["SelfSubjectAccessReview"]
    assert api.posted[0]["path"].endswith("/selfsubjectaccessreviews")


def test_each_admin_is_asked_every_question_by_subject_access_review() -> None:
    facts = facts_for()
    tenants = "/apis/swg.dev/v1alpha1/securewebgateways"
    body = {"spec": facts.spec, "status": facts.status}
    listed = {"items": [{"metadata": {"name": facts.tenant}}, {"metadata": {"name": "beta"}}]}
    api = Api({f"{tenants}/{facts.tenant}": Reading(200, body), tenants: Reading(200, listed)})

    def allow_all(path: str, review: Mapping[str, Any]) -> Reading:
        api.posted.append({"path": path, **review})
        return Reading(201, {"status": {"allowed": True}})

    collected = collect(facts.tenant, api.get, allow_all, operator_namespace="swg-system")
    assert collected.other_namespaces == ("swg-beta",)
    specs = [p["spec"] for p in api.posted]
    assert len(specs) == 2 * len(QUESTIONS)
    assert {"groups": ["example-corp:swg-admins"]}.items() <= specs[-1].items()
    attrs = [s["resourceAttributes"] for s in specs]
    assert {"namespace": "swg-beta", "verb": "get", "resource": "configmaps"}.items() <= attrs[
        len(QUESTIONS) - 2
    ].items()
    assert {"subresource": "log", "resource": "pods"}.items() <= attrs[4].items()
    # Allowed everything: each question expected to be refused is a failure.
    from swg_operator.commands.evidence.judge import access

    check = access(collected)
    assert check.result is Result.FAIL
    assert "may get secrets" in check.detail
