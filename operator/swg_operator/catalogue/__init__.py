"""The URL category catalogue: named lists of domains and URLs that tenants block by name.

The platform team maintains it as labelled ConfigMaps in the operator's namespace, one or more
shards per category (docs/catalogue.md). Pure, in three parts:

* `catalogue.entries`: validation of entries, on the API's own domain grammar
  (`api.types.check_domain_name`); a domain entry means the domain and every subdomain, as
  everywhere in the API;
* `catalogue.model`: `Category` and `Catalogue`, canonical entries by name;
* `catalogue.codec`: the catalogue as ConfigMaps and back.

Reading files lives in `catalogue_io`; writing Squid list lines in `render.squid_acls`.
"""

from __future__ import annotations

from swg_operator.catalogue.codec import (
    CATEGORY_LABEL,
    DEFAULT_SHARD_BYTES,
    catalogue_from_configmaps,
    catalogue_to_configmaps,
    configmap_name,
    read_configmaps,
)
from swg_operator.catalogue.entries import (
    DOMAINS_KEY,
    URLS_KEY,
    ListKind,
    check_category_name,
    parse_description,
    parse_domain,
    parse_entries,
    parse_url,
)
from swg_operator.catalogue.issues import CatalogueError, CatalogueIssue
from swg_operator.catalogue.model import Catalogue, Category

__all__ = [
    "CATEGORY_LABEL",
    "DEFAULT_SHARD_BYTES",
    "DOMAINS_KEY",
    "URLS_KEY",
    "Catalogue",
    "CatalogueError",
    "CatalogueIssue",
    "Category",
    "ListKind",
    "catalogue_from_configmaps",
    "catalogue_to_configmaps",
    "check_category_name",
    "configmap_name",
    "parse_description",
    "parse_domain",
    "parse_entries",
    "parse_url",
    "read_configmaps",
]
