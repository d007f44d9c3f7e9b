"""Reading the sizing model's capacity data file (the I/O half of `swg_operator.sizing`)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import yaml

from swg_operator.capacity import Capacity, CapacityError, parse_capacity

PACKAGED_CAPACITY = "data/capacity.yaml"


def load_capacity(path: Path | None = None) -> Capacity:
    """Load and validate the capacity constants: `path`, or the file packaged with the operator.

    Raises `CapacityError` (a ValueError) naming the file and key when it is malformed.
    """
    if path is None:
        origin = f"swg_operator/{PACKAGED_CAPACITY}"
        text = resources.files("swg_operator").joinpath(PACKAGED_CAPACITY).read_text("utf-8")
    else:
        origin = str(path)
        text = path.read_text(encoding="utf-8")
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CapacityError(f"{origin}: not valid YAML: {exc}") from None
    return parse_capacity(document, origin=origin)
