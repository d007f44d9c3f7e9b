"""squid.conf, its list files and the block pages (`render.block_page`), from a `SquidConfig`.

The proxy pod's files: Squid reads its configuration from CONF_DIR, keeps its state in STATE_DIR
and its HTTPS-inspection CA in TLS_DIR (`render.context`). `SquidConfig` holds every value the
text depends on; `squid_access` builds its access rules.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from swg_logstore import formats
from swg_logstore.formats import TENANT_POLICY, Decision, MatchedList, annotation
from swg_operator.api.block_page import BlockPage
from swg_operator.render.block_page import block_page_files, localise
from swg_operator.render.config_text import render_template
from swg_operator.render.content import NO_SAFE_SEARCH, SafeSearchSquid
from swg_operator.render.context import ACCESS_TLS_DIR, CONF_DIR, STATE_DIR, TLS_DIR
from swg_operator.render.squid_acls import SquidAccess
from swg_operator.render.squid_auth import SquidAuth

SQUID_CONF: Final = "squid.conf"
# Squid's shutdown_lifetime: open transfers get this long after SIGTERM (the proxy Deployment's
# grace period is derived from it, render.workloads.proxy_grace_seconds).
SHUTDOWN_SECONDS: Final = 10
# Squid's icap_service name of the external sandbox analyser (options.sandbox).
SANDBOX_SERVICE: Final = "swg_sandbox_resp"
# Squid's unique_hostname: what the Via header names to every website. The same for every
# tenant, so it identifies none (visible_hostname carries the service code).
VIA_HOSTNAME: Final = "swg-gateway"
# A CONNECT host that is an address, in any spelling the resolver accepts (dotted, decimal,
# octal or hex IPv4 such as 2130706433 or 0x7f.1, IPv6 in brackets): no top-level domain is
# numeric or starts with 0x, and no host name holds a colon.
IP_HOST_PATTERNS: Final = (r"^\[?[0-9a-f.:]*:[0-9a-f.:]*\]?$", r"(^|\.)(0x[0-9a-f]*|[0-9]+)\.?$")


@dataclass(frozen=True)
class MirrorRule:
    """One `http_access allow` of the anti-virus pods: a CONNECT tunnel to one mirror host on
    one port (through a proxy freshclam tunnels every request; settings refuse http:// mirrors
    that would go this way)."""

    acl: str  # the dstdomain ACL of the host; `<acl>_port` is its port ACL
    host: str
    port: int


DEFAULT_BLOCK_PAGE: Final = BlockPage()


@dataclass(frozen=True)
class SquidConfig:
    service_code: str
    proxy_port: int
    cluster_domain: str
    inspection: bool  # HTTPS inspection (bump) rather than peeking at the server name
    allowed_cidrs: tuple[str, ...]  # the tenant's clients (collapsed, `squid_cidrs`)
    forbidden_dst: tuple[str, ...]  # never reachable: cluster, API server, always-excluded
    test_loopback: tuple[str, ...]  # loopback the data-plane tests may reach
    access: SquidAccess
    antivirus: bool
    fail_open: bool  # without a verdict (ICAP down, object too large): pass rather than refuse
    max_scan_bytes: int
    icap_url: str  # the anti-virus Service's virus_scan service
    sandbox_url: str  # the sandbox analyser's ICAP URL; empty: none
    mirror_rules: tuple[MirrorRule, ...]  # freshclam's mirrors, through this proxy
    mirror_src: tuple[str, ...]  # the networks the anti-virus pods come from
    sandbox_fail_open: bool = False  # options.sandbox.failOpen
    safe_search: SafeSearchSquid = NO_SAFE_SEARCH  # contentControls.safeSearch
    auth: SquidAuth | None = None  # authentication.ldap; None: no authentication
    auth_files: Mapping[str, str] = field(default_factory=dict)  # the helpers' argument files
    tls_port: int | None = None  # spec.access.tls: the TLS listener's port (None: none)
    plain_clients: bool = True  # the plain listener admits the clients (access.tls.plaintext)
    block_page: BlockPage = DEFAULT_BLOCK_PAGE  # spec.blockPage

    @property
    def plain_listener(self) -> bool:
        """Whether squid.conf opens the plain port: for the clients, or, with the TLS listener
        alone, for the anti-virus pods' way to the signature mirror only."""
        return self.plain_clients or bool(self.mirror_rules)

    @property
    def visible_hostname(self) -> str:
        return visible_hostname(self.service_code)


def visible_hostname(service_code: str) -> str:
    """What Squid and c-icap name themselves on error pages: the service code."""
    return f"{service_code.lower()}.swg"


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


def _notes(decision: Decision, matched: MatchedList) -> str:
    return annotation(decision=decision, matched=matched, policy=TENANT_POLICY)


def _sorted_hosts(rules: Sequence[MirrorRule]) -> list[str]:
    return sorted({rule.host for rule in rules})


def _resp_service(config: SquidConfig) -> str:
    """What adapts responses: the anti-virus service, the sandbox, or both in a chain."""
    if config.antivirus and config.sandbox_url:
        return "swg_resp_chain"
    return SANDBOX_SERVICE if config.sandbox_url else "swg_av_resp"


def squid_files(config: SquidConfig) -> dict[str, str]:
    """squid.conf, the list files its ACLs read and the block page: file name -> text."""
    access = config.access
    common = {
        "service_code": config.service_code,
        "visible_hostname": config.visible_hostname,
        "conf_dir": CONF_DIR,
        "state_dir": STATE_DIR,
        "tls_dir": TLS_DIR,
    }
    bypass_acls = [rule.match[0] for rule in access.bypass_rules]
    squid_conf = render_template(
        SQUID_CONF,
        **common,
        shutdown_seconds=SHUTDOWN_SECONDS,
        proxy_port=config.proxy_port,
        plain_listener=config.plain_listener,
        plain_clients=config.plain_clients,
        tls_port=config.tls_port,
        access_tls_dir=ACCESS_TLS_DIR,
        inspection=config.inspection,
        allowed_cidrs=list(config.allowed_cidrs),
        forbidden_dst=list(config.forbidden_dst),
        test_loopback=list(config.test_loopback),
        acls=list(access.acls),
        policies=list(access.policies),
        rules=list(access.rules),
        forbidden_notes=_notes(Decision.BLOCK, MatchedList.RESTRICTED),
        default_notes=_notes(Decision.ALLOW, MatchedList.DEFAULT),
        has_bypass=bool(bypass_acls),
        bypass_acls=bypass_acls,
        bypass_rules=list(access.bypass_rules),
        bypass_cidrs=list(access.bypass_cidrs),
        bypass_sni_acl=access.bypass_sni_acl,
        sni_rules=list(access.sni_rules),
        ip_host_patterns=IP_HOST_PATTERNS,
        no_inspect_files=access.no_inspect_files,
        antivirus=config.antivirus,
        fail_open=config.fail_open,
        icap_bypass="on" if config.fail_open else "off",
        max_scan_bytes=config.max_scan_bytes,
        over_limit_regex=f"^{greater_than_regex(config.max_scan_bytes)}$",
        icap_url=config.icap_url,
        mirror_rules=list(config.mirror_rules),
        mirror_src=list(config.mirror_src),
        mirror_tls_hosts=_sorted_hosts(config.mirror_rules),
        mirror_notes=_notes(Decision.BYPASS, MatchedList.SIGNATURE_MIRROR),
        cluster_domain=config.cluster_domain,
        via_hostname=VIA_HOSTNAME,
        sandbox_url=config.sandbox_url,
        sandbox_service=SANDBOX_SERVICE,
        sandbox_bypass="on" if config.sandbox_fail_open else "off",
        resp_service=_resp_service(config),
        safe_search=config.safe_search,
        auth=config.auth,
        logging_directives=formats.squid_logging_directives(
            sandbox_service=SANDBOX_SERVICE if config.sandbox_url else None
        ),
    )
    return {
        **access.files,
        **config.auth_files,
        SQUID_CONF: localise(squid_conf, config.block_page),
        **block_page_files(config.block_page, service_code=config.service_code),
    }
