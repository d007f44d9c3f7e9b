"""Kubernetes quantities: the one parser and formatter (swg_operator.quantities)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from swg_operator.quantities import (
    GIB,
    MIB,
    format_bytes,
    format_cpu,
    parse_bytes,
    parse_cpu,
    parse_quantity,
    same_quantity,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50Mi", 50 * 2**20),
        ("1.5G", 1_500_000_000),
        ("1024", 1024),
        ("0.5Ki", 512),
        ("1k", 1000),
        ("1e3", 1000),
        ("1.0001", 2),  # whole bytes, rounded up
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"), [("100m", 100), ("2", 2000), ("0.5", 500), ("1500m", 1500), ("1.2m", 2)]
)
def test_parse_cpu(text: str, expected: int) -> None:
    assert parse_cpu(text) == expected


@pytest.mark.parametrize("text", ["", "64MB", "1 Gi", "Gi", "1e99", "-1", "0x10", "1.2.3"])
def test_not_a_quantity_is_refused_naming_it(text: str) -> None:
    with pytest.raises(ValueError, match=repr(text).replace("\\", "\\\\")[1:-1] or "''"):
        parse_bytes(text)


def test_parse_quantity_is_exact() -> None:
    assert parse_quantity("1500m") == Decimal("1.5")
    assert parse_quantity("1Ei") == Decimal(2) ** 60
    assert parse_quantity("-2k") == Decimal(-2000)


@pytest.mark.parametrize(
    ("left", "right", "same"),
    [("1000m", "1", True), ("1Ki", "1024", True), ("1G", "1Gi", False), ("x", "x", False)],
)
def test_same_quantity(left: str, right: str, same: bool) -> None:
    assert same_quantity(left, right) is same


@given(st.integers(min_value=1, max_value=10**9))
def test_formatted_quantities_read_back(value: int) -> None:
    assert parse_cpu(format_cpu(value)) == value
    assert parse_bytes(format_bytes(value)) == value


def test_formatted_forms() -> None:
    assert format_cpu(500) == "500m"
    assert format_cpu(2000) == "2"
    assert format_bytes(768 * MIB) == "768Mi"
    assert format_bytes(20 * GIB) == "20Gi"
    assert format_bytes(1536 * MIB) == "1536Mi"
    assert format_bytes(100) == "100"
