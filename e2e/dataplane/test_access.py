"""spec.access with real Squid: the PAC file is served by the proxy itself at its stable URL,
as the renderer wrote it, with the PAC content type, to the tenant's clients only; a real PAC
engine (pacparser) evaluates what was served.

Runs what `swg-operator render` produces for testdata/tenant/tenant-access.yaml.
"""

from __future__ import annotations

import pacparser  # type: ignore[import-untyped]
import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.stack import DataplaneStack
from swg_operator.render.pac import PAC_CONTENT_TYPE, PAC_FILE, PAC_URL_PATH

pytestmark = pytest.mark.dataplane

TENANT = TENANT_DATA / "tenant-access.yaml"
SETTINGS = TENANT_DATA / "settings-exposure.yaml"


@pytest.fixture(scope="module")
def access(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> DataplaneStack:
    return start_dataplane(
        render_tenant(TENANT, settings=SETTINGS), label="access", daemons=("squid",)
    )


def _fetch(stack: DataplaneStack, path: str, *, source: str | None = None) -> client.Response:
    """GET `path` from the proxy port as an origin-form request (what a browser does for a
    PAC URL), not through the proxy."""
    assert stack.netns is not None
    url = f"http://{stack.proxy}{path}"
    if source is None:
        return client.curl(stack.netns, url, proxy=None)
    return client.curl(stack.netns, url, proxy=None, source=source)


def test_the_proxy_serves_the_rendered_pac_file(access: DataplaneStack) -> None:
    response = _fetch(access, PAC_URL_PATH)
    assert response.status == 200, (response.status, response.error, response.text[:300])
    assert response.headers.get("content-type", "").startswith(PAC_CONTENT_TYPE)
    assert response.body == (access.conf / PAC_FILE).read_bytes()


def test_the_served_pac_file_routes_bypass_direct(access: DataplaneStack) -> None:
    text = _fetch(access, PAC_URL_PATH).text
    pacparser.init()
    try:
        pacparser.parse_pac_string(text)
        assert pacparser.find_proxy("http://wiki.intranet.test/") == "DIRECT"
        assert pacparser.find_proxy("http://10.20.1.2/") == "DIRECT"
        assert pacparser.find_proxy("https://www.example.net/") == "PROXY proxy.access.test:3128"
    finally:
        pacparser.cleanup()


def test_no_other_file_of_the_configuration_is_served(access: DataplaneStack) -> None:
    for name in ("squid.conf", "pac-mime.conf", "../squid.conf", "ERR_SWG_BLOCKED"):
        response = _fetch(access, f"/squid-internal-static/icons/{name}")
        assert response.status != 200, name
        assert b"http_access" not in response.body, name


def test_the_pac_file_is_not_served_to_other_sources(access: DataplaneStack) -> None:
    # 127.0.0.200 is outside the tenant's allowedCIDRs (127.0.0.0/25).
    response = _fetch(access, PAC_URL_PATH, source="127.0.0.200")
    assert response.status == 403, (response.status, response.error)
