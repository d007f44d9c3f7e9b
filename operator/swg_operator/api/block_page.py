"""`SecureWebGateway.spec.blockPage`: the page the proxy shows when it blocks a request, in
English and Japanese, chosen by the browser's Accept-Language (`render.block_page`).

Every string here is the customer's and ends up in an HTML page that Squid expands: the
renderer HTML-escapes it and neutralises Squid's `%` codes and `@Squid{...}` macros. The
patterns below keep out control characters (one line break between lines apart) and bidi
controls, and bound the length.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Final

from pydantic import Field, StringConstraints

from swg_operator.api.base import CamelModel
from swg_operator.api.types import UNSAFE_TEXT as _UNSAFE_TEXT

MAX_CONTACT_LINES: Final = 5
MAX_CONTACT_LENGTH: Final = 500
MAX_TITLE_LENGTH: Final = 120
# Lines of free text (no control or bidi character) joined by single line feeds, at most
# MAX_CONTACT_LINES of them.
CONTACT_TEXT_PATTERN: Final = (
    rf"^[^{_UNSAFE_TEXT}]*(\n[^{_UNSAFE_TEXT}]*){{0,{MAX_CONTACT_LINES - 1}}}$"
)
TITLE_PATTERN: Final = rf"^[^{_UNSAFE_TEXT}\s]([^{_UNSAFE_TEXT}]*[^{_UNSAFE_TEXT}\s])?$"


class Language(StrEnum):
    """The languages of the block page."""

    EN = "en"
    JA = "ja"


ContactText = Annotated[
    str,
    StringConstraints(pattern=CONTACT_TEXT_PATTERN, min_length=1, max_length=MAX_CONTACT_LENGTH),
]
Title = Annotated[str, StringConstraints(pattern=TITLE_PATTERN, max_length=MAX_TITLE_LENGTH)]


class BlockPage(CamelModel):
    """The page shown to a user whose request the gateway blocked: it names the rule (list,
    category, policy) and the request id for support, in the browser's language."""

    default_language: Language = Field(
        default=Language.EN,
        description="Language of the page when the browser's first preferred language "
        "(Accept-Language) is neither en nor ja.",
    )
    title: Title | None = Field(
        default=None,
        description="Heading of the page in every language, instead of the built-in one; one "
        "line of at most 120 characters.",
    )
    contact_text: ContactText | None = Field(
        default=None,
        description="Whom the user should contact, shown on the page in every language: at "
        "most 500 characters in at most 5 lines.",
    )
