"""Validation of catalogue entries: domains, URLs, category names and descriptions.

Every entry ends up as one line of a Squid ACL file, so validation is an allow-list: a domain
follows the API's own domain grammar (`api.types.domain_name`) or is a dotted IPv4 address; a
URL is `host[:port]/path` with RFC 3986 characters. Nothing else reaches a config file.
"""

from __future__ import annotations

import ipaddress
import re
import unicodedata
from typing import Final, Literal

from swg_operator.api.types import CATEGORY_PATTERN, MAX_DOMAIN_NAME_LENGTH, check_domain_name
from swg_operator.catalogue.issues import CatalogueIssue, show

DOMAINS_KEY: Final = "domains"
URLS_KEY: Final = "urls"
MAX_URL_LENGTH: Final = 2048
MAX_DESCRIPTION_LENGTH: Final = 1024

ListKind = Literal["domains", "urls"]

_CATEGORY = re.compile(CATEGORY_PATTERN)
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_SCHEME = re.compile(r"(?i:https?)://")
_OTHER_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")
_PORT = re.compile(r":[0-9]{1,5}")
# RFC 3986 path and query characters, minus the quote; '%' only as a valid escape.
_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
# Printable ASCII without whitespace, quotes, backslash or '#': needs no closer look.
_PLAIN = re.compile(r"[!$-&(-\[\]-_a-~]*")
_QUOTES: Final = frozenset("\"'`\u2018\u2019\u201c\u201d")


def _refuse_unsafe_characters(raw: str) -> None:
    """The characters that could end an ACL line or start a directive, with a precise reason."""
    if _PLAIN.fullmatch(raw):
        return
    for char in raw:
        if char.isspace():
            raise ValueError(f"contains whitespace ({char!a})")
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ValueError(f"contains a control or unassigned character ({char!a})")
        if char == "#":
            raise ValueError("contains '#'")
        if char in _QUOTES:
            raise ValueError("contains a quote")
        if char == "\\":
            raise ValueError("contains a backslash")


def parse_domain(raw: str) -> str:
    """Validate one domain entry and return its canonical form.

    The entry means the domain and every subdomain, as every domain in the API does
    (`api.types.domain_name`, whose grammar this applies). Accepted spellings: `example.test`,
    `.example.test` and `*.example.test` (the blacklist convention) are one entry; a trailing dot
    is dropped; upper case is lowered; non-ASCII names are IDNA-encoded (`bücher.test` ->
    `xn--bcher-kva.test`); a dotted IPv4 address is kept as is. The result matches only
    `[a-z0-9._-]`. Raises ValueError.
    """
    if len(raw) > 4 * MAX_DOMAIN_NAME_LENGTH:
        raise ValueError("is too long")
    _refuse_unsafe_characters(raw)
    text = raw
    if text.startswith("*."):
        text = text[2:]
    elif text.startswith("."):
        text = text[1:]
    if text.endswith("."):
        text = text[:-1]
    text = text.lower()
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError:
            raise ValueError("is not a valid internationalised domain name") from None
        text = text.lower()
    if _IPV4.fullmatch(text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise ValueError("is not a valid IPv4 address") from None
    return check_domain_name(text)


def parse_url(raw: str) -> str:
    """Validate one URL entry and return its canonical form `host[:port]/path`.

    An `http://` or `https://` prefix is dropped (the entry matches either), the host is
    validated like a domain entry (no leading dot), and the path keeps its case and may use
    RFC 3986 characters and %-escapes only. A bare host becomes `host/`. Raises ValueError.
    """
    if len(raw) > MAX_URL_LENGTH:
        raise ValueError(f"is longer than {MAX_URL_LENGTH} characters")
    _refuse_unsafe_characters(raw)
    text = raw
    scheme = _SCHEME.match(text)
    if scheme:
        text = text[scheme.end() :]
    elif _OTHER_SCHEME.match(text):
        raise ValueError("is not an http:// or https:// URL")
    slash = text.find("/")
    authority, path = (text, "/") if slash < 0 else (text[:slash], text[slash:])
    port = ""
    colon = authority.rfind(":")
    if colon >= 0:
        port = authority[colon:]
        authority = authority[:colon]
        if not _PORT.fullmatch(port) or not 0 < int(port[1:]) < 65536:
            raise ValueError("has an invalid port")
    if authority.startswith(("*", ".")):
        raise ValueError("host must not start with '.' or '*' (put domain patterns in domains)")
    try:
        host = parse_domain(authority)
    except ValueError as exc:
        raise ValueError(f"host {exc}") from None
    if not path.isascii() or not _PATH.fullmatch(path):
        raise ValueError("path has characters outside RFC 3986 (percent-encode them)")
    return f"{host}{port}{path}"


def check_category_name(name: str) -> None:
    """Raise ValueError unless `name` can name a category (a label value, as the API expects)."""
    if not _CATEGORY.fullmatch(name) or len(name) > 63:
        raise ValueError(
            f"{show(name)} is not a category name (lowercase letters, digits, '-' and '_', "
            "starting and ending with a letter or digit, at most 63 characters)"
        )


def parse_description(raw: str) -> str:
    """A one-line human description (an annotation; never written to a config file)."""
    text = raw.strip()
    if len(text) > MAX_DESCRIPTION_LENGTH:
        raise ValueError(f"description is longer than {MAX_DESCRIPTION_LENGTH} characters")
    for char in text:
        if unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"):
            raise ValueError(f"description contains a control character ({char!a})")
    return text


def parse_entries(
    text: str, *, kind: ListKind, where: str, category: str | None
) -> tuple[list[str], list[CatalogueIssue]]:
    """Parse one list: one entry per line, '#' comment lines and blank lines ignored.

    Lines are split on '\\n' only (never on other Unicode line breaks, which are refused inside
    entries); surrounding spaces, tabs and a trailing '\\r' are dropped. Returns the canonical
    entries of the valid lines and an issue (`where:LINE`) for every invalid one.
    """
    parse = parse_domain if kind == DOMAINS_KEY else parse_url
    entries: list[str] = []
    issues: list[CatalogueIssue] = []
    for number, line in enumerate(text.split("\n"), start=1):
        stripped = line.strip(" \t\r")
        if not stripped or stripped.startswith("#"):
            continue
        try:
            entries.append(parse(stripped))
        except ValueError as exc:
            if any("\udc80" <= char <= "\udcff" for char in stripped):
                message = "is not valid UTF-8"
            else:
                message = str(exc)
            issues.append(
                CatalogueIssue(
                    where=f"{where}:{number}",
                    message=f"{show(stripped)} {message}",
                    category=category,
                )
            )
    return entries, issues
