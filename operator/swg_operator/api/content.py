"""`SecureWebGateway.spec.contentControls`: blocking by true file type and enforced SafeSearch.

File types are recognised by their content (magic bytes at a fixed offset, ClamAV's own type
detection for executables), never by a name or a Content-Type header: the anti-virus scanner
(clamd) enforces them, in every archive member it unpacks too, so they need
`antivirus.enabled`. SafeSearch is enforced on requests the proxy can see, so on HTTPS only
with `options.httpsInspection.enabled`. Both cross-field rules are checked by
`check_content_controls` (and by CEL rules in the CRD, `api.crd`).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Annotated

from pydantic import Field, StringConstraints, model_validator

from swg_operator.api.base import CamelModel
from swg_operator.api.types import DnsLabel

if TYPE_CHECKING:
    from swg_operator.api.spec import SecureWebGatewaySpec

# An even number of hex digits, 2 to 64 bytes: the magic bytes of a custom file type.
MAGIC_HEX_PATTERN = r"^([0-9a-f]{2}){2,64}$"
MAX_MAGIC_OFFSET = 65536


class FileType(StrEnum):
    """The file types a tenant may block, each recognised by its content."""

    EXECUTABLE = "executable"  # Windows PE (MZ), Linux ELF, macOS Mach-O
    ARCHIVE = "archive"  # zip (also docx/xlsx/jar/apk), rar, 7z, gzip, bzip2, xz, cab
    PDF = "pdf"  # %PDF
    OLE2 = "ole2"  # legacy Office documents and Windows Installer (.msi)
    DISK_IMAGE = "diskImage"  # ISO 9660


class CustomFileType(CamelModel):
    """A file type of the customer's own: bytes at an offset from the start of the file."""

    name: DnsLabel
    """Name of the type (a DNS label); the logs show it in the signature name."""
    magic: Annotated[str, StringConstraints(pattern=MAGIC_HEX_PATTERN, max_length=128)]
    """The bytes, lowercase hex (2 to 64 bytes), e.g. 7f454c46."""
    offset: Annotated[int, Field(ge=0, le=MAX_MAGIC_OFFSET)] = 0
    """Where the bytes start, in bytes from the start of the file."""


class FileTypeBlocking(CamelModel):
    """Downloads (and uploads) refused by what they are, not by their name."""

    blocked: Annotated[tuple[FileType, ...], Field(max_length=16)] = ()
    """Built-in types to refuse. Encrypted archives and documents are always refused while
    anti-virus is on (they cannot be scanned)."""
    custom: Annotated[tuple[CustomFileType, ...], Field(max_length=64)] = ()
    """Types of the customer's own, by magic bytes; names are unique."""

    @model_validator(mode="after")
    def _unique(self) -> FileTypeBlocking:
        for field, values in (
            ("contentControls.fileTypes.blocked", [t.value for t in self.blocked]),
            ("contentControls.fileTypes.custom[].name", [c.name for c in self.custom]),
        ):
            seen: set[str] = set()
            for value in values:
                if value in seen:
                    raise ValueError(f"{field}: duplicate entry {value!r}")
                seen.add(value)
        return self

    @property
    def active(self) -> bool:
        return bool(self.blocked or self.custom)


class YouTubeRestriction(StrEnum):
    STRICT = "Strict"
    MODERATE = "Moderate"
    OFF = "Off"


class SafeSearch(CamelModel):
    """SafeSearch on the major search engines and YouTube's restricted mode, enforced by the
    proxy on every request it decrypts."""

    enabled: bool = False
    """Force SafeSearch (strict) on Google, Bing and DuckDuckGo searches."""
    youtube: YouTubeRestriction = YouTubeRestriction.STRICT
    """YouTube restricted mode while enabled: Strict, Moderate, or Off (not enforced)."""


class ContentControls(CamelModel):
    """File types refused by content, and SafeSearch."""

    file_types: FileTypeBlocking = FileTypeBlocking()
    safe_search: SafeSearch = SafeSearch()


# The CEL rules of `check_content_controls` (api.crd puts them on the spec).
FILE_TYPES_NEED_ANTIVIRUS = (
    "contentControls.fileTypes: file types are recognised by the anti-virus scanner; "
    "set antivirus.enabled: true or remove them"
)
SAFE_SEARCH_NEEDS_INSPECTION = (
    "contentControls.safeSearch.enabled: search requests are only seen decrypted; "
    "set options.httpsInspection.enabled: true or disable safeSearch"
)


def check_content_controls(spec: SecureWebGatewaySpec) -> None:
    """The cross-field rules of `spec.contentControls`; ValueError naming the field."""
    controls = spec.content_controls
    if controls.file_types.active and not spec.antivirus.enabled:
        raise ValueError(FILE_TYPES_NEED_ANTIVIRUS)
    if controls.safe_search.enabled and not spec.options.https_inspection.enabled:
        raise ValueError(SAFE_SEARCH_NEEDS_INSPECTION)
