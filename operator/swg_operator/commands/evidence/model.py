"""What the evidence command collects (`Facts`) and what it concludes (`Check`).

Pure: no I/O. `collect.py` fills `Facts` from the API server; `judge.py` turns them into checks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

# The controls, as ISO/IEC 27017 numbers them (docs/compliance.md).
ISOLATION: Final = "CLD.9.5.1 tenant separation / 13.1.3 segregation in networks"
HARDENING: Final = "CLD.9.5.2 virtual machine hardening"
ACCESS: Final = "9.2.3 privileged access rights / 9.4.1 information access restriction"
CAPACITY: Final = "12.1.3 capacity management"
LOCATION: Final = "6.1.3 / 18.1.1 location of data"
LOGGING: Final = "12.4.1 event logging / 18.1.3 protection of records"
CRYPTOGRAPHY: Final = "10.1.1 / 10.1.2 cryptographic controls, key management"
NOTIFICATION: Final = "12.1.2 change management / 16.1.2 reporting events"
REMOVAL: Final = "CLD.8.1.5 removal of cloud service customer assets"


class Result(StrEnum):
    PASS = "pass"  # noqa: S105 - a result, not a password
    FAIL = "fail"
    UNKNOWN = "unknown"  # not readable with this identity, or nothing there to judge yet
    NOT_APPLICABLE = "n/a"  # the tenant does not use what the control covers


@dataclass(frozen=True)
class Check:
    """One control as software can show it: what was read and what it showed."""

    control: str  # ISO/IEC 27017 control(s)
    field: str  # the evidence field; docs/compliance.md names each
    checked: str  # what was read
    result: Result
    detail: str
    data: Any = None


@dataclass(frozen=True)
class Reading:
    """One answer of the API server: its HTTP status and its JSON body (None when not JSON)."""

    status: int
    body: Any = None

    @property
    def ok(self) -> bool:
        return self.status == 200

    def items(self) -> list[Mapping[str, Any]]:
        """The `items` of a list answer (empty when there is none)."""
        if not self.ok or not isinstance(self.body, dict):
            return []
        return [i for i in self.body.get("items") or [] if isinstance(i, dict)]

    def data(self) -> dict[str, str]:
        """The `data` of a ConfigMap answer (empty when there is none)."""
        if not self.ok or not isinstance(self.body, dict):
            return {}
        return {str(k): str(v) for k, v in (self.body.get("data") or {}).items()}

    def why_not(self) -> str:
        return {
            401: "the cluster did not accept the credentials (401)",
            403: "not readable with this identity (403)",
            404: "not found (404)",
        }.get(self.status, f"HTTP {self.status}")


NOT_READ: Final = Reading(0)


@dataclass(frozen=True)
class AccessAnswer:
    """One `kubectl auth can-i` question as the authorizer answered it."""

    who: str  # "user NAME", "group NAME", or "you" (the caller, SelfSubjectAccessReview)
    namespace: str
    verb: str
    resource: str  # resource[/subresource]
    name: str
    expected: bool  # what the admins' ClusterRole grants
    allowed: bool | None  # None: the question could not be asked (see http)
    http: int = 201

    def row(self) -> dict[str, Any]:
        return {
            "who": self.who,
            "namespace": self.namespace,
            "verb": self.verb,
            "resource": self.resource,
            "name": self.name,
            "expected": self.expected,
            "allowed": self.allowed,
        }


@dataclass(frozen=True)
class Facts:
    """What was read of one tenant. `spec` and `status` come from the `SecureWebGateway` when
    the caller may read it (the platform team), else `status` and `contract` from the mirror in
    the tenant namespace (the tenant's admins)."""

    tenant: str
    namespace: str
    tenant_reading: Reading
    spec: Mapping[str, Any] | None
    status: Mapping[str, Any]
    contract: Mapping[str, Any] | None
    namespace_object: Reading = NOT_READ
    policies: Reading = NOT_READ
    quotas: Reading = NOT_READ
    deployments: Reading = NOT_READ
    claims: Reading = NOT_READ
    ca_certificate: Reading = NOT_READ
    notices: Reading = NOT_READ
    receipts: Reading = NOT_READ
    access: tuple[AccessAnswer, ...] = ()
    # Each receipt's name -> problems of its signature (empty: valid); absent: no key to check.
    receipt_verdicts: Mapping[str, tuple[str, ...]] | None = None
    other_namespaces: tuple[str, ...] = field(default=())

    @property
    def phase(self) -> str:
        return str(self.status.get("phase") or "")

    def contract_value(self, *path: str) -> Any:
        value: Any = self.contract or {}
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        return value


def unknown(control: str, field: str, checked: str, reading: Reading) -> Check:
    """A check the caller could not make: the read named why."""
    return Check(control, field, checked, Result.UNKNOWN, reading.why_not())
