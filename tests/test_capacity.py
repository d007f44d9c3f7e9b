"""The capacity data file (data/capacity.yaml): its model, provenance and validation."""

from __future__ import annotations

import copy
from importlib import resources
from typing import Any

import pytest
import yaml

from swg_operator.capacity import CONSTANTS, Capacity, CapacityError, Kind, kind_of, parse_capacity
from swg_operator.quantities import MIB
from swg_operator.sizing_io import PACKAGED_CAPACITY, load_capacity

PACKAGED = load_capacity()


def _packaged_document() -> dict[str, Any]:
    text = resources.files("swg_operator").joinpath(PACKAGED_CAPACITY).read_text("utf-8")
    document = yaml.safe_load(text)
    assert isinstance(document, dict)
    return document


def test_packaged_capacity_is_provisional_with_provenance_for_every_constant() -> None:
    assert PACKAGED.provisional
    document = _packaged_document()
    assert set(PACKAGED.provenance) == set(document["constants"])
    for key, provenance in PACKAGED.provenance.items():
        for text in (provenance.date, provenance.machine, provenance.description, provenance.note):
            assert text, key
    # Calibrated by the data-plane benchmark (bench/results/dataplane-2026-11-26.json).
    measured = PACKAGED.provenance["proxyRequestsPerSecondPerCore"]
    assert measured.source == "dataplane-bench-2026-11-26"
    assert not measured.provisional
    assert PACKAGED.proxy_rps_per_core == 4500
    assert PACKAGED.clamd_database_memory_full >= 1200 * MIB


def _broken(mutate: Any) -> dict[str, Any]:
    document = copy.deepcopy(_packaged_document())
    mutate(document)
    return document


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["constants"].pop("proxyRequestsPerSecondPerCore"), "missing"),
        (lambda d: d["constants"].update(madeUp={"value": 1}), "unknown key.*madeUp"),
        (lambda d: d.update(schemaVersion=2), "schemaVersion"),
        (
            lambda d: d["constants"]["proxyMemoryBase"].update(value="64MB"),
            "proxyMemoryBase.value",
        ),
        (
            lambda d: d["constants"]["proxyCpuMin"].update(value=100),
            "proxyCpuMin.value",
        ),
        (
            lambda d: d["constants"]["targetUtilisationPercent"].update(value=0),
            "targetUtilisationPercent.value: 0 is outside",
        ),
        (
            lambda d: d["constants"]["maxSurgePercent"].update(kind="count"),
            "maxSurgePercent.kind",
        ),
        (
            lambda d: d["constants"]["connectionsPerEndpoint"].update(value="4"),
            "connectionsPerEndpoint.value",
        ),
        (
            lambda d: d["constants"]["quotaSparePods"].update(value=True),
            "quotaSparePods.value",
        ),
        (
            lambda d: d["constants"]["proxyCpuMin"].update(source="nowhere"),
            "proxyCpuMin.source",
        ),
        (
            lambda d: d["sources"]["design-decision"].pop("machine"),
            "sources.design-decision.machine: Field required",
        ),
        (
            lambda d: d["constants"]["proxyCpuMin"].update(value="2"),
            "proxyCpuMin exceeds proxyCpuMaxPerReplica",
        ),
        (lambda d: d.update(constants=[]), "constants: Input should be a valid dictionary"),
    ],
)
def test_malformed_capacity_is_refused_naming_the_key(mutate: Any, message: str) -> None:
    with pytest.raises(CapacityError, match=message):
        parse_capacity(_broken(mutate), origin="capacity.yaml")


def test_capacity_file_from_a_path(tmp_path: Any) -> None:
    path = tmp_path / "capacity.yaml"
    document = _packaged_document()
    document["constants"]["proxyRequestsPerSecondPerCore"]["value"] = 5500
    path.write_text(yaml.safe_dump(document))
    assert load_capacity(path).proxy_rps_per_core == 5500
    path.write_text("constants: [")
    with pytest.raises(CapacityError, match=str(path)):
        load_capacity(path)


def test_each_constant_is_declared_once_with_its_kind() -> None:
    document = _packaged_document()
    assert set(CONSTANTS) == set(document["constants"])
    assert set(CONSTANTS.values()) == set(Capacity.model_fields) - {"provenance"}
    for key, entry in document["constants"].items():
        assert kind_of(key) is Kind(entry["kind"]), key


def test_quantities_in_the_file_read_as_whole_numbers() -> None:
    document = _packaged_document()
    document["constants"]["proxyCpuMin"]["value"] = "0.25"
    document["constants"]["proxyMemoryBase"]["value"] = "0.5Gi"
    capacity = parse_capacity(document)
    assert capacity.proxy_cpu_min == 250
    assert capacity.proxy_memory_base == 512 * MIB


def test_constructed_capacity_refuses_out_of_bounds_values() -> None:
    values = PACKAGED.model_dump(exclude={"provenance"})
    with pytest.raises(ValueError, match="proxy_cpu_min"):
        Capacity(**{**values, "proxy_cpu_min": 5})
