"""Squid's access rules for one tenant: the ACLs over list files, the `http_access` rules in
order, the TLS server-name rules and the bypass, from the spec and the URL catalogue.

`squid_access` returns a `SquidAccess` (typed values and the list files' text) that `render.squid`
writes into squid.conf; the list files hold one entry per line in Squid's syntax
(`dstdomain_lines`, `url_regex_lines`).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from swg_logstore.formats import TENANT_POLICY, Decision, MatchedList, annotation
from swg_operator.api import SecureWebGatewaySpec
from swg_operator.api.spec import DenyList, DomainList
from swg_operator.catalogue import Catalogue, parse_domain, parse_url

# Largest list file: ConfigMaps hold about 1 MiB, and several files share one.
LIST_FILE_BYTES: Final = 256 * 1024
# Squid keeps IPv4 addresses as IPv4-mapped IPv6 internally: a `dst ::ffff:0:0/96` ACL would
# match every IPv4 destination. The IPv4 ranges themselves are listed, so it is left out.
_NOT_FOR_SQUID: Final = frozenset({"::ffff:0:0/96"})
# POSIX extended regular expression metacharacters (Squid's url_regex dialect).
_ERE_SPECIAL: Final = frozenset(".[]()*+?{}|^$\\")


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
    src_acl: str  # empty: the policy names no networks
    cidrs: tuple[str, ...]
    group_acl: str = ""  # empty: the policy names no groups
    groups: tuple[str, ...] = ()

    @property
    def scope(self) -> tuple[str, ...]:
        """The ACLs checked before a rule's list: the client's network."""
        return (self.src_acl,) if self.src_acl else ()

    @property
    def after(self) -> tuple[str, ...]:
        """The ACLs checked after a rule's list matched: the user's groups, so that the
        directory is asked only about requests the policy's lists name."""
        return (self.group_acl,) if self.group_acl else ()


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


class AclBuilder:
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


def category_acls(
    builder: AclBuilder, catalogue: Catalogue, names: Iterable[str]
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
            dstdomain_lines(category.domains),
            stem=f"{stem}.domains",
            comment=f"category {name}: domains",
        ):
            acls.append(f"swg_c{index}_dom")
        if builder.acl(
            f"swg_c{index}_url",
            "url_regex",
            url_regex_lines(category.urls),
            stem=f"{stem}.urls",
            comment=f"category {name}: URLs",
        ):
            acls.append(f"swg_c{index}_url")
        out[name] = tuple(acls)
    return out


def list_rules(
    builder: AclBuilder,
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
    after: tuple[str, ...] = (),
) -> list[Rule]:
    """Allow list, deny list, deny regexes and blocked categories, in that order, for the
    clients `scope` and `after` (checked before and after the list) match (all clients when
    both are empty)."""
    rules: list[Rule] = []
    # (ACL suffix, ACL type, entries, file stem, spec field, action, decision, matched list)
    lists = (
        ("allow", "dstdomain", dstdomain_lines(allow.domains), "allow.domains",
         "allow.domains", "allow", Decision.ALLOW, MatchedList.ALLOW_DOMAIN),
        ("deny", "dstdomain", dstdomain_lines(deny.domains), "deny.domains",
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
                    (*scope, acl, *after),
                    f"{prefix}_tag_{suffix}",
                    annotation(decision=decision, matched=matched, policy=policy),
                )
            )
    for name in categories:
        for acl in category_acls[name]:
            rules.append(
                Rule(
                    "deny",
                    (*scope, acl, *after),
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


def sni_rules(
    builder: AclBuilder, rules: Sequence[Rule], *, inspection: bool, no_inspect: bool
) -> list[SniRule]:
    """The domain rules again, in the same order, matched on the TLS server name (the client
    hello's SNI, else the CONNECT host) with an `ssl::server_name` ACL over the same files. A
    denied name is terminated without inspection (nothing is decrypted, so no page can be
    shown) and bumped with it (the decrypted request then meets http_access and gets the block
    page); an allowed name ends the check as if no rule matched."""
    types = {acl.name: acl.type for acl in builder.acls}
    out: list[SniRule] = []
    for rule in rules:
        acl = next(a for a in rule.match if a in types)  # the list; the others select clients
        if types[acl] != "dstdomain":
            continue  # URL regexes need the URL, which only inspection sees
        sni = f"{acl}_sni"
        if sni not in types:
            builder.reuse(sni, "ssl::server_name", acl, f"{acl} by TLS server name")
            types[sni] = "ssl::server_name"
        match = tuple(sni if a == acl else a for a in rule.match)
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


def squid_cidrs(cidrs: Iterable[str]) -> list[str]:
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


def bypass_rule(acl: str, matched: MatchedList) -> Rule:
    """options.bypass: allowed without filtering or scanning, one rule per kind of list."""
    return Rule(
        "allow",
        (acl,),
        f"swg_tag_{acl.removeprefix('swg_')}",
        annotation(decision=Decision.BYPASS, matched=matched, policy=TENANT_POLICY),
    )


def _reversed_labels(domain: str) -> tuple[str, ...]:
    return tuple(reversed(domain.split(".")))


def dstdomain_lines(domains: Iterable[str]) -> list[str]:
    """Lines of a Squid `dstdomain` file: `.domain` (the domain and its subdomains), IPv4
    addresses as they are; entries already covered by a parent domain are dropped (Squid warns
    about them and ignores one)."""
    lines: list[str] = []
    kept: list[tuple[str, ...]] = []
    for domain in sorted({parse_domain(d) for d in domains}, key=_reversed_labels):
        if _is_ipv4(domain):
            lines.append(domain)
            continue
        labels = _reversed_labels(domain)
        if kept and labels[: len(kept[-1])] == kept[-1]:
            continue
        kept.append(labels)
        lines.append(f".{domain}")
    return lines


def _is_ipv4(entry: str) -> bool:
    try:
        ipaddress.IPv4Address(entry)
    except ValueError:
        return False
    return True


def _ere_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in _ERE_SPECIAL else c for c in text)


def url_regex_lines(urls: Iterable[str]) -> list[str]:
    """Lines of a Squid `url_regex` file: each URL entry as an anchored prefix match, for http
    and https, on the host and its subdomains, any port unless the entry names one."""
    lines = []
    for url in sorted({parse_url(u) for u in urls}):
        slash = url.index("/")
        authority, path = url[:slash], url[slash:]
        host, _, port = authority.partition(":")
        port_pattern = f":{port}" if port else "(:[0-9]+)?"
        lines.append(
            f"^https?://([^/?@:]+\\.)?{_ere_escape(host)}{port_pattern}{_ere_escape(path)}"
        )
    return lines


@dataclass(frozen=True)
class SquidAccess:
    """What squid.conf says about who may reach what, and the list files it reads."""

    files: Mapping[str, str]  # list file name -> text
    acls: tuple[AclFiles, ...]
    policies: tuple[Policy, ...]
    rules: tuple[Rule, ...]  # http_access, policies' first, then the tenant's
    sni_rules: tuple[SniRule, ...]
    bypass_rules: tuple[Rule, ...]
    bypass_cidrs: tuple[str, ...]
    bypass_sni_acl: str  # empty: no bypass domains
    no_inspect_files: tuple[str, ...]


def squid_access(spec: SecureWebGatewaySpec, catalogue: Catalogue) -> SquidAccess:
    """The tenant's access rules. The caller has checked that every category the spec names is
    in `catalogue` (`render.checks.check_categories`)."""
    filtering = spec.url_filtering
    builder = AclBuilder()
    inspection = spec.options.https_inspection
    policy_categories = [c for p in filtering.policies for c in p.blocked_categories]
    acls_of = category_acls(builder, catalogue, [*filtering.blocked_categories, *policy_categories])

    policies: list[Policy] = []
    rules: list[Rule] = []
    for index, policy in enumerate(filtering.policies):
        selected = Policy(
            policy.name,
            f"swg_p{index}_src" if policy.source_cidrs else "",
            tuple(squid_cidrs(policy.source_cidrs)),
            f"swg_p{index}_grp" if policy.groups else "",
            tuple(policy.groups),
        )
        policies.append(selected)
        rules += list_rules(
            builder,
            prefix=f"swg_p{index}",
            stem=f"policy-{policy.name}.",
            where=f"spec.urlFiltering.policies[{index}]",
            allow=policy.allow,
            deny=policy.deny,
            categories=sorted(set(policy.blocked_categories)),
            category_acls=acls_of,
            scope=selected.scope,
            after=selected.after,
            policy=policy.name,
        )
    rules += list_rules(
        builder,
        prefix="swg_t",
        stem="tenant-",
        where="spec.urlFiltering",
        allow=filtering.allow,
        deny=filtering.deny,
        categories=sorted(set(filtering.blocked_categories)),
        category_acls=acls_of,
        scope=(),
        policy=TENANT_POLICY,
    )

    bypass = spec.options.bypass
    bypass_rules: list[Rule] = []
    if builder.acl(
        "swg_bypass_dom",
        "dstdomain",
        dstdomain_lines(bypass.domains),
        stem="bypass.domains",
        comment="spec.options.bypass.domains",
    ):
        bypass_rules.append(bypass_rule("swg_bypass_dom", MatchedList.BYPASS_DOMAIN))
        builder.reuse(
            "swg_bypass_sni", "ssl::server_name", "swg_bypass_dom", "bypass domains by TLS SNI"
        )
    if bypass.cidrs:
        bypass_rules.append(bypass_rule("swg_bypass_dst", MatchedList.BYPASS_CIDR))

    no_inspect_files: tuple[str, ...] = ()
    if inspection.enabled:
        domains = list(inspection.do_not_inspect.domains)
        for name in inspection.do_not_inspect.categories:
            domains += catalogue[name].domains
        no_inspect_files = builder.list_files(dstdomain_lines(domains), stem="no-inspect.domains")

    by_sni = sni_rules(
        builder, rules, inspection=inspection.enabled, no_inspect=bool(no_inspect_files)
    )
    return SquidAccess(
        files=dict(builder.files),
        acls=tuple(builder.acls),
        policies=tuple(policies),
        rules=tuple(rules),
        sni_rules=tuple(by_sni),
        bypass_rules=tuple(bypass_rules),
        bypass_cidrs=tuple(squid_cidrs(bypass.cidrs)),
        bypass_sni_acl="swg_bypass_sni" if bypass.domains else "",
        no_inspect_files=no_inspect_files,
    )
