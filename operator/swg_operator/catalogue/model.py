"""The catalogue's model: categories of canonical entries, by name."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from swg_operator.catalogue.entries import (
    DOMAINS_KEY,
    URLS_KEY,
    check_category_name,
    parse_description,
    parse_domain,
    parse_url,
)
from swg_operator.catalogue.issues import show


@dataclass(frozen=True)
class Category:
    """One category: canonical, sorted, de-duplicated domains and URLs."""

    name: str
    domains: tuple[str, ...] = ()
    urls: tuple[str, ...] = ()
    description: str = ""

    def __post_init__(self) -> None:
        check_category_name(self.name)
        if parse_description(self.description) != self.description:
            raise ValueError(f"category {self.name}: description is not in canonical form")
        for kind, entries, parse in (
            (DOMAINS_KEY, self.domains, parse_domain),
            (URLS_KEY, self.urls, parse_url),
        ):
            if list(entries) != sorted(set(entries)):
                raise ValueError(f"category {self.name}: {kind} are not sorted and unique")
            for entry in entries:
                if parse(entry) != entry:
                    raise ValueError(f"category {self.name}: {show(entry)} is not canonical")

    @classmethod
    def build(
        cls,
        name: str,
        *,
        domains: Iterable[str] = (),
        urls: Iterable[str] = (),
        description: str = "",
    ) -> Category:
        """Normalise raw entries (see parse_domain / parse_url) into a Category."""
        return cls(
            name=name,
            domains=tuple(sorted({parse_domain(d) for d in domains})),
            urls=tuple(sorted({parse_url(u) for u in urls})),
            description=parse_description(description),
        )

    @classmethod
    def of_canonical(
        cls, name: str, domains: Iterable[str], urls: Iterable[str], description: str = ""
    ) -> Category:
        """A Category from entries already in canonical form (as parse_entries returns them),
        de-duplicated and sorted here; validated once more by the constructor."""
        return cls(name, tuple(sorted(set(domains))), tuple(sorted(set(urls))), description)

    def __len__(self) -> int:
        return len(self.domains) + len(self.urls)


@dataclass(frozen=True)
class Catalogue(Mapping[str, Category]):
    """Category name -> Category."""

    categories: Mapping[str, Category] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, category in self.categories.items():
            if name != category.name:
                raise ValueError(f"catalogue key {name!r} names category {category.name!r}")
        object.__setattr__(self, "categories", dict(sorted(self.categories.items())))

    @classmethod
    def of(cls, categories: Iterable[Category]) -> Catalogue:
        by_name: dict[str, Category] = {}
        for category in categories:
            if category.name in by_name:
                raise ValueError(f"category {category.name!r} is defined twice")
            by_name[category.name] = category
        return cls(by_name)

    def __getitem__(self, name: str) -> Category:
        return self.categories[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.categories)

    def __len__(self) -> int:
        return len(self.categories)

    def __hash__(self) -> int:
        return hash(tuple(self.categories.values()))

    def names(self) -> tuple[str, ...]:
        return tuple(self.categories)

    def entry_count(self, names: Iterable[str]) -> int:
        """Domains and URLs of the named categories (the sizing model's `acl_entries`)."""
        return sum(len(self.categories[name]) for name in set(names))
