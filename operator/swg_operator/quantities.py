"""Kubernetes resource quantities: the one parser and formatter of the project.

A quantity is a decimal number with an optional suffix: a binary one (Ki, Mi, Gi, Ti, Pi, Ei), a
decimal one (m, k, M, G, T, P, E) or an exponent (1e3). `parse_quantity` reads every form the
API server accepts, exactly (a `Decimal`); `parse_cpu` and `parse_bytes` give the whole
millicores and bytes a quantity stands for, rounded up; `format_cpu` and `format_bytes` write
the short canonical forms the renderer puts into objects ("1500m", "2", "768Mi").
"""

from __future__ import annotations

import re
from decimal import ROUND_CEILING, Decimal, InvalidOperation
from typing import Final

KIB: Final = 1024
MIB: Final = 1024 * KIB
GIB: Final = 1024 * MIB
TIB: Final = 1024 * GIB

_QUANTITY = re.compile(
    r"(?P<number>[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))"
    r"(?:[eE](?P<exponent>[+-]?[0-9]+)|(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E))?"
)
_SUFFIX: Final = {
    "": Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}
# Largest exponent accepted: far beyond any real quantity, small enough to stay exact.
_MAX_EXPONENT: Final = 30
_BINARY_SUFFIXES: Final = (("Ti", TIB), ("Gi", GIB), ("Mi", MIB), ("Ki", KIB))


def parse_quantity(text: str) -> Decimal:
    """The exact value of a Kubernetes quantity: "1500m" -> 1.5, "1Gi" -> 1073741824, "1e3" ->
    1000. Raises ValueError naming the text when it is not a quantity."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a Kubernetes quantity like '250m', '2', '64Mi' or '1G'")
    number, exponent = match["number"], match["exponent"]
    try:
        if exponent is not None:
            if abs(int(exponent)) > _MAX_EXPONENT:
                raise ValueError(f"{text!r}: exponent out of range")
            return Decimal(f"{number}e{exponent}")
        return Decimal(number) * _SUFFIX[match["suffix"] or ""]
    except InvalidOperation:
        raise ValueError(f"{text!r} is not a Kubernetes quantity") from None


def same_quantity(left: str, right: str) -> bool:
    """True when both texts are quantities of the same value ("1000m" and "1", "1Ki" and
    "1024"): the API server stores quantities in its own canonical spelling."""
    try:
        return parse_quantity(left) == parse_quantity(right)
    except ValueError:
        return False


def _whole(value: Decimal) -> int:
    return int(value.to_integral_value(rounding=ROUND_CEILING))


def parse_cpu(text: str) -> int:
    """Whole millicores of a CPU quantity, rounded up: "100m" -> 100, "2" -> 2000, "0.5" ->
    500. Raises ValueError for a quantity that is not one or is negative."""
    value = parse_quantity(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return _whole(value * 1000)


def parse_bytes(text: str) -> int:
    """Whole bytes of a byte quantity, rounded up: "64Mi" -> 67108864, "1.5G" -> 1500000000,
    "512" -> 512. Raises ValueError for a quantity that is not one or is negative."""
    value = parse_quantity(text)
    if value < 0:
        raise ValueError(f"{text!r} is negative")
    return _whole(value)


def format_cpu(millicores: int) -> str:
    """A CPU quantity: 1500 -> "1500m", 2000 -> "2"."""
    if millicores % 1000 == 0:
        return str(millicores // 1000)
    return f"{millicores}m"


def format_bytes(num_bytes: int) -> str:
    """A byte quantity with the largest exact binary suffix: 768 MiB -> "768Mi", 1000 ->
    "1000"."""
    for suffix, unit in _BINARY_SUFFIXES:
        if num_bytes and num_bytes % unit == 0:
            return f"{num_bytes // unit}{suffix}"
    return str(num_bytes)
