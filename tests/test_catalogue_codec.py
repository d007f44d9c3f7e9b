"""The catalogue as ConfigMaps (catalogue.codec): sharding, merging, stale and missing shards,
errors naming the object, the key and the line."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from swg_operator.catalogue import (
    CATEGORY_LABEL,
    DEFAULT_SHARD_BYTES,
    Catalogue,
    CatalogueError,
    Category,
    catalogue_from_configmaps,
    catalogue_to_configmaps,
    configmap_name,
    read_configmaps,
)
from swg_operator.catalogue.codec import REVISION_ANNOTATION, SHARD_LABEL, SHARDS_ANNOTATION
from swg_operator.catalogue_io import (
    load_blacklist_directory,
)
from swg_operator.commands.catalogue import configmaps_yaml

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "catalogue"

# ------------------------------------------------------------------------------------------------
# ConfigMaps
# ------------------------------------------------------------------------------------------------


def test_round_trip_directory_configmaps_catalogue() -> None:
    catalogue = load_blacklist_directory(SAMPLE)
    objects = catalogue_to_configmaps(catalogue, namespace="swg-system")
    assert [o["metadata"]["name"] for o in objects] == [
        "url-category-adult-0",
        "url-category-gambling-0",
        "url-category-malware-0",
        "url-category-phishing-0",
        "url-category-social-networks-0",
    ]
    adult = objects[0]
    assert adult["metadata"]["namespace"] == "swg-system"
    assert adult["metadata"]["labels"] == {
        "app.kubernetes.io/managed-by": "swg-operator",
        "app.kubernetes.io/component": "url-category",
        "swg.dev/url-category": "adult",
        "swg.dev/url-category-shard": "0",
    }
    assert adult["metadata"]["annotations"]["swg.dev/description"] == (
        "Sites with sexually explicit content"
    )
    assert adult["data"]["domains"].splitlines() == list(catalogue["adult"].domains)
    assert catalogue_from_configmaps(objects) == catalogue
    # The same through the YAML the import command prints.
    documents = list(yaml.safe_load_all(configmaps_yaml(objects)))
    assert documents == objects
    assert catalogue_from_configmaps(documents) == catalogue
    # Deterministic: the same catalogue gives byte-identical objects.
    assert catalogue_to_configmaps(catalogue, namespace="swg-system") == objects


def test_a_large_category_is_sharded_and_merged_back() -> None:
    domains = [f"host-{i:06d}.bulk-{i % 97}.test" for i in range(200_000)]
    urls = [f"bulk.test/page/{i}" for i in range(5_000)]
    category = Category.build("bulk", domains=domains, urls=urls, description="Generated")
    catalogue = Catalogue.of([category, Category.build("small", domains=["a.test"])])
    objects = catalogue_to_configmaps(catalogue, namespace="swg-system")
    shards = [o for o in objects if o["metadata"]["labels"][CATEGORY_LABEL] == "bulk"]
    assert len(shards) > 20
    revisions = {o["metadata"]["annotations"][REVISION_ANNOTATION] for o in shards}
    assert len(revisions) == 1
    for number, shard in enumerate(shards):
        metadata = shard["metadata"]
        assert metadata["name"] == f"url-category-bulk-{number}"
        assert metadata["labels"][SHARD_LABEL] == str(number)
        assert metadata["annotations"][SHARDS_ANNOTATION] == str(len(shards))
        data_bytes = sum(len(v.encode()) for v in shard["data"].values())
        assert data_bytes <= DEFAULT_SHARD_BYTES
        # Far below the 1 MiB object limit, and small enough for client-side `kubectl apply`,
        # which copies the object into a 256 KiB annotation.
        assert len(json.dumps(shard).encode()) < 256 * 1024 - 4096
    # Merged back in any order.
    assert catalogue_from_configmaps(list(reversed(objects))) == catalogue
    assert catalogue.entry_count(["bulk", "small", "bulk"]) == 205_001


def _stamp(objects: list[dict[str, Any]], **annotations: str) -> None:
    for o in objects:
        o["metadata"]["annotations"].update(annotations)


def test_missing_mixed_and_stale_shards() -> None:
    big = Category.build("big", domains=[f"h{i}.big.test" for i in range(3000)])
    small = Category.build("small", domains=["a.test"])
    catalogue = Catalogue.of([big, small])
    objects = catalogue_to_configmaps(catalogue, namespace="ns", max_shard_bytes=8192)
    big_shards = [o for o in objects if o["metadata"]["labels"][CATEGORY_LABEL] == "big"]
    assert len(big_shards) >= 3

    # A missing shard: the category is left out (never partially read), the others stay.
    without_one = [o for o in objects if o is not big_shards[1]]
    partial, issues = read_configmaps(without_one)
    assert partial.names() == ("small",)
    assert any("category big is incomplete" in issue.message for issue in issues)
    with pytest.raises(CatalogueError, match="category big is incomplete"):
        catalogue_from_configmaps(without_one)

    # A newer revision with fewer shards, leaving an old shard behind: the complete revision
    # wins and the stale shard is a warning.
    newer = catalogue_to_configmaps(
        Catalogue.of([Category.build("big", domains=["only.test"]), small]), namespace="ns"
    )
    updated = [*newer, big_shards[-1]]
    merged, issues = read_configmaps(updated)
    assert merged["big"].domains == ("only.test",)
    assert [issue.severity for issue in issues] == ["warning"]
    assert "stale shard" in issues[0].message

    # Halfway through an update (shard 0 new, the rest old): neither revision is complete.
    rewritten = Category.build("big", domains=[f"n{i}.big.test" for i in range(3000)])
    newer = catalogue_to_configmaps(Catalogue.of([rewritten]), namespace="ns", max_shard_bytes=8192)
    assert len(newer) >= 3
    mixed = [newer[0], *big_shards[1:]]
    with pytest.raises(CatalogueError, match="incomplete or mixed"):
        catalogue_from_configmaps(mixed)


def test_configmap_errors_name_the_object_key_and_line() -> None:
    objects = catalogue_to_configmaps(
        Catalogue.of([Category.build("adult", domains=["a.test", "b.test"])]), namespace="ns"
    )
    objects[0]["data"]["domains"] = "a.test\n# a comment\nb.test\nevil.test include\n"
    objects[0]["data"]["extra"] = "ignored"
    with pytest.raises(CatalogueError) as raised:
        catalogue_from_configmaps(objects)
    (issue,) = raised.value.issues
    assert issue.where == "ConfigMap ns/url-category-adult-0 data.domains:4"
    assert issue.category == "adult"
    _, issues = read_configmaps(objects)
    assert any(i.severity == "warning" and "extra" in i.message for i in issues)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda o: o["metadata"]["labels"].pop(CATEGORY_LABEL), "not a ConfigMap labelled"),
        (lambda o: o["metadata"]["labels"].update({CATEGORY_LABEL: "Bad!"}), "category name"),
        (lambda o: o["metadata"]["labels"].update({SHARD_LABEL: "x"}), "shard n of N"),
        (lambda o: o["metadata"]["annotations"].update({SHARDS_ANNOTATION: "0"}), "n of N"),
        (lambda o: o["data"].update(domains=["a.test"]), "is not text"),
        (
            lambda o: o["metadata"]["annotations"].update({"swg.dev/description": "a\nb"}),
            "control character",
        ),
    ],
)
def test_malformed_configmaps_are_refused(mutate: Any, message: str) -> None:
    objects = catalogue_to_configmaps(
        Catalogue.of([Category.build("adult", domains=["a.test"])]), namespace="ns"
    )
    mutate(objects[0])
    with pytest.raises(CatalogueError, match=message):
        catalogue_from_configmaps(objects)


def test_underscore_names_get_distinct_object_names() -> None:
    assert configmap_name("social-networks", 0) == "url-category-social-networks-0"
    underscored = configmap_name("social_networks", 0)
    assert re.fullmatch(r"url-category-social-networks-[0-9a-f]{6}-0", underscored)
    catalogue = Catalogue.of(
        [Category.build("a_b", domains=["x.test"]), Category.build("a-b", domains=["y.test"])]
    )
    objects = catalogue_to_configmaps(catalogue, namespace="ns")
    assert len({o["metadata"]["name"] for o in objects}) == 2
    assert catalogue_from_configmaps(objects) == catalogue


def test_shard_size_bounds() -> None:
    with pytest.raises(ValueError, match="max_shard_bytes"):
        catalogue_to_configmaps(Catalogue(), namespace="ns", max_shard_bytes=100)
