"""freshclam.conf: where the anti-virus pod's freshclam sidecar downloads the public ClamAV
database from, from a `FreshclamConfig` (render.signatures decides when there is one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from swg_operator.render.clamd import CLAMAV_DB_DIR
from swg_operator.render.config_text import render_template
from swg_operator.render.context import CONF_DIR, STATE_DIR

FRESHCLAM_CONF: Final = "freshclam.conf"


@dataclass(frozen=True)
class FreshclamConfig:
    service_code: str
    database_mirror: str
    private_mirrors: tuple[str, ...]
    checks_per_day: int
    # The tenant's proxy Service by its full name and port, when freshclam goes through it (no
    # mirror in the cluster); None: straight to the mirror.
    proxy_host: str | None
    proxy_port: int


def freshclam_files(config: FreshclamConfig) -> dict[str, str]:
    return {
        FRESHCLAM_CONF: render_template(
            FRESHCLAM_CONF,
            service_code=config.service_code,
            conf_dir=CONF_DIR,
            state_dir=STATE_DIR,
            db_dir=CLAMAV_DB_DIR,
            database_mirror=config.database_mirror,
            private_mirrors=list(config.private_mirrors),
            checks_per_day=config.checks_per_day,
            proxy_host=config.proxy_host,
            proxy_port=config.proxy_port,
        )
    }
