"""clamd.conf: the anti-virus pod's scan engine, from a `ClamdConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from swg_operator.render.config_text import render_template
from swg_operator.render.context import CONF_DIR, STATE_DIR

CLAMD_CONF: Final = "clamd.conf"
# clamd cannot scan files over 2 GB: the largest scan limit a tenant gets.
CLAMD_MAX_BYTES: Final = 2000 * 1024 * 1024
# clamd's MaxScanSize (bytes scanned in one object, archive members included) is this many
# times the object limit, so that an archive under the limit is scanned whole once expanded.
CLAMD_SCAN_FACTOR: Final = 4
CLAMD_SOCKET: Final = f"{STATE_DIR}/clamd/clamd.sock"
CLAMAV_DB_DIR: Final = f"{STATE_DIR}/clamav/db"


@dataclass(frozen=True)
class ClamdConfig:
    service_code: str
    max_scan_bytes: int  # the tenant's scan limit (MaxFileSize), at most CLAMD_MAX_BYTES
    freshclam: bool  # the public database, kept current by freshclam (NotifyClamd, SelfCheck)


def clamd_files(config: ClamdConfig) -> dict[str, str]:
    return {
        CLAMD_CONF: render_template(
            CLAMD_CONF,
            service_code=config.service_code,
            conf_dir=CONF_DIR,
            state_dir=STATE_DIR,
            clamd_socket=CLAMD_SOCKET,
            db_dir=CLAMAV_DB_DIR,
            max_scan_bytes=config.max_scan_bytes,
            clamd_scan_bytes=min(config.max_scan_bytes * CLAMD_SCAN_FACTOR, CLAMD_MAX_BYTES),
            freshclam=config.freshclam,
        )
    }
