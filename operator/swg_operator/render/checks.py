"""Judgements on a valid spec that need the catalogue or the operator's settings."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from typing import Any

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.catalogue import Catalogue
from swg_operator.render.errors import SANDBOX_UNREACHABLE, UNKNOWN_CATEGORY, RenderError
from swg_operator.render.network import ALWAYS_EXCLUDED

_ICAP_HOST = re.compile(r"^icaps?://(?P<host>[^:/]+)")


def _list(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _object(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def wire_category_references(spec: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(field path, category name) of every category a spec names, read from its wire form
    (camelCase keys, as stored): the one collector, for a parsed spec
    (`category_references`) and for one that may not parse (the operator's index of tenants by
    category)."""
    filtering = _object(spec.get("urlFiltering"))
    for i, name in enumerate(_list(filtering.get("blockedCategories"))):
        yield f"spec.urlFiltering.blockedCategories[{i}]", str(name)
    for p, policy in enumerate(_list(filtering.get("policies"))):
        for i, name in enumerate(_list(_object(policy).get("blockedCategories"))):
            yield f"spec.urlFiltering.policies[{p}].blockedCategories[{i}]", str(name)
    inspection = _object(_object(spec.get("options")).get("httpsInspection"))
    for i, name in enumerate(_list(_object(inspection.get("doNotInspect")).get("categories"))):
        yield f"spec.options.httpsInspection.doNotInspect.categories[{i}]", str(name)


def category_references(spec: SecureWebGatewaySpec) -> Iterator[tuple[str, str]]:
    """(field path, category name) of every category the spec names."""
    return wire_category_references(spec.model_dump(mode="json", by_alias=True))


def check_categories(spec: SecureWebGatewaySpec, catalogue: Catalogue) -> None:
    problems = tuple(
        f"{path}: category {name!r} is not in the URL catalogue"
        for path, name in category_references(spec)
        if name not in catalogue
    )
    if problems:
        raise RenderError(UNKNOWN_CATEGORY, problems)


def check_sandbox(spec: SecureWebGatewaySpec, settings: OperatorSettings) -> None:
    """An ICAP sandbox named by an address inside the cluster's networks (or a link-local or
    loopback one) is unreachable: tenant egress never enters them. One named by host name is
    reached through the internet egress rule."""
    sandbox = spec.options.sandbox
    if not sandbox.enabled or sandbox.icap_url is None:
        return
    match = _ICAP_HOST.match(sandbox.icap_url)
    if match is None:
        return
    try:
        address = ipaddress.ip_address(match["host"])
    except ValueError:
        return
    for cidr in (*settings.cluster_cidrs, *settings.api_server_cidrs, *ALWAYS_EXCLUDED):
        network = ipaddress.ip_network(cidr, strict=False)
        if address.version == network.version and address in network:
            raise RenderError(
                SANDBOX_UNREACHABLE,
                (
                    f"spec.options.sandbox.icapURL: {address} is inside {network}, which tenant "
                    "traffic never reaches; name an external analysis service",
                ),
            )


def acl_entry_count(spec: SecureWebGatewaySpec, catalogue: Catalogue) -> int:
    """Entries of every URL-filter list the proxy loads (the sizing model's memory input):
    each category counted once, plus the spec's own lists."""
    count = catalogue.entry_count(
        name for _, name in category_references(spec) if name in catalogue
    )
    filtering = spec.url_filtering
    lists = [filtering.allow.domains, filtering.deny.domains, filtering.deny.url_regex]
    for policy in filtering.policies:
        lists += [policy.allow.domains, policy.deny.domains, policy.deny.url_regex]
    options = spec.options
    lists += [
        options.bypass.domains,
        options.bypass.cidrs,
        options.https_inspection.do_not_inspect.domains,
    ]
    return count + sum(len(entries) for entries in lists)


def stopped_service_spec(spec: SecureWebGatewaySpec, catalogue: Catalogue) -> SecureWebGatewaySpec:
    """The spec a cancelled tenant is rendered from: categories the catalogue no longer has and
    the sandbox are dropped, so that a catalogue change after the cancellation can never keep
    the operator from stopping the traffic and keeping the logs exportable. The proxy runs no
    replica then, so its filter configuration serves nobody."""

    def known(names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name for name in names if name in catalogue)

    filtering = spec.url_filtering
    options = spec.options
    inspection = options.https_inspection
    return spec.model_copy(
        update={
            "url_filtering": filtering.model_copy(
                update={
                    "blocked_categories": known(filtering.blocked_categories),
                    "policies": tuple(
                        p.model_copy(update={"blocked_categories": known(p.blocked_categories)})
                        for p in filtering.policies
                    ),
                }
            ),
            "options": options.model_copy(
                update={
                    "sandbox": type(options.sandbox)(),
                    "https_inspection": inspection.model_copy(
                        update={
                            "do_not_inspect": inspection.do_not_inspect.model_copy(
                                update={"categories": known(inspection.do_not_inspect.categories)}
                            )
                        }
                    ),
                }
            ),
        }
    )
