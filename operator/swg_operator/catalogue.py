"""The URL category catalogue: named lists of domains and URLs that tenants block by name.

The platform team maintains it as labelled ConfigMaps in the operator's namespace, one or more
shards per category (docs/catalogue.md). This module is pure: it validates entries, converts a
catalogue to ConfigMaps and back, and writes the Squid ACL lines. Reading files lives in
`catalogue_io`.

Every entry ends up as one line of a Squid ACL file, so validation is an allow-list: a domain is
lowercase ASCII letters, digits, '-', '_' and '.'; a URL is printable ASCII without whitespace,
quotes, backslash or '#'. Nothing else reaches a config file.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from swg_operator.api.types import CATEGORY_PATTERN, check_punycode

CATEGORY_LABEL: Final = "swg.dev/url-category"
SHARD_LABEL: Final = "swg.dev/url-category-shard"
SHARDS_ANNOTATION: Final = "swg.dev/url-category-shards"
REVISION_ANNOTATION: Final = "swg.dev/url-category-revision"
DESCRIPTION_ANNOTATION: Final = "swg.dev/description"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "swg-operator"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
COMPONENT: Final = "url-category"
DOMAINS_KEY: Final = "domains"
URLS_KEY: Final = "urls"

# Data bytes per ConfigMap. Well below the 1 MiB object limit, and small enough that
# client-side `kubectl apply` (which copies the object into a 256 KiB annotation) works too.
DEFAULT_SHARD_BYTES: Final = 192 * 1024
MIN_SHARD_BYTES: Final = 4096
MAX_SHARD_BYTES: Final = 900 * 1024

MAX_DOMAIN_LENGTH: Final = 253
MAX_URL_LENGTH: Final = 2048
MAX_DESCRIPTION_LENGTH: Final = 1024

_CATEGORY = re.compile(CATEGORY_PATTERN)
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME = re.compile(rf"(?:{_LABEL}\.)+(?:[a-z]{{2,63}}|xn--[a-z0-9-]{{1,59}})")
_IPV4 = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
_SCHEME = re.compile(r"(?i:https?)://")
_OTHER_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")
_PORT = re.compile(r":[0-9]{1,5}")
# RFC 3986 path and query characters, minus the quote; '%' only as a valid escape.
_PATH = re.compile(r"(?:[A-Za-z0-9\-._~!$&()*+,;=:@/?]|%[0-9A-Fa-f]{2})*")
# Printable ASCII without whitespace, quotes, backslash or '#': needs no closer look.
_PLAIN = re.compile(r"[!$-&(-\[\]-_a-~]*")
_QUOTES: Final = frozenset("\"'`\u2018\u2019\u201c\u201d")
# POSIX extended regular expression metacharacters (Squid's url_regex dialect).
_ERE_SPECIAL: Final = frozenset(".[]()*+?{}|^$\\")


Severity = Literal["error", "warning"]
ListKind = Literal["domains", "urls"]


@dataclass(frozen=True)
class CatalogueIssue:
    """One finding, naming where it was found (file:line, or ConfigMap and key and line)."""

    where: str
    message: str
    category: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        prefix = "" if self.severity == "error" else "warning: "
        return f"{self.where}: {prefix}{self.message}"


class CatalogueError(ValueError):
    """The catalogue has errors; `issues` lists every one."""

    def __init__(self, issues: Iterable[CatalogueIssue]) -> None:
        self.issues = tuple(issues)
        shown = [str(issue) for issue in self.issues[:50]]
        if len(self.issues) > 50:
            shown.append(f"... and {len(self.issues) - 50} more")
        super().__init__("\n".join(shown))


def _show(text: str, limit: int = 80) -> str:
    """A value safe to print in an error message: escaped, shortened."""
    shown = ascii(text[:limit])
    return shown + ("..." if len(text) > limit else "")


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

    Accepted forms: `example.test`, `.example.test` and `*.example.test` all mean the domain and
    every subdomain (the blacklist convention); a trailing dot is dropped; upper case is
    lowered; non-ASCII names are IDNA-encoded (`bücher.test` -> `xn--bcher-kva.test`); a dotted
    IPv4 address is kept as is. The result matches only `[a-z0-9._-]`. Raises ValueError.
    """
    if len(raw) > 4 * MAX_DOMAIN_LENGTH:
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
    if len(text) > MAX_DOMAIN_LENGTH:
        raise ValueError(f"is longer than {MAX_DOMAIN_LENGTH} characters")
    if not _HOSTNAME.fullmatch(text):
        raise ValueError(
            "is not a domain name (labels of a-z, 0-9, '-', '_' separated by dots, "
            "ending in an alphabetic or xn-- top-level domain)"
        )
    check_punycode(text)
    return text


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
            f"{_show(name)} is not a category name (lowercase letters, digits, '-' and '_', "
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


@dataclass(frozen=True)
class Category:
    """One category: canonical, sorted, de-duplicated domains and URLs."""

    name: str
    domains: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        check_category_name(self.name)
        if parse_description(self.description) != self.description:
            raise ValueError(f"category {self.name}: description is not in canonical form")
        for kind, entries, parse in (
            (DOMAINS_KEY, self.domains, parse_domain),
            (URLS_KEY, self.urls, parse_url),
        ):
            if list(entries) != sorted(set(entries)):
                raise ValueError(f"category {self.name}: {kind} are not sorted and unique")
            for entry in entries:
                if parse(entry) != entry:
                    raise ValueError(f"category {self.name}: {_show(entry)} is not canonical")

    @classmethod
    def build(
        cls,
        name: str,
        *,
        domains: Iterable[str] = (),
        urls: Iterable[str] = (),
        description: str = "",
    ) -> Category:
        """Normalise raw entries (see parse_domain / parse_url) into a Category."""
        return cls(
            name=name,
            domains=tuple(sorted({parse_domain(d) for d in domains})),
            urls=tuple(sorted({parse_url(u) for u in urls})),
            description=parse_description(description),
        )

    @classmethod
    def of_canonical(
        cls, name: str, domains: Iterable[str], urls: Iterable[str], description: str = ""
    ) -> Category:
        """A Category from entries already in canonical form (as parse_entries returns them),
        de-duplicated and sorted here; validated once more by the constructor."""
        return cls(name, tuple(sorted(set(domains))), tuple(sorted(set(urls))), description)

    def __len__(self) -> int:
        return len(self.domains) + len(self.urls)


@dataclass(frozen=True)
class Catalogue(Mapping[str, Category]):
    """Category name -> Category."""

    categories: Mapping[str, Category] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, category in self.categories.items():
            if name != category.name:
                raise ValueError(f"catalogue key {name!r} names category {category.name!r}")
        object.__setattr__(self, "categories", dict(sorted(self.categories.items())))

    @classmethod
    def of(cls, categories: Iterable[Category]) -> Catalogue:
        by_name: dict[str, Category] = {}
        for category in categories:
            if category.name in by_name:
                raise ValueError(f"category {category.name!r} is defined twice")
            by_name[category.name] = category
        return cls(by_name)

    def __getitem__(self, name: str) -> Category:
        return self.categories[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.categories)

    def __len__(self) -> int:
        return len(self.categories)

    def __hash__(self) -> int:
        return hash(tuple(self.categories.values()))

    def names(self) -> tuple[str, ...]:
        return tuple(self.categories)

    def entry_count(self, names: Iterable[str]) -> int:
        """Domains and URLs of the named categories (the sizing model's `acl_entries`)."""
        return sum(len(self.categories[name]) for name in set(names))


# ------------------------------------------------------------------------------------------------
# Lines of list files (blacklist files and ConfigMap data use the same rules)
# ------------------------------------------------------------------------------------------------


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
                    message=f"{_show(stripped)} {message}",
                    category=category,
                )
            )
    return entries, issues


# ------------------------------------------------------------------------------------------------
# ConfigMaps
# ------------------------------------------------------------------------------------------------


def configmap_name(category: str, shard: int) -> str:
    """`url-category-<name>-<shard>`; '_' (not allowed in object names) becomes '-' plus a
    digest of the real name, so `a_b` and `a-b` never share objects."""
    base = category.replace("_", "-")
    if "_" in category:
        base += "-" + hashlib.sha256(category.encode()).hexdigest()[:6]
    return f"url-category-{base}-{shard}"


def _revision(category: Category) -> str:
    digest = hashlib.sha256()
    for part in (category.name, category.description, *category.domains, "", *category.urls):
        digest.update(part.encode() + b"\n")
    return digest.hexdigest()[:16]


def _shards(category: Category, budget: int) -> list[tuple[list[str], list[str]]]:
    shards: list[tuple[list[str], list[str]]] = [([], [])]
    used = 0
    for index, entries in ((0, category.domains), (1, category.urls)):
        for entry in entries:
            size = len(entry) + 1
            if used + size > budget and used:
                shards.append(([], []))
                used = 0
            shards[-1][index].append(entry)
            used += size
    return shards


def _lines(entries: list[str]) -> str:
    return "".join(f"{entry}\n" for entry in entries)


def catalogue_to_configmaps(
    catalogue: Catalogue, *, namespace: str, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> list[dict[str, Any]]:
    """The ConfigMaps that hold `catalogue` in `namespace`: per category, shards of at most
    `max_shard_bytes` of data, each labelled with the category and its shard number and
    annotated with the shard count and a revision digest of the whole category."""
    if not MIN_SHARD_BYTES <= max_shard_bytes <= MAX_SHARD_BYTES:
        raise ValueError(f"max_shard_bytes must be in {MIN_SHARD_BYTES}..{MAX_SHARD_BYTES}")
    objects: list[dict[str, Any]] = []
    for category in catalogue.values():
        shards = _shards(category, max_shard_bytes)
        revision = _revision(category)
        for number, (domains, urls) in enumerate(shards):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": configmap_name(category.name, number),
                        "namespace": namespace,
                        "labels": {
                            MANAGED_BY_LABEL: MANAGED_BY,
                            COMPONENT_LABEL: COMPONENT,
                            CATEGORY_LABEL: category.name,
                            SHARD_LABEL: str(number),
                        },
                        "annotations": {
                            DESCRIPTION_ANNOTATION: category.description,
                            SHARDS_ANNOTATION: str(len(shards)),
                            REVISION_ANNOTATION: revision,
                        },
                    },
                    "data": {DOMAINS_KEY: _lines(domains), URLS_KEY: _lines(urls)},
                }
            )
    return objects


@dataclass(eq=False)
class _Shard:
    where: str
    number: int
    count: int
    revision: str
    item: Mapping[str, Any]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _shard_of(item: object, index: int) -> tuple[str | None, _Shard | CatalogueIssue]:
    """(category, shard) of one listed ConfigMap, or the issue that makes it unusable."""
    if not isinstance(item, Mapping):
        return None, CatalogueIssue(f"item {index}", "is not an object")
    metadata = _mapping(item.get("metadata"))
    where = f"ConfigMap {metadata.get('namespace', '')}/{metadata.get('name', f'#{index}')}"
    labels = _mapping(metadata.get("labels"))
    annotations = _mapping(metadata.get("annotations"))
    name = labels.get(CATEGORY_LABEL)
    if item.get("kind", "ConfigMap") != "ConfigMap" or not isinstance(name, str):
        return None, CatalogueIssue(where, f"is not a ConfigMap labelled {CATEGORY_LABEL}")
    try:
        check_category_name(name)
    except ValueError as exc:
        return None, CatalogueIssue(where, f"label {CATEGORY_LABEL}: {exc}")
    shard = str(labels.get(SHARD_LABEL, "0"))
    count = str(annotations.get(SHARDS_ANNOTATION, "1"))
    if not (shard.isdigit() and count.isdigit() and int(shard) < int(count) <= 10_000):
        return name, CatalogueIssue(
            where,
            f"label {SHARD_LABEL}={_show(shard)} and annotation {SHARDS_ANNOTATION}="
            f"{_show(count)} do not name a shard n of N",
            category=name,
        )
    revision = str(annotations.get(REVISION_ANNOTATION, ""))
    return name, _Shard(where, int(shard), int(count), revision, item)


def _choose_revision(
    name: str, shards: list[_Shard]
) -> tuple[list[_Shard] | None, list[CatalogueIssue]]:
    """The one complete set of shards (same revision, shards 0..N-1 once each)."""
    by_revision: dict[tuple[str, int], list[_Shard]] = defaultdict(list)
    for shard in shards:
        by_revision[(shard.revision, shard.count)].append(shard)
    complete = [
        sorted(group, key=lambda s: s.number)
        for (_, count), group in by_revision.items()
        if sorted(s.number for s in group) == list(range(count))
    ]
    if len(complete) == 1:
        chosen = complete[0]
        stale = [
            CatalogueIssue(
                s.where, "is a stale shard of another revision; ignored", name, "warning"
            )
            for s in shards
            if all(s is not c for c in chosen)
        ]
        return chosen, stale
    where = ", ".join(sorted(s.where for s in shards))
    if complete:
        message = "has more than one complete set of shards (different revisions)"
    else:
        found = ", ".join(
            f"revision {rev or '(none)'}: shards {sorted(s.number for s in group)} of {count}"
            for (rev, count), group in sorted(by_revision.items())
        )
        message = f"is incomplete or mixed ({found})"
    return None, [CatalogueIssue(where, f"category {name} {message}", name)]


def read_configmaps(
    items: Iterable[object],
) -> tuple[Catalogue, tuple[CatalogueIssue, ...]]:
    """Merge listed category ConfigMaps into a catalogue, leniently.

    A category with any error (an invalid line, a missing or mixed shard) is left out whole,
    never partially, so a tenant that blocks it fails visibly instead of blocking less.
    Returns the catalogue of good categories and every issue (errors and warnings).
    """
    issues: list[CatalogueIssue] = []
    shards_by_category: dict[str, list[_Shard]] = defaultdict(list)
    broken: set[str] = set()
    for index, item in enumerate(items):
        name, shard = _shard_of(item, index)
        if isinstance(shard, CatalogueIssue):
            issues.append(shard)
            if name is not None:
                broken.add(name)
            continue
        assert name is not None
        shards_by_category[name].append(shard)

    categories: list[Category] = []
    for name in sorted(shards_by_category.keys() - broken):
        chosen, found = _choose_revision(name, shards_by_category[name])
        issues += found
        if chosen is None:
            continue
        domains: list[str] = []
        urls: list[str] = []
        errors: list[CatalogueIssue] = []
        for shard in chosen:
            data = _mapping(shard.item.get("data"))
            for key in sorted(data.keys() - {DOMAINS_KEY, URLS_KEY}):
                message = f"data key {_show(str(key))} ignored"
                issues.append(CatalogueIssue(shard.where, message, name, "warning"))
            lists: tuple[tuple[ListKind, list[str]], ...] = (("domains", domains), ("urls", urls))
            for kind, target in lists:
                text = data.get(kind, "")
                if not isinstance(text, str):
                    errors.append(CatalogueIssue(shard.where, f"data.{kind} is not text", name))
                    continue
                entries, found = parse_entries(
                    text, kind=kind, where=f"{shard.where} data.{kind}", category=name
                )
                target += entries
                errors += found
        annotations = _mapping(_mapping(chosen[0].item.get("metadata")).get("annotations"))
        description = str(annotations.get(DESCRIPTION_ANNOTATION, ""))
        try:
            description = parse_description(description)
        except ValueError as exc:
            errors.append(CatalogueIssue(chosen[0].where, str(exc), name))
        issues += errors
        if not errors:
            categories.append(Category.of_canonical(name, domains, urls, description))
    return Catalogue.of(categories), tuple(issues)


def catalogue_from_configmaps(items: Iterable[object]) -> Catalogue:
    """Merge listed category ConfigMaps (e.g. the `items` of a list by label `swg.dev/url-
    category`) into a catalogue. Strict: raises CatalogueError listing every error."""
    catalogue, issues = read_configmaps(items)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors:
        raise CatalogueError(errors)
    return catalogue


# ------------------------------------------------------------------------------------------------
# Squid ACL lines
# ------------------------------------------------------------------------------------------------


def _reversed_labels(domain: str) -> tuple[str, ...]:
    return tuple(reversed(domain.split(".")))


def squid_dstdomain_lines(domains: Iterable[str]) -> list[str]:
    """Lines of a Squid `dstdomain` file: `.domain` (the domain and its subdomains), IPv4
    addresses as they are; entries already covered by a parent domain are dropped (Squid warns
    about them and ignores one)."""
    lines: list[str] = []
    kept: list[tuple[str, ...]] = []
    for domain in sorted({parse_domain(d) for d in domains}, key=_reversed_labels):
        if _IPV4.fullmatch(domain):
            lines.append(domain)
            continue
        labels = _reversed_labels(domain)
        if kept and labels[: len(kept[-1])] == kept[-1]:
            continue
        kept.append(labels)
        lines.append(f".{domain}")
    return lines


def _ere_escape(text: str) -> str:
    return "".join(f"\\{c}" if c in _ERE_SPECIAL else c for c in text)


def squid_url_regex_lines(urls: Iterable[str]) -> list[str]:
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
