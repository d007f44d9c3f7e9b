"""The base of every API model: frozen, strict about unknown fields, camelCase on the wire."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class CamelModel(BaseModel):
    """Frozen model with camelCase aliases; unknown fields are an error, never ignored."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        populate_by_name=True,
        alias_generator=to_camel,
        str_strip_whitespace=False,
        # Attribute docstrings become field descriptions (and so `kubectl explain` text).
        use_attribute_docstrings=True,
    )
