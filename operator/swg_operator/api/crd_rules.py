"""The CEL rules and list-type extensions of the CRD: `SCHEMA_OVERLAYS`, keyed by model name,
merged into the converted schema by `api.crd` so that the API server refuses at `kubectl apply`
what the operator would otherwise have to mark `Stalled`. Each message names the field it is
about; the messages of the cross-field rules are the models' own."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from swg_operator.api.access import (
    HOSTNAME_REQUIRED,
    PLAINTEXT_NEEDS_TLS,
    TLS_ONLY_NEEDS_NO_INSPECTION,
)
from swg_operator.api.content import FILE_TYPES_NEED_ANTIVIRUS, SAFE_SEARCH_NEEDS_INSPECTION
from swg_operator.api.spec import GROUPS_NEED_DIRECTORY

JsonSchema = dict[str, Any]


def cel_rule(
    rule: str, message: str, *, field_path: str | None = None, reason: str | None = None
) -> JsonSchema:
    """One `x-kubernetes-validations` entry."""
    entry: JsonSchema = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


# A canonical CIDR: parses, and equals its own network (host bits zero, lowercase, compressed),
# as `types._canonical_cidr` requires. The second rule guards on the first to avoid a runtime
# error, so a bad value gets exactly one message.
CIDR_RULES: Final = (
    cel_rule("isCIDR(self)", "must be a CIDR such as 10.1.0.0/16 or 2001:db8::/32"),
    cel_rule(
        "!isCIDR(self) || string(cidr(self).masked()) == self",
        "must be a canonical CIDR: host bits zero, lowercase, compressed "
        "(e.g. 10.1.0.0/16, not 10.1.2.3/16)",
    ),
)

_SET: Final = {"x-kubernetes-list-type": "set"}

# api.content.check_content_controls as CEL on the spec.
_FILE_TYPES_SET: Final = (
    "has(self.contentControls) && has(self.contentControls.fileTypes) && "
    "((has(self.contentControls.fileTypes.blocked) && "
    "size(self.contentControls.fileTypes.blocked) > 0) || "
    "(has(self.contentControls.fileTypes.custom) && "
    "size(self.contentControls.fileTypes.custom) > 0))"
)
_ANTIVIRUS_OFF: Final = (
    "has(self.antivirus) && has(self.antivirus.enabled) && !self.antivirus.enabled"
)
_SAFE_SEARCH_ON: Final = (
    "has(self.contentControls) && has(self.contentControls.safeSearch) && "
    "has(self.contentControls.safeSearch.enabled) && self.contentControls.safeSearch.enabled"
)
_INSPECTION_ON: Final = (
    "has(self.options) && has(self.options.httpsInspection) && "
    "has(self.options.httpsInspection.enabled) && self.options.httpsInspection.enabled"
)
_TLS_ALONE: Final = (
    "has(self.access) && has(self.access.tls) && has(self.access.tls.enabled) && "
    "self.access.tls.enabled && has(self.access.tls.plaintext) && !self.access.tls.plaintext"
)
ACCESS_RULES: Final = (
    cel_rule(
        f"!({_TLS_ALONE}) || !({_INSPECTION_ON})",
        TLS_ONLY_NEEDS_NO_INSPECTION,
        field_path=".access",
        reason="FieldValueForbidden",
    ),
)
CONTENT_CONTROL_RULES: Final = (
    cel_rule(
        f"!({_FILE_TYPES_SET}) || !({_ANTIVIRUS_OFF})",
        FILE_TYPES_NEED_ANTIVIRUS,
        field_path=".contentControls",
        reason="FieldValueForbidden",
    ),
    cel_rule(
        f"!({_SAFE_SEARCH_ON}) || ({_INSPECTION_ON})",
        SAFE_SEARCH_NEEDS_INSPECTION,
        field_path=".contentControls",
        reason="FieldValueForbidden",
    ),
)

# api.spec: policies select users by group only with a directory.
_GROUP_POLICY: Final = (
    "has(self.urlFiltering) && has(self.urlFiltering.policies) && "
    "self.urlFiltering.policies.exists(p, has(p.groups) && size(p.groups) > 0)"
)
_DIRECTORY_SET: Final = "has(self.authentication) && has(self.authentication.ldap)"
AUTHENTICATION_RULES: Final = (
    cel_rule(
        f"!({_GROUP_POLICY}) || ({_DIRECTORY_SET})",
        GROUPS_NEED_DIRECTORY,
        field_path=".urlFiltering",
        reason="FieldValueForbidden",
    ),
)

# Extensions merged into the converted schema of the model with that name (its JSON schema
# title). Every model with a `model_validator` must appear here (tests/test_crd.py checks).
SCHEMA_OVERLAYS: Final[Mapping[str, JsonSchema]] = {
    "SecureWebGatewaySpec": {
        "properties": {
            "serviceCode": {
                "x-kubernetes-validations": [
                    cel_rule("self == oldSelf", "serviceCode is immutable"),
                ],
            },
        },
        "x-kubernetes-validations": [*CONTENT_CONTROL_RULES, *ACCESS_RULES, *AUTHENTICATION_RULES],
    },
    "FilterPolicy": {
        "properties": {"groups": dict(_SET)},
        "x-kubernetes-validations": [
            cel_rule(
                "(has(self.sourceCIDRs) && size(self.sourceCIDRs) > 0) || "
                "(has(self.groups) && size(self.groups) > 0)",
                "urlFiltering.policies[]: list sourceCIDRs, groups or both",
                reason="FieldValueRequired",
            ),
        ],
    },
    "Access": {
        "x-kubernetes-validations": [
            cel_rule(
                "has(self.hostname) || !("
                "(has(self.pac) && has(self.pac.enabled) && self.pac.enabled) || "
                "(has(self.tls) && has(self.tls.enabled) && self.tls.enabled))",
                HOSTNAME_REQUIRED,
                field_path=".hostname",
                reason="FieldValueRequired",
            ),
        ],
    },
    "LdapDirectory": {
        "properties": {
            "userFilter": {
                "x-kubernetes-validations": [
                    cel_rule(
                        "self.contains('%s')",
                        "authentication.ldap.userFilter: must contain %s (the login name)",
                    ),
                ],
            },
            "groupFilter": {
                "x-kubernetes-validations": [
                    cel_rule(
                        "self.contains('%g')",
                        "authentication.ldap.groupFilter: must contain %g (the group name)",
                    ),
                ],
            },
        },
    },
    "TlsListener": {
        "x-kubernetes-validations": [
            cel_rule(
                "!has(self.plaintext) || self.plaintext || (has(self.enabled) && self.enabled)",
                PLAINTEXT_NEEDS_TLS,
                field_path=".plaintext",
                reason="FieldValueForbidden",
            ),
        ],
    },
    "Clients": {
        "properties": {"allowedCIDRs": dict(_SET)},
        "x-kubernetes-validations": [
            cel_rule(
                "(has(self.allowAnyClient) && self.allowAnyClient) || "
                "!self.allowedCIDRs.exists(c, isCIDR(c) && cidr(c).prefixLength() == 0)",
                "clients.allowedCIDRs: a catch-all CIDR (0.0.0.0/0 or ::/0) opens the proxy to "
                "every address; set clients.allowAnyClient: true to allow it",
                field_path=".allowedCIDRs",
                reason="FieldValueForbidden",
            ),
        ],
    },
    "UrlFiltering": {
        "properties": {
            "blockedCategories": dict(_SET),
            "policies": {
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["name"],
            },
        },
    },
    "FileTypeBlocking": {
        "properties": {
            "blocked": dict(_SET),
            "custom": {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
        },
    },
    "Sandbox": {
        "x-kubernetes-validations": [
            cel_rule(
                "!(has(self.enabled) && self.enabled) || has(self.icapURL)",
                "options.sandbox.icapURL: required when options.sandbox.enabled is true",
                field_path=".icapURL",
                reason="FieldValueRequired",
            ),
        ],
    },
    "SecureWebGatewayStatus": {
        "properties": {
            "conditions": {
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
            },
        },
    },
}
