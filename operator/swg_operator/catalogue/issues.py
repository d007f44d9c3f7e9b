"""Findings about a catalogue: one issue names where it was found; an error lists them all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning"]


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


def show(text: str, limit: int = 80) -> str:
    """A value safe to print in an error message: escaped, shortened."""
    shown = ascii(text[:limit])
    return shown + ("..." if len(text) > limit else "")
