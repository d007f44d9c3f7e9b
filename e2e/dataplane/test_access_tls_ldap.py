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

import time
from collections.abc import Iterator

import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.directory import (
    LDAP_ADDRESS,
    LDAP_HOST,
    USERS,
    prepare_directory,
    start_directory,
)
from e2e.dataplane.pki import ACCESS_HOSTNAME
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack
from swg_operator.render.pac import PAC_FILE, PAC_URL_PATH

pytestmark = pytest.mark.dataplane

HELLO = "http://clean.test/files/hello.txt"


@pytest.fixture(scope="module")
def stack(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> Iterator[DataplaneStack]:
    config = render_tenant(TENANT_DATA / "tenant-access-tls-ldap.yaml")
    started = start_dataplane(
        config,
        label="access-tls-ldap",
        names=DEFAULT_TEST_NAMES,
        extra_hosts={LDAP_HOST: LDAP_ADDRESS},
        daemons=("squid",),
    )
    start_directory(started, prepare_directory(started))
    # Squid again, now that the bind Secret's file is there (a pod starts with it mounted).
    started.stop_daemon("squid", timeout=10)
    started.start_daemon("squid")
    yield started
    started.close()


def _through_tls(
    stack: DataplaneStack, url: str, *, proxy_user: str | None = None
) -> client.Response:
    """curl to ``url`` through the TLS listener by its name, trusting the listener's CA, with
    ``proxy_user``'s Basic credentials (none: no credentials)."""
    assert stack.netns is not None
    assert stack.tls_address is not None
    host, port = stack.tls_address
    options: client.CurlOptions = {
        "proxy_cacert": stack.pki.access_ca_cert,
        "resolve": [f"{ACCESS_HOSTNAME}:{port}:{host}"],
    }
    if proxy_user is not None:
        options["proxy_user"] = proxy_user
    return client.curl(stack.netns, url, proxy=f"https://{ACCESS_HOSTNAME}:{port}", **options)


def _user(login: str) -> str:
    return f"{login}:{USERS[login][0]}"


def _logged_through_tls(
    stack: DataplaneStack, url: str, *, proxy_user: str | None = None
) -> tuple[client.Response, dict[str, object]]:
    """One request through the TLS listener and its access log entry (requests are one at a
    time, and Squid appends the entry when the transaction ends)."""
    before = len(stack.access_log())
    response = _through_tls(stack, url, proxy_user=proxy_user)
    deadline = time.monotonic() + 10
    while len(entries := stack.access_log()) <= before:
        assert time.monotonic() < deadline, f"no access log entry for {url}"
        time.sleep(0.05)
    return response, entries[-1]


def test_the_tls_listener_asks_for_a_user_and_serves_a_known_one(stack: DataplaneStack) -> None:
    assert stack.plain_address is None
    anonymous, entry = _logged_through_tls(stack, HELLO)
    assert anonymous.status == 407, (anonymous.status, anonymous.error)
    assert (entry["url"], entry["status"]) == (HELLO, "407")
    served, entry = _logged_through_tls(stack, HELLO, proxy_user=_user("alice"))
    assert served.status == 200, (served.status, served.error)
    assert served.body == stack.payloads["hello.txt"].path.read_bytes()
    assert (entry["url"], entry["user"], entry["status"]) == (HELLO, "alice", "200")
    wrong = _through_tls(stack, HELLO, proxy_user="alice:not-her-password")
    assert wrong.status == 407, (wrong.status, wrong.error)


def test_a_group_policy_applies_on_the_tls_listener(stack: DataplaneStack) -> None:
    casino = "http://casino.test/files/hello.txt"
    assert _through_tls(stack, casino, proxy_user=_user("alice")).status == 200
    assert _through_tls(stack, casino, proxy_user=_user("bob")).status == 403


def test_the_pac_file_is_served_over_tls_without_a_user(stack: DataplaneStack) -> None:
    assert stack.netns is not None
    assert stack.tls_address is not None
    host, port = stack.tls_address
    response = client.curl(
        stack.netns,
        f"https://{ACCESS_HOSTNAME}:{port}{PAC_URL_PATH}",
        proxy=None,
        cacert=stack.pki.access_ca_cert,
        resolve=[f"{ACCESS_HOSTNAME}:{port}:{host}"],
    )
    assert response.status == 200, (response.status, response.error, response.text[:200])
    assert response.body == (stack.conf / PAC_FILE).read_bytes()
    assert f"HTTPS {ACCESS_HOSTNAME}:{port}".encode() in response.body
    # Only the PAC file: another of Squid's internal objects over TLS still needs a user.
    other = client.curl(
        stack.netns,
        f"https://{ACCESS_HOSTNAME}:{port}{PAC_URL_PATH.removesuffix(PAC_FILE)}other.pac",
        proxy=None,
        cacert=stack.pki.access_ca_cert,
        resolve=[f"{ACCESS_HOSTNAME}:{port}:{host}"],
    )
    assert other.status == 407, (other.status, other.error)
