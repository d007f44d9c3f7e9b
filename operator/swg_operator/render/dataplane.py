"""Data-plane config text (squid.conf, ACL list files, block page, c-icap, clamd and freshclam
config) for one tenant.

Pure: the spec, the URL catalogue and the operator's settings in, file name -> text out. The
files follow the images' layout (`render.context`: configuration in CONF_DIR, state in STATE_DIR,
the inspection CA in TLS_DIR) and are what the data-plane test tier runs Squid, c-icap and
clamd with (e2e/dataplane). Names decide which workload gets a file (`render.configmaps`):
c-icap*, clamd*, freshclam*, virus_scan* go to the anti-virus pod, the rest to the proxy.

Every value that reaches a file is constrained by the API models' patterns or by the catalogue's
validation, and the templates are rendered with StrictUndefined: a missing value is an error,
never an empty directive.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Final

import jinja2

from swg_logstore import formats
from swg_logstore.formats import TENANT_POLICY, Decision, MatchedList, annotation
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.api.spec import DenyList, DomainList
from swg_operator.catalogue import Catalogue, squid_dstdomain_lines, squid_url_regex_lines
from swg_operator.naming import Component, service_name
from swg_operator.render.context import CONF_DIR, ICAP_PORT, STATE_DIR, TLS_DIR
from swg_operator.render.network import ALWAYS_EXCLUDED
from swg_operator.render.signatures import (
    FRESHCLAM_CONF,
    freshclam_template_values,
    proxied_mirrors,
    proxy_admits_antivirus,
    uses_freshclam,
)

# Squid's shutdown_lifetime: open transfers get this long after SIGTERM (the proxy Deployment's
# grace period is derived from it, render.workloads.proxy_grace_seconds).
SHUTDOWN_SECONDS: Final = 10
# Largest list file: ConfigMaps hold about 1 MiB, and several files share one.
LIST_FILE_BYTES: Final = 256 * 1024
# clamd cannot scan files over 2 GB: the largest scan limit a tenant gets.
CLAMD_MAX_BYTES: Final = 2000 * 1024 * 1024
# clamd's MaxScanSize (bytes scanned in one object, archive members included) is this many
# times the object limit, so that an archive under the limit is scanned whole once expanded.
CLAMD_SCAN_FACTOR: Final = 4
CLAMD_SOCKET: Final = f"{STATE_DIR}/clamd/clamd.sock"
CLAMAV_DB_DIR: Final = f"{STATE_DIR}/clamav/db"
ICAP_SERVICE_PATH: Final = "avscan"  # the virus_scan alias in virus_scan.conf
# c-icap's names of the scanning service: the service and the alias Squid's ICAP URL uses (the
# anti-virus log's ACL must name the one Squid asks for, or c-icap logs nothing).
CICAP_SERVICE_NAMES: Final = ("virus_scan", ICAP_SERVICE_PATH)
# Squid's icap_service name of the external sandbox analyser (options.sandbox).
SANDBOX_SERVICE: Final = "swg_sandbox_resp"
BLOCK_PAGE: Final = "ERR_SWG_BLOCKED"
# Squid's unique_hostname: what the Via header names to every website. The same for every
# tenant, so it identifies none (visible_hostname carries the service code).
VIA_HOSTNAME: Final = "swg-gateway"
# Squid keeps IPv4 addresses as IPv4-mapped IPv6 internally: a `dst ::ffff:0:0/96` ACL would
# match every IPv4 destination. The IPv4 ranges themselves are listed, so it is left out.
_NOT_FOR_SQUID: Final = frozenset({"::ffff:0:0/96"})

_QUANTITY = re.compile(r"^(?P<n>[0-9]+(?:\.[0-9]+)?)(?P<unit>Ki|Mi|Gi|Ti|k|M|G|T)?$")
_UNITS: Final = {
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("swg_operator.render", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - config text, not HTML; values are pattern-constrained
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def quantity_bytes(quantity: str) -> int:
    """A Kubernetes byte quantity ("50Mi", "1.5G", "1024") in bytes, rounded up."""
    match = _QUANTITY.match(quantity)
    if match is None:
        raise ValueError(f"{quantity!r} is not a byte quantity")
    exact = Decimal(match["n"]) * _UNITS[match["unit"] or ""]
    return int(exact.to_integral_value(rounding=ROUND_CEILING))


@dataclass(frozen=True)
class AclFiles:
    """One Squid ACL read from one or more list files (Squid merges same-name lines)."""

    name: str
    type: str  # dstdomain | url_regex | ssl::server_name
    files: tuple[str, ...]
    comment: str


@dataclass(frozen=True)
class Rule:
    """One `http_access` line and the annotation it records (`formats.annotation`)."""

    action: str  # allow | deny
    match: tuple[str, ...]
    tag: str
    notes: str


@dataclass(frozen=True)
class SniRule:
    """One `ssl_bump` line at step 2 (the TLS server name known), from one domain rule."""

    action: str  # splice | bump | terminate
    match: tuple[str, ...]


@dataclass(frozen=True)
class Policy:
    name: str
    src_acl: str
    cidrs: tuple[str, ...]


def _chunks(lines: Sequence[str]) -> list[str]:
    """List file texts of at most LIST_FILE_BYTES each (one line never splits)."""
    chunks: list[str] = []
    current: list[str] = []
    used = 0
    for line in lines:
        size = len(line) + 1
        if current and used + size > LIST_FILE_BYTES:
            chunks.append("".join(current))
            current, used = [], 0
        current.append(line + "\n")
        used += size
    if current:
        chunks.append("".join(current))
    return chunks


class _Builder:
    """Collects list files and the ACLs that read them."""

    def __init__(self) -> None:
        self.files: dict[str, str] = {}
        self.acls: list[AclFiles] = []

    def list_files(self, lines: Sequence[str], *, stem: str) -> tuple[str, ...]:
        """Write `lines` to `<stem>.<n>.list` files; their names (none when `lines` is empty)."""
        chunks = _chunks(lines)
        names = tuple(f"{stem}.{index}.list" for index in range(len(chunks)))
        self.files.update(zip(names, chunks, strict=True))
        return names

    def acl(
        self, name: str, acl_type: str, lines: Sequence[str], *, stem: str, comment: str
    ) -> bool:
        """Add ACL `name` over `lines`; False when empty (an empty ACL never matches, so its
        rules are left out)."""
        names = self.list_files(lines, stem=stem)
        if names:
            self.acls.append(AclFiles(name, acl_type, names, comment))
        return bool(names)

    def reuse(self, name: str, acl_type: str, like: str, comment: str) -> None:
        """Another ACL (of another type) over the files of ACL `like`."""
        files = next(acl.files for acl in self.acls if acl.name == like)
        self.acls.append(AclFiles(name, acl_type, files, comment))


def _category_acls(
    builder: _Builder, catalogue: Catalogue, names: Iterable[str]
) -> dict[str, tuple[str, ...]]:
    """ACLs of each named category; category name -> the ACL names that match it."""
    out: dict[str, tuple[str, ...]] = {}
    for index, name in enumerate(sorted(set(names))):
        category = catalogue[name]
        acls: list[str] = []
        stem = f"category-{name}"
        if builder.acl(
            f"swg_c{index}_dom",
            "dstdomain",
            squid_dstdomain_lines(category.domains),
            stem=f"{stem}.domains",
            comment=f"category {name}: domains",
        ):
            acls.append(f"swg_c{index}_dom")
        if builder.acl(
            f"swg_c{index}_url",
            "url_regex",
            squid_url_regex_lines(category.urls),
            stem=f"{stem}.urls",
            comment=f"category {name}: URLs",
        ):
            acls.append(f"swg_c{index}_url")
        out[name] = tuple(acls)
    return out


def _list_rules(
    builder: _Builder,
    *,
    prefix: str,
    stem: str,
    where: str,
    allow: DomainList,
    deny: DenyList,
    categories: Sequence[str],
    category_acls: dict[str, tuple[str, ...]],
    scope: tuple[str, ...],
    policy: str,
) -> list[Rule]:
    """Allow list, deny list, deny regexes and blocked categories, in that order, for the
    clients `scope` matches (all clients when empty)."""
    rules: list[Rule] = []
    # (ACL suffix, ACL type, entries, file stem, spec field, action, decision, matched list)
    lists = (
        ("allow", "dstdomain", squid_dstdomain_lines(allow.domains), "allow.domains",
         "allow.domains", "allow", Decision.ALLOW, MatchedList.ALLOW_DOMAIN),
        ("deny", "dstdomain", squid_dstdomain_lines(deny.domains), "deny.domains",
         "deny.domains", "deny", Decision.BLOCK, MatchedList.DENY_DOMAIN),
        ("regex", "url_regex", list(deny.url_regex), "deny.regex",
         "deny.urlRegex", "deny", Decision.BLOCK, MatchedList.DENY_REGEX),
    )  # fmt: skip
    for suffix, acl_type, entries, file_stem, field, action, decision, matched in lists:
        acl = f"{prefix}_{suffix}"
        if builder.acl(
            acl, acl_type, entries, stem=f"{stem}{file_stem}", comment=f"{where}.{field}"
        ):
            rules.append(
                Rule(
                    action,
                    (*scope, acl),
                    f"{prefix}_tag_{suffix}",
                    annotation(decision=decision, matched=matched, policy=policy),
                )
            )
    for name in categories:
        for acl in category_acls[name]:
            rules.append(
                Rule(
                    "deny",
                    (*scope, acl),
                    f"{prefix}_tag_{acl.removeprefix('swg_')}",
                    annotation(
                        decision=Decision.BLOCK,
                        matched=MatchedList.CATEGORY,
                        category=name,
                        policy=policy,
                    ),
                )
            )
    return rules


def _sni_rules(
    builder: _Builder, rules: Sequence[Rule], *, inspection: bool, no_inspect: bool
) -> list[SniRule]:
    """The domain rules again, in the same order, matched on the TLS server name (the client
    hello's SNI, else the CONNECT host) with an `ssl::server_name` ACL over the same files. A
    denied name is terminated without inspection (nothing is decrypted, so no page can be
    shown) and bumped with it (the decrypted request then meets http_access and gets the block
    page); an allowed name ends the check as if no rule matched."""
    types = {acl.name: acl.type for acl in builder.acls}
    out: list[SniRule] = []
    for rule in rules:
        *scope, acl = rule.match
        if types.get(acl) != "dstdomain":
            continue  # URL regexes need the URL, which only inspection sees
        sni = f"{acl}_sni"
        if sni not in types:
            builder.reuse(sni, "ssl::server_name", acl, f"{acl} by TLS server name")
            types[sni] = "ssl::server_name"
        match = (*scope, sni)
        if rule.action == "deny":
            if inspection:
                out.append(SniRule("bump", match))
            else:
                out.append(SniRule("terminate", (*match, rule.tag)))
        elif inspection:
            if no_inspect:
                out.append(SniRule("splice", (*match, "swg_no_inspect")))
            out.append(SniRule("bump", match))
        else:
            out.append(SniRule("splice", match))
    return out


# A CONNECT host that is an address, in any spelling the resolver accepts (dotted, decimal,
# octal or hex IPv4 such as 2130706433 or 0x7f.1, IPv6 in brackets): no top-level domain is
# numeric or starts with 0x, and no host name holds a colon.
IP_HOST_PATTERNS: Final = (r"^\[?[0-9a-f.:]*:[0-9a-f.:]*\]?$", r"(^|\.)(0x[0-9a-f]*|[0-9]+)\.?$")


def _squid_cidrs(cidrs: Iterable[str]) -> list[str]:
    """The networks collapsed: Squid keeps ACL addresses in a splay tree and, when one network
    contains another, warns and IGNORES THE WIDER ONE. IPv4 first, then IPv6."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for cidr in cidrs:
        if cidr in _NOT_FOR_SQUID:
            continue
        network = ipaddress.ip_network(cidr, strict=False)
        if isinstance(network, ipaddress.IPv4Network):
            v4.append(network)
        else:
            v6.append(network)
    collapsed = [*ipaddress.collapse_addresses(v4), *ipaddress.collapse_addresses(v6)]
    return [str(network) for network in collapsed]


def _bypass_rule(acl: str, matched: MatchedList) -> Rule:
    """options.bypass: allowed without filtering or scanning, one rule per kind of list."""
    return Rule(
        "allow",
        (acl,),
        f"swg_tag_{acl.removeprefix('swg_')}",
        annotation(decision=Decision.BYPASS, matched=matched, policy=TENANT_POLICY),
    )


def _sandbox_url(spec: SecureWebGatewaySpec) -> str:
    """The sandbox analyser's ICAP URL; empty when it is off. Squid adapts (and so reaches the
    sandbox) only with anti-virus on: the sandbox follows clamd in the response chain."""
    sandbox = spec.options.sandbox
    if spec.antivirus.enabled and sandbox.enabled and sandbox.icap_url:
        return sandbox.icap_url
    return ""


def effective_scan_limit(spec: SecureWebGatewaySpec) -> int:
    """The tenant's anti-virus scan limit in bytes: spec.antivirus.maxScanSize, capped at what
    clamd can scan. c-icap, clamd and Squid all get this one value (docs/antivirus.md)."""
    return min(quantity_bytes(spec.antivirus.max_scan_size), CLAMD_MAX_BYTES)


def greater_than_regex(limit: int) -> str:
    """A POSIX extended regex (no anchors) matching the decimal numbers greater than `limit`,
    with or without leading zeros: Squid ACLs compare header values as text."""
    if limit < 0:
        raise ValueError("limit must not be negative")
    digits = str(limit)
    width = len(digits)
    alternatives = [f"[1-9][0-9]{{{width},}}"]  # more digits
    for index, digit in enumerate(digits):  # as many digits, larger at `index`
        if digit == "9":
            continue
        rest = width - index - 1
        alternative = digits[:index] + f"[{int(digit) + 1}-9]"
        alternative += f"[0-9]{{{rest}}}" if rest else ""
        alternatives.append(alternative)
    return "0*(" + "|".join(alternatives) + ")"


def sandbox_service_name(spec: SecureWebGatewaySpec) -> str | None:
    """Squid's icap_service name of the sandbox when squid.conf defines one, else None (no
    sandbox log)."""
    return SANDBOX_SERVICE if _sandbox_url(spec) else None


def service_host(settings: OperatorSettings, component: Component, namespace: str | None) -> str:
    """A Service of the tenant namespace by its full name (Squid and freshclam look names up as
    written, without the pod's search list); the short name when no namespace is given
    (previews of the config text only)."""
    service = service_name(component)
    if namespace is None:
        return service
    return f"{service}.{namespace}.svc.{settings.cluster_domain}"


def antivirus_host(settings: OperatorSettings, namespace: str | None) -> str:
    """The anti-virus Service as Squid names it in its ICAP URL."""
    return service_host(settings, Component.ANTIVIRUS, namespace)


@dataclass(frozen=True)
class MirrorRule:
    """One `http_access allow` of the anti-virus pods: a CONNECT tunnel to one mirror host on
    one port (through a proxy freshclam tunnels every request; settings refuse http:// mirrors
    that would go this way)."""

    acl: str  # the dstdomain ACL of the host; `<acl>_port` is its port ACL
    host: str
    port: int


def signature_mirror_rules(
    spec: SecureWebGatewaySpec, settings: OperatorSettings
) -> list[MirrorRule]:
    """What squid.conf lets the tenant's anti-virus pods do (freshclam through the proxy, no
    mirror in the cluster): reach the mirror's hosts on their ports, nothing else. Empty when
    freshclam does not go through the proxy, and without cluster networks to tell the
    anti-virus pods by."""
    if not (spec.antivirus.enabled and proxy_admits_antivirus(settings)):
        return []
    return [
        MirrorRule(f"swg_av_mirror{index}", m.host, m.port)
        for index, m in enumerate(proxied_mirrors(settings.antivirus.freshclam))
    ]


def render_dataplane_files(
    spec: SecureWebGatewaySpec,
    *,
    catalogue: Catalogue,
    settings: OperatorSettings,
    namespace: str | None = None,
) -> dict[str, str]:
    """Return every data-plane config file of the tenant: file name -> text.

    The caller has checked that every category the spec names is in `catalogue`
    (`render.checks.check_categories`). `namespace`: the tenant namespace, which names the
    anti-virus Service in squid.conf (`antivirus_host`); the operator always passes it.
    """
    filtering = spec.url_filtering
    builder = _Builder()
    inspection = spec.options.https_inspection
    policy_categories = [c for p in filtering.policies for c in p.blocked_categories]
    category_acls = _category_acls(
        builder, catalogue, [*filtering.blocked_categories, *policy_categories]
    )

    policies: list[Policy] = []
    rules: list[Rule] = []
    for index, policy in enumerate(filtering.policies):
        src = f"swg_p{index}_src"
        policies.append(Policy(policy.name, src, tuple(_squid_cidrs(policy.source_cidrs))))
        rules += _list_rules(
            builder,
            prefix=f"swg_p{index}",
            stem=f"policy-{policy.name}.",
            where=f"spec.urlFiltering.policies[{index}]",
            allow=policy.allow,
            deny=policy.deny,
            categories=sorted(set(policy.blocked_categories)),
            category_acls=category_acls,
            scope=(src,),
            policy=policy.name,
        )
    rules += _list_rules(
        builder,
        prefix="swg_t",
        stem="tenant-",
        where="spec.urlFiltering",
        allow=filtering.allow,
        deny=filtering.deny,
        categories=sorted(set(filtering.blocked_categories)),
        category_acls=category_acls,
        scope=(),
        policy=TENANT_POLICY,
    )

    bypass = spec.options.bypass
    bypass_rules: list[Rule] = []
    if builder.acl(
        "swg_bypass_dom",
        "dstdomain",
        squid_dstdomain_lines(bypass.domains),
        stem="bypass.domains",
        comment="spec.options.bypass.domains",
    ):
        bypass_rules.append(_bypass_rule("swg_bypass_dom", MatchedList.BYPASS_DOMAIN))
        builder.reuse(
            "swg_bypass_sni", "ssl::server_name", "swg_bypass_dom", "bypass domains by TLS SNI"
        )
    if bypass.cidrs:
        bypass_rules.append(_bypass_rule("swg_bypass_dst", MatchedList.BYPASS_CIDR))
    bypass_acls = [rule.match[0] for rule in bypass_rules]

    no_inspect_files: tuple[str, ...] = ()
    if inspection.enabled:
        domains = list(inspection.do_not_inspect.domains)
        for name in inspection.do_not_inspect.categories:
            domains += catalogue[name].domains
        no_inspect_files = builder.list_files(
            squid_dstdomain_lines(domains), stem="no-inspect.domains"
        )

    sni_rules = _sni_rules(
        builder, rules, inspection=inspection.enabled, no_inspect=bool(no_inspect_files)
    )

    antivirus = spec.antivirus
    max_scan_bytes = effective_scan_limit(spec)
    sandbox_url = _sandbox_url(spec)
    visible_hostname = f"{spec.service_code.lower()}.swg"
    mirror_rules = signature_mirror_rules(spec, settings)
    common = {
        "service_code": spec.service_code,
        "visible_hostname": visible_hostname,
        "conf_dir": CONF_DIR,
        "state_dir": STATE_DIR,
        "tls_dir": TLS_DIR,
    }
    squid_conf = _ENV.get_template("squid.conf.j2").render(
        **common,
        shutdown_seconds=SHUTDOWN_SECONDS,
        proxy_port=settings.proxy_port,
        inspection=inspection.enabled,
        allowed_cidrs=_squid_cidrs(spec.clients.allowed_cidrs),
        forbidden_dst=_squid_cidrs(
            (*ALWAYS_EXCLUDED, *settings.cluster_cidrs, *settings.api_server_cidrs)
        ),
        test_loopback=_squid_cidrs(settings.test_allowed_loopback),
        acls=builder.acls,
        policies=policies,
        rules=rules,
        forbidden_notes=annotation(
            decision=Decision.BLOCK, matched=MatchedList.RESTRICTED, policy=TENANT_POLICY
        ),
        default_notes=annotation(
            decision=Decision.ALLOW, matched=MatchedList.DEFAULT, policy=TENANT_POLICY
        ),
        has_bypass=bool(bypass_acls),
        bypass_acls=bypass_acls,
        bypass_rules=bypass_rules,
        bypass_cidrs=_squid_cidrs(bypass.cidrs),
        bypass_sni_acl="swg_bypass_sni" if bypass.domains else "",
        sni_rules=sni_rules,
        ip_host_patterns=IP_HOST_PATTERNS,
        no_inspect_files=no_inspect_files,
        antivirus=antivirus.enabled,
        fail_open=antivirus.fail_open,
        icap_bypass="on" if antivirus.fail_open else "off",
        max_scan_bytes=max_scan_bytes,
        over_limit_regex=f"^{greater_than_regex(max_scan_bytes)}$",
        icap_url=f"icap://{antivirus_host(settings, namespace)}:{ICAP_PORT}/{ICAP_SERVICE_PATH}",
        mirror_rules=mirror_rules,
        mirror_src=_squid_cidrs(settings.cluster_cidrs),
        mirror_tls_hosts=sorted({r.host for r in mirror_rules}),
        mirror_notes=annotation(
            decision=Decision.BYPASS, matched=MatchedList.SIGNATURE_MIRROR, policy=TENANT_POLICY
        ),
        cluster_domain=settings.cluster_domain,
        via_hostname=VIA_HOSTNAME,
        sandbox_url=sandbox_url,
        sandbox_service=SANDBOX_SERVICE,
        resp_service="swg_resp_chain" if sandbox_url else "swg_av_resp",
        logging_directives=formats.squid_logging_directives(
            sandbox_service=sandbox_service_name(spec)
        ),
    )
    files = dict(builder.files)
    files["squid.conf"] = squid_conf
    files[BLOCK_PAGE] = _ENV.get_template(f"{BLOCK_PAGE}.j2").render(**common)
    if antivirus.enabled:
        context = {
            **common,
            "icap_port": ICAP_PORT,
            "clamd_socket": CLAMD_SOCKET,
            "db_dir": CLAMAV_DB_DIR,
            "max_scan_bytes": max_scan_bytes,
            "clamd_scan_bytes": min(max_scan_bytes * CLAMD_SCAN_FACTOR, CLAMD_MAX_BYTES),
            "logging_directives": formats.cicap_logging_directives(
                service_names=CICAP_SERVICE_NAMES
            ),
            "freshclam": uses_freshclam(settings),
        }
        names = ["c-icap.conf", "clamd_mod.conf", "virus_scan.conf", "clamd.conf"]
        if uses_freshclam(settings):
            context.update(
                freshclam_template_values(
                    settings, proxy_host=service_host(settings, Component.PROXY, namespace)
                )
            )
            names.append(FRESHCLAM_CONF)
        for name in names:
            files[name] = _ENV.get_template(f"{name}.j2").render(**context)
    return files
