"""What the tenant's admins may see of their contract: the options, the effective filtering
(categories, lists, policies, content controls), how clients reach the proxy, the sizing, the
log retention and the region, as the operator applies them.

The `SecureWebGateway` is cluster-scoped and its admins cannot read it; this view is mirrored
into the ConfigMap `tenant-status` of their namespace (key `contract`, one JSON document) and
printed by `kubectl swg status`. It holds the spec's settings and the sizes of the lists, never a
secret: not the contacts, not the admins' identities, not the sandbox's URL (it may carry
credentials), not the CA Secret's content (only whether the customer brought one, likewise for
the TLS listener's certificate). Lists that
can be long (domains, URL regexes, bypass entries) are given as counts; categories and the
policies' names, networks and directory groups in full, as they decide who is filtered how.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

from swg_operator.api import SecureWebGatewaySpec
from swg_operator.api.spec import DenyList, DomainList


def _lists(allow: DomainList, deny: DenyList) -> dict[str, int]:
    return {
        "allowDomains": len(allow.domains),
        "denyDomains": len(deny.domains),
        "denyUrlRegex": len(deny.url_regex),
    }


def contract_view(spec: SecureWebGatewaySpec) -> dict[str, Any]:
    """The admins' view of `spec` (JSON-ready; see the module docstring)."""
    filtering = spec.url_filtering
    options = spec.options
    inspection = options.https_inspection
    antivirus = spec.antivirus
    logs = spec.logs
    content = spec.content_controls
    access = spec.access
    return {
        "serviceCode": spec.service_code,
        "sizing": {
            "endpoints": spec.sizing.endpoints,
            "requestsPerSecond": spec.sizing.requests_per_second,
        },
        "clients": {"allowedCIDRs": len(spec.clients.allowed_cidrs)},
        "filtering": {
            "blockedCategories": list(filtering.blocked_categories),
            **_lists(filtering.allow, filtering.deny),
            "policies": [
                {
                    "name": policy.name,
                    "sourceCIDRs": list(policy.source_cidrs),
                    "groups": list(policy.groups),
                    "blockedCategories": list(policy.blocked_categories),
                    **_lists(policy.allow, policy.deny),
                }
                for policy in filtering.policies
            ],
        },
        "contentControls": {
            "blockedFileTypes": [str(t) for t in content.file_types.blocked],
            "customFileTypes": [c.name for c in content.file_types.custom],
            "safeSearch": {
                "enabled": content.safe_search.enabled,
                "youtube": str(content.safe_search.youtube),
            },
        },
        "access": {
            "hostname": access.hostname or "(none)",
            "tls": {
                "enabled": access.tls.enabled,
                "port": access.tls.port,
                "plaintext": access.tls.plaintext,
                "customerCertificate": access.tls.certificate_secret is not None,
            },
            "pac": {"enabled": access.pac.enabled},
        },
        "options": {
            "antivirus": {
                "enabled": antivirus.enabled,
                "maxScanSize": antivirus.max_scan_size,
                "failOpen": antivirus.fail_open,
                "customSignatures": antivirus.custom_signatures is not None,
            },
            "httpsInspection": {
                "enabled": inspection.enabled,
                "doNotInspectDomains": len(inspection.do_not_inspect.domains),
                "doNotInspectCategories": list(inspection.do_not_inspect.categories),
                "customerCA": inspection.ca_secret is not None,
            },
            "sandbox": {"enabled": options.sandbox.enabled},
            "bypass": {
                "domains": len(options.bypass.domains),
                "CIDRs": len(options.bypass.cidrs),
            },
        },
        "logs": {
            "retentionDays": logs.retention_days,
            "timeZone": logs.time_zone,
            "storageSize": logs.storage.size,
            "storageClassName": logs.storage.storage_class_name or "(cluster default)",
        },
        "region": spec.placement.region or "(any)",
        "suspended": spec.suspended,
    }


def format_contract(view: dict[str, Any]) -> list[str]:
    """Lines for people (`kubectl swg status`)."""
    sizing = view.get("sizing") or {}
    filtering = view.get("filtering") or {}
    options = view.get("options") or {}
    logs = view.get("logs") or {}

    def lists(d: dict[str, Any]) -> str:
        return (
            f"{d.get('allowDomains', 0)} allowed domain(s), {d.get('denyDomains', 0)} denied, "
            f"{d.get('denyUrlRegex', 0)} URL regex(es)"
        )

    def categories(values: Any) -> str:
        return ", ".join(values) if values else "(none)"

    def on_off(value: Any) -> str:
        return "on" if value else "off"

    content = view.get("contentControls") or {}
    safe = content.get("safeSearch") or {}
    access = view.get("access") or {}
    tls = access.get("tls") or {}
    av = options.get("antivirus") or {}
    inspection = options.get("httpsInspection") or {}
    bypass = options.get("bypass") or {}
    lines = [
        "",
        "Contract:",
        f"  Service code:        {view.get('serviceCode', '?')}",
        f"  Sizing:              {sizing.get('endpoints', '?')} endpoints, "
        f"{sizing.get('requestsPerSecond', '?')} requests/s",
        f"  Region:              {view.get('region', '?')}",
        f"  Logs:                {logs.get('retentionDays', '?')} days including today, days in "
        f"{logs.get('timeZone', '?')}; volume {logs.get('storageSize', '?')}, class "
        f"{logs.get('storageClassName', '?')}",
        f"  Anti-virus:          {'on' if av.get('enabled') else 'off'}, scan limit "
        f"{av.get('maxScanSize', '?')}, {'fail open' if av.get('failOpen') else 'fail closed'}"
        f"{', custom signatures' if av.get('customSignatures') else ''}",
        f"  HTTPS inspection:    {on_off(inspection.get('enabled'))}"
        + (
            f" (not inspected: {inspection.get('doNotInspectDomains', 0)} domain(s), categories "
            f"{categories(inspection.get('doNotInspectCategories'))}; "
            f"{'customer' if inspection.get('customerCA') else 'generated'} CA)"
            if inspection.get("enabled")
            else ""
        ),
        f"  Sandbox:             {on_off((options.get('sandbox') or {}).get('enabled'))}",
        f"  Bypass:              {bypass.get('domains', 0)} domain(s), {bypass.get('CIDRs', 0)} "
        f"network(s)",
        f"  Filtering:           categories {categories(filtering.get('blockedCategories'))}; "
        f"{lists(filtering)}",
    ]
    if "contentControls" in view:  # absent from a mirror written by an older operator
        file_types = [*content.get("blockedFileTypes", []), *content.get("customFileTypes", [])]
        lines += [
            f"  File types blocked:  {categories(file_types)}",
            f"  SafeSearch:          {on_off(safe.get('enabled'))}"
            + (f" (YouTube {safe.get('youtube', '?')})" if safe.get("enabled") else ""),
        ]
    if "access" in view:
        lines.append(
            f"  Access:              hostname {access.get('hostname', '?')}; TLS listener "
            f"{on_off(tls.get('enabled'))}"
            + (
                f" (port {tls.get('port', '?')}, "
                f"{'customer' if tls.get('customerCertificate') else 'generated'} certificate)"
                if tls.get("enabled")
                else ""
            )
            + ("" if tls.get("plaintext", True) else ", plain listener closed")
            + f"; PAC file {on_off((access.get('pac') or {}).get('enabled'))}"
        )
    for policy in filtering.get("policies") or []:
        lines.append(
            f"  Policy {policy.get('name', '?')}: networks "
            f"{', '.join(policy.get('sourceCIDRs') or []) or '(any)'}; groups "
            f"{', '.join(policy.get('groups') or []) or '(any)'}; categories "
            f"{categories(policy.get('blockedCategories'))}; {lists(policy)}"
        )
    return lines
