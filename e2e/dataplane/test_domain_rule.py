"""The domain rule, with real Squid: a domain entry matches the domain itself and every
subdomain, and nothing else; a leading dot spells the same entry (api.types, docs/api.md,
docs/catalogue.md).

Runs exactly what `swg-operator render` produces for testdata/tenant/tenant-domains.yaml: deny
`blocked.test` and `.dotted.test` and `my_host.under.test`, allow `ok.blocked.test`, block the
category gambling (the catalogue lists `casino.test`). Squid alone, HTTPS inspection off, so
HTTPS meets the same list files by the TLS server name. Every name resolves to the test origin.
"""

from __future__ import annotations

import pytest

from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.stack import DataplaneStack

pytestmark = pytest.mark.dataplane

TENANT = TENANT_DATA / "tenant-domains.yaml"
SETTINGS = TENANT_DATA / "settings-exposure.yaml"  # the origin's loopback addresses allowed

BLOCKED = (
    "blocked.test",  # the entry's own domain
    "www.blocked.test",  # a subdomain
    "a.b.blocked.test",  # a subdomain of a subdomain
    "dotted.test",  # `.dotted.test`: the leading dot also covers the domain itself
    "www.dotted.test",
    "my_host.under.test",
    "deep.my_host.under.test",
    "casino.test",  # a category entry follows the same rule
    "www.casino.test",
    "other.blocked.test",  # next to the allowed subdomain, still denied
)
SERVED = (
    "xblocked.test",  # ends like a denied domain but is another domain
    "blocked.test.example",  # starts like a denied domain
    "notdotted.test",
    "under.test",  # the parent of a denied domain
    "notcasino.test",
    "ok.blocked.test",  # the allow list comes first, with the same rule
    "www.ok.blocked.test",
)


@pytest.fixture(scope="module")
def domains(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    return start_dataplane(
        render_tenant(TENANT, settings=SETTINGS),
        label="domains",
        names=(*BLOCKED, *SERVED),
        daemons=("squid",),
    )


def test_the_rendered_lists_spell_every_entry_with_a_leading_dot(domains: DataplaneStack) -> None:
    lists = {p.name: p.read_text() for p in domains.conf.glob("*.list")}
    assert lists["tenant-deny.domains.0.list"] == (
        ".blocked.test\n.dotted.test\n.my_host.under.test\n"
    )
    assert lists["tenant-allow.domains.0.list"] == ".ok.blocked.test\n"


@pytest.mark.parametrize("host", BLOCKED)
def test_http_to_the_domain_and_its_subdomains_is_blocked(
    domains: DataplaneStack, host: str
) -> None:
    response = domains.request(f"http://{host}/files/hello.txt")
    assert response.status == 403, (host, response.status, response.error)
    assert "Access blocked by your organisation's web policy" in response.text


@pytest.mark.parametrize("host", SERVED)
def test_http_to_other_domains_is_served(domains: DataplaneStack, host: str) -> None:
    response = domains.request(f"http://{host}/hello")
    assert response.status == 200, (host, response.status, response.error)
    assert response.text == f"origin {host} /hello\n"


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("www.blocked.test", False),
        ("dotted.test", False),
        ("xblocked.test", True),
        ("www.ok.blocked.test", True),
    ],
)
def test_https_follows_the_same_rule_by_server_name(
    domains: DataplaneStack, host: str, served: bool
) -> None:
    response = domains.request(f"https://{host}/hello", cacert=domains.pki.origin_ca_cert)
    if served:
        assert response.status == 200, (host, response.error)
        assert response.text == f"origin {host} /hello\n"
    else:
        assert response.status != 200, host
        assert response.body == b"", host
