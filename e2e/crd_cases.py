"""The tenants the CRD admission tests (test_crd_admission.py) send: a minimal and a full spec,
variations of the minimal one, and the malformed ones with the text each refusal must hold."""

from __future__ import annotations

import copy
from typing import Any

from swg_operator.api import API_VERSION, KIND

MINIMAL_SPEC: dict[str, Any] = {
    "serviceCode": "SWG-0001234",
    "sizing": {"endpoints": 100, "requestsPerSecond": 50},
    "clients": {"allowedCIDRs": ["10.20.0.0/16"]},
}

FULL_SPEC: dict[str, Any] = {
    "serviceCode": "SWG-0009876",
    "displayName": "Example Corp (head office)",
    "contacts": ["noc@example.com"],
    "sizing": {"endpoints": 2500, "requestsPerSecond": 800},
    "clients": {"allowedCIDRs": ["10.20.0.0/16", "2001:db8:10::/48"]},
    "urlFiltering": {
        "blockedCategories": ["gambling", "malware"],
        "allow": {"domains": [".example.com"]},
        "deny": {"domains": ["bad.example.net"], "urlRegex": [r"^https?://[^/]+/ads/"]},
        "policies": [
            {"name": "finance", "sourceCIDRs": ["10.20.1.0/24"], "blockedCategories": ["social"]},
            {"name": "it", "sourceCIDRs": ["10.20.2.0/24"], "allow": {"domains": ["github.com"]}},
        ],
    },
    "antivirus": {"enabled": True, "maxScanSize": "100Mi", "failOpen": False},
    "options": {
        "bypass": {"domains": ["update.example.org"], "CIDRs": ["192.0.2.0/24"]},
        "httpsInspection": {"enabled": True, "doNotInspect": {"categories": ["banking"]}},
        "sandbox": {"enabled": True, "icapURL": "icaps://sandbox.example.net:1344/analyze"},
    },
    "logs": {"retentionDays": 30, "timeZone": "Asia/Tokyo", "storage": {"size": "20Gi"}},
    "placement": {"region": "region-a"},
    "access": {
        "hostname": "proxy.example.com",
        "tls": {"enabled": True, "port": 8443, "certificateSecret": {"name": "proxy-tls"}},
        "pac": {"enabled": True},
    },
    "blockPage": {
        "defaultLanguage": "ja",
        "title": "Example Corp web policy",
        "contactText": "情報システム部 (内線 1234)\nhelpdesk@example.com",
    },
    "admins": [{"kind": "Group", "name": "example-corp:admins"}],
    "cancellation": {"purgeAfterDays": 30, "legalHold": False},
    "authentication": {
        "ldap": {
            "url": "ldaps://ldap.example.com:636",
            "baseDN": "ou=People,dc=example,dc=com",
            "bindDN": "cn=SWG Proxy,ou=Service Accounts,dc=example,dc=com",
            "bindSecret": {"name": "ldap-bind"},
            "userFilter": "(&(objectClass=user)(sAMAccountName=%s))",
            "groupFilter": "(&(objectClass=group)(cn=%g)(member=%u))",
        }
    },
}
FULL_SPEC["urlFiltering"]["policies"].append(
    {"name": "staff", "groups": ["staff", "contractors"], "deny": {"domains": ["x.example"]}}
)
LDAP: dict[str, Any] = FULL_SPEC["authentication"]["ldap"]


def tenant(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


DELETE = object()


def with_changes(**changes: Any) -> dict[str, Any]:
    """MINIMAL_SPEC with `changes` set (or removed, with `DELETE`); `__` separates the parts
    of a nested key: `sizing__endpoints=0`."""
    spec = copy.deepcopy(MINIMAL_SPEC)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        if value is DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return spec


# (id, spec or full object, text the error must contain: the field path, and a message part)
MALFORMED: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("missing-serviceCode", with_changes(serviceCode=DELETE), ("spec.serviceCode", "Required")),
    ("serviceCode-lowercase", with_changes(serviceCode="swg-1"), ("spec.serviceCode",)),
    ("missing-sizing", with_changes(sizing=DELETE), ("spec.sizing", "Required")),
    ("endpoints-0", with_changes(sizing__endpoints=0), ("spec.sizing.endpoints",)),
    (
        "rps-over-1e6",
        with_changes(sizing__requestsPerSecond=1_000_001),
        ("spec.sizing.requestsPerSecond", "1000000"),
    ),
    (
        "cidr-host-bits",
        with_changes(clients__allowedCIDRs=["10.20.1.0/16"]),
        ("spec.clients.allowedCIDRs[0]", "host bits"),
    ),
    (
        "cidr-ipv6-not-canonical",
        with_changes(clients__allowedCIDRs=["2001:DB8::/32"]),
        ("spec.clients.allowedCIDRs[0]", "canonical"),
    ),
    (
        "cidr-prefix-too-long",
        with_changes(clients__allowedCIDRs=["10.0.0.0/33"]),
        ("spec.clients.allowedCIDRs[0]", "must be a CIDR"),
    ),
    (
        "cidr-garbage",
        with_changes(clients__allowedCIDRs=["example.com/8"]),
        ("spec.clients.allowedCIDRs[0]",),
    ),
    (
        "catch-all-without-consent",
        with_changes(clients__allowedCIDRs=["10.0.0.0/8", "0.0.0.0/0"]),
        ("spec.clients.allowedCIDRs", "allowAnyClient"),
    ),
    (
        "ipv6-catch-all-without-consent",
        with_changes(clients__allowedCIDRs=["::/0"]),
        ("spec.clients.allowedCIDRs", "allowAnyClient"),
    ),
    (
        "no-allowed-cidrs",
        with_changes(clients__allowedCIDRs=[]),
        ("spec.clients.allowedCIDRs",),
    ),
    (
        "duplicate-allowed-cidrs",
        with_changes(clients__allowedCIDRs=["10.0.0.0/8", "10.0.0.0/8"]),
        ("spec.clients.allowedCIDRs", "duplicate"),
    ),
    (
        "policy-cidr-host-bits",
        with_changes(urlFiltering={"policies": [{"name": "a", "sourceCIDRs": ["10.0.0.1/8"]}]}),
        ("spec.urlFiltering.policies[0].sourceCIDRs[0]", "host bits"),
    ),
    (
        "bypass-cidr-invalid",
        with_changes(options={"bypass": {"CIDRs": ["300.0.0.0/8"]}}),
        ("spec.options.bypass.CIDRs[0]", "must be a CIDR"),
    ),
    (
        "domain-with-newline",
        with_changes(urlFiltering={"deny": {"domains": ["bad.example\nhttp_access allow all"]}}),
        ("spec.urlFiltering.deny.domains[0]",),
    ),
    (
        "domain-with-space",
        with_changes(urlFiltering={"allow": {"domains": ["a b.example"]}}),
        ("spec.urlFiltering.allow.domains[0]",),
    ),
    (
        "url-regex-with-space",
        with_changes(urlFiltering={"deny": {"urlRegex": ["^http://a b"]}}),
        ("spec.urlFiltering.deny.urlRegex[0]",),
    ),
    (
        "url-regex-leading-hash",
        with_changes(urlFiltering={"deny": {"urlRegex": ["#include /etc/passwd"]}}),
        ("spec.urlFiltering.deny.urlRegex[0]",),
    ),
    (
        "url-regex-unicode-line-separator",
        with_changes(urlFiltering={"deny": {"urlRegex": ["a\u2028b"]}}),
        ("spec.urlFiltering.deny.urlRegex[0]",),
    ),
    (
        "duplicate-policy-names",
        with_changes(
            urlFiltering={
                "policies": [
                    {"name": "staff", "sourceCIDRs": ["10.1.0.0/16"]},
                    {"name": "staff", "sourceCIDRs": ["10.2.0.0/16"]},
                ]
            }
        ),
        ("spec.urlFiltering.policies", "duplicate", "staff"),
    ),
    (
        "duplicate-blocked-categories",
        with_changes(urlFiltering={"blockedCategories": ["adult", "adult"]}),
        ("spec.urlFiltering.blockedCategories", "duplicate"),
    ),
    (
        "category-with-directive",
        with_changes(urlFiltering={"blockedCategories": ["adult include"]}),
        ("spec.urlFiltering.blockedCategories[0]",),
    ),
    (
        "sandbox-enabled-without-url",
        with_changes(options={"sandbox": {"enabled": True}}),
        ("spec.options.sandbox.icapURL", "Required"),
    ),
    (
        "sandbox-url-not-icap",
        with_changes(options={"sandbox": {"enabled": True, "icapURL": "http://x.example/"}}),
        ("spec.options.sandbox.icapURL",),
    ),
    (
        "sandbox-fail-open-not-bool",
        with_changes(
            options={
                "sandbox": {"enabled": True, "icapURL": "icaps://x.example/", "failOpen": "yes"}
            }
        ),
        ("spec.options.sandbox.failOpen",),
    ),
    (
        "file-types-without-antivirus",
        with_changes(
            antivirus={"enabled": False},
            contentControls={"fileTypes": {"blocked": ["executable"]}},
        ),
        ("spec.contentControls", "antivirus.enabled"),
    ),
    (
        "safe-search-without-inspection",
        with_changes(
            options={"httpsInspection": {"enabled": False}},
            contentControls={"safeSearch": {"enabled": True}},
        ),
        ("spec.contentControls", "options.httpsInspection.enabled"),
    ),
    (
        "file-type-unknown",
        with_changes(contentControls={"fileTypes": {"blocked": ["exe"]}}),
        ("spec.contentControls.fileTypes.blocked[0]", "Unsupported value"),
    ),
    (
        "custom-file-type-magic-not-hex",
        with_changes(contentControls={"fileTypes": {"custom": [{"name": "x", "magic": "MZ"}]}}),
        ("spec.contentControls.fileTypes.custom[0].magic",),
    ),
    (
        "custom-file-type-duplicate",
        with_changes(
            contentControls={
                "fileTypes": {
                    "custom": [{"name": "x", "magic": "4d5a"}, {"name": "x", "magic": "7f45"}]
                }
            }
        ),
        ("spec.contentControls.fileTypes.custom", "duplicate"),
    ),
    (
        "tls-without-hostname",
        with_changes(access={"tls": {"enabled": True}}),
        ("spec.access.hostname", "required when access.pac.enabled or access.tls.enabled"),
    ),
    (
        "pac-without-hostname",
        with_changes(access={"pac": {"enabled": True}}),
        ("spec.access.hostname", "required"),
    ),
    (
        "tls-plaintext-false-without-tls",
        with_changes(access={"hostname": "proxy.example.com", "tls": {"plaintext": False}}),
        ("spec.access.tls.plaintext", "needs access.tls.enabled"),
    ),
    (
        "tls-only-with-inspection",
        with_changes(
            access={"hostname": "proxy.example.com", "tls": {"enabled": True, "plaintext": False}},
            options={"httpsInspection": {"enabled": True}},
        ),
        ("spec.access", "options.httpsInspection.enabled"),
    ),
    (
        "tls-port-privileged",
        with_changes(access={"hostname": "proxy.example.com", "tls": {"port": 443}}),
        ("spec.access.tls.port", "1024"),
    ),
    (
        "tls-certificate-secret-bad-name",
        with_changes(
            access={
                "hostname": "proxy.example.com",
                "tls": {"enabled": True, "certificateSecret": {"name": "Bad_Name"}},
            }
        ),
        ("spec.access.tls.certificateSecret.name",),
    ),
    (
        "access-hostname-injection",
        with_changes(access={"hostname": "proxy.example.com\nhttp_access allow all"}),
        ("spec.access.hostname",),
    ),
    (
        "block-page-language-unknown",
        with_changes(blockPage={"defaultLanguage": "fr"}),
        ("spec.blockPage.defaultLanguage", "Unsupported value"),
    ),
    (
        "block-page-contact-six-lines",
        with_changes(blockPage={"contactText": "a\nb\nc\nd\ne\nf"}),
        ("spec.blockPage.contactText",),
    ),
    (
        "block-page-contact-too-long",
        with_changes(blockPage={"contactText": "x" * 501}),
        ("spec.blockPage.contactText", "500"),
    ),
    (
        "block-page-contact-control-character",
        with_changes(blockPage={"contactText": "ring\u0007"}),
        ("spec.blockPage.contactText",),
    ),
    (
        "block-page-title-two-lines",
        with_changes(blockPage={"title": "one\ntwo"}),
        ("spec.blockPage.title",),
    ),
    ("retention-91", with_changes(logs={"retentionDays": 91}), ("spec.logs.retentionDays", "90")),
    ("retention-0", with_changes(logs={"retentionDays": 0}), ("spec.logs.retentionDays",)),
    ("time-zone-injection", with_changes(logs={"timeZone": "UTC\n"}), ("spec.logs.timeZone",)),
    (
        "log-size-not-quantity",
        with_changes(logs={"storage": {"size": "lots"}}),
        ("spec.logs.storage.size",),
    ),
    (
        "purge-after-minus-1",
        with_changes(cancellation={"purgeAfterDays": -1}),
        ("spec.cancellation.purgeAfterDays",),
    ),
    (
        "purge-after-91",
        with_changes(cancellation={"purgeAfterDays": 91}),
        ("spec.cancellation.purgeAfterDays",),
    ),
    (
        "max-scan-size-injection",
        with_changes(antivirus={"maxScanSize": "50Mi; rm"}),
        ("spec.antivirus.maxScanSize",),
    ),
    ("bad-contact", with_changes(contacts=["not-an-email"]), ("spec.contacts[0]",)),
    (
        "admin-kind-unknown",
        with_changes(admins=[{"kind": "ServiceAccount", "name": "x"}]),
        ("spec.admins[0].kind", "Unsupported value"),
    ),
    (
        "display-name-newline",
        with_changes(displayName="Example\nCorp"),
        ("spec.displayName",),
    ),
    (
        "region-not-label-value",
        with_changes(placement={"region": "eu west"}),
        ("spec.placement.region",),
    ),
    (
        "group-policy-without-directory",
        with_changes(urlFiltering={"policies": [{"name": "staff", "groups": ["staff"]}]}),
        ("spec.urlFiltering", "authentication.ldap"),
    ),
    (
        "policy-selecting-nobody",
        with_changes(urlFiltering={"policies": [{"name": "nobody"}]}),
        ("spec.urlFiltering.policies[0]", "sourceCIDRs, groups or both"),
    ),
    (
        "group-name-with-space",
        with_changes(
            authentication={"ldap": LDAP},
            urlFiltering={"policies": [{"name": "staff", "groups": ["Domain Users"]}]},
        ),
        ("spec.urlFiltering.policies[0].groups[0]",),
    ),
    (
        "ldap-url-plain-http",
        with_changes(authentication={"ldap": {**LDAP, "url": "http://ldap.example.com"}}),
        ("spec.authentication.ldap.url",),
    ),
    (
        "ldap-ca-secret-bad-name",
        with_changes(authentication={"ldap": {**LDAP, "caSecret": {"name": "Ldap_CA"}}}),
        ("spec.authentication.ldap.caSecret.name",),
    ),
    (
        "ldap-user-filter-without-login",
        with_changes(authentication={"ldap": {**LDAP, "userFilter": "(uid=alice)"}}),
        ("spec.authentication.ldap.userFilter", "%s"),
    ),
    (
        "ldap-user-filter-format-directive",
        with_changes(authentication={"ldap": {**LDAP, "userFilter": "(uid=%s%n)"}}),
        ("spec.authentication.ldap.userFilter",),
    ),
    (
        "ldap-group-filter-without-group",
        with_changes(authentication={"ldap": {**LDAP, "groupFilter": "(member=%u)"}}),
        ("spec.authentication.ldap.groupFilter", "%g"),
    ),
    (
        "ldap-bind-dn-newline",
        with_changes(authentication={"ldap": {**LDAP, "bindDN": "cn=a\n-w x"}}),
        ("spec.authentication.ldap.bindDN",),
    ),
    (
        "ldap-without-bind-secret",
        with_changes(authentication={"ldap": {k: v for k, v in LDAP.items() if k != "bindSecret"}}),
        ("spec.authentication.ldap.bindSecret", "Required"),
    ),
    ("unknown-field", with_changes(proxyPort=8080), ("spec.proxyPort", "not declared")),
    (
        "unknown-nested-field",
        with_changes(sizing__burst=10),
        ("spec.sizing.burst", "not declared"),
    ),
]
