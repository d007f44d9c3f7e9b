"""Names and labels of a tenant's objects: valid, within budget, stable and collision-free."""

from __future__ import annotations

import re

from hypothesis import given, settings
from hypothesis import strategies as st

from swg_operator import labels, naming
from swg_operator.naming import Component

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")

# metadata.name of a cluster-scoped custom resource: a DNS-1123 subdomain (<= 253 characters).
_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
tenant_names = (
    st.lists(_label, min_size=1, max_size=5).map(".".join).filter(lambda s: len(s) <= 253)
)
any_text = st.text(max_size=300)


def assert_dns_label(value: str) -> None:
    assert len(value) <= 63, value
    assert DNS_LABEL.match(value), value


def every_child_name(tenant: str) -> list[str]:
    names = [naming.tenant_namespace(tenant)]
    for component in Component:
        names += [
            naming.service_account_name(component),
            naming.workload_name(component),
            naming.service_name(component),
            naming.config_map_name(component),
            naming.disruption_budget_name(component),
        ]
    names += [
        naming.log_volume_claim_name(),
        naming.inspection_ca_secret_name(),
        naming.resource_quota_name(),
        naming.limit_range_name(),
        naming.legacy_reader_role_name(),
        naming.tenant_status_name(),
        naming.POLICY_DEFAULT_DENY,
        naming.POLICY_ALLOW_DNS,
        naming.POLICY_PROXY_INGRESS,
        naming.POLICY_PROXY_EGRESS,
        naming.POLICY_ANTIVIRUS,
        naming.POLICY_LOGSTORE,
    ]
    return names


@settings(max_examples=200)
@given(tenant=tenant_names)
def test_every_child_name_is_a_dns_label(tenant: str) -> None:
    for name in every_child_name(tenant):
        assert_dns_label(name)


@settings(max_examples=200)
@given(tenant=tenant_names)
def test_tenant_label_value_is_valid(tenant: str) -> None:
    value = naming.tenant_label_value(tenant)
    assert len(value) <= 63
    assert LABEL_VALUE.match(value)


@settings(max_examples=200)
@given(candidate=any_text)
def test_dns_label_accepts_anything(candidate: str) -> None:
    assert_dns_label(naming.dns_label(candidate))


@settings(max_examples=200)
@given(candidate=any_text)
def test_label_value_accepts_anything(candidate: str) -> None:
    value = naming.label_value(candidate)
    assert len(value) <= 63
    assert LABEL_VALUE.match(value)


@settings(max_examples=200)
@given(kind=st.sampled_from(["User", "Group"]), subject=st.text(min_size=1, max_size=253))
def test_admin_binding_name_is_a_dns_label(kind: str, subject: str) -> None:
    assert_dns_label(naming.admin_binding_name(kind, subject))


@settings(max_examples=200)
@given(a=tenant_names, b=tenant_names)
def test_different_tenants_get_different_namespaces(a: str, b: str) -> None:
    if a != b:
        assert naming.tenant_namespace(a) != naming.tenant_namespace(b)
        assert naming.tenant_label_value(a) != naming.tenant_label_value(b)


def test_short_names_are_kept_readable() -> None:
    assert naming.tenant_namespace("acme") == "swg-acme"
    assert naming.tenant_label_value("acme") == "acme"


def test_long_names_are_shortened_stably() -> None:
    tenant = "a" * 70
    first = naming.tenant_namespace(tenant)
    assert first == naming.tenant_namespace(tenant)
    assert len(first) == 63
    assert first.startswith("swg-aaaa")
    assert first != naming.tenant_namespace("a" * 71)


def test_dotted_names_do_not_collide_with_dashed_ones() -> None:
    assert naming.tenant_namespace("a.b") != naming.tenant_namespace("a-b")


def test_admins_differing_in_kind_or_case_get_different_bindings() -> None:
    names = {
        naming.admin_binding_name("User", "alice@example.test"),
        naming.admin_binding_name("Group", "alice@example.test"),
        naming.admin_binding_name("User", "Alice@example.test"),
    }
    assert len(names) == 3


def test_selector_is_the_two_ownership_labels() -> None:
    assert labels.selector_for("acme") == {
        "app.kubernetes.io/managed-by": "swg-operator",
        "swg.dev/tenant": "acme",
    }
    assert labels.selector_string("acme") == (
        "app.kubernetes.io/managed-by=swg-operator,swg.dev/tenant=acme"
    )


@settings(max_examples=100)
@given(code=st.from_regex(r"[A-Z0-9][A-Z0-9-]{2,31}", fullmatch=True), tenant=tenant_names)
def test_tenant_labels_are_valid_label_values(code: str, tenant: str) -> None:
    for component in Component:
        for value in labels.component_labels(tenant, component, service_code=code).values():
            assert len(value) <= 63
            assert LABEL_VALUE.match(value)
