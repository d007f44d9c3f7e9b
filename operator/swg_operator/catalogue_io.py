"""Reading URL category catalogues from files (the I/O half of `swg_operator.catalogue`).

The blacklist directory layout is the one SquidGuard and e2guardian lists use: one directory per
category, holding a `domains` and/or a `urls` file with one entry per line. docs/catalogue.md
describes what is read, what is ignored and how invalid lines are handled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from swg_operator.catalogue import (
    DOMAINS_KEY,
    URLS_KEY,
    Catalogue,
    CatalogueError,
    CatalogueIssue,
    Category,
    ListKind,
    check_category_name,
    parse_description,
    parse_entries,
    read_configmaps,
)

DESCRIPTION_FILE = "description"
# Files of the common layouts that carry no entries (usage notes, SquidGuard databases built
# from the text files): skipped without a warning. Any other file is reported as not imported.
IGNORED_FILES = frozenset({"usage", "domains.db", "urls.db"})


def _read_text(path: Path) -> str:
    # Invalid UTF-8 survives as surrogates, so that only the offending line is reported.
    return path.read_bytes().decode("utf-8", errors="surrogateescape")


def _description(path: Path, category: str) -> tuple[str, list[CatalogueIssue]]:
    for number, line in enumerate(_read_text(path).split("\n"), start=1):
        text = line.strip(" \t\r")
        if text and not text.startswith("#"):
            try:
                return parse_description(text), []
            except ValueError as exc:
                return "", [CatalogueIssue(f"{path}:{number}", str(exc), category)]
    return "", []


def _read_category(directory: Path) -> tuple[Category | None, list[CatalogueIssue]]:
    name = directory.name
    issues: list[CatalogueIssue] = []
    try:
        check_category_name(name)
    except ValueError as exc:
        return None, [CatalogueIssue(str(directory), f"directory name: {exc}")]
    files = {child.name: child for child in directory.iterdir() if child.is_file()}
    if DOMAINS_KEY not in files and URLS_KEY not in files:
        message = "has neither a domains nor a urls file; not a category"
        return None, [CatalogueIssue(str(directory), message, name, "warning")]
    lists: dict[ListKind, list[str]] = {"domains": [], "urls": []}
    for kind in lists:
        if kind in files:
            entries, found = parse_entries(
                _read_text(files[kind]), kind=kind, where=str(files[kind]), category=name
            )
            lists[kind] = entries
            issues += found
    description = ""
    if DESCRIPTION_FILE in files:
        description, found = _description(files[DESCRIPTION_FILE], name)
        issues += found
    for other in sorted(files.keys() - {DOMAINS_KEY, URLS_KEY, DESCRIPTION_FILE}):
        if not other.startswith(".") and other not in IGNORED_FILES:
            issues.append(CatalogueIssue(str(files[other]), "not imported", name, "warning"))
    category = Category.of_canonical(name, lists["domains"], lists["urls"], description)
    return category, issues


def read_blacklist_directory(path: Path) -> tuple[Catalogue, tuple[CatalogueIssue, ...]]:
    """Read a blacklist directory leniently: the catalogue of every valid line, and every issue.

    Invalid lines are left out (and reported as `file:line` errors); directories whose name is
    not a category name are left out (error); directories without a `domains` or `urls` file,
    hidden entries and loose files at the top level are not categories (warning, or silently
    for hidden entries and files such as README).
    """
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "no such directory"
        raise CatalogueError(
            [CatalogueIssue(str(path), f"{what}; give the blacklist directory (one per category)")]
        )
    categories: list[Category] = []
    issues: list[CatalogueIssue] = []
    for child in sorted(path.iterdir()):
        if child.name.startswith(".") or not child.is_dir():
            continue
        category, found = _read_category(child)
        issues += found
        if category is not None:
            categories.append(category)
    return Catalogue.of(categories), tuple(issues)


def load_blacklist_directory(path: Path, *, skip_invalid: bool = False) -> Catalogue:
    """Load a blacklist directory as a catalogue.

    By default any error (an invalid line, an invalid category directory name) rejects the
    whole import with a CatalogueError listing every error as `file:line`. With `skip_invalid`
    the invalid lines and directories are left out instead.
    """
    catalogue, issues = read_blacklist_directory(path)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors and not skip_invalid:
        raise CatalogueError(errors)
    return catalogue


def read_configmap_file(path: Path) -> tuple[Catalogue, tuple[CatalogueIssue, ...]]:
    """Read category ConfigMaps from a YAML file: a `kind: List` (as `kubectl get -o yaml`
    prints) or a stream of documents (as `swg-operator catalogue import` prints)."""
    try:
        documents = [d for d in yaml.safe_load_all(_read_text(path)) if d is not None]
    except yaml.YAMLError as exc:
        raise CatalogueError([CatalogueIssue(str(path), f"is not valid YAML: {exc}")]) from None
    items: list[Any] = []
    for document in documents:
        if isinstance(document, dict) and document.get("kind") in ("List", "ConfigMapList"):
            items += document.get("items") or []
        else:
            items.append(document)
    return read_configmaps(items)
