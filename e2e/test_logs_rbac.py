"""Log downloads and RBAC on the real API server.

The Role and RoleBindings come from the renderer (render.rbac) for two tenants, each with one
declared admin; the admins are ServiceAccount identities (tokens from the TokenRequest API),
declared as `User system:serviceaccount:NS:NAME` the way an OIDC user would be declared.

What this proves, and how (docs/logs.md, "What is proven how"):
* the API server's own authorisation decision for the service-proxy request the plugin makes:
  an admin of tenant A is allowed on A's log store (the request gets past RBAC: the answer is the
  proxy's, not 403), refused (403) on tenant B's, and a caller without valid credentials gets
  401; a SelfSubjectAccessReview of the exact resource name agrees;
* the plugin's download path end to end against a real log store process (`--server`).
The bytes cannot flow through the API server here: the local control plane runs no pods, and
a Service pointing at a log store on this machine would need an Endpoints/EndpointSlice address
of 127.0.0.1, which the API server rejects ("may not be in the loopback range"). The full path
(plugin -> API server -> Service -> pod) needs a cluster with real pods (kind).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster, unique_name
from swg_operator.api import OperatorSettings, parse_spec
from swg_operator.catalogue import Catalogue
from swg_operator.commands.logs import kubectl_main
from swg_operator.naming import tenant_namespace
from swg_operator.render import render_tenant
from swg_operator.sizing_io import load_capacity

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
RBAC_KINDS = ("Namespace", "Role", "RoleBinding")


def _tenant_objects(tenant: str, admin: str) -> list[dict[str, Any]]:
    document = yaml.safe_load((REPO / "examples/tenants/minimal.yaml").read_text())
    spec = copy.deepcopy(document["spec"])
    spec["admins"] = [{"kind": "User", "name": admin}]
    manifests = render_tenant(
        tenant,
        parse_spec(spec),
        catalogue=_catalogue(),
        settings=OperatorSettings(),
        capacity=load_capacity(),
    )
    wanted = [o for o in manifests.objects if o["kind"] in RBAC_KINDS]
    wanted += [
        o
        for o in manifests.objects
        if o["kind"] == "Service" and o["metadata"]["name"] == "logstore"
    ]
    return wanted


def _catalogue() -> Catalogue:
    from swg_operator.catalogue_io import load_blacklist_directory

    return load_blacklist_directory(REPO / "examples" / "catalogue")


@pytest.fixture
def tenants(
    cluster: Cluster,
    make_namespace: Callable[..., str],
    as_service_account: Callable[..., Cluster],
) -> Iterator[dict[str, Any]]:
    identities = make_namespace("logs-admins")
    alice = as_service_account(identities, "alice")
    bob = as_service_account(identities, "bob")
    a, b = unique_name("logs-a"), unique_name("logs-b")
    for tenant, admin in ((a, "alice"), (b, "bob")):
        user = f"system:serviceaccount:{identities}:{admin}"
        cluster.apply(*_tenant_objects(tenant, user))
    yield {"a": a, "b": b, "alice": alice, "bob": bob}
    for tenant in (a, b):
        cluster.kubectl(
            "delete", "namespace", tenant_namespace(tenant), "--wait=false", check=False
        )


def _can_i(who: Cluster, namespace: str, resource: str) -> str:
    result = who.kubectl(
        "auth", "can-i", "get", resource, "--subresource=proxy", "-n", namespace, check=False
    )
    return result.stdout.strip()


def test_only_the_tenant_admin_may_use_the_log_store_proxy(tenants: dict[str, Any]) -> None:
    ns_a, ns_b = tenant_namespace(tenants["a"]), tenant_namespace(tenants["b"])
    alice, bob = tenants["alice"], tenants["bob"]
    assert _can_i(alice, ns_a, "services/logstore:http") == "yes"
    assert _can_i(alice, ns_b, "services/logstore:http") == "no"
    assert _can_i(bob, ns_b, "services/logstore:http") == "yes"
    assert _can_i(bob, ns_a, "services/logstore:http") == "no"
    # only that Service's proxy, nothing else of the namespace
    assert _can_i(alice, ns_a, "services/proxy-other:http") == "no"
    assert (
        alice.kubectl("auth", "can-i", "get", "secrets", "-n", ns_a, check=False).stdout.strip()
        == "no"
    )
    assert (
        alice.kubectl(
            "auth",
            "can-i",
            "create",
            "services/logstore",
            "--subresource=proxy",
            "-n",
            ns_a,
            check=False,
        ).stdout.strip()
        == "no"
    )


def _plugin(
    kubeconfig: Path, tenant: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str]:
    code = kubectl_main(
        [
            "logs",
            tenant,
            "--kubeconfig",
            str(kubeconfig),
            "-q",
            "-o",
            str(tmp_path / f"{tenant}.ndjson"),
        ]
    )
    return code, capsys.readouterr().err


def test_plugin_requests_are_decided_by_the_api_server(
    tenants: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = tenants["alice"], tenants["bob"]
    code, err = _plugin(alice.kubeconfig, tenants["a"], tmp_path, capsys)
    # Past authentication and RBAC: the proxy itself answers that the Service has no ready
    # endpoint (no pods run here).
    assert code == 1
    assert "not reachable now (503)" in err, err
    code, err = _plugin(bob.kubeconfig, tenants["a"], tmp_path, capsys)
    assert code == 1
    assert "(403)" in err
    code, err = _plugin(alice.kubeconfig, tenants["b"], tmp_path, capsys)
    assert "(403)" in err

    config = yaml.safe_load(alice.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-token"}
    bogus = tmp_path / "bogus.kubeconfig"
    bogus.write_text(yaml.safe_dump(config))
    code, err = _plugin(bogus, tenants["a"], tmp_path, capsys)
    assert "(401)" in err
