"""The TLS listener alone (spec.access.tls, plaintext: false) with users from a real directory
(`authentication.ldap`, slapd in the stack's namespace) and the PAC file, with real Squid and
a real TLS client (curl --proxy https://...):

* a request through the TLS listener needs a user the directory accepts (407 without one), and
  the user's Basic credentials travel inside TLS: with them it is served and logged under the
  user's name, and a group policy applies as on the plain port;
* the PAC file is served over TLS without a user (browsers fetch it before they know of the
  authentication).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.directory import known_user, start_with_directory
from e2e.dataplane.listener import from_listener, logged, through_tls
from e2e.dataplane.pki import ACCESS_HOSTNAME
from e2e.dataplane.stack import DataplaneStack
from swg_operator.render.pac import PAC_FILE, PAC_URL_PATH

pytestmark = pytest.mark.dataplane

HELLO = "http://clean.test/files/hello.txt"


@pytest.fixture(scope="module")
def stack(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> Iterator[DataplaneStack]:
    config = render_tenant(TENANT_DATA / "tenant-access-tls-ldap.yaml")
    started = start_with_directory(start_dataplane, config, "access-tls-ldap")
    yield started
    started.close()


def _logged_through_tls(
    stack: DataplaneStack, url: str, *, proxy_user: str | None = None
) -> tuple[client.Response, dict[str, object]]:
    return logged(stack, lambda: through_tls(stack, url, proxy_user=proxy_user), url)


def test_the_tls_listener_asks_for_a_user_and_serves_a_known_one(stack: DataplaneStack) -> None:
    assert stack.plain_address is None
    anonymous, entry = _logged_through_tls(stack, HELLO)
    assert anonymous.status == 407, (anonymous.status, anonymous.error)
    assert (entry["url"], entry["status"]) == (HELLO, "407")
    served, entry = _logged_through_tls(stack, HELLO, proxy_user=known_user("alice"))
    assert served.status == 200, (served.status, served.error)
    assert served.body == stack.payloads["hello.txt"].path.read_bytes()
    assert (entry["url"], entry["user"], entry["status"]) == (HELLO, "alice", "200")
    wrong = through_tls(stack, HELLO, proxy_user="alice:not-her-password")
    assert wrong.status == 407, (wrong.status, wrong.error)


def test_a_group_policy_applies_on_the_tls_listener(stack: DataplaneStack) -> None:
    casino = "http://casino.test/files/hello.txt"
    assert through_tls(stack, casino, proxy_user=known_user("alice")).status == 200
    assert through_tls(stack, casino, proxy_user=known_user("bob")).status == 403


def test_the_pac_file_is_served_over_tls_without_a_user(stack: DataplaneStack) -> None:
    assert stack.tls_address is not None
    port = stack.tls_address[1]
    response = from_listener(stack, PAC_URL_PATH)
    assert response.status == 200, (response.status, response.error, response.text[:200])
    assert response.body == (stack.conf / PAC_FILE).read_bytes()
    assert f"HTTPS {ACCESS_HOSTNAME}:{port}".encode() in response.body
    # Only the PAC file: another of Squid's internal objects over TLS still needs a user.
    other = from_listener(stack, f"{PAC_URL_PATH.removesuffix(PAC_FILE)}other.pac")
    assert other.status == 407, (other.status, other.error)
