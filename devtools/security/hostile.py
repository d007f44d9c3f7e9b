"""Hypothesis strategies of hostile input at the operator's boundary: SecureWebGateway specs and
URL category files (blacklist directory layout).

Two kinds of spec: `hostile_specs` puts anything anywhere (wrong types, injection strings,
Unicode line separators, boundary and absurd numbers, huge lists), to exercise `parse_spec`;
`plausible_specs` draws every string from the API's own patterns, at their length limits and
with boundary numbers and long lists, so that most are accepted and reach the renderer.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Final

from hypothesis import strategies as st

from swg_operator.api import types as t

# Strings chosen to break a line-oriented config file, a template, a shell or a parser.
INJECTIONS: Final = (
    "",
    " ",
    "a b",
    "a\nb",
    "x\r\nhttp_access allow all",
    "example.test\nhttp_access allow all",
    "http_access allow all",
    "acl all src all",
    "include /etc/passwd",
    "# comment",
    "a#b",
    "\x00",
    "\t",
    "\x0b",
    "\x0c",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\u2029",
    "\u200b",
    "\u202e",
    "\ufeff",
    "\udcff",
    "'",
    '"',
    "`",
    "\\",
    "${HOME}",
    "$(reboot)",
    "{{ 7*7 }}",
    "{% raw %}",
    "%s%n",
    "../../etc/passwd",
    "/dev/zero",
    "\u0435\u0445ample.test",  # Cyrillic look-alikes of "e" and "x"
    "bücher.test",
    "xn--",
    "xn--zz.test",
    "-a.test",
    "a-.test",
    "..",
    ".",
    "EXAMPLE.TEST",
    "a" * 64,
    "a" * 254,
    "a" * 5000,
    "0.0.0.0/0",
    "::/0",
    "10.0.0.1/8",
    "10.0.0.0/33",
    "::ffff:10.0.0.0/104",
    "fe80::/10",
    "1.2.3.4",
    "01.2.3.4/32",
    "icap://127.0.0.1/respmod",
    "icap://169.254.169.254:1344/respmod",
    "icaps://[::1]/",
    "icap://a..b/",
    "UTC",
    "Asia/Tokyo",
    "../../../etc/localtime",
    "SWG-0000001",
    "swg-0000001",
)
NUMBERS: Final = (
    0,
    1,
    -1,
    2,
    89,
    90,
    91,
    255,
    256,
    999_999,
    1_000_000,
    1_000_001,
    2**31,
    2**63,
    10**30,
    0.5,
    1.0,
    float("nan"),
    float("inf"),
    True,
    False,
    "1",
    "1e3",
)
LIST_SIZES: Final = (0, 1, 2, 16, 17, 64, 65, 255, 256, 257, 999, 1000, 1001, 3000)


def hostile_strings() -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(INJECTIONS),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="ascii"), max_size=40),
        st.builds(lambda a, b: a + b, st.sampled_from(INJECTIONS), st.sampled_from(INJECTIONS)),
    )


def hostile_scalars() -> st.SearchStrategy[Any]:
    return st.one_of(
        hostile_strings(),
        st.sampled_from(NUMBERS),
        st.integers(),
        st.none(),
        st.booleans(),
    )


def field_names() -> st.SearchStrategy[str]:
    """Keys that look like field names (hostile keys: test_unknown_field_names_are_shown_escaped
    in tests/test_fuzz.py)."""
    return st.one_of(
        st.sampled_from(["enabled", "domains", "name", "size", "cidr"]),
        st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,20}", fullmatch=True),
    )


def hostile_values() -> st.SearchStrategy[Any]:
    """Anything JSON can carry, biased towards what breaks things."""
    return st.recursive(
        hostile_scalars(),
        lambda inner: st.one_of(
            st.lists(inner, max_size=4),
            st.dictionaries(field_names(), inner, max_size=3),
        ),
        max_leaves=8,
    )


def huge_lists(item: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    """A list of one of `LIST_SIZES` copies of an item (cheap to draw at any size)."""
    return st.builds(lambda n, x: [x] * n, st.sampled_from(LIST_SIZES), item)


def _maybe_hostile(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(valid, valid, valid, hostile_values(), huge_lists(hostile_scalars()))


@st.composite
def hostile_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec whose fields are each valid-looking, hostile, of the wrong type or absent;
    sometimes with an extra unknown field (named like a field: hostile names are
    tests/test_fuzz.py's test_unknown_field_names_are_shown_escaped)."""
    plausible = draw(plausible_specs())
    spec: dict[str, Any] = {}
    for key, value in plausible.items():
        choice = draw(st.integers(0, 5))
        if choice == 0:
            continue  # absent
        if choice == 1:
            spec[key] = draw(hostile_values())
        elif choice == 2 and isinstance(value, dict):
            spec[key] = {k: draw(_maybe_hostile(st.just(v))) for k, v in value.items()}
        else:
            spec[key] = value
    if draw(st.booleans()):
        spec[draw(field_names())] = draw(hostile_values())
    return spec


# --- plausible specs: every string from the API's patterns ---------------------------------------


def _pattern(pattern: str, max_size: int) -> st.SearchStrategy[str]:
    return st.from_regex(pattern, fullmatch=True).filter(lambda s: len(s) <= max_size)


def cidrs() -> st.SearchStrategy[str]:
    v4 = st.builds(
        lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)),
        st.ip_addresses(v=4),
        st.integers(0, 32),
    )
    v6 = st.builds(
        lambda a, p: str(ipaddress.ip_network(f"{a}/{p}", strict=False)),
        st.ip_addresses(v=6),
        st.integers(0, 128),
    )
    fixed = st.sampled_from(
        ["192.0.2.0/24", "198.51.100.0/25", "2001:db8::/32", "10.0.0.0/8", "169.254.169.254/32"]
    )
    return st.one_of(fixed, v4, v6)


# A domain the API pattern admits but the ACL writer (catalogue.parse_domain) refuses -- one
# label, or a one-letter top-level label -- makes render_tenant raise ValueError
# (tests/test_fuzz.py test_every_domain_the_api_admits_renders_or_is_a_render_error). Left
# out here so that the fuzz keeps finding other things.
_ACL_DOMAIN = re.compile(r"^\.?([a-z0-9_-]+\.)+([a-z]{2,63}|xn--[a-z0-9-]+)$")


def domains() -> st.SearchStrategy[str]:
    return st.one_of(
        _pattern(t.DOMAIN_PATTERN, 254).filter(lambda d: bool(_ACL_DOMAIN.match(d))),
        st.sampled_from(
            ["example.test", ".example.test", "a" * 63 + ".test", "xn--bcher-kva.test"]
        ),
    )


CATEGORY_NAMES: Final = ("adult", "gambling", "malware", "phishing", "social-networks")


def categories() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(CATEGORY_NAMES), _pattern(t.CATEGORY_PATTERN, 63))


def _unique_list(item: st.SearchStrategy[Any], max_size: int) -> st.SearchStrategy[list[Any]]:
    return st.lists(item, max_size=max_size, unique=True)


def _long_domain_list() -> st.SearchStrategy[list[str]]:
    return st.builds(
        lambda n: [f"host{i}.example.test" for i in range(n)], st.sampled_from(LIST_SIZES)
    )


def _domain_lists() -> st.SearchStrategy[list[str]]:
    return st.one_of(st.lists(domains(), max_size=4), _long_domain_list())


def _regexes() -> st.SearchStrategy[list[str]]:
    return st.one_of(
        st.lists(_pattern(t.URL_REGEX_PATTERN, 1024), max_size=3),
        st.builds(
            lambda n: [f"^https?://x{i}\\.test/" for i in range(n)], st.sampled_from((0, 1000))
        ),
    )


@st.composite
def plausible_specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec whose every value matches the API's patterns and bounds, at their edges: most are
    accepted (some break a uniqueness or catch-all rule, or name a category the catalogue
    lacks)."""
    sizing = st.integers(1, 1_000_000) | st.sampled_from([1, 1_000_000])
    allowed = draw(_unique_list(cidrs(), 6).filter(bool))
    spec: dict[str, Any] = {
        "serviceCode": draw(_pattern(t.SERVICE_CODE_PATTERN, 32)),
        "sizing": {"endpoints": draw(sizing), "requestsPerSecond": draw(sizing)},
        "clients": {"allowedCIDRs": allowed, "allowAnyClient": draw(st.booleans())},
    }
    if draw(st.booleans()):
        spec["displayName"] = draw(_pattern(t.DISPLAY_TEXT_PATTERN, 256))
    if draw(st.booleans()):
        spec["contacts"] = draw(st.lists(_pattern(t.EMAIL_PATTERN, 254), max_size=3))
    if draw(st.booleans()):
        policies = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "name": _pattern(t.DNS_LABEL_PATTERN, 63),
                        "sourceCIDRs": _unique_list(cidrs(), 3).filter(bool),
                        "blockedCategories": _unique_list(categories(), 3),
                        "allow": st.fixed_dictionaries({"domains": _domain_lists()}),
                        "deny": st.fixed_dictionaries(
                            {"domains": _domain_lists(), "urlRegex": _regexes()}
                        ),
                    }
                ),
                max_size=3,
                unique_by=lambda p: str(p["name"]),
            )
        )
        spec["urlFiltering"] = {
            "blockedCategories": draw(_unique_list(categories(), 5)),
            "allow": {"domains": draw(_domain_lists())},
            "deny": {"domains": draw(_domain_lists()), "urlRegex": draw(_regexes())},
            "policies": policies,
        }
    if draw(st.booleans()):
        spec["antivirus"] = {
            "enabled": draw(st.booleans()),
            "maxScanSize": draw(_pattern(t.QUANTITY_PATTERN, 32)),
            "failOpen": draw(st.booleans()),
        }
        if draw(st.booleans()):
            spec["antivirus"]["customSignatures"] = {
                "name": draw(_pattern(t.DNS_LABEL_PATTERN, 63))
            }
    if draw(st.booleans()):
        sandbox_url = draw(st.none() | _pattern(t.ICAP_URL_PATTERN, 512))
        spec["options"] = {
            "bypass": {"domains": draw(_domain_lists()), "CIDRs": draw(_unique_list(cidrs(), 3))},
            "httpsInspection": {
                "enabled": draw(st.booleans()),
                "doNotInspect": {
                    "domains": draw(_domain_lists()),
                    "categories": draw(_unique_list(categories(), 3)),
                },
            },
            "sandbox": {"enabled": sandbox_url is not None, "icapURL": sandbox_url},
        }
        if sandbox_url is None:
            del spec["options"]["sandbox"]["icapURL"]
    if draw(st.booleans()):
        spec["logs"] = {
            "retentionDays": draw(st.integers(1, 90)),
            "timeZone": draw(st.sampled_from(["UTC", "Asia/Tokyo", "America/Argentina/Salta"])),
            "storage": {"size": draw(st.sampled_from(["auto", "1Ki", "20Gi", "999999Ti"]))},
        }
    if draw(st.booleans()):
        spec["placement"] = {"region": draw(_pattern(t.LABEL_VALUE_PATTERN, 63))}
    if draw(st.booleans()):
        spec["admins"] = draw(
            st.lists(
                st.fixed_dictionaries(
                    {
                        "kind": st.sampled_from(["User", "Group"]),
                        "name": _pattern(t.RBAC_SUBJECT_PATTERN, 253),
                    }
                ),
                max_size=3,
            )
        )
    spec["suspended"] = draw(st.booleans())
    if draw(st.booleans()):
        spec["cancellation"] = {
            "purgeAfterDays": draw(st.integers(0, 90)),
            "legalHold": draw(st.booleans()),
        }
    return spec


# --- hostile catalogue files ---------------------------------------------------------------------

CATALOGUE_LINES: Final = (
    "example.test",
    ".example.test",
    "*.example.test",
    "EXAMPLE.TEST.",
    "bücher.test",
    "192.0.2.1",
    "999.1.1.1",
    "http://example.test/path?q=1",
    "https://example.test:8443/a%20b",
    "ftp://example.test/",
    "example.test/white space",
    "example.test\thttp_access allow all",
    "http_access allow all",
    "acl all src all",
    "# a comment",
    "   ",
    "example.test # trailing comment",
    "exa'mple.test",
    'exa"mple.test',
    "exa\\mple.test",
    "exa\x00mple.test",
    "exa\x1bmple.test",
    "exa\u2028mple.test",
    "exa\u200bmple.test",
    "exa\u202emple.test",
    "xn--zz.test",
    "a" * 300 + ".test",
    "example.test/" + "p" * 3000,
    "\ufeffexample.test",
    "example.test\r",
)


@st.composite
def catalogue_files(draw: st.DrawFn) -> dict[str, bytes]:
    """Relative path -> bytes of a blacklist directory: categories with hostile directory
    names, `domains`/`urls` files of hostile lines, joined by \\n, \\r\\n or Unicode
    separators, sometimes with invalid UTF-8."""
    files: dict[str, bytes] = {}
    names = draw(
        st.lists(
            st.one_of(
                st.sampled_from(["adult", "malware", "Bad Name", "ünï", "a" * 70, "-x", "x_y"]),
                _pattern(t.CATEGORY_PATTERN, 63),
            ),
            min_size=1,
            max_size=4,
            unique=True,
        )
    )
    line = st.one_of(st.sampled_from(CATALOGUE_LINES), st.text(max_size=30))
    for name in names:
        for kind in draw(st.lists(st.sampled_from(["domains", "urls", "description"]), max_size=3)):
            lines = draw(st.lists(line, max_size=12))
            separator = draw(st.sampled_from(["\n", "\r\n", "\n\n", "\u2028"]))
            data = separator.join(lines).encode("utf-8", errors="surrogateescape")
            if draw(st.booleans()):
                data += b"\nbad\xff\xfeutf8.test\n"
            files[f"{name}/{kind}"] = data
    return files
