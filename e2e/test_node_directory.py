"""Users and groups from the customer's LDAP directory on the real node (`make test-node`; root):
`spec.authentication.ldap` with the directory's private CA named by `caSecret`.

One tenant runs its pods on the real node, installed by the chart as in
e2e/test_node_tenants.py; the client is a pod in its `clients.allowedCIDRs`, sending HTTP Basic
proxy credentials to the proxy Service. The directory is a real OpenLDAP slapd with the
data-plane tier's users and groups (`e2e.node.directory`), serving LDAPS on the test origin's
address under a name the cluster's DNS resolves to it (`e2e.node.sites.public_names`), with a
certificate of a private CA that is in no bundle: the proxy trusts it only because the tenant's
`caSecret` names it. The bind password is in the tenant's `bindSecret`. Squid's own helpers in
the proxy pods reach the directory through the egress NetworkPolicy the operator rendered.
Every packet stays on this machine.

What is proven here:
* a user with the right password is served, and the access record the tenant's admin downloads
  with `kubectl swg logs` names the user;
* no credentials or a wrong password get 407, logged with status 407 (no user, or the name
  offered);
* a policy selecting a group: a member of the group reaches a domain the tenant denies and
  the policy allows, a user outside it gets the block page; both logged with the user, the
  decision and the policy;
* the bind password and the users' passwords are in no ConfigMap of the tenant namespace (the
  helpers' arguments are, the password is not);
* with the directory stopped the proxy fails closed: a user not checked before gets 407 with
  the right password, no credentials 407, both logged, and Squid stays up (no proxy container
  restarts); the directory back, the same user is served. The product promises no condition
  for an unreachable directory, so none is looked for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import ControlPlane, unique_name, wait_until
from e2e.dataplane.directory import BIND_DN, BIND_PASSWORD, GROUPS, PEOPLE, USERS, known_user
from e2e.dataplane.origin import Origin
from e2e.node.directory import DIRECTORY_HOST, DIRECTORY_URL, NodeDirectory
from e2e.node.origin import ORIGIN_IP, node_site
from e2e.node.sites import public_names
from e2e.node.tenants import (
    DENIED_DOMAIN,
    FETCH,
    PROXY_PORT,
    READY_TIMEOUT,
    admin_records,
    clean_up,
    client_pod,
    installed_with_clients,
    py,
    run_pod,
    tenant,
)
from e2e.operator_process import wait_phase

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]

BIND_SECRET = "ldap-bind"
CA_SECRET = "ldap-ca"
ALLOWED_GROUP = "research"  # alice's group (e2e.dataplane.directory.USERS)
PROXY_LABEL = "app.kubernetes.io/component=proxy"
# A site of the origin's by name: a URL with the origin's address would meet the deny list
# through the address's reverse name (CoreDNS's hosts block answers PTR queries too, and Squid's
# dstdomain looks an address up), which is DENIED_DOMAIN's.
SITE = "www.customer.test"


@dataclass(frozen=True)
class DirectoryTenant:
    cluster: ControlPlane
    name: str
    directory: NodeDirectory
    origin: Origin
    client_ns: str
    admins_ns: str
    workdir: Path

    @property
    def ns(self) -> str:
        return f"swg-{self.name}"


def _authentication() -> dict[str, Any]:
    return {
        "ldap": {
            "url": DIRECTORY_URL,
            "baseDN": PEOPLE,
            "bindDN": BIND_DN,
            "bindSecret": {"name": BIND_SECRET},
            "caSecret": {"name": CA_SECRET},
            "userFilter": "(&(objectClass=inetOrgPerson)(uid=%s))",
            "groupBaseDN": GROUPS,
            "groupFilter": "(&(objectClass=groupOfNames)(cn=%g)(member=%u))",
        }
    }


def _url_filtering() -> dict[str, Any]:
    """The tenant denies DENIED_DOMAIN; the group's policy allows it to the group's users."""
    domain = f".{DENIED_DOMAIN}"
    return {
        "deny": {"domains": [domain]},
        "policies": [
            {"name": ALLOWED_GROUP, "groups": [ALLOWED_GROUP], "allow": {"domains": [domain]}}
        ],
    }


def _secrets(ns: str, ca_pem: str) -> list[dict[str, Any]]:
    """The customer's Secrets in the tenant namespace: the bind password, the directory's CA."""

    def secret(name: str, data: dict[str, str]) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "type": "Opaque",
            "stringData": data,
        }

    return [secret(BIND_SECRET, {"password": BIND_PASSWORD}), secret(CA_SECRET, {"ca.crt": ca_pem})]


def _with_directory(cluster: ControlPlane, name: str, ca_pem: str) -> None:
    """Turn authentication on for the Ready tenant `name`: its Secrets made in its namespace
    (which exists now), then the spec naming them; until every proxy pod runs with it."""
    ns = f"swg-{name}"
    for secret in _secrets(ns, ca_pem):
        cluster.apply(secret, namespace=ns)
    before = cluster.kubectl_json("get", "swg", name)["metadata"]["generation"]
    patch = {"spec": {"authentication": _authentication(), "urlFiltering": _url_filtering()}}
    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", json.dumps(patch))
    wait_phase(cluster, name, "Ready", generation=before + 1, timeout=READY_TIMEOUT)
    cluster.kubectl(
        "rollout", "status", "deployment/proxy", "-n", ns, "--timeout=300s", timeout=330
    )


@pytest.fixture(scope="module")
def directory(
    node_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[DirectoryTenant]:
    cluster = node_cluster
    workdir = tmp_path_factory.mktemp("node-directory")
    client_ns, admins_ns = installed_with_clients(cluster, "node-directory")
    client_ip = run_pod(cluster, client_ns, client_pod("client-in"))["status"]["podIP"]
    name = unique_name("node-directory")
    names = {DIRECTORY_HOST: ORIGIN_IP, DENIED_DOMAIN: ORIGIN_IP, SITE: ORIGIN_IP}
    with node_site(workdir, (DENIED_DOMAIN,)) as site, public_names(cluster, names):
        ldap = NodeDirectory(site.ns, workdir / "directory")
        ldap.start()
        try:
            cluster.apply(
                tenant(
                    name,
                    allowed=[f"{client_ip}/32"],
                    admin=f"system:serviceaccount:{admins_ns}:alice",
                    # Squid alone: the anti-virus is proven by e2e/test_node_tenants.py.
                    antivirus={"enabled": False},
                )
            )
            wait_phase(cluster, name, "Ready", timeout=READY_TIMEOUT)
            _with_directory(cluster, name, ldap.ca_pem)
            yield DirectoryTenant(cluster, name, ldap, site.origin, client_ns, admins_ns, workdir)
        finally:
            ldap.stop()
            clean_up(cluster, (name,), (client_ns, admins_ns))


def _get(t: DirectoryTenant, url: str, credentials: str | None) -> dict[str, Any]:
    """One GET from the client pod through the proxy Service, with `credentials`
    (``login:password``) as HTTP Basic proxy authentication when given."""
    user = f"{credentials}@" if credentials is not None else ""
    proxy = f"http://{user}proxy.{t.ns}.svc:{PROXY_PORT}"
    result: dict[str, Any] = json.loads(py(t.cluster, t.client_ns, "client-in", FETCH, proxy, url))
    return result


def _access_record(
    t: DirectoryTenant,
    url: str,
    capsys: pytest.CaptureFixture[str],
    found: Callable[[dict[str, Any]], bool] = lambda _r: True,
) -> dict[str, Any]:
    records = admin_records(
        t.cluster,
        t.name,
        admins_ns=t.admins_ns,
        workdir=t.workdir,
        log_type="access",
        found=lambda r: r.get("url") == url and found(r),
        capsys=capsys,
    )
    return records[-1]


def _origin_url(prefix: str) -> str:
    """A URL of the origin no other request asks for (its record is this request's)."""
    return f"http://{SITE}/{unique_name(prefix)}"


def test_a_user_with_the_right_password_is_served_and_named_in_the_log(
    directory: DirectoryTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    url = _origin_url("served")
    response = _get(directory, url, known_user("carol"))
    assert response["status"] == 200, response
    marker = url.rsplit("/", 1)[1]
    assert marker in response["body"], response  # the origin's answer
    assert any(marker in path for _m, _h, path in directory.origin.requests())
    record = _access_record(directory, url, capsys)
    assert (record["user"], record["status"], record["decision"]) == ("carol", 200, "allow"), record


@pytest.mark.parametrize(
    ("credentials", "logged_user"),
    [(None, None), ("carol:wrong-password", "carol")],
    ids=["no-credentials", "wrong-password"],
)
def test_refused_credentials_get_407_and_are_logged(
    directory: DirectoryTenant,
    capsys: pytest.CaptureFixture[str],
    credentials: str | None,
    logged_user: str | None,
) -> None:
    url = _origin_url("refused")
    response = _get(directory, url, credentials)
    assert response["status"] == 407, response
    record = _access_record(directory, url, capsys)
    # A 407 record names the user the client claimed to be, unverified (docs/logs.md).
    assert (record["status"], record["user"]) == (407, logged_user), record
    marker = url.rsplit("/", 1)[1]
    assert not any(marker in path for _m, _h, path in directory.origin.requests())


def test_a_group_policy_lets_its_members_in_and_no_one_else(
    directory: DirectoryTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"http://{DENIED_DOMAIN}/{unique_name('group')}"
    member = _get(directory, url, known_user("alice"))
    assert member["status"] == 200, member
    record = _access_record(directory, url, capsys, lambda r: r["user"] == "alice")
    assert (record["status"], record["decision"], record["policy"]) == (
        200,
        "allow",
        ALLOWED_GROUP,
    ), record
    assert "research" not in USERS["carol"][1]
    outsider = _get(directory, url, known_user("carol"))
    assert outsider["status"] == 403, outsider
    assert url in outsider["body"], outsider  # the block page names what was refused
    record = _access_record(directory, url, capsys, lambda r: r["user"] == "carol")
    assert (record["status"], record["decision"], record["policy"]) == (403, "block", "tenant"), (
        record
    )


def test_no_password_is_in_a_configmap_of_the_tenant(directory: DirectoryTenant) -> None:
    configmaps = directory.cluster.kubectl_json("get", "configmaps", "-n", directory.ns)["items"]
    text = json.dumps(configmaps)
    # The helpers' arguments are there (the search is over the right objects) ...
    names = [c["metadata"]["name"] for c in configmaps]
    assert BIND_DN in text, names
    assert DIRECTORY_URL in text, names
    # ... and no password: the bind password stays in the Secret the proxy pods mount.
    for password in (BIND_PASSWORD, *(p for p, _ in USERS.values())):
        assert password not in text, password


def _proxy_containers(t: DirectoryTenant) -> dict[str, int]:
    """Running proxy pods: pod/container -> restart count."""
    pods = t.cluster.kubectl_json("get", "pods", "-n", t.ns, "-l", PROXY_LABEL)["items"]
    return {
        f"{p['metadata']['name']}/{s['name']}": s["restartCount"]
        for p in pods
        if p["status"].get("phase") == "Running"
        for s in p["status"].get("containerStatuses", [])
    }


def test_with_the_directory_stopped_the_proxy_fails_closed(
    directory: DirectoryTenant, capsys: pytest.CaptureFixture[str]
) -> None:
    """dave's password was never checked (no proxy pod has it cached): with the directory
    stopped it is refused, right as it is; served again once the directory is back."""
    before = _proxy_containers(directory)
    assert before, "no running proxy pod"
    new_user, anonymous = _origin_url("down-dave"), _origin_url("down-anonymous")
    directory.directory.stop()
    try:
        refused = _get(directory, new_user, known_user("dave"))
        assert refused["status"] == 407, refused
        record = _access_record(directory, new_user, capsys)
        assert (record["status"], record["user"]) == (407, "dave"), record
        refused = _get(directory, anonymous, None)
        assert refused["status"] == 407, refused
        record = _access_record(directory, anonymous, capsys)
        assert (record["status"], record["user"]) == (407, None), record
        # Squid itself stays up: the same proxy containers, none restarted.
        assert _proxy_containers(directory) == before
    finally:
        directory.directory.start()
    back = _origin_url("back")
    wait_until(
        lambda: _get(directory, back, known_user("dave"))["status"] == 200,
        timeout=60,
        what="dave served once the directory is back",
    )
    record = _access_record(directory, back, capsys, lambda r: r["status"] == 200)
    assert record["user"] == "dave", record
