"""What Squid and c-icap must write so that every tenant log record can be built: the exact
configuration lines the data-plane templates include, and the names both sides agree on.

The data-plane templates include `squid_logging_directives()` in squid.conf and
`cicap_logging_directives()` in c-icap.conf verbatim; the parsers in `records` read exactly
what these lines produce. Change both together (`tests/test_logformat.py` pins them).

Decisions recorded here (docs/logs.md explains them):

* Squid has no JSON log format: the `logformat` below builds one, every free-text field with
  the `%"` encoding (escapes quote, backslash, CR, LF, TAB; other bytes pass raw, so the parser
  decodes leniently). Numbers are logged as strings: Squid prints `-` when it has no value.
* One Squid line per HTTP transaction feeds two record types: `access` (always) and
  `urlfilter` (when a filtering rule matched). The matched rule reaches the log through
  `annotate_transaction` ACLs placed after the rule's condition ACLs, read back with
  `%{key}note` (keys `NOTE_*`).
* The request id that links access, URL-filter, anti-virus and sandbox records is made by
  Squid from the transaction start time, the pod address the client connected to and the
  master transaction number, sent to the ICAP services in the `X-SWG-Request-Id` header
  (`adaptation_meta`, whose quoted value expands logformat macros) and logged by c-icap from
  that header. The records carry a digest of it (`records.request_id`), not the raw text.
* c-icap escapes nothing: its line is TAB-separated with the URL last (a URL has no TAB or
  space once Squid has parsed it); the user name travels base64-encoded.
* Squid's `stdio` module writes each record with one write(2) when the transaction ends
  (lineend always flushes) on an O_APPEND file; c-icap's file logger is unbuffered with
  O_APPEND. A record is on the pod's volume as soon as the proxy has finished with it.

Pure: constants and string builders only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import StrEnum
from typing import Final


class LogType(StrEnum):
    """The record types a tenant can download; each is one daily file per day."""

    ACCESS = "access"
    URLFILTER = "urlfilter"
    ANTIVIRUS = "antivirus"
    SANDBOX = "sandbox"


class SourceKind(StrEnum):
    """The raw log files the shipper reads; each yields records of some `LogType`s."""

    SQUID_ACCESS = "squid-access"
    SQUID_SANDBOX = "squid-sandbox"
    CICAP_ANTIVIRUS = "cicap-antivirus"


RECORD_VERSION: Final = 1

# --- where the daemons write (inside their pods' state emptyDir, mounted at /var/lib/swg) -----
STATE_DIR: Final = "/var/lib/swg"
SQUID_ACCESS_LOG_PATH: Final = f"{STATE_DIR}/squid/logs/swg-access.jsonl"
SQUID_SANDBOX_LOG_PATH: Final = f"{STATE_DIR}/squid/logs/swg-sandbox.jsonl"
CICAP_ANTIVIRUS_LOG_PATH: Final = f"{STATE_DIR}/c-icap/logs/swg-antivirus.log"
SHIPPER_STATE_DIR: Final = f"{STATE_DIR}/shipper"

SOURCE_PATHS: Final[dict[SourceKind, str]] = {
    SourceKind.SQUID_ACCESS: SQUID_ACCESS_LOG_PATH,
    SourceKind.SQUID_SANDBOX: SQUID_SANDBOX_LOG_PATH,
    SourceKind.CICAP_ANTIVIRUS: CICAP_ANTIVIRUS_LOG_PATH,
}

# --- the request id --------------------------------------------------------------------------
REQUEST_ID_HEADER: Final = "X-SWG-Request-Id"
# Transaction start (ms) - local address of the client connection (the pod IP) - master
# transaction number (restarts with Squid, hence the other two parts).
SQUID_REQUEST_ID_MACRO: Final = "%tS-%>la-%master_xaction"
ICAP_USER_HEADER: Final = "X-Client-Username"

# --- annotations of the URL filter (annotate_transaction key=value, logged with %{key}note) ---
NOTE_DECISION: Final = "decision"
NOTE_CATEGORY: Final = "category"
NOTE_LIST: Final = "list"
NOTE_POLICY: Final = "policy"


class Decision(StrEnum):
    """Values of the `decision` annotation."""

    ALLOW = "allow"  # allowed and scanned
    BLOCK = "block"  # refused by a filtering rule
    BYPASS = "bypass"  # allowed without filtering or scanning (options.bypass)


class MatchedList(StrEnum):
    """Values of the `list` annotation: which kind of rule decided."""

    CATEGORY = "category"  # a blocked category of the catalogue (`category` names it)
    DENY_DOMAIN = "deny-domain"  # urlFiltering.deny.domains (or a policy's)
    DENY_REGEX = "deny-regex"  # urlFiltering.deny.urlRegex (or a policy's)
    ALLOW_DOMAIN = "allow-domain"  # urlFiltering.allow.domains (or a policy's)
    BYPASS_DOMAIN = "bypass-domain"  # options.bypass.domains
    BYPASS_CIDR = "bypass-cidr"  # options.bypass.CIDRs
    RESTRICTED = "restricted"  # the gateway's own guard: loopback, link-local, cluster networks
    # The tenant's anti-virus pods (freshclam) fetching signatures from the configured mirror.
    SIGNATURE_MIRROR = "signature-mirror"
    SAFE_SEARCH = "safe-search"  # contentControls.safeSearch: redirected or refused search
    DEFAULT = "default"  # no rule matched: the tenant's default allow


# Spellings of the `category` annotation that name a list rather than a catalogue category
# (what the data-plane templates wrote before they set `list`): the list they stand for.
PSEUDO_CATEGORIES: Final[dict[str, MatchedList]] = {
    "allow-list": MatchedList.ALLOW_DOMAIN,
    "deny-list": MatchedList.DENY_DOMAIN,
    "deny-regex": MatchedList.DENY_REGEX,
    "url-regex": MatchedList.DENY_REGEX,
    "bypass": MatchedList.BYPASS_DOMAIN,
    "restricted-destination": MatchedList.RESTRICTED,
    "uncategorized": MatchedList.DEFAULT,
}
DECISION_ALIASES: Final[dict[str, Decision]] = {"allow-noscan": Decision.BYPASS}


TENANT_POLICY: Final = "tenant"  # `policy` annotation of the tenant-wide rules


def annotation(
    *, decision: Decision, matched: MatchedList, category: str | None = None, policy: str
) -> str:
    """The `annotate_transaction` argument list for one filtering rule, e.g.
    `decision=block list=category category=gambling policy=tenant`. The template puts it in an
    `acl <name> annotate_transaction ...` line and lists that ACL last on the rule's
    `http_access` line, so it only annotates when the rule's conditions matched. `category`
    and `policy` come from spec fields constrained to DNS-label characters."""
    for value in (category, policy):
        if value is not None and not _NOTE_VALUE.fullmatch(value):
            raise ValueError(f"annotation value {value!r} is not a plain token")
    parts = [f"{NOTE_DECISION}={decision.value}", f"{NOTE_LIST}={matched.value}"]
    if category is not None:
        parts.append(f"{NOTE_CATEGORY}={category}")
    parts.append(f"{NOTE_POLICY}={policy}")
    return " ".join(parts)


_NOTE_VALUE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")

# --- Squid -----------------------------------------------------------------------------------
SQUID_ACCESS_FORMAT_NAME: Final = "swg_access"
SQUID_SANDBOX_FORMAT_NAME: Final = "swg_sandbox"
SQUID_HAS_REQUEST_ACL: Final = "swg_has_request"
SQUID_SANDBOX_SERVICE_ACL: Final = "swg_sandbox_service"

SQUID_ACCESS_LOGFORMAT: Final = (
    f"logformat {SQUID_ACCESS_FORMAT_NAME} "
    '{"v":1,"t":"%ts.%03tu","start":"%tS",'
    f'"rid":"{SQUID_REQUEST_ID_MACRO}",'
    f'"icap":"%"{{{REQUEST_ID_HEADER}}}note",'
    '"client":"%>a","user":"%"un","method":"%"rm","url":"%"ru",'
    '"status":"%>Hs","out":"%<st","in":"%>st","ms":"%tr","squid":"%Ss","hier":"%Sh",'
    '"ctype":"%"{Content-Type}<h",'
    f'"decision":"%"{{{NOTE_DECISION}}}note","category":"%"{{{NOTE_CATEGORY}}}note",'
    f'"list":"%"{{{NOTE_LIST}}}note","policy":"%"{{{NOTE_POLICY}}}note",'
    '"err":"%err_code","av":"%"{X-Infection-Found}adapt::<last_h",'
    '"sni":"%"ssl::>sni","bump":"%ssl::bump_mode"}'
)

# icap_log of the sandbox service: one line per ICAP transaction with the external analyser.
# The request id comes from the adaptation_meta header (%tS and %>la are not set there).
SQUID_SANDBOX_LOGFORMAT: Final = (
    f"logformat {SQUID_SANDBOX_FORMAT_NAME} "
    '{"v":1,"t":"%ts.%03tu",'
    f'"icap":"%"{{{REQUEST_ID_HEADER}}}note",'
    '"client":"%>a","user":"%"un","method":"%"rm","url":"%"ru",'
    '"service":"%"icap::<service_name","icapMethod":"%icap::rm","icapStatus":"%icap::Hs",'
    '"ms":"%icap::tr","threat":"%"{X-Infection-Found}icap::<h",'
    '"violations":"%"{X-Violations-Found}icap::<h"}'
)


def squid_logging_directives(*, sandbox_service: str | None = None) -> str:
    """The squid.conf block that produces the tenant logs. `sandbox_service` is the
    `icap_service` name of the sandbox analyser when options.sandbox is enabled."""
    lines = [
        "# --- tenant logs (swg_logstore.formats; parsed by swg_logstore.records) ---",
        "logfile_rotate 0",
        "icap_send_client_ip on",
        "icap_send_client_username on",
        f"icap_client_username_header {ICAP_USER_HEADER}",
        "icap_client_username_encode on",
        f'adaptation_meta {REQUEST_ID_HEADER} "{SQUID_REQUEST_ID_MACRO}"',
        SQUID_ACCESS_LOGFORMAT,
        # TCP probes that never send a request are not transactions of the customer.
        f"acl {SQUID_HAS_REQUEST_ACL} has request",
        f"access_log stdio:{SQUID_ACCESS_LOG_PATH} logformat={SQUID_ACCESS_FORMAT_NAME} "
        f"{SQUID_HAS_REQUEST_ACL}",
    ]
    if sandbox_service is not None:
        if not _NOTE_VALUE.fullmatch(sandbox_service):
            raise ValueError(f"icap_service name {sandbox_service!r} is not a plain token")
        lines += [
            SQUID_SANDBOX_LOGFORMAT,
            f"acl {SQUID_SANDBOX_SERVICE_ACL} adaptation_service {sandbox_service}",
            f"icap_log stdio:{SQUID_SANDBOX_LOG_PATH} logformat={SQUID_SANDBOX_FORMAT_NAME} "
            f"{SQUID_SANDBOX_SERVICE_ACL}",
        ]
    return "\n".join(lines) + "\n"


# --- c-icap ----------------------------------------------------------------------------------
CICAP_FORMAT_NAME: Final = "swg_av"
CICAP_SERVICE_ACL: Final = "swg_av_service"
CICAP_FIELDS: Final = (
    "%ts",  # log time, seconds since the epoch (c-icap has no sub-second time code)
    f"%{{{REQUEST_ID_HEADER}}}>ih",  # the raw request id from Squid
    "%>a",  # the HTTP client's address (X-Client-IP from Squid)
    f"%{{{ICAP_USER_HEADER}}}>ih",  # the user name, base64 (icap_client_username_encode on)
    "%im",  # ICAP method: REQMOD (upload) or RESPMOD (download); OPTIONS lines are skipped
    "%is",  # ICAP status
    "%{virus_scan:action}Sa",  # passed | blocked | partiallyblocked | -
    "%{virus_scan:virus}Sa",  # signature name or -
    "%Ib",  # HTTP body bytes received (scanned)
    "%Ob",  # HTTP body bytes sent back
    "%huo",  # the HTTP URL; last, so nothing after it can be shifted
)
CICAP_LOGFORMAT: Final = f'LogFormat {CICAP_FORMAT_NAME} "{chr(9).join(CICAP_FIELDS)}"'


def cicap_logging_directives(*, service_names: Sequence[str]) -> str:
    """The c-icap.conf block of the anti-virus log. `service_names` are the service and its
    aliases as used in Squid's ICAP URLs (c-icap logs nothing for a name the ACL misses)."""
    if not service_names:
        raise ValueError("at least one c-icap service name is needed")
    for name in service_names:
        if not _NOTE_VALUE.fullmatch(name):
            raise ValueError(f"c-icap service name {name!r} is not a plain token")
    return (
        "# --- tenant anti-virus log (swg_logstore.formats) ---\n"
        f"{CICAP_LOGFORMAT}\n"
        f"acl {CICAP_SERVICE_ACL} service {' '.join(service_names)}\n"
        f"AccessLog {CICAP_ANTIVIRUS_LOG_PATH} {CICAP_FORMAT_NAME} {CICAP_SERVICE_ACL}\n"
    )
