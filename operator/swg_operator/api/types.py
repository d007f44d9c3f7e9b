"""Constrained string types shared by the API models.

Every string that can reach a Squid or c-icap config file is constrained by a pattern that admits
no whitespace, no control character, no quote and no comment marker, so no spec value can end a
line or start a directive. The same patterns are emitted into the CRD, so the API server refuses
bad values at `kubectl apply` and the operator validates them again when it reads a resource.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints, TypeAdapter, ValidationError

# One DNS label, RFC 1123.
DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
# Domains: ONE rule in the API, the URL catalogue and the rendered Squid lists. A domain entry
# matches the domain itself and every subdomain: `example.com` matches example.com,
# www.example.com and a.b.example.com, never notexample.com. `.example.com` is accepted as
# another spelling of the same entry (Squid's dstdomain spelling of that rule, which the rendered
# lists use); there is no entry for one host without its subdomains. docs/api.md and
# docs/catalogue.md state the rule; e2e/dataplane/test_domain_rule.py proves it with real Squid.
# A name is lowercase ASCII (IDNA-encoded), two or more labels of a-z, 0-9, '-' and '_' (DNS has
# such names and real blocklists carry them), the top-level one 2-63 letters or an xn-- label,
# so no entry is a bare name or a number.
_DOMAIN_LABEL = r"[a-z0-9_]([-a-z0-9_]{0,61}[a-z0-9_])?"
_TOP_LEVEL_LABEL = r"([a-z]{2,63}|xn--[a-z0-9]([-a-z0-9]{0,57}[a-z0-9])?)"
DOMAIN_NAME_PATTERN = rf"^({_DOMAIN_LABEL}\.)+{_TOP_LEVEL_LABEL}$"
DOMAIN_PATTERN = rf"^\.?({_DOMAIN_LABEL}\.)+{_TOP_LEVEL_LABEL}$"
MAX_DOMAIN_NAME_LENGTH = 253
# Printable ASCII without space, '#' or quotes: one line of a Squid ACL file. URLs a proxy sees
# carry no fragment and no raw quote, so nothing useful is lost.
URL_REGEX_PATTERN = r"^[!$-&(-~]+$"
# URL category names as in the common blacklist directory layout (e.g. social_networks).
CATEGORY_PATTERN = r"^[a-z0-9]([-a-z0-9_]{0,61}[a-z0-9])?$"
SERVICE_CODE_PATTERN = r"^[A-Z0-9][A-Z0-9-]{2,31}$"
EMAIL_PATTERN = r"^[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,63}$"
# Free text shown to people (never written to a config file): no C0/C1 controls, DEL, line or
# paragraph separators, or bidi controls (they can hide or reorder text in kubectl output and
# are refused by YAML). The characters above U+00FF are put in literally, not as escapes,
# because the same pattern is compiled by pydantic (Rust regex), the API server (Go RE2) and
# hypothesis (Python re), which disagree on escape syntax.
_UNSAFE_TEXT = r"\x00-\x1f\x7f-\x9f" + "\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069"
UNSAFE_TEXT = _UNSAFE_TEXT  # for other free-text patterns (api.block_page)
DISPLAY_TEXT_PATTERN = rf"^[^{_UNSAFE_TEXT}]*$"
# Kubernetes resource quantity for bytes (binary or decimal suffix).
QUANTITY_PATTERN = r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|k|M|G|T)?$"
IANA_TZ_PATTERN = r"^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$"
# icaps:// only: the sandbox receives decrypted bodies, which never cross a network in clear.
ICAP_URL_PATTERN = (
    r"^icaps://[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?(:[0-9]{1,5})?(/[A-Za-z0-9._~-]*)*$"
)
LABEL_VALUE_PATTERN = r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$"
RBAC_SUBJECT_PATTERN = rf"^[^{_UNSAFE_TEXT}\s]([^{_UNSAFE_TEXT}]{{0,251}}[^{_UNSAFE_TEXT}\s])?$"


def check_punycode(domain: str) -> str:
    """Refuse an `xn--` label that is not the IDNA encoding of a name (the pattern cannot tell)."""
    for label in domain.split("."):
        if label.startswith("xn--"):
            try:
                decoded = label[4:].encode("ascii").decode("punycode")
                valid = decoded.encode("idna").decode("ascii") == label
            except UnicodeError:
                valid = False
            if not valid:
                raise ValueError(f"label {label!r} is not valid punycode")
    return domain


def _canonical_cidr(value: str) -> str:
    """Accept only a canonical network (host bits zero), as the CRD's CEL rule does."""
    try:
        network = ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not a valid CIDR with host bits zero: {exc}") from None
    if str(network) != value:
        raise ValueError(f"{value!r} is not in canonical form; write {str(network)!r}")
    return value


_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


def host_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address a host part names, in any spelling a resolver accepts (127.1, 0x7f.1,
    2130706433, 017700000001, [::1], ::ffff:127.0.0.1); None for a name."""
    bare = host.strip("[]")
    try:
        return ipaddress.ip_address(bare)
    except ValueError:
        pass
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))  # the C library's IPv4 spellings
    except OSError:
        return None


def check_icap_host(url: str) -> str:
    """Refuse an ICAP URL whose host is the pod itself or link-local (cloud metadata), however
    it is spelt: the proxy would send decrypted bodies to whatever listens there."""
    host = url.split("://", 1)[-1].split("/", 1)[0].rsplit(":", 1)[0].lower()
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        raise ValueError(f"{host!r} is the pod itself; name an external analysis service")
    address = host_address(host)
    if address is not None:
        mapped = getattr(address, "ipv4_mapped", None) or address
        if mapped.is_loopback or mapped.is_link_local or mapped.is_unspecified:
            raise ValueError(
                f"{host!r} is {mapped}, a loopback, link-local or unspecified address; "
                "name an external analysis service"
            )
    return url


DnsLabel = Annotated[str, StringConstraints(pattern=DNS_LABEL_PATTERN, max_length=63)]
Domain = Annotated[
    str,
    StringConstraints(pattern=DOMAIN_PATTERN, min_length=1, max_length=MAX_DOMAIN_NAME_LENGTH + 1),
    AfterValidator(check_punycode),
]
# A domain without the optional leading dot: what a `Domain` entry names.
DomainName = Annotated[
    str,
    StringConstraints(pattern=DOMAIN_NAME_PATTERN, max_length=MAX_DOMAIN_NAME_LENGTH),
    AfterValidator(check_punycode),
]
_DOMAIN_NAME: TypeAdapter[str] = TypeAdapter(DomainName)


def domain_name(entry: str) -> str:
    """The domain a `Domain` entry names (its leading dot dropped), validated with the API's own
    grammar. Raises ValueError saying what is wrong."""
    return check_domain_name(entry.removeprefix("."))


def check_domain_name(name: str) -> str:
    """`name` if it is a domain name in the API's grammar (no leading dot). Raises ValueError
    saying what is wrong."""
    if len(name) > MAX_DOMAIN_NAME_LENGTH:
        raise ValueError(f"is longer than {MAX_DOMAIN_NAME_LENGTH} characters")
    try:
        return _DOMAIN_NAME.validate_python(name)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["type"] == "string_pattern_mismatch":
            raise ValueError(
                "is not a domain name (labels of a-z, 0-9, '-', '_' separated by dots, "
                "ending in an alphabetic or xn-- top-level domain)"
            ) from None
        raise ValueError(str(error["msg"]).removeprefix("Value error, ")) from None


UrlRegex = Annotated[str, StringConstraints(pattern=URL_REGEX_PATTERN, max_length=1024)]
CategoryName = Annotated[str, StringConstraints(pattern=CATEGORY_PATTERN, max_length=63)]
ServiceCode = Annotated[str, StringConstraints(pattern=SERVICE_CODE_PATTERN, max_length=32)]
Email = Annotated[str, StringConstraints(pattern=EMAIL_PATTERN, max_length=254)]
DisplayText = Annotated[str, StringConstraints(pattern=DISPLAY_TEXT_PATTERN, max_length=256)]
ByteQuantity = Annotated[str, StringConstraints(pattern=QUANTITY_PATTERN, max_length=32)]
TimeZoneName = Annotated[str, StringConstraints(pattern=IANA_TZ_PATTERN, max_length=64)]
IcapUrl = Annotated[
    str,
    StringConstraints(pattern=ICAP_URL_PATTERN, max_length=512),
    AfterValidator(check_icap_host),
]
LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN, max_length=63)]
RbacSubjectName = Annotated[str, StringConstraints(pattern=RBAC_SUBJECT_PATTERN, max_length=253)]
Cidr = Annotated[
    str,
    StringConstraints(max_length=43, pattern=r"^[0-9a-fA-F:.]+/[0-9]{1,3}$"),
    AfterValidator(_canonical_cidr),
    Field(json_schema_extra={"x-swg-cidr": True}),
]


def cidr_is_catch_all(value: str) -> bool:
    """True for a CIDR that matches every address of its family (0.0.0.0/0, ::/0)."""
    return ipaddress.ip_network(value, strict=False).prefixlen == 0
