"""The benchmark's tenants, rendered by the operator's own renderer.

Every Squid, c-icap and clamd configuration the benchmark runs is what `render_tenant` produces
for a SecureWebGateway spec and a URL catalogue, so the figures are those of what the operator
ships. The catalogue is generated: one category of N distinct domains under `.test`; the
benchmark requests `bench.test`, which is in none, so every request walks the whole ACL list
(the common case: most traffic is allowed).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.catalogue import Catalogue, Category
from swg_operator.render import render_tenant
from swg_operator.sizing_io import load_capacity

REPO = Path(__file__).resolve().parents[2]
SIGNATURES = tuple(sorted((REPO / "e2e/dataplane/testdata/tenant/signatures").iterdir()))
BENCH_HOST = "bench.test"
BLOCKED_CATEGORY = "bench-blocked"
# Squid may reach the benchmark origin (127.0.0.2) and nothing else on loopback.
SETTINGS = OperatorSettings(test_allowed_loopback=("127.0.0.2/32",))
CLIENT_CIDRS = ["127.0.0.0/25"]  # wrk connects from 127.0.0.1


def blocked_domain(index: int) -> str:
    """The index-th generated domain: a 12-hex-digit label (spread like real names) under .test."""
    label = hashlib.blake2b(index.to_bytes(4, "big"), digest_size=6).hexdigest()
    return f"{label}.test"


def generated_catalogue(domains: int) -> Catalogue:
    if domains == 0:
        return Catalogue()
    names = (blocked_domain(i) for i in range(domains))
    return Catalogue.of([Category.of_canonical(BLOCKED_CATEGORY, names, ())])


def _spec(*, domains: int, antivirus: bool) -> SecureWebGatewaySpec:
    document: dict[str, Any] = {
        "serviceCode": "SWG-BENCH-0001",
        "sizing": {"endpoints": 100, "requestsPerSecond": 1000},
        "clients": {"allowedCIDRs": CLIENT_CIDRS},
        "antivirus": {"enabled": False},
        "options": {"httpsInspection": {"enabled": False}},
    }
    if domains:
        document["urlFiltering"] = {"blockedCategories": [BLOCKED_CATEGORY]}
    if antivirus:
        document["antivirus"] = {
            "enabled": True,
            "failOpen": False,
            "customSignatures": {"name": "bench-signatures"},
        }
    return SecureWebGatewaySpec.model_validate(document)


@dataclass(frozen=True)
class RenderedTenant:
    name: str
    conf_dir: Path
    acl_entries: int
    antivirus: bool
    spec: dict[str, Any]
    files: int
    config_bytes: int


def render(name: str, directory: Path, *, domains: int, antivirus: bool) -> RenderedTenant:
    """Render the tenant's data-plane files into `directory` (what its ConfigMaps would hold)."""
    spec = _spec(domains=domains, antivirus=antivirus)
    catalogue = generated_catalogue(domains)
    manifests = render_tenant(
        f"bench-{name}", spec, catalogue=catalogue, settings=SETTINGS, capacity=load_capacity()
    )
    directory.mkdir(parents=True, exist_ok=True)
    total = 0
    for file_name, text in manifests.config_files.items():
        (directory / file_name).write_text(text, encoding="utf-8")
        total += len(text.encode())
    return RenderedTenant(
        name=name,
        conf_dir=directory,
        acl_entries=catalogue.entry_count(catalogue.names()),
        antivirus=antivirus,
        spec=spec.model_dump(mode="json", by_alias=True, exclude_defaults=True),
        files=len(manifests.config_files),
        config_bytes=total,
    )
