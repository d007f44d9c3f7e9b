"""c-icap's config (c-icap.conf, its clamd module and the virus_scan service), from a
`CicapConfig`. Squid sends bodies to the virus_scan service by its alias `ICAP_SERVICE_PATH`;
the module passes each spooled body to clamd over its unix socket."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from swg_logstore import formats
from swg_operator.render.clamd import CLAMD_SOCKET
from swg_operator.render.config_text import render_template
from swg_operator.render.context import CONF_DIR, ICAP_PORT, STATE_DIR

ICAP_SERVICE_PATH: Final = "avscan"  # the virus_scan alias in virus_scan.conf
# c-icap's names of the scanning service: the service and the alias Squid's ICAP URL uses (the
# anti-virus log's ACL must name the one Squid asks for, or c-icap logs nothing).
CICAP_SERVICE_NAMES: Final = ("virus_scan", ICAP_SERVICE_PATH)
CICAP_FILES: Final = ("c-icap.conf", "clamd_mod.conf", "virus_scan.conf")


@dataclass(frozen=True)
class CicapConfig:
    service_code: str
    visible_hostname: str
    max_scan_bytes: int  # the tenant's scan limit (virus_scan.MaxObjectSize)


def cicap_files(config: CicapConfig) -> dict[str, str]:
    values = {
        "service_code": config.service_code,
        "visible_hostname": config.visible_hostname,
        "conf_dir": CONF_DIR,
        "state_dir": STATE_DIR,
        "icap_port": ICAP_PORT,
        "clamd_socket": CLAMD_SOCKET,
        "max_scan_bytes": config.max_scan_bytes,
        "logging_directives": formats.cicap_logging_directives(service_names=CICAP_SERVICE_NAMES),
    }
    return {name: render_template(name, **values) for name in CICAP_FILES}
