"""The YAML the commands write keeps strings as strings for Go's YAML readers too."""

from __future__ import annotations

import pytest
import yaml

from swg_operator.commands.yamltext import dump, dump_all

# Each reads as a number or boolean to sigs.k8s.io/yaml (what kubectl and the API server use).
GO_READS_AS_NON_STRING = [
    "6e47",
    "616868351106e47",  # a hex digest made only of digits and one `e`
    "1.5e3",
    "1E9",
    "0o17",
    "0x1F",
    "0b101",
    "1_000",
    "017",
    "12",
    "-3",
    "y",
    "N",
    ".inf",
    ".NaN",
]


@pytest.mark.parametrize("value", GO_READS_AS_NON_STRING)
def test_numeric_looking_strings_are_quoted(value: str) -> None:
    text = dump({"annotations": {"swg.dev/config-digest": value}})
    assert f"swg.dev/config-digest: {value}\n" not in text, text
    assert yaml.safe_load(text) == {"annotations": {"swg.dev/config-digest": value}}


@pytest.mark.parametrize("value", ["abc123", "6e47x", "sha256-6e47", "yes please", "a:b"])
def test_ordinary_strings_stay_plain(value: str) -> None:
    assert dump({"k": value}) == f"k: {value}\n"


def test_multiline_strings_are_blocks_and_streams_are_separated() -> None:
    text = dump_all([{"data": {"squid.conf": "a\nb\n"}}, {"kind": "x"}])
    assert text == "---\ndata:\n  squid.conf: |\n    a\n    b\n---\nkind: x\n"


def test_numbers_stay_numbers() -> None:
    assert dump({"port": 3128, "ratio": 1.5}) == "port: 3128\nratio: 1.5\n"


def test_rendered_objects_and_catalogue_configmaps_quote_digits_only_digests() -> None:
    """`swg-operator render` and `catalogue` output goes to `kubectl apply`: a digest that is
    all digits and one `e` must arrive as a string (the API server refuses a number there)."""
    from swg_operator.commands.catalogue import configmaps_yaml
    from swg_operator.commands.render import to_yaml

    digest = "616868351106e47"
    obj = {"metadata": {"annotations": {"swg.dev/config-digest": digest}}}
    for text in (to_yaml(obj), configmaps_yaml([obj])):
        assert f"'{digest}'" in text, text
