"""The catalogue as ConfigMaps in the operator's namespace, and back (docs/catalogue.md).

One or more shards per category, each labelled with the category and its shard number and
annotated with the shard count and a revision digest of the whole category; reading merges the
one complete revision of each category and leaves out, whole, any category with an error.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from swg_operator.catalogue.entries import (
    DOMAINS_KEY,
    URLS_KEY,
    ListKind,
    check_category_name,
    parse_description,
    parse_entries,
)
from swg_operator.catalogue.issues import CatalogueError, CatalogueIssue, show
from swg_operator.catalogue.model import Catalogue, Category

CATEGORY_LABEL: Final = "swg.dev/url-category"
SHARD_LABEL: Final = "swg.dev/url-category-shard"
SHARDS_ANNOTATION: Final = "swg.dev/url-category-shards"
REVISION_ANNOTATION: Final = "swg.dev/url-category-revision"
DESCRIPTION_ANNOTATION: Final = "swg.dev/description"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
MANAGED_BY: Final = "swg-operator"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
COMPONENT: Final = "url-category"

# Data bytes per ConfigMap. Well below the 1 MiB object limit, and small enough that
# client-side `kubectl apply` (which copies the object into a 256 KiB annotation) works too.
DEFAULT_SHARD_BYTES: Final = 192 * 1024
MIN_SHARD_BYTES: Final = 4096
MAX_SHARD_BYTES: Final = 900 * 1024


def configmap_name(category: str, shard: int) -> str:
    """`url-category-<name>-<shard>`; '_' (not allowed in object names) becomes '-' plus a
    digest of the real name, so `a_b` and `a-b` never share objects."""
    base = category.replace("_", "-")
    if "_" in category:
        base += "-" + hashlib.sha256(category.encode()).hexdigest()[:6]
    return f"url-category-{base}-{shard}"


def _revision(category: Category) -> str:
    digest = hashlib.sha256()
    for part in (category.name, category.description, *category.domains, "", *category.urls):
        digest.update(part.encode() + b"\n")
    return digest.hexdigest()[:16]


def _shards(category: Category, budget: int) -> list[tuple[list[str], list[str]]]:
    shards: list[tuple[list[str], list[str]]] = [([], [])]
    used = 0
    for index, entries in ((0, category.domains), (1, category.urls)):
        for entry in entries:
            size = len(entry) + 1
            if used + size > budget and used:
                shards.append(([], []))
                used = 0
            shards[-1][index].append(entry)
            used += size
    return shards


def _lines(entries: list[str]) -> str:
    return "".join(f"{entry}\n" for entry in entries)


def catalogue_to_configmaps(
    catalogue: Catalogue, *, namespace: str, max_shard_bytes: int = DEFAULT_SHARD_BYTES
) -> list[dict[str, Any]]:
    """The ConfigMaps that hold `catalogue` in `namespace`: per category, shards of at most
    `max_shard_bytes` of data, each labelled with the category and its shard number and
    annotated with the shard count and a revision digest of the whole category."""
    if not MIN_SHARD_BYTES <= max_shard_bytes <= MAX_SHARD_BYTES:
        raise ValueError(f"max_shard_bytes must be in {MIN_SHARD_BYTES}..{MAX_SHARD_BYTES}")
    objects: list[dict[str, Any]] = []
    for category in catalogue.values():
        shards = _shards(category, max_shard_bytes)
        revision = _revision(category)
        for number, (domains, urls) in enumerate(shards):
            objects.append(
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {
                        "name": configmap_name(category.name, number),
                        "namespace": namespace,
                        "labels": {
                            MANAGED_BY_LABEL: MANAGED_BY,
                            COMPONENT_LABEL: COMPONENT,
                            CATEGORY_LABEL: category.name,
                            SHARD_LABEL: str(number),
                        },
                        "annotations": {
                            DESCRIPTION_ANNOTATION: category.description,
                            SHARDS_ANNOTATION: str(len(shards)),
                            REVISION_ANNOTATION: revision,
                        },
                    },
                    "data": {DOMAINS_KEY: _lines(domains), URLS_KEY: _lines(urls)},
                }
            )
    return objects


@dataclass(eq=False)
class _Shard:
    where: str
    number: int
    count: int
    revision: str
    item: Mapping[str, Any]


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _shard_of(item: object, index: int) -> tuple[str | None, _Shard | CatalogueIssue]:
    """(category, shard) of one listed ConfigMap, or the issue that makes it unusable."""
    if not isinstance(item, Mapping):
        return None, CatalogueIssue(f"item {index}", "is not an object")
    metadata = _mapping(item.get("metadata"))
    where = f"ConfigMap {metadata.get('namespace', '')}/{metadata.get('name', f'#{index}')}"
    labels = _mapping(metadata.get("labels"))
    annotations = _mapping(metadata.get("annotations"))
    name = labels.get(CATEGORY_LABEL)
    if item.get("kind", "ConfigMap") != "ConfigMap" or not isinstance(name, str):
        return None, CatalogueIssue(where, f"is not a ConfigMap labelled {CATEGORY_LABEL}")
    try:
        check_category_name(name)
    except ValueError as exc:
        return None, CatalogueIssue(where, f"label {CATEGORY_LABEL}: {exc}")
    shard = str(labels.get(SHARD_LABEL, "0"))
    count = str(annotations.get(SHARDS_ANNOTATION, "1"))
    if not (shard.isdigit() and count.isdigit() and int(shard) < int(count) <= 10_000):
        return name, CatalogueIssue(
            where,
            f"label {SHARD_LABEL}={show(shard)} and annotation {SHARDS_ANNOTATION}="
            f"{show(count)} do not name a shard n of N",
            category=name,
        )
    revision = str(annotations.get(REVISION_ANNOTATION, ""))
    return name, _Shard(where, int(shard), int(count), revision, item)


def _choose_revision(
    name: str, shards: list[_Shard]
) -> tuple[list[_Shard] | None, list[CatalogueIssue]]:
    """The one complete set of shards (same revision, shards 0..N-1 once each)."""
    by_revision: dict[tuple[str, int], list[_Shard]] = defaultdict(list)
    for shard in shards:
        by_revision[(shard.revision, shard.count)].append(shard)
    complete = [
        sorted(group, key=lambda s: s.number)
        for (_, count), group in by_revision.items()
        if sorted(s.number for s in group) == list(range(count))
    ]
    if len(complete) == 1:
        chosen = complete[0]
        stale = [
            CatalogueIssue(
                s.where, "is a stale shard of another revision; ignored", name, "warning"
            )
            for s in shards
            if all(s is not c for c in chosen)
        ]
        return chosen, stale
    where = ", ".join(sorted(s.where for s in shards))
    if complete:
        message = "has more than one complete set of shards (different revisions)"
    else:
        found = ", ".join(
            f"revision {rev or '(none)'}: shards {sorted(s.number for s in group)} of {count}"
            for (rev, count), group in sorted(by_revision.items())
        )
        message = f"is incomplete or mixed ({found})"
    return None, [CatalogueIssue(where, f"category {name} {message}", name)]


def read_configmaps(
    items: Iterable[object],
) -> tuple[Catalogue, tuple[CatalogueIssue, ...]]:
    """Merge listed category ConfigMaps into a catalogue, leniently.

    A category with any error (an invalid line, a missing or mixed shard) is left out whole,
    never partially, so a tenant that blocks it fails visibly instead of blocking less.
    Returns the catalogue of good categories and every issue (errors and warnings).
    """
    issues: list[CatalogueIssue] = []
    shards_by_category: dict[str, list[_Shard]] = defaultdict(list)
    broken: set[str] = set()
    for index, item in enumerate(items):
        name, shard = _shard_of(item, index)
        if isinstance(shard, CatalogueIssue):
            issues.append(shard)
            if name is not None:
                broken.add(name)
            continue
        assert name is not None
        shards_by_category[name].append(shard)

    categories: list[Category] = []
    for name in sorted(shards_by_category.keys() - broken):
        chosen, found = _choose_revision(name, shards_by_category[name])
        issues += found
        if chosen is None:
            continue
        domains: list[str] = []
        urls: list[str] = []
        errors: list[CatalogueIssue] = []
        for shard in chosen:
            data = _mapping(shard.item.get("data"))
            for key in sorted(data.keys() - {DOMAINS_KEY, URLS_KEY}):
                message = f"data key {show(str(key))} ignored"
                issues.append(CatalogueIssue(shard.where, message, name, "warning"))
            lists: tuple[tuple[ListKind, list[str]], ...] = (("domains", domains), ("urls", urls))
            for kind, target in lists:
                text = data.get(kind, "")
                if not isinstance(text, str):
                    errors.append(CatalogueIssue(shard.where, f"data.{kind} is not text", name))
                    continue
                entries, found = parse_entries(
                    text, kind=kind, where=f"{shard.where} data.{kind}", category=name
                )
                target += entries
                errors += found
        annotations = _mapping(_mapping(chosen[0].item.get("metadata")).get("annotations"))
        description = str(annotations.get(DESCRIPTION_ANNOTATION, ""))
        try:
            description = parse_description(description)
        except ValueError as exc:
            errors.append(CatalogueIssue(chosen[0].where, str(exc), name))
        issues += errors
        if not errors:
            categories.append(Category.of_canonical(name, domains, urls, description))
    return Catalogue.of(categories), tuple(issues)


def catalogue_from_configmaps(items: Iterable[object]) -> Catalogue:
    """Merge listed category ConfigMaps (e.g. the `items` of a list by label `swg.dev/url-
    category`) into a catalogue. Strict: raises CatalogueError listing every error."""
    catalogue, issues = read_configmaps(items)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors:
        raise CatalogueError(errors)
    return catalogue
