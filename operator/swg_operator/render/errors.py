"""What the renderer refuses: a spec that passed validation but that only the operator can judge
(it needs the catalogue or the operator's settings). The operator reports it as a `Stalled`
condition with `reason`; each problem names the field."""

from __future__ import annotations

from typing import Final

UNKNOWN_CATEGORY: Final = "UnknownCategory"
SANDBOX_UNREACHABLE: Final = "SandboxUnreachable"
CONFIG_TOO_LARGE: Final = "ConfigTooLarge"
INVALID_LOG_STORAGE: Final = "InvalidLogStorage"
# The platform's signature source cannot supply a database (settings antivirus.signatureSource).
SIGNATURES_UNAVAILABLE: Final = "SignaturesUnavailable"


class RenderError(ValueError):
    """The tenant cannot be rendered as declared. `reason` is a CamelCase condition reason;
    `problems` holds one "field: message" line each."""

    def __init__(self, reason: str, problems: tuple[str, ...]) -> None:
        super().__init__("; ".join(problems))
        self.reason = reason
        self.problems = problems
