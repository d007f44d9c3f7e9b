"""Hypothesis strategies: valid tenant names and SecureWebGateway specs (camelCase, as users
write them), built from the API's own patterns and the sample catalogue's category names."""

from __future__ import annotations

import ipaddress
from typing import Any

from hypothesis import strategies as st

from render_support import catalogue
from swg_operator.api import authentication as a
from swg_operator.api import types as t
from swg_operator.api.content import MAGIC_HEX_PATTERN, FileType, YouTubeRestriction

# Real IANA zones (the spec refuses a name the zone database lacks): fixed, half-hour, DST.
ZONES = ("UTC", "Asia/Tokyo", "Asia/Kolkata", "Europe/Berlin", "America/New_York", "Etc/GMT+12")


def pattern(regex: str, *, max_size: int) -> st.SearchStrategy[str]:
    return st.from_regex(regex, fullmatch=True).filter(lambda s: len(s) <= max_size)


dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?", fullmatch=True)
tenant_names = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,57}[a-z0-9])?", fullmatch=True)
_host_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True)
_top_level = st.from_regex(r"[a-z]{2,10}", fullmatch=True)
# Alphabetic top-level domains: the API's pattern also admits numeric ones ("0.0"), which the
# data-plane renderer refuses (test_numeric_top_level_domain_is_refused_by_the_api).
hostnames = st.tuples(st.lists(_host_labels, min_size=1, max_size=3), _top_level).map(
    lambda p: ".".join([*p[0], p[1]])
)
domains = st.tuples(st.booleans(), hostnames).map(lambda p: ("." if p[0] else "") + p[1])
url_regexes = pattern(t.URL_REGEX_PATTERN, max_size=200)
regions = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?", fullmatch=True)
category_names = st.sampled_from(sorted(catalogue().names()))


def _not_the_pod(host: str) -> bool:
    return t.host_address(host) is None and "localhost" not in host


@st.composite
def cidrs(draw: st.DrawFn, *, catch_all: bool = False) -> str:
    if draw(st.booleans()):
        prefix = draw(st.integers(0 if catch_all else 1, 32))
        address = ipaddress.IPv4Address(draw(st.integers(0, 2**32 - 1)))
    else:
        prefix = draw(st.integers(0 if catch_all else 1, 128))
        address = ipaddress.IPv6Address(draw(st.integers(0, 2**128 - 1)))
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))


def unique(strategy: st.SearchStrategy[Any], *, max_size: int, min_size: int = 0) -> Any:
    return st.lists(strategy, min_size=min_size, max_size=max_size, unique=True)


def optional(value: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), value)


@st.composite
def filter_lists(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "allow": {"domains": draw(unique(domains, max_size=3))},
        "deny": {
            "domains": draw(unique(domains, max_size=3)),
            "urlRegex": draw(unique(url_regexes, max_size=2)),
        },
    }


group_names = pattern(a.GROUP_NAME_PATTERN, max_size=64)
distinguished_names = pattern(a.DN_PATTERN, max_size=120)


@st.composite
def directories(draw: st.DrawFn) -> dict[str, Any]:
    """authentication.ldap: any DN the pattern admits, filters of the usual shapes."""
    host = draw(hostnames.filter(_not_the_pod))
    port = draw(optional(st.integers(1, 65535)))
    return _drop_none(
        {
            "url": f"{draw(st.sampled_from(['ldap', 'ldaps']))}://{host}"
            + ("" if port is None else f":{port}"),
            "baseDN": draw(distinguished_names),
            "bindDN": draw(distinguished_names),
            "bindSecret": {"name": draw(dns_labels)},
            "userFilter": draw(
                st.sampled_from(["(uid=%s)", "(&(objectClass=user)(sAMAccountName=%s))"])
            ),
            "groupBaseDN": draw(optional(distinguished_names)),
            "groupFilter": draw(
                st.sampled_from(["(&(cn=%g)(member=%u))", "(&(objectClass=group)(cn=%g))"])
            ),
        }
    )


@st.composite
def policies(draw: st.DrawFn, *, groups: bool = False) -> list[dict[str, Any]]:
    """Policies by network; with `groups` (a directory is set) by group too, or by both."""
    names = draw(unique(dns_labels, max_size=3))
    out = []
    for name in names:
        chosen = draw(unique(group_names, max_size=2)) if groups else []
        networks = draw(unique(cidrs(), min_size=0 if chosen else 1, max_size=2))
        out.append(
            {
                "name": name,
                "sourceCIDRs": networks,
                **({"groups": chosen} if chosen else {}),
                "blockedCategories": draw(unique(category_names, max_size=3)),
                **draw(filter_lists()),
            }
        )
    return out


def _drop_none(document: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in document.items() if v is not None}


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid spec: parse_spec accepts every one (the tests assert it)."""
    any_client = draw(st.booleans())
    clients: dict[str, Any] = {
        "allowedCIDRs": draw(unique(cidrs(catch_all=any_client), min_size=1, max_size=4))
    }
    if any_client:
        clients["allowAnyClient"] = True
    sandbox_on = draw(st.booleans())
    port = draw(optional(st.integers(1, 65535)))
    icap_url = (
        # icaps:// only, and never the pod itself (api.types.check_icap_host)
        f"icaps://{draw(hostnames.filter(_not_the_pod))}"
        f"{'' if port is None else f':{port}'}/{draw(dns_labels)}"
    )
    directory = draw(optional(directories()))
    storage_size = draw(st.one_of(st.just("auto"), st.integers(1, 1024).map(lambda n: f"{n}Gi")))
    spec = {
        "serviceCode": draw(pattern(t.SERVICE_CODE_PATTERN, max_size=32)),
        "displayName": draw(optional(st.text(max_size=40).filter(lambda s: s.isprintable()))),
        "contacts": draw(unique(pattern(t.EMAIL_PATTERN, max_size=80), max_size=2)),
        "sizing": {
            "endpoints": draw(st.integers(1, 1_000_000)),
            "requestsPerSecond": draw(st.integers(1, 1_000_000)),
        },
        "clients": clients,
        "urlFiltering": {
            "blockedCategories": draw(unique(category_names, max_size=5)),
            "policies": draw(policies(groups=directory is not None)),
            **draw(filter_lists()),
        },
        "antivirus": {
            "enabled": draw(st.booleans()),
            "maxScanSize": draw(pattern(t.QUANTITY_PATTERN, max_size=32)),
            "failOpen": draw(st.booleans()),
            "customSignatures": draw(optional(dns_labels.map(lambda n: {"name": n}))),
        },
        "options": {
            "bypass": {
                "domains": draw(unique(domains, max_size=3)),
                "CIDRs": draw(unique(cidrs(), max_size=2)),
            },
            "httpsInspection": _drop_none(
                {
                    "enabled": draw(st.booleans()),
                    "doNotInspect": {
                        "domains": draw(unique(domains, max_size=2)),
                        "categories": draw(unique(category_names, max_size=2)),
                    },
                    "caSecret": draw(optional(dns_labels.map(lambda n: {"name": n}))),
                }
            ),
            "sandbox": (
                {"enabled": True, "icapURL": icap_url, "failOpen": draw(st.booleans())}
                if sandbox_on
                else {"enabled": False}
            ),
        },
        "logs": _drop_none(
            {
                "retentionDays": draw(st.integers(1, 90)),
                "timeZone": draw(st.sampled_from(ZONES)),
                "storage": _drop_none(
                    {
                        "size": storage_size,
                        "storageClassName": draw(optional(dns_labels)),
                    }
                ),
            }
        ),
        "authentication": {"ldap": directory} if directory is not None else {},
        "placement": {"region": draw(regions)} if draw(st.booleans()) else {},
        "admins": [
            {"kind": kind, "name": name}
            for kind, name in draw(
                unique(
                    st.tuples(
                        st.sampled_from(["User", "Group"]),
                        pattern(t.RBAC_SUBJECT_PATTERN, max_size=60),
                    ),
                    max_size=3,
                )
            )
        ],
        "suspended": draw(st.booleans()),
        "cancellation": {
            "purgeAfterDays": draw(st.integers(0, 90)),
            "legalHold": draw(st.booleans()),
        },
    }
    spec["contentControls"] = draw(content_controls(spec))
    return _drop_none(spec)


@st.composite
def content_controls(draw: st.DrawFn, spec: dict[str, Any]) -> dict[str, Any]:
    """spec.contentControls, consistent with the spec's anti-virus and inspection switches."""
    controls: dict[str, Any] = {}
    if spec["antivirus"]["enabled"]:
        controls["fileTypes"] = {
            "blocked": draw(unique(st.sampled_from([t.value for t in FileType]), max_size=3)),
            "custom": [
                {"name": name, "magic": draw(pattern(MAGIC_HEX_PATTERN, max_size=16))}
                for name in draw(unique(dns_labels, max_size=2))
            ],
        }
    if spec["options"]["httpsInspection"].get("enabled"):
        controls["safeSearch"] = {
            "enabled": draw(st.booleans()),
            "youtube": draw(st.sampled_from([y.value for y in YouTubeRestriction])),
        }
    return controls
