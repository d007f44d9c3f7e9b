"""What `spec.contentControls` puts in the data plane's files.

* File types: a ClamAV signature file (`FILE_TYPE_SIGNATURES`, NDB format) the anti-virus
  pod's entrypoint installs beside the other signatures. Each entry matches a type's magic bytes
  at a fixed offset; executables are matched only in files ClamAV's own type detection took for
  that format (NDB target types 1 PE, 6 ELF, 9 Mach-O). clamd applies them to the body and to
  every member it unpacks from an archive, so an executable inside a zip is found too, and its
  name and Content-Type do not matter. A match is reported like a virus under a
  `SWG.FileType.*` name; c-icap refuses the body and the logs record the verdict `file-type`.
* SafeSearch: squid.conf lines (`SafeSearchSquid`). What each site documents for networks that
  enforce it, without DNS (the proxy resolves names itself and the tenant's clients may use any
  resolver):
  - YouTube: the `YouTube-Restrict: Strict|Moderate` request header on its hosts;
  - Google: the `safe=active` search parameter; Bing: `adlt=strict`; DuckDuckGo: `kp=1`. A search
    request without the parameter is redirected (302) to the same URL with it added; one that
    sets the parameter to another value is refused with the block page (the proxy cannot rewrite
    a parameter in place without a rewriting helper).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from swg_logstore.formats import TENANT_POLICY, Decision, MatchedList, annotation
from swg_operator.api.content import ContentControls, FileType, YouTubeRestriction

FILE_TYPE_SIGNATURES: Final = "swg-filetypes.ndb"
SIGNATURE_PREFIX: Final = "SWG.FileType."

# NDB target types (ClamAV's signature format): 0 any file, 1 PE, 6 ELF, 9 Mach-O.
_ANY, _PE, _ELF, _MACHO = 0, 1, 6, 9

# type -> (signature suffix, target, offset, magic hex)
BUILTIN_SIGNATURES: Final[dict[FileType, tuple[tuple[str, int, int, str], ...]]] = {
    FileType.EXECUTABLE: (
        ("Executable.PE", _PE, 0, "4d5a*50450000"),  # MZ, then the PE header
        ("Executable.ELF", _ELF, 0, "7f454c46"),
        ("Executable.MachO32", _MACHO, 0, "feedface"),
        ("Executable.MachO64", _MACHO, 0, "feedfacf"),
        ("Executable.MachO32LE", _MACHO, 0, "cefaedfe"),
        ("Executable.MachO64LE", _MACHO, 0, "cffaedfe"),
    ),
    FileType.ARCHIVE: (
        ("Archive.Zip", _ANY, 0, "504b0304"),
        ("Archive.Rar", _ANY, 0, "526172211a07"),
        ("Archive.7z", _ANY, 0, "377abcaf271c"),
        ("Archive.Gzip", _ANY, 0, "1f8b08"),
        ("Archive.Bzip2", _ANY, 0, "425a6839"),
        ("Archive.Xz", _ANY, 0, "fd377a585a00"),
        ("Archive.Cab", _ANY, 0, "4d53434600000000"),
    ),
    FileType.PDF: (("PDF", _ANY, 0, "255044462d"),),
    FileType.OLE2: (("OLE2", _ANY, 0, "d0cf11e0a1b11ae1"),),
    FileType.DISK_IMAGE: (("DiskImage.ISO9660", _ANY, 32769, "4344303031"),),
}


def file_type_signatures(controls: ContentControls) -> str:
    """The NDB signature file of the tenant's blocked file types; empty when none is."""
    lines: list[str] = []
    for file_type in sorted(controls.file_types.blocked):
        for suffix, target, offset, magic in BUILTIN_SIGNATURES[file_type]:
            lines.append(f"{SIGNATURE_PREFIX}{suffix}:{target}:{offset}:{magic}")
    for custom in controls.file_types.custom:
        lines.append(
            f"{SIGNATURE_PREFIX}Custom.{custom.name}:{_ANY}:{custom.offset}:{custom.magic}"
        )
    return "".join(f"{line}\n" for line in lines)


def content_antivirus_files(controls: ContentControls) -> dict[str, str]:
    """The anti-virus pod's files for the content controls: file name -> text."""
    text = file_type_signatures(controls)
    return {FILE_TYPE_SIGNATURES: text} if text else {}


# --- SafeSearch --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchEngine:
    name: str  # ACL name part
    url_regex: str  # a search request (POSIX extended, case-insensitive)
    param: str
    value: str


# The search pages of each engine; any country domain of Google.
SEARCH_ENGINES: Final = (
    SearchEngine(
        "google",
        r"^https?://(www\.)?google\.([a-z]{2,3}|co\.[a-z]{2}|com\.[a-z]{2})/search\?",
        "safe",
        "active",
    ),
    SearchEngine(
        "bing", r"^https?://(www\.)?bing\.com/(images/|videos/)?search\?", "adlt", "strict"
    ),
    SearchEngine("duckduckgo", r"^https?://(html\.)?duckduckgo\.com/(html/?)?\?", "kp", "1"),
)
# YouTube's hosts that take the YouTube-Restrict header (Google's documentation).
YOUTUBE_HOSTS: Final = (
    "www.youtube.com",
    "m.youtube.com",
    "youtubei.googleapis.com",
    "youtube.googleapis.com",
    "www.youtube-nocookie.com",
)
YOUTUBE_HEADER: Final = "YouTube-Restrict"


def parameter_is(param: str, value: str) -> str:
    """A POSIX extended regex: the query has `param=value` as a whole parameter."""
    return rf"[?&]{param}={value}(&|$)"


def parameter_other_than(param: str, value: str) -> str:
    """A POSIX extended regex (no look-ahead): the query has `param=` with any value other than
    `value`, empty included."""
    alternatives = ["(&|$)"]
    for index in range(len(value)):
        prefix = value[:index]
        alternatives.append(f"{prefix}[^{value[index]}&]")
        if index:
            alternatives.append(f"{prefix}(&|$)")
    alternatives.append(f"{value}[^&]")
    return rf"[?&]{param}=(" + "|".join(alternatives) + ")"


@dataclass(frozen=True)
class SafeSearchSquid:
    """squid.conf text of SafeSearch: ACLs, then `http_access` rules (before the tenant's own
    rules: an allow-list entry does not switch SafeSearch off), then `deny_info` and request
    headers. Empty strings when SafeSearch is off."""

    acls: str = ""
    access: str = ""
    actions: str = ""


NO_SAFE_SEARCH: Final = SafeSearchSquid()


def safe_search_squid(controls: ContentControls) -> SafeSearchSquid:
    safe = controls.safe_search
    if not safe.enabled:
        return NO_SAFE_SEARCH
    redirect_notes = annotation(
        decision=Decision.ALLOW, matched=MatchedList.SAFE_SEARCH, policy=TENANT_POLICY
    )
    block_notes = annotation(
        decision=Decision.BLOCK, matched=MatchedList.SAFE_SEARCH, policy=TENANT_POLICY
    )
    acls = ["# spec.contentControls.safeSearch"]
    access: list[str] = []
    actions: list[str] = []
    for engine in SEARCH_ENGINES:
        prefix = f"swg_safesearch_{engine.name}"
        acls += [
            f"acl {prefix} url_regex -i {engine.url_regex}",
            f"acl {prefix}_on url_regex -i {parameter_is(engine.param, engine.value)}",
            f"acl {prefix}_other url_regex -i {parameter_other_than(engine.param, engine.value)}",
            f"acl {prefix}_redirect annotate_transaction {redirect_notes}",
            f"acl {prefix}_refuse annotate_transaction {block_notes}",
        ]
        access += [
            f"http_access deny {prefix} {prefix}_other {prefix}_refuse",
            f"http_access deny {prefix} !{prefix}_on {prefix}_redirect",
        ]
        # %P://%H@Squid{%>rp}: the request URL, its path and query neither HTML- nor URL-escaped
        # (the legacy %R is HTML-escaped: & becomes &amp;).
        actions += [
            f"deny_info 302:%P://%H@Squid{{%>rp}}&{engine.param}={engine.value} {prefix}_redirect",
            f"deny_info ERR_SWG_BLOCKED {prefix}_refuse",
        ]
    if safe.youtube is not YouTubeRestriction.OFF:
        acls.append(f"acl swg_safesearch_youtube dstdomain {' '.join(YOUTUBE_HOSTS)}")
        # The client's own header is removed first: request_header_add only adds.
        actions += [
            f"request_header_access {YOUTUBE_HEADER} deny swg_safesearch_youtube",
            f"request_header_add {YOUTUBE_HEADER} {safe.youtube.value} swg_safesearch_youtube",
        ]
    return SafeSearchSquid(
        acls="\n".join(acls) + "\n",
        access="\n".join(access) + "\n",
        actions="\n".join(actions) + "\n",
    )
