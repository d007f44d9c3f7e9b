"""ConfigMaps carrying the data-plane config files, and the digest that rolls pods on a change.

`render_dataplane_files` returns each workload's files (component -> file name -> text). A
workload's files go into one ConfigMap, or several when they exceed what one ConfigMap holds
(large URL lists); the pods mount them all into one directory through a projected volume.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from swg_operator import naming
from swg_operator.naming import Component
from swg_operator.render.access_tls import generates_access_certificate
from swg_operator.render.context import Tenant, generates_inspection_ca, manifest

# The key of the published inspection CA certificate (the name clients and tools expect).
CA_CERTIFICATE_KEY: Final = "ca.crt"

# A ConfigMap's data is limited to 1 MiB; keep clear of it for keys and metadata.
CONFIG_MAP_BUDGET_BYTES: Final = 900 * 1024
_KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")


class ConfigTooLargeError(ValueError):
    """One config file is larger than a ConfigMap can hold."""


class ConfigKeyError(ValueError):
    """A config file name is not a valid ConfigMap key."""


def check_config_keys(files: Mapping[str, str]) -> None:
    """Every file name must be a valid ConfigMap key."""
    for file_name in files:
        if not _KEY.match(file_name) or file_name in (".", ".."):
            raise ConfigKeyError(f"config file {file_name!r} is not a valid ConfigMap key")


def config_digest(files: Mapping[str, str], *, references: Iterable[str] = ()) -> str:
    """Digest of a workload's config text and the names of the other objects it mounts."""
    document = json.dumps(
        {"files": dict(sorted(files.items())), "references": sorted(references)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(document.encode("utf-8")).hexdigest()[:16]


def _chunks(files: Mapping[str, str]) -> list[dict[str, str]]:
    """Pack files (in name order) into as few ConfigMaps as the size budget allows."""
    chunks: list[dict[str, str]] = [{}]
    used = 0
    for file_name in sorted(files):
        size = len(file_name) + len(files[file_name].encode("utf-8"))
        if size > CONFIG_MAP_BUDGET_BYTES:
            raise ConfigTooLargeError(
                f"config file {file_name!r} is {size} bytes; a ConfigMap holds at most "
                f"{CONFIG_MAP_BUDGET_BYTES}: move large URL lists into fewer categories"
            )
        if chunks[-1] and used + size > CONFIG_MAP_BUDGET_BYTES:
            chunks.append({})
            used = 0
        chunks[-1][file_name] = files[file_name]
        used += size
    return chunks


def chunk_name(component: Component, index: int) -> str:
    base = naming.config_map_name(component)
    return base if index == 0 else f"{base}-{index + 1}"


@dataclass(frozen=True)
class WorkloadConfig:
    """The ConfigMaps of one workload and the digest of their content."""

    component: Component
    config_maps: tuple[dict[str, Any], ...]
    files: Mapping[str, str]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(str(cm["metadata"]["name"]) for cm in self.config_maps)


def workload_config(
    tenant: Tenant, component: Component, files: Mapping[str, str]
) -> WorkloadConfig:
    check_config_keys(files)
    config_maps = tuple(
        manifest(
            "v1",
            "ConfigMap",
            tenant.metadata(chunk_name(component, index), component=component),
            data=chunk,
        )
        for index, chunk in enumerate(_chunks(files))
    )
    return WorkloadConfig(
        component=component, config_maps=config_maps, files=dict(sorted(files.items()))
    )


def inspection_ca_certificate(tenant: Tenant) -> dict[str, Any] | None:
    """The ConfigMap publishing the generated HTTPS-inspection CA's certificate (public: no key)
    for the customer's admins to install on their clients; None when the spec names its own CA,
    inspection is off, or the certificate is not known (the operator passes it in: the renderer
    never generates or reads key material)."""
    if not generates_inspection_ca(tenant.spec) or tenant.inspection_ca_certificate is None:
        return None
    return manifest(
        "v1",
        "ConfigMap",
        tenant.metadata(naming.inspection_ca_certificate_name(), component=Component.PROXY),
        data={CA_CERTIFICATE_KEY: tenant.inspection_ca_certificate},
    )


ACCESS_CERTIFICATE_KEY: Final = "tls.crt"


def access_tls_certificate(tenant: Tenant) -> dict[str, Any] | None:
    """The ConfigMap publishing the TLS listener's generated certificate (public: no key) for
    the customer's admins to give to their clients; None when the spec names its own Secret,
    the listener is off, or the certificate is not known (the operator passes it in)."""
    if not generates_access_certificate(tenant.spec) or tenant.access_certificate is None:
        return None
    return manifest(
        "v1",
        "ConfigMap",
        tenant.metadata(naming.access_tls_certificate_name(), component=Component.PROXY),
        data={ACCESS_CERTIFICATE_KEY: tenant.access_certificate},
    )
