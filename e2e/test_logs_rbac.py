"""Log downloads, the status mirror and RBAC on the real API server.

The tenant admins' ClusterRole is the one the chart ships (applied as `make up` applies it,
e2e.operator_process.install_tenant_reader); the RoleBindings come from the renderer
(render.rbac) for two tenants, each with one declared admin, and the status mirror from
render.status_mirror; the admins are ServiceAccount identities (tokens from the TokenRequest
API), declared as `User system:serviceaccount:NS:NAME` the way an OIDC user would be declared.

What this proves, and how (docs/logs.md, "What is proven how"):
* the API server's own authorisation decision for the service-proxy request the plugin makes:
  an admin of tenant A is allowed on A's log store (the request gets past RBAC: the answer is the
  proxy's, not 403), refused (403) on tenant B's, and a caller without valid credentials gets
  401; a SelfSubjectAccessReview of the exact resource name agrees;
* `kubectl swg status`: A's admin reads A's status mirror, B's gets 403; Events and workloads of
  the own namespace are readable, other ConfigMaps, Secrets and anything of B are not;
* the plugin's download path end to end against a real log store process (`--server`).
The bytes do not flow here: this tier's control plane has kwok nodes only. The full path
(plugin -> API server -> Service -> log store pod) is proven on the real node by the node tier
(e2e/test_node_tenants.py).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster, unique_name
from e2e.operator_process import install_tenant_reader
from swg_operator.api import OperatorSettings, SecureWebGatewayStatus, parse_spec
from swg_operator.catalogue import Catalogue
from swg_operator.commands.logs import kubectl_main
from swg_operator.naming import tenant_namespace
from swg_operator.render import render_tenant
from swg_operator.render.status_mirror import tenant_status_config_map
from swg_operator.sizing_io import load_capacity

pytestmark = pytest.mark.cluster

REPO = Path(__file__).resolve().parents[1]
RBAC_KINDS = ("Namespace", "RoleBinding")


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
        if o["kind"] in ("Service", "ConfigMap")
        and o["metadata"]["name"] in ("logstore", "proxy-config")
    ]
    status = SecureWebGatewayStatus(observed_generation=1, phase="Provisioning")
    wanted.append(tenant_status_config_map(tenant, status, service_code="SWG-E2E"))
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
    install_tenant_reader(cluster)
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
            "--file",
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
    assert "(403, refused by the API server" in err
    code, err = _plugin(alice.kubeconfig, tenants["b"], tmp_path, capsys)
    assert "(403, refused by the API server" in err

    config = yaml.safe_load(alice.kubeconfig.read_text())
    config["users"][0]["user"] = {"token": "not-a-token"}
    bogus = tmp_path / "bogus.kubeconfig"
    bogus.write_text(yaml.safe_dump(config))
    code, err = _plugin(bogus, tenants["a"], tmp_path, capsys)
    assert "(401)" in err


def _can(who: Cluster, *args: str) -> str:
    return who.kubectl("auth", "can-i", *args, check=False).stdout.strip()


def test_admins_read_their_status_and_events_and_nothing_else(tenants: dict[str, Any]) -> None:
    ns_a, ns_b = tenant_namespace(tenants["a"]), tenant_namespace(tenants["b"])
    alice = tenants["alice"]
    assert _can(alice, "get", "configmap/tenant-status", "-n", ns_a) == "yes"
    assert _can(alice, "get", "configmap/https-inspection-ca-cert", "-n", ns_a) == "yes"
    assert _can(alice, "get", "configmap/tenant-status", "-n", ns_b) == "no"
    assert _can(alice, "get", "configmap/proxy-config", "-n", ns_a) == "no"
    assert _can(alice, "list", "configmaps", "-n", ns_a) == "no"
    for verb, resource in (("list", "events"), ("list", "pods"), ("get", "deployments")):
        assert _can(alice, verb, resource, "-n", ns_a) == "yes", (verb, resource)
        assert _can(alice, verb, resource, "-n", ns_b) == "no", (verb, resource)
    for verb, resource in (
        ("get", "secrets"),
        ("create", "pods/exec"),
        ("create", "pods/portforward"),
        ("patch", "deployments"),
        ("delete", "configmaps"),
        ("create", "rolebindings"),
        ("get", "securewebgateways.swg.dev"),
    ):
        kind, _, sub = resource.partition("/")
        args = [verb, kind, *([f"--subresource={sub}"] if sub else []), "-n", ns_a]
        assert _can(alice, *args) == "no", (verb, resource)
    events = alice.kubectl("get", "events", "-n", ns_a, check=False)
    assert events.returncode == 0, events.stderr
    denied = alice.kubectl("get", "configmap", "proxy-config", "-n", ns_a, check=False)
    assert denied.returncode != 0
    assert "forbidden" in denied.stderr.lower()


def test_kubectl_swg_status_is_decided_by_the_api_server(
    tenants: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    alice, bob = tenants["alice"], tenants["bob"]
    code = kubectl_main(["status", tenants["a"], "--kubeconfig", str(alice.kubeconfig)])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "Phase:           Provisioning" in out
    code = kubectl_main(["status", tenants["a"], "--kubeconfig", str(bob.kubeconfig)])
    assert code == 1
    assert "(403)" in capsys.readouterr().err
