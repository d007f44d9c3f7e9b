"""YAML as this project writes it for people and for kubectl.

PyYAML resolves plain scalars by YAML 1.1, kubectl and the API server (sigs.k8s.io/yaml) by Go's
rules, which also read `6e47`, `1.5e3`, `0o17`, `1_000`, `y` and `n` as numbers or booleans. A
string that either side could read as anything but a string is quoted, so a digest such as
`616868351106e47` stays a string on its way through `kubectl apply`. Multi-line strings (config
files in ConfigMaps) are written as readable `|` blocks; no anchors.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

import yaml

# Plain scalars that Go's YAML readers resolve to a number or a boolean and PyYAML's 1.1 resolver
# does not: floats with an exponent but no dot or no exponent sign, 0o/0x/0b integers, digit
# groups, leading zeros, and the one-letter booleans.
_NOT_A_STRING_ELSEWHERE = re.compile(
    r"""
    [-+]?(\.[0-9]+|[0-9][0-9_]*(\.[0-9_]*)?)([eE][-+]?[0-9]+)?   # ints and floats
    | [-+]?0[oO][0-7_]+ | [-+]?0[xX][0-9a-fA-F_]+ | [-+]?0[bB][01_]+
    | [yYnN]
    | [-+]?\.(inf|Inf|INF) | \.(nan|NaN|NAN)
    """,
    re.VERBOSE,
)


class Dumper(yaml.SafeDumper):
    """SafeDumper that quotes every string another YAML reader could take for a number."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        style: str | None = "|"
    elif _NOT_A_STRING_ELSEWHERE.fullmatch(value):
        style = "'"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


Dumper.add_representer(str, _represent_str)


def dump(document: Any, *, width: int = 100) -> str:
    """One document (no `---`), keys in their given order, non-ASCII kept as it is."""
    return str(yaml.dump(document, Dumper=Dumper, sort_keys=False, allow_unicode=True, width=width))


def dump_all(documents: Iterable[Mapping[str, Any]], *, width: int = 100) -> str:
    """A stream of documents, each opened with `---`."""
    return str(
        yaml.dump_all(
            [dict(d) for d in documents],
            Dumper=Dumper,
            sort_keys=False,
            allow_unicode=True,
            explicit_start=True,
            width=width,
        )
    )
