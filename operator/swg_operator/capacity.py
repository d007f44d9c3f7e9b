"""The sizing model's capacity constants: `Capacity`, a model of `data/capacity.yaml`.

Each constant is declared once, as a field of `Capacity`: its name in the model, its key in the
file (the alias), its kind and its bounds. `parse_capacity` checks a parsed file against these
declarations: every constant present once with the kind the model expects, a value within
bounds, and a source declared under `sources` (its provenance). Pure: `sizing_io.load_capacity`
reads the file.

Integers only: CPU in millicores, memory in bytes, ratios in percent. In the file, counts and
percentages are plain integers; millicores and bytes are Kubernetes quantity strings ("100m",
"64Mi"), read by `quantities`.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from swg_operator.quantities import GIB, KIB, MIB, parse_bytes, parse_cpu


class CapacityError(ValueError):
    """The capacity data file is malformed; the message names the file and the key."""


class Kind(StrEnum):
    """How a constant is written in the file."""

    COUNT = "count"
    PERCENT = "percent"
    MILLICORES = "millicores"
    BYTES = "bytes"


def _constant(key: str, kind: Kind, low: int, high: int) -> Any:
    """A constant's declaration: its file key, kind and bounds."""
    return Field(alias=key, ge=low, le=high, json_schema_extra={"kind": kind.value})


_CPU = (10, 64_000)  # millicores
_MEMORY = (MIB, 64 * GIB)  # bytes
_RATE = (1, 10**7)  # units per second per core

_COUNT, _PERCENT, _MILLICORES, _BYTES = Kind.COUNT, Kind.PERCENT, Kind.MILLICORES, Kind.BYTES


class Provenance(BaseModel):
    """Where one constant came from."""

    model_config = ConfigDict(frozen=True)

    source: str  # key of the source in the data file
    description: str
    date: str
    machine: str
    provisional: bool
    note: str


class Capacity(BaseModel):
    """Per-replica capacities and policy constants (docs/sizing.md explains each)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True, strict=True)

    # fmt: off
    target_utilisation_percent: int = _constant("targetUtilisationPercent", _PERCENT, 1, 100)
    cpu_limit_percent: int = _constant("cpuLimitPercent", _PERCENT, 100, 1000)
    memory_limit_percent: int = _constant("memoryLimitPercent", _PERCENT, 100, 1000)
    max_surge_percent: int = _constant("maxSurgePercent", _PERCENT, 1, 100)
    disruption_budget_percent: int = _constant("disruptionBudgetPercent", _PERCENT, 1, 50)
    quota_headroom_percent: int = _constant("quotaHeadroomPercent", _PERCENT, 0, 1000)
    quota_spare_pods: int = _constant("quotaSparePods", _COUNT, 0, 100)
    proxy_rps_per_core: int = _constant("proxyRequestsPerSecondPerCore", _COUNT, *_RATE)
    proxy_cpu_min: int = _constant("proxyCpuMin", _MILLICORES, *_CPU)
    proxy_cpu_max: int = _constant("proxyCpuMaxPerReplica", _MILLICORES, *_CPU)
    proxy_memory_base: int = _constant("proxyMemoryBase", _BYTES, *_MEMORY)
    connections_per_endpoint: int = _constant("connectionsPerEndpoint", _COUNT, 1, 1000)
    memory_per_connection: int = _constant("memoryPerConnection", _BYTES, 1, 16 * MIB)
    max_connections_per_replica: int = _constant("maxConnectionsPerReplica", _COUNT, *_RATE)
    acl_entry_memory: int = _constant("aclEntryMemory", _BYTES, 1, 64 * KIB)
    antivirus_rps_per_core: int = _constant("antivirusRequestsPerSecondPerCore", _COUNT, *_RATE)
    antivirus_cpu_min: int = _constant("antivirusCpuMin", _MILLICORES, *_CPU)
    antivirus_cpu_max: int = _constant("antivirusCpuMaxPerReplica", _MILLICORES, *_CPU)
    icap_cpu_share_percent: int = _constant("icapCpuSharePercent", _PERCENT, 1, 99)
    icap_memory_base: int = _constant("icapMemoryBase", _BYTES, *_MEMORY)
    icap_memory_per_core: int = _constant("icapMemoryPerCore", _BYTES, 0, 64 * GIB)
    clamd_database_memory_full: int = _constant("clamdDatabaseMemoryFull", _BYTES, *_MEMORY)
    clamd_database_memory_custom: int = _constant("clamdDatabaseMemoryCustom", _BYTES, *_MEMORY)
    clamd_scan_memory_per_core: int = _constant("clamdScanMemoryPerCore", _BYTES, 0, 64 * GIB)
    logstore_lines_per_core: int = _constant("logStoreLinesPerSecondPerCore", _COUNT, 1, 10**8)
    logstore_cpu_min: int = _constant("logStoreCpuMin", _MILLICORES, *_CPU)
    logstore_cpu_max: int = _constant("logStoreCpuMax", _MILLICORES, *_CPU)
    logstore_memory: int = _constant("logStoreMemory", _BYTES, *_MEMORY)
    access_log_line_bytes: int = _constant("accessLogLineBytes", _BYTES, 1, 64 * KIB)
    antivirus_log_line_bytes: int = _constant("antivirusLogLineBytes", _BYTES, 0, 64 * KIB)
    compression_ratio_percent: int = _constant("compressionRatioPercent", _PERCENT, 1, 100)
    average_to_peak_percent: int = _constant("averageToPeakRatioPercent", _PERCENT, 1, 100)
    uncompressed_log_days: int = _constant("uncompressedLogDays", _COUNT, 0, 7)
    log_volume_headroom_percent: int = _constant("logVolumeHeadroomPercent", _PERCENT, 0, 1000)
    shipper_lines_per_core: int = _constant("shipperLinesPerSecondPerCore", _COUNT, 1, 10**8)
    shipper_cpu_min: int = _constant("shipperCpuMin", _MILLICORES, *_CPU)
    shipper_memory: int = _constant("shipperMemory", _BYTES, *_MEMORY)
    log_spool_outage_minutes: int = _constant("logSpoolOutageMinutes", _COUNT, 1, 24 * 60)
    freshclam_cpu: int = _constant("freshclamCpu", _MILLICORES, *_CPU)
    freshclam_memory: int = _constant("freshclamMemory", _BYTES, *_MEMORY)
    init_container_cpu: int = _constant("initContainerCpu", _MILLICORES, *_CPU)
    init_container_memory: int = _constant("initContainerMemory", _BYTES, *_MEMORY)
    # fmt: on
    # File key of each constant -> where its value came from.
    provenance: Mapping[str, Provenance] = Field(default_factory=dict, repr=False)

    @model_validator(mode="after")
    def _minimum_within_maximum(self) -> Capacity:
        for low, high in (
            ("proxy_cpu_min", "proxy_cpu_max"),
            ("antivirus_cpu_min", "antivirus_cpu_max"),
            ("logstore_cpu_min", "logstore_cpu_max"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{key_of(low)} exceeds {key_of(high)}")
        return self

    @property
    def provisional(self) -> bool:
        """True while any constant is not yet calibrated by a benchmark."""
        return any(p.provisional for p in self.provenance.values())


CONSTANTS: Final[Mapping[str, str]] = {
    field.alias or name: name
    for name, field in Capacity.model_fields.items()
    if name != "provenance"
}


def key_of(attribute: str) -> str:
    """The file key of a `Capacity` attribute: "proxy_cpu_max" -> "proxyCpuMaxPerReplica"."""
    return Capacity.model_fields[attribute].alias or attribute


def kind_of(key: str) -> Kind:
    extra = Capacity.model_fields[CONSTANTS[key]].json_schema_extra
    assert isinstance(extra, dict)
    return Kind(str(extra["kind"]))


# ------------------------------------------------------------------------------------------------
# The file
# ------------------------------------------------------------------------------------------------

_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class _FileModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


class _Source(_FileModel):
    description: _Text
    date: _Text
    machine: _Text
    provisional: bool


class _Constant(_FileModel):
    value: int | str
    kind: Literal["count", "percent", "millicores", "bytes"]
    source: _Text
    note: Annotated[str, StringConstraints(strip_whitespace=True)] = ""


class _CapacityFile(_FileModel):
    schema_version: Literal[1] = Field(alias="schemaVersion")
    sources: dict[str, _Source]
    constants: dict[str, object]  # each a _Constant, checked once the key set is right


def _first_error(exc: ValidationError, where: str) -> CapacityError:
    error = exc.errors()[0]
    path = ".".join([where, *(str(part) for part in error["loc"])])
    return CapacityError(f"{path}: {error['msg']}")


def _value(constant: _Constant, kind: Kind, where: str) -> int:
    raw = constant.value
    if kind in (Kind.COUNT, Kind.PERCENT):
        if not isinstance(raw, int):
            raise CapacityError(f"{where}.value: {raw!r} is not an integer")
        return raw
    if not isinstance(raw, str):
        raise CapacityError(f"{where}.value: {raw!r} must be a quoted quantity string")
    try:
        return parse_cpu(raw) if kind is Kind.MILLICORES else parse_bytes(raw)
    except ValueError as exc:
        raise CapacityError(f"{where}.value: {exc}") from None


def parse_capacity(document: object, *, origin: str = "capacity.yaml") -> Capacity:
    """Validate the parsed capacity data file and build a `Capacity`.

    Raises `CapacityError` naming `origin` and the key: a constant missing or unknown, of the
    wrong kind, out of bounds or from an undeclared source, a malformed source.
    """
    try:
        parsed = _CapacityFile.model_validate(document)
    except ValidationError as exc:
        raise _first_error(exc, origin) from None
    where = f"{origin}.constants"
    missing = sorted(CONSTANTS.keys() - parsed.constants.keys())
    if missing:
        raise CapacityError(f"{where}: missing {', '.join(missing)}")
    unknown = sorted(parsed.constants.keys() - CONSTANTS.keys())
    if unknown:
        raise CapacityError(f"{where}: unknown key(s) {', '.join(unknown)}")

    values: dict[str, int] = {}
    provenance: dict[str, Provenance] = {}
    for key, entry in parsed.constants.items():
        try:
            constant = _Constant.model_validate(entry)
        except ValidationError as exc:
            raise _first_error(exc, f"{where}.{key}") from None
        kind = kind_of(key)
        if constant.kind != kind.value:
            found = constant.kind
            raise CapacityError(f"{where}.{key}.kind: expected {kind.value!r}, found {found!r}")
        source = parsed.sources.get(constant.source)
        if source is None:
            raise CapacityError(
                f"{where}.{key}.source: {constant.source!r} is not declared under sources"
            )
        values[key] = _value(constant, kind, f"{where}.{key}")
        provenance[key] = Provenance(source=constant.source, note=constant.note, **dict(source))
    try:
        return Capacity.model_validate({**values, "provenance": provenance}, strict=False)
    except ValidationError as exc:
        error = exc.errors()[0]
        if error["loc"]:
            key = str(error["loc"][0])
            value = values.get(key)
            raise CapacityError(
                f"{where}.{key}.value: {value} is outside: {error['msg']}"
            ) from None
        raise CapacityError(f"{where}: {error['msg'].removeprefix('Value error, ')}") from None
