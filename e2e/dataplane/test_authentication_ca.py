"""A directory whose certificate the customer's private CA signed (`authentication.ldap.caSecret`),
against a real slapd (e2e/dataplane/directory.py) reached over StartTLS by Squid's own helpers
from the chrooted proxy. The private CA is in no bundle: the proxy's bundle holds the test origin
CA alone. It reaches the helpers only as the CA Secret's `ca.crt`, mounted at
/etc/swg/ldap-ca/ca.crt as the pod mounts it.

* with caSecret, users the directory knows are served and named in the access log, a wrong
  password gets 407, and the group helper answers too (a group policy applies to its members);
* with caSecret, the CA Secret's certificates are the only ones trusted: the same directory
  showing a certificate of a CA in the proxy's bundle gets no password (407);
* without caSecret (the same directory, the same private CA), every user gets 407: the helpers
  refuse the certificate before any password is sent (fail closed).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.dataplane.conftest import TENANT_DATA, RenderTenant, StartDataplane
from e2e.dataplane.directory import (
    LDAP_HOST,
    conf_with_certificate,
    known_user,
    logged,
    prepare_directory,
    start_directory,
    start_with_directory,
    stop_directory,
)
from e2e.dataplane.pki import private_ca_server
from e2e.dataplane.stack import DataplaneStack

pytestmark = pytest.mark.dataplane

HELLO = "http://clean.test/files/hello.txt"
CASINO = "http://casino.test/files/hello.txt"
CA_FILE = "/etc/swg/ldap-ca/ca.crt"


def _stack(
    start_dataplane: StartDataplane,
    render_tenant: RenderTenant,
    tenant: str,
    label: str,
    *,
    with_ca: bool,
) -> DataplaneStack:
    """A stack whose directory shows a certificate of a private CA; `with_ca`: that CA is
    written where the CA Secret's `ca.crt` is mounted."""

    def private(stack: DataplaneStack) -> Path:
        conf = prepare_directory(stack)
        ca, cert, key = private_ca_server(stack.workdir / "private-ca", sans=[f"DNS:{LDAP_HOST}"])
        key.chmod(0o600)
        assert ca.read_text() not in (stack.workdir / "etc" / "ca-certificates.crt").read_text()
        if with_ca:
            shutil.copyfile(ca, stack.ldap_ca / "ca.crt")
            (stack.ldap_ca / "ca.crt").chmod(0o644)
        return conf_with_certificate(stack, conf, cert, key, name="private")

    return start_with_directory(
        start_dataplane, render_tenant(TENANT_DATA / tenant), label, directory=private
    )


@pytest.fixture(scope="module")
def with_ca(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> Iterator[DataplaneStack]:
    stack = _stack(start_dataplane, render_tenant, "tenant-ldap-ca.yaml", "ldapca", with_ca=True)
    yield stack
    stack.close()


@pytest.fixture(scope="module")
def without_ca(
    start_dataplane: StartDataplane, render_tenant: RenderTenant
) -> Iterator[DataplaneStack]:
    stack = _stack(start_dataplane, render_tenant, "tenant-ldap.yaml", "ldapnoca", with_ca=False)
    yield stack
    stack.close()


def _helper_lines(stack: DataplaneStack) -> list[str]:
    conf = (stack.conf / "squid.conf").read_text()
    return [line for line in conf.splitlines() if "/usr/local/bin/swg-ldap-helper" in line]


def test_users_authenticate_against_a_directory_of_a_private_ca(with_ca: DataplaneStack) -> None:
    lines = _helper_lines(with_ca)
    assert len(lines) == 2
    assert all(line.endswith(f".args {CA_FILE}") for line in lines), lines
    status, entry = logged(with_ca, HELLO, proxy_user=known_user("alice"))
    assert (status, entry["user"], entry["status"]) == (200, "alice", "200")
    status, entry = logged(with_ca, HELLO, proxy_user="alice:wrong")
    assert (status, entry["status"]) == (407, "407")


def test_the_group_helper_trusts_the_private_ca_too(with_ca: DataplaneStack) -> None:
    status, entry = logged(with_ca, CASINO, proxy_user=known_user("bob"))
    assert status == 403
    assert (entry["user"], entry["policy"], entry["decision"]) == ("bob", "restricted", "block")
    status, entry = logged(with_ca, CASINO, proxy_user=known_user("carol"))
    assert (status, entry["user"]) == (200, "carol")


def test_with_a_ca_secret_the_bundle_is_not_trusted(with_ca: DataplaneStack) -> None:
    """The directory showing a certificate of the origin CA (the proxy's whole bundle): refused,
    since the CA Secret's certificates replace the bundle for the directory."""
    directory = with_ca.workdir / "directory"
    stop_directory(with_ca)
    start_directory(with_ca, directory / "slapd.conf")  # the origin CA's certificate
    try:
        status, entry = logged(with_ca, HELLO, proxy_user=known_user("frank"))
        assert (status, entry["status"]) == (407, "407"), entry
    finally:
        stop_directory(with_ca)
        start_directory(with_ca, directory / "slapd-private.conf")
    assert with_ca.request(HELLO, proxy_user=known_user("frank")).status == 200


def test_without_the_ca_secret_the_same_directory_is_refused(without_ca: DataplaneStack) -> None:
    assert not list(Path(without_ca.ldap_ca).iterdir())
    for line in _helper_lines(without_ca):
        assert line.endswith(".args"), line
    for login in ("alice", "bob"):
        status, entry = logged(without_ca, HELLO, proxy_user=known_user(login))
        assert (status, entry["status"]) == (407, "407"), (login, entry)
