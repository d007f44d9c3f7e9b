"""What clients can get past and what websites learn, as the rendered Squid configuration says it
(e2e/dataplane/test_exposure.py runs the same output with real traffic)."""

from __future__ import annotations

from typing import Any

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec, parse_spec
from swg_operator.catalogue import Catalogue, Category
from swg_operator.render.dataplane import render_dataplane_files

CATALOGUE = Catalogue.of(
    [
        Category.build("gambling", domains=["casino.test", "poker.test"]),
        Category.build("social_networks", domains=["social.test"]),
    ]
)
SETTINGS = OperatorSettings()


def spec(**overrides: Any) -> SecureWebGatewaySpec:
    raw: dict[str, Any] = {
        "serviceCode": "SWG-0000042",
        "sizing": {"endpoints": 10, "requestsPerSecond": 10},
        "clients": {"allowedCIDRs": ["198.51.100.0/24"]},
    }
    raw.update(overrides)
    return parse_spec(raw)


def squid_conf(tenant: SecureWebGatewaySpec | None = None, **kwargs: Any) -> str:
    files = render_dataplane_files(
        tenant or spec(), catalogue=CATALOGUE, settings=SETTINGS, **kwargs
    )
    return files["squid.conf"]


def http_access(text: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("http_access ")]


def directive(text: str, name: str) -> list[str]:
    return [line.split(" ", 1)[1] for line in text.splitlines() if line.split(" ", 1)[0] == name]


# ------------------------------------------------------------------------------ cache manager
def test_cache_manager_is_denied_before_any_allow() -> None:
    rules = http_access(squid_conf())
    assert rules[0].split()[:2] == ["deny", "manager"]
