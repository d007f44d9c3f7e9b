"""Properties of rendering any valid spec, and of what never gets past `parse_spec`.

Example counts stay moderate (the CI machine has two shared cores); raise them locally with
HYPOTHESIS_PROFILE=thorough.
"""

from __future__ import annotations

import copy
import ipaddress
import os
import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from render_strategies import specs, tenant_names
from render_support import Endpoint, connection_allowed, objects_of, render
from swg_operator.api import SpecError, parse_spec
from swg_operator.labels import MANAGED_BY, MANAGED_BY_KEY, TENANT_KEY
from swg_operator.render import Lifecycle
from swg_operator.render.context import ICAP_PORT, LOGSTORE_HTTP_PORT

settings.register_profile(
    "render-default",
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", max_examples=500, deadline=None)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "render-default")
EXAMPLES = settings.get_profile(PROFILE).max_examples

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# Kinds whose names must be DNS labels (the others allow subdomains).
LABEL_NAMED_KINDS = {"Namespace", "Service", "Deployment"}
# Line breaks other than "\n" that some parser might honour.
OTHER_LINE_BREAKS = re.compile("[\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029]")
LIFECYCLES = st.sampled_from(list(Lifecycle))


def run(**kwargs: Any) -> Any:
    return settings(settings.get_profile(PROFILE), **kwargs)


@run()
@given(name=tenant_names, raw=specs(), lifecycle=LIFECYCLES)
def test_any_valid_spec_renders_valid_named_and_labelled_objects(
    name: str, raw: dict[str, Any], lifecycle: Lifecycle
) -> None:
    manifests = render(name, parse_spec(raw), lifecycle=lifecycle)
    assert manifests.objects[0]["kind"] == "Namespace"
    seen = set()
    for obj in manifests.objects:
        meta = obj["metadata"]
        object_name = meta["name"]
        assert (obj["kind"], object_name) not in seen
        seen.add((obj["kind"], object_name))
        pattern = DNS_LABEL if obj["kind"] in LABEL_NAMED_KINDS else DNS_SUBDOMAIN
        assert len(object_name) <= (63 if obj["kind"] in LABEL_NAMED_KINDS else 253)
        assert pattern.match(object_name), (obj["kind"], object_name)
        assert DNS_LABEL.match(object_name), "every name we generate is a DNS label"
        assert meta["labels"][MANAGED_BY_KEY] == MANAGED_BY
        assert meta["labels"][TENANT_KEY] == name
        for key, value in meta["labels"].items():
            assert LABEL_VALUE.match(value), (key, value)
            assert len(value) <= 63, (key, value)
        if obj["kind"] != "Namespace":
            assert meta["namespace"] == manifests.namespace


def _random_address(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        return str(ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1))))
    return str(ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1))))


def _addresses_near(cidr: str) -> list[str]:
    """The first, last and just-outside addresses of a network: the edges a rule gets wrong."""
    network = ipaddress.ip_network(cidr)
    top = 2**network.max_prefixlen - 1
    first, last = int(network.network_address), int(network.broadcast_address)
    picks = {first, last, max(first - 1, 0), min(last + 1, top)}
    factory = ipaddress.IPv4Address if network.version == 4 else ipaddress.IPv6Address
    return [str(factory(p)) for p in picks]


@run()
@given(name=tenant_names, raw=specs(), data=st.data())
def test_only_declared_clients_reach_the_proxy(name: str, raw: dict[str, Any], data: Any) -> None:
    manifests = render(name, parse_spec(raw), lifecycle=Lifecycle.ACTIVE)
    policies = objects_of(manifests, "NetworkPolicy")
    allowed = [ipaddress.ip_network(c) for c in raw["clients"]["allowedCIDRs"]]
    proxy = Endpoint(
        "10.244.0.10",
        manifests.namespace,
        {"swg.dev/tenant": name, "app.kubernetes.io/component": "proxy"},
    )
    candidates = [_random_address(data.draw) for _ in range(8)]
    for cidr in raw["clients"]["allowedCIDRs"]:
        candidates += _addresses_near(cidr)
    port = 3128
    for ip in candidates:
        client = Endpoint(ip)
        if connection_allowed(policies, client, proxy, port=port):
            address = ipaddress.ip_address(ip)
            assert any(address.version == n.version and address in n for n in allowed), ip
        for other_port in (ICAP_PORT, LOGSTORE_HTTP_PORT, 22):
            assert not connection_allowed(policies, client, proxy, port=other_port)


@run()
@given(name=tenant_names, raw=specs())
def test_config_text_holds_no_free_text_and_no_foreign_line_break(
    name: str, raw: dict[str, Any]
) -> None:
    """Free-text fields (display name, admin names, legal hold reason) are validated only against
    control characters: they must never reach a config file. Every config file breaks lines on
    "\\n" only, so no value can start a directive on a line of its own."""
    raw = copy.deepcopy(raw)
    raw["displayName"] = "Canary Display Name 7f3a"
    raw["admins"] = [{"kind": "User", "name": "canary-admin-7f3a@example.test"}]
    raw["cancellation"]["legalHoldReason"] = "Canary legal hold 7f3a"
    manifests = render(name, parse_spec(raw))
    for file_name, text in manifests.config_files.items():
        assert "7f3a" not in text, file_name
        assert not OTHER_LINE_BREAKS.search(text), file_name
        assert text.isascii(), file_name
        if file_name.endswith(".list"):
            # ACL list files: one entry per line, nothing else on it.
            for line in text.splitlines():
                assert len(line.split()) <= 1 or line.lstrip().startswith("#"), (file_name, line)


# --- hostile strings never get past parse_spec -------------------------------------------------

HOSTILE = (
    "\n",
    "\r",
    "\r\n",
    "#",
    " ",
    "\t",
    '"',
    "'",
    "\u2028",
    "\u2029",
    "\x85",
    "\x0b",
    "\x0c",
    "\x00",
    "\ninclude /etc/passwd",
    " include /etc/passwd",
    "\u2028include /etc/passwd",
)
# What the regex field cannot refuse everywhere: '#' and quotes are legal inside a url_regex
# after its first character (see test_url_regex_hostile_characters_inside).
REGEX_SAFE_HOSTILE = tuple(h for h in HOSTILE if h not in ("#", '"', "'"))


def _base() -> dict[str, Any]:
    return {
        "serviceCode": "SWG-0001234",
        "contacts": ["noc@example.test"],
        "sizing": {"endpoints": 10, "requestsPerSecond": 10},
        "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
        "urlFiltering": {
            "blockedCategories": ["malware"],
            "allow": {"domains": ["partner.example"]},
            "deny": {"domains": [".bad.test"], "urlRegex": ["^https?://x\\.test/"]},
            "policies": [
                {"name": "lab", "sourceCIDRs": ["192.0.2.0/25"], "blockedCategories": ["adult"]}
            ],
        },
        "antivirus": {"maxScanSize": "50Mi", "customSignatures": {"name": "sigs"}},
        "options": {
            "bypass": {"domains": ["updates.example"], "CIDRs": ["198.51.100.0/24"]},
            "httpsInspection": {
                "enabled": True,
                "doNotInspect": {"domains": ["bank.example"], "categories": ["phishing"]},
                "caSecret": {"name": "tenant-ca"},
            },
            "sandbox": {"enabled": True, "icapURL": "icaps://sandbox.example:1344/respmod"},
        },
        "logs": {
            "timeZone": "Asia/Tokyo",
            "storage": {"size": "10Gi", "storageClassName": "fast"},
        },
        "placement": {"region": "region-a"},
    }


# (path into the spec, how the error names the field)
CONFIG_FIELDS: tuple[tuple[tuple[str | int, ...], str], ...] = (
    (("serviceCode",), "spec.serviceCode"),
    (("contacts", 0), "spec.contacts[0]"),
    (("clients", "allowedCIDRs", 0), "spec.clients.allowedCIDRs[0]"),
    (("urlFiltering", "blockedCategories", 0), "spec.urlFiltering.blockedCategories[0]"),
    (("urlFiltering", "allow", "domains", 0), "spec.urlFiltering.allow.domains[0]"),
    (("urlFiltering", "deny", "domains", 0), "spec.urlFiltering.deny.domains[0]"),
    (("urlFiltering", "policies", 0, "name"), "spec.urlFiltering.policies[0].name"),
    (
        ("urlFiltering", "policies", 0, "sourceCIDRs", 0),
        "spec.urlFiltering.policies[0].sourceCIDRs[0]",
    ),
    (("antivirus", "maxScanSize"), "spec.antivirus.maxScanSize"),
    (("antivirus", "customSignatures", "name"), "spec.antivirus.customSignatures.name"),
    (("options", "bypass", "domains", 0), "spec.options.bypass.domains[0]"),
    (("options", "bypass", "CIDRs", 0), "spec.options.bypass.CIDRs[0]"),
    (
        ("options", "httpsInspection", "doNotInspect", "domains", 0),
        "spec.options.httpsInspection.doNotInspect.domains[0]",
    ),
    (
        ("options", "httpsInspection", "doNotInspect", "categories", 0),
        "spec.options.httpsInspection.doNotInspect.categories[0]",
    ),
    (
        ("options", "httpsInspection", "caSecret", "name"),
        "spec.options.httpsInspection.caSecret.name",
    ),
    (("options", "sandbox", "icapURL"), "spec.options.sandbox.icapURL"),
    (("logs", "timeZone"), "spec.logs.timeZone"),
    (("logs", "storage", "size"), "spec.logs.storage.size"),
    (("logs", "storage", "storageClassName"), "spec.logs.storage.storageClassName"),
    (("placement", "region"), "spec.placement.region"),
)
REGEX_FIELD = (("urlFiltering", "deny", "urlRegex", 0), "spec.urlFiltering.deny.urlRegex[0]")


def _get(document: Any, path: tuple[str | int, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


def _set(document: Any, path: tuple[str | int, ...], value: Any) -> None:
    _get(document, path[:-1])[path[-1]] = value


def _assert_refused(path: tuple[str | int, ...], field: str, value: str) -> None:
    spec = _base()
    _set(spec, path, value)
    with pytest.raises(SpecError) as caught:
        parse_spec(spec)
    assert any(p.startswith(f"{field}:") for p in caught.value.problems), caught.value.problems


def test_the_base_spec_is_valid() -> None:
    parse_spec(_base())


@pytest.mark.parametrize("hostile", HOSTILE, ids=repr)
@pytest.mark.parametrize(("path", "field"), CONFIG_FIELDS, ids=[f for _, f in CONFIG_FIELDS])
def test_hostile_strings_never_get_past_parse_spec(
    path: tuple[str | int, ...], field: str, hostile: str
) -> None:
    valid = str(_get(_base(), path))
    for value in (hostile + valid, valid[:3] + hostile + valid[3:], valid + hostile):
        _assert_refused(path, field, value)


@pytest.mark.parametrize("hostile", REGEX_SAFE_HOSTILE, ids=repr)
def test_hostile_strings_never_get_past_parse_spec_in_url_regex(hostile: str) -> None:
    path, field = REGEX_FIELD
    valid = str(_get(_base(), path))
    for value in (hostile + valid, valid[:3] + hostile + valid[3:], valid + hostile):
        _assert_refused(path, field, value)


def test_url_regex_cannot_start_with_a_comment_marker() -> None:
    _assert_refused(*REGEX_FIELD, "#^https?://x\\.test/")


@pytest.mark.parametrize("hostile", ["#", '"', "'"])
def test_url_regex_hostile_characters_inside(hostile: str) -> None:
    _assert_refused(*REGEX_FIELD, f"^https?://x{hostile}\\.test/")


@run(max_examples=min(EXAMPLES, 60))
@given(
    field=st.sampled_from(CONFIG_FIELDS),
    prefix=st.text(max_size=5),
    hostile=st.sampled_from(HOSTILE),
    suffix=st.text(max_size=5),
)
def test_hostile_text_around_any_value_is_refused(
    field: tuple[tuple[str | int, ...], str], prefix: str, hostile: str, suffix: str
) -> None:
    path, name = field
    valid = str(_get(_base(), path))
    _assert_refused(path, name, prefix + valid + hostile + suffix)


def test_numeric_top_level_domain_is_refused_by_the_api() -> None:
    _assert_refused(("options", "bypass", "domains", 0), "spec.options.bypass.domains[0]", "0.0")
