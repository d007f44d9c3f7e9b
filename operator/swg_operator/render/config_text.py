"""The one Jinja environment of the data-plane config templates (render/templates).

Strict (a missing value is an error, never an empty directive) and without autoescaping: the
text is config, not HTML, and every value that reaches it is constrained by the API models'
patterns or by the catalogue's validation, so no value can end a line or start a directive.
"""

from __future__ import annotations

from typing import Any

import jinja2

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("swg_operator.render", "templates"),
    undefined=jinja2.StrictUndefined,
    autoescape=False,  # noqa: S701 - config text, not HTML; values are pattern-constrained
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)


def render_template(name: str, **values: Any) -> str:
    """The text of template `<name>.j2` with `values`."""
    return _ENV.get_template(f"{name}.j2").render(**values)
