"""Users and groups at the proxy (`authentication.ldap`) against a real directory: OpenLDAP's
slapd (e2e/dataplane/directory.py) in the stack's namespace, reached by Squid's own LDAP helpers
from the chrooted proxy over StartTLS (and LDAPS), the bind password read from the mounted
Secret file.

* a user the directory knows, with the right password, is served and named in the access log;
  no credentials, a wrong password or an unknown user get 407, and are logged;
* a policy selecting a group applies to its members only; one selecting a group and a network
  needs both;
* with the directory stopped, nothing is allowed: new credentials get 407, and a request whose
  group must be asked is refused.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from e2e.dataplane import client
from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.directory import (
    BIND_PASSWORD,
    USERS,
    known_user,
    logged,
    start_directory,
    start_with_directory,
    stop_directory,
    untrusted_conf,
)
from e2e.dataplane.stack import DataplaneStack
from swg_operator.render.pac import PAC_FILE, PAC_URL_PATH

pytestmark = pytest.mark.dataplane

# An undecided group: Squid answers 407 (it asks for credentials again), never 200.
REFUSED = (403, 407)
LAB = "127.0.0.70"  # in the research-lab policy's sourceCIDRs (127.0.0.64/26)


@pytest.fixture(scope="module")
def starttls(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> Iterator[DataplaneStack]:
    stack = start_with_directory(
        start_dataplane, render_tenant(TENANT_DATA / "tenant-ldap.yaml"), "ldap"
    )
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def ldaps(start_dataplane: StartDataplane, render_tenant: RenderTenant) -> Iterator[DataplaneStack]:
    stack = start_with_directory(
        start_dataplane, render_tenant(TENANT_DATA / "tenant-ldaps.yaml"), "ldaps"
    )
    yield stack
    stack.close()


HELLO = "http://clean.test/files/hello.txt"


def test_a_known_user_is_served_andlogged(starttls: DataplaneStack) -> None:
    status, entry = logged(starttls, HELLO, proxy_user=known_user("alice"))
    assert status == 200
    assert (entry["user"], entry["status"]) == ("alice", "200")


@pytest.mark.parametrize(
    "credentials",
    [None, "alice:wrong", "mallory:whatever", "alice:", ":alice-pw"],
    ids=["none", "wrong-password", "unknown-user", "empty-password", "empty-user"],
)
def test_refused_credentials_get_407_and_arelogged(
    starttls: DataplaneStack, credentials: str | None
) -> None:
    options = {"proxy_user": credentials} if credentials is not None else {}
    status, entry = logged(starttls, HELLO, **options)
    assert status == 407
    assert entry["status"] == "407"
    assert entry["url"] == HELLO


def test_group_policy_applies_to_members_only(starttls: DataplaneStack) -> None:
    url = "http://casino.test/files/hello.txt"
    status, entry = logged(starttls, url, proxy_user=known_user("bob"))
    assert status == 403
    assert (entry["user"], entry["policy"], entry["decision"]) == ("bob", "restricted", "block")
    status, entry = logged(starttls, url, proxy_user=known_user("carol"))
    assert status == 200
    assert (entry["user"], entry["policy"]) == ("carol", "tenant")


def test_group_and_network_both_needed(starttls: DataplaneStack) -> None:
    url = "http://denied.test/files/hello.txt"
    status, entry = logged(starttls, url, proxy_user=known_user("alice"), source=LAB)
    assert (status, entry["policy"]) == (200, "research-lab")
    assert starttls.request(url, proxy_user=known_user("alice")).status == 403  # not from the lab
    assert starttls.request(url, proxy_user=known_user("carol"), source=LAB).status == 403


def test_https_needs_a_user_and_meets_the_group_policy(starttls: DataplaneStack) -> None:
    ca = starttls.pki.origin_ca_cert
    ok = starttls.request(
        "https://clean.test/files/hello.txt", proxy_user=known_user("carol"), cacert=ca
    )
    assert ok.status == 200, ok.error
    refused = starttls.request(
        "https://casino.test/files/hello.txt", proxy_user=known_user("bob"), cacert=ca
    )
    assert refused.status != 200
    anonymous = starttls.request("https://clean.test/files/hello.txt", cacert=ca)
    assert anonymous.info.get("http_connect") == 407, anonymous.info


def test_directory_down_fails_closed(starttls: DataplaneStack) -> None:
    """Nothing is allowed that the directory would have to confirm: a group not asked before
    is not taken for "not a member" (which would let erin past her group's deny list), the
    request is refused; a password not checked before gets 407 (Squid keeps checked ones for
    credentialsttl). Squid itself stays up."""
    # erin's password is checked while the directory is up; her group is not asked (clean.test
    # is in no policy's list), nor carol's "research" (asked only from the lab).
    assert starttls.request(HELLO, proxy_user=known_user("erin")).status == 200
    assert starttls.request(HELLO, proxy_user=known_user("carol")).status == 200
    stop_directory(starttls)
    try:
        casino = "http://casino.test/files/hello.txt"
        status, entry = logged(starttls, casino, proxy_user=known_user("erin"))
        assert status in REFUSED, entry
        assert entry["user"] == "erin"
        # An allow list needing an unanswered group is not applied either.
        url = "http://denied.test/files/hello.txt"
        status, entry = logged(starttls, url, proxy_user=known_user("carol"), source=LAB)
        assert status in REFUSED, entry
        # Requests no policy names still pass for checked users.
        assert starttls.request(HELLO, proxy_user=known_user("erin")).status == 200
        # A password not checked before: refused (a changed one also drops the checked one).
        for credentials in (known_user("carol") + "-changed", known_user("dave")):
            status, entry = logged(starttls, HELLO, proxy_user=credentials)
            assert (status, entry["status"]) == (407, "407"), credentials
        assert "squid" in starttls.daemons
        assert starttls.daemons["squid"].alive
    finally:
        start_directory(starttls, starttls.workdir / "directory" / "slapd.conf")
    # Back: users are checked again.
    assert starttls.request(HELLO, proxy_user=known_user("dave")).status == 200


def test_a_directory_with_an_untrusted_certificate_gets_no_password(
    starttls: DataplaneStack, ldaps: DataplaneStack
) -> None:
    """The helpers check the directory's certificate against the proxy's CA bundle (StartTLS and
    LDAPS): a self-signed one fails the connection before any password is sent."""
    for stack in (starttls, ldaps):
        conf = stack.workdir / "directory" / "slapd.conf"
        stop_directory(stack)
        start_directory(stack, untrusted_conf(stack, conf))
        try:
            status, entry = logged(stack, HELLO, proxy_user=known_user("frank"))
            assert status == 407, entry
        finally:
            stop_directory(stack)
            start_directory(stack, conf)
        assert stack.request(HELLO, proxy_user=known_user("frank")).status == 200


def test_ldaps_directory(ldaps: DataplaneStack) -> None:
    assert "ldaps://ldap.test:3636" in (ldaps.conf / "ldap-auth.args").read_text()
    status, entry = logged(ldaps, HELLO, proxy_user=known_user("alice"))
    assert (status, entry["user"]) == (200, "alice")
    assert logged(ldaps, HELLO, proxy_user="alice:wrong")[0] == 407
    status, entry = logged(
        ldaps, "http://casino.test/files/hello.txt", proxy_user=known_user("bob")
    )
    assert (status, entry["policy"]) == (403, "restricted")


def test_no_password_in_configuration_or_logs(starttls: DataplaneStack) -> None:
    """The bind password is only in the Secret's file; users' passwords are nowhere."""
    assert starttls.request(HELLO, proxy_user=known_user("bob")).status == 200
    secrets = [BIND_PASSWORD, *(password for password, _ in USERS.values())]
    texts = {path: path.read_text(errors="replace") for path in starttls.conf.iterdir()}
    logs = [*(starttls.workdir / "logs").iterdir(), *starttls.state_dir("proxy").rglob("*.jsonl")]
    texts.update({path: path.read_text(errors="replace") for path in logs})
    for path, text in texts.items():
        for secret in secrets:
            assert secret not in text, f"{secret!r} in {path}"


def test_https_inspection_with_users_and_groups(ldaps: DataplaneStack) -> None:
    ca = ldaps.pki.inspection_ca_cert
    ok = ldaps.request(
        "https://clean.test/files/hello.txt", proxy_user=known_user("carol"), cacert=ca
    )
    assert ok.status == 200, ok.error
    casino = "https://casino.test/files/hello.txt"
    assert ldaps.request(casino, proxy_user=known_user("carol"), cacert=ca).status == 200
    status, _ = logged(ldaps, casino, proxy_user=known_user("bob"), cacert=ca)
    assert status == 403  # the refused CONNECT is bumped to show the block page
    refused = [
        e for e in ldaps.access_log() if e["url"] == "casino.test:443" and e["user"] == "bob"
    ]
    assert refused[-1]["policy"] == "restricted"
    anonymous = ldaps.request("https://clean.test/files/hello.txt", cacert=ca)
    assert anonymous.info.get("http_connect") == 407, anonymous.info


def test_the_pac_file_needs_no_user(starttls: DataplaneStack) -> None:
    assert starttls.netns is not None
    url = f"http://{starttls.proxy}{PAC_URL_PATH}"
    response = client.curl(starttls.netns, url, proxy=None)
    assert response.status == 200, (response.status, response.text[:200])
    assert response.body == (starttls.conf / PAC_FILE).read_bytes()
    # Only the PAC file: a request through the proxy still needs a user.
    assert starttls.request(HELLO).status == 407
