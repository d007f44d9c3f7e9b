"""Tenants on the real node, with real packets (`make test-node`; root).

The operator runs as the chart installs it (`e2e.local_install`: images imported into the node,
`helm upgrade --install`), and two tenants, A and B, run their proxy, anti-virus and log store
pods on the real node. Clients are pods of this module; the "internet" is the test origin
(`e2e.node.origin`), a network namespace on this machine at 198.18.0.1 that only the pod bridge
can reach. Every packet stays on this machine.

What is proven here, and nowhere else:
* a client in A's allowedCIDRs fetches a page through A's proxy Service by its DNS name; a
  denied domain gets the block page; EICAR is blocked; the records reach A's log store, and
  A's admin downloads them with `kubectl swg logs` through the API server's service proxy (B's
  admin is refused);
* a client outside A's allowedCIDRs, and one in B's namespace, cannot open a TCP connection to
  A's proxy, anti-virus or log store; with A's policies removed (operator stopped) the same
  probes connect, so the probes can fail; the operator puts the policies back;
* A's proxy cannot reach the API server, the node's address, B's pods or the origin's other
  ports;
* a spec change rolls the proxy while a client loops through it without a failed request;
* `kubectl logs` and `kubectl exec` work on tenant pods;
* cancellation with purgeAfterDays 0 removes the namespace and the log bytes on disk.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e import local_install
from e2e.cluster import ControlPlane, hostnet, service_account_kubeconfig, unique_name, wait_until
from e2e.cluster.realnode import NODE_NAME, REAL_NODE_LABEL
from e2e.dataplane.payloads import Payload
from e2e.node.origin import ORIGIN_IP, node_origin
from e2e.node.tenants import (
    DENIED_DOMAIN,
    LOOP,
    PROXY_PORT,
    READY_TIMEOUT,
    Tenants,
    can_connect,
    clean_up,
    client_pod,
    fetch,
    installed_with_clients,
    pod_ips,
    run_pod,
    tenant,
)
from e2e.operator_process import get_tenant, wait_phase
from swg_operator.commands.logs import kubectl_main

pytestmark = [pytest.mark.node, pytest.mark.timeout(900)]


@pytest.fixture(scope="module")
def tenants(
    node_cluster: ControlPlane, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tenants]:
    cluster = node_cluster
    workdir = tmp_path_factory.mktemp("node-tenants")
    client_ns, admins_ns = installed_with_clients(cluster, "node")
    client_in = run_pod(cluster, client_ns, client_pod("client-in"))["status"]["podIP"]
    client_out = run_pod(cluster, client_ns, client_pod("client-out"))["status"]["podIP"]
    a, b = unique_name("node-a"), unique_name("node-b")
    with node_origin(workdir, (DENIED_DOMAIN,)) as (_origin, payloads):
        cluster.apply(
            tenant(
                a, allowed=[f"{client_in}/32"], admin=f"system:serviceaccount:{admins_ns}:alice"
            ),
            tenant(b, allowed=["192.0.2.0/24"], admin=f"system:serviceaccount:{admins_ns}:bob"),
        )
        for name in (a, b):
            wait_phase(cluster, name, "Ready", timeout=READY_TIMEOUT)
        yield Tenants(cluster, a, b, admins_ns, client_ns, client_in, client_out, payloads, workdir)
        clean_up(cluster, (a, b), (client_ns, admins_ns))


def _clean_payload(t: Tenants) -> Payload:
    return next(p for p in t.payloads.values() if not p.infected and p.size < 1 << 20)


def _eicar_payload(t: Tenants) -> Payload:
    return next(p for p in t.payloads.values() if p.infected and p.name.endswith(".com"))


def test_tenant_pods_run_on_the_real_node(tenants: Tenants) -> None:
    cluster = tenants.cluster
    for ns in (tenants.ns_a, tenants.ns_b):
        listed = cluster.kubectl_json("get", "pods", "-n", ns)
        pods = [p for p in listed["items"] if p["status"].get("phase") == "Running"]
        components = {p["metadata"]["labels"].get("app.kubernetes.io/component") for p in pods}
        assert {"proxy", "antivirus", "logstore"} <= components, components
        nodes = {p["spec"]["nodeName"] for p in pods}
        node = cluster.kubectl_json("get", "node", *nodes)
        items = node.get("items", [node])
        assert all(n["metadata"]["labels"].get(REAL_NODE_LABEL) == "true" for n in items)


def test_client_fetches_through_the_proxy_and_is_filtered(tenants: Tenants) -> None:
    clean, eicar = _clean_payload(tenants), _eicar_payload(tenants)
    page = fetch(tenants, "client-in", f"http://{ORIGIN_IP}/files/{clean.name}")
    assert page["status"] == 200, page
    denied = fetch(tenants, "client-in", f"http://www.{DENIED_DOMAIN}/")
    assert denied["status"] == 403, denied
    virus = fetch(tenants, "client-in", f"http://{ORIGIN_IP}/files/{eicar.name}")
    assert virus["status"] == 403, virus
    assert virus.get("body", "") != page.get("body")


def test_records_reach_the_log_store_and_only_the_admin_downloads_them(
    tenants: Tenants, capsys: pytest.CaptureFixture[str]
) -> None:
    cluster = tenants.cluster
    marker = unique_name("logged")
    fetch(tenants, "client-in", f"http://www.{DENIED_DOMAIN}/{marker}")
    alice = service_account_kubeconfig(
        cluster,
        namespace=tenants.admins_ns,
        name="alice",
        path=tenants.workdir / "alice.kubeconfig",
    )
    bob = service_account_kubeconfig(
        cluster, namespace=tenants.admins_ns, name="bob", path=tenants.workdir / "bob.kubeconfig"
    )
    out = tenants.workdir / "a.ndjson"

    def downloaded() -> list[dict[str, Any]] | None:
        out.unlink(missing_ok=True)
        code = kubectl_main(
            ["logs", tenants.a, "--kubeconfig", str(alice), "-q", "--file", str(out)]
        )
        capsys.readouterr()
        if code != 0 or not out.exists():
            return None
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        mine = [r for r in records if marker in json.dumps(r)]
        return mine or None

    records = wait_until(downloaded, timeout=120, what="the blocked request in A's log store")
    assert any("block" in json.dumps(r).lower() for r in records), records
    code = kubectl_main(["logs", tenants.a, "--kubeconfig", str(bob), "-q", "--file", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert "403" in err, err


def _probes(t: Tenants) -> dict[str, tuple[str, int]]:
    cluster = t.cluster
    proxy = pod_ips(cluster, t.ns_a, "proxy")[0]
    antivirus = pod_ips(cluster, t.ns_a, "antivirus")[0]
    logstore = pod_ips(cluster, t.ns_a, "logstore")[0]
    return {
        "proxy": (proxy, PROXY_PORT),
        "antivirus": (antivirus, 1344),
        "logstore-http": (logstore, 8080),
        "logstore-ingest": (logstore, 5140),
    }


def test_nobody_outside_the_allowed_clients_connects_and_the_probes_can_fail(
    tenants: Tenants,
) -> None:
    cluster = tenants.cluster
    run_pod(cluster, tenants.ns_b, client_pod("b-client"))
    probes = _probes(tenants)
    sources = [(tenants.client_ns, "client-out"), (tenants.ns_b, "b-client")]
    for ns, pod in sources:
        for what, (address, port) in probes.items():
            assert not can_connect(tenants, ns, pod, address, port), (pod, what)
    assert can_connect(tenants, tenants.client_ns, "client-in", *probes["proxy"])
    b_logstore = (pod_ips(cluster, tenants.ns_b, "logstore")[0], 5140)
    assert not _from_proxy(tenants, *b_logstore), "A's proxy reached B's log store"

    # Without A's policies (the operator stopped, so it cannot put them back) the same probes
    # connect: they would have seen a hole.
    operator = ("deployment", local_install.RELEASE, "-n", local_install.NAMESPACE)
    cluster.kubectl("scale", *operator, "--replicas=0")
    try:
        # B's own default-deny egress would stop its client too: both tenants' policies go.
        for ns in (tenants.ns_a, tenants.ns_b):
            cluster.kubectl("delete", "networkpolicy", "--all", "-n", ns)
        for ns, pod in sources:
            address, port = probes["proxy"]
            assert wait_until(
                lambda ns=ns, pod=pod, a=address, p=port: can_connect(tenants, ns, pod, a, p),  # type: ignore[misc]
                timeout=30,
                what=f"{pod} reaching A's proxy without policies",
            )
        assert wait_until(
            lambda: _from_proxy(tenants, *b_logstore),
            timeout=30,
            what="A's proxy reaching B's log store without policies",
        )
    finally:
        cluster.kubectl("scale", *operator, "--replicas=1")
    address, port = probes["proxy"]
    wait_until(
        lambda: not can_connect(tenants, tenants.client_ns, "client-out", address, port),
        timeout=180,
        what="the operator restoring A's policies",
    )


def _from_proxy(t: Tenants, address: str, port: int) -> bool:
    """Can A's Squid container open a TCP connection (bash's /dev/tcp, 5 s)?"""
    pod = t.cluster.kubectl_json(
        "get", "pods", "-n", t.ns_a, "-l", "app.kubernetes.io/component=proxy",
        "--field-selector=status.phase=Running",
    )["items"][0]["metadata"]["name"]  # fmt: skip
    probe = t.cluster.kubectl(
        "exec", pod, "-n", t.ns_a, "-c", "squid", "--",
        "timeout", "5", "bash", "-c", f"exec 3<>/dev/tcp/{address}/{port}",
        check=False, timeout=60,
    )  # fmt: skip
    return probe.returncode == 0


def test_the_proxy_reaches_nothing_but_the_internet(tenants: Tenants) -> None:
    """Each target is first reached from a client pod without policies (so the probe can
    succeed), then refused to A's proxy; the origin, the "internet", stays reachable."""
    cluster = tenants.cluster
    listener = run_pod(cluster, tenants.client_ns, client_pod("listener", serve=8080))
    node = cluster.kubectl_json("get", "node", NODE_NAME)
    kubelet_port = node["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
    targets = {
        "kubernetes Service": ("10.96.0.1", 443),
        "API server on the node": (hostnet.BRIDGE_IP, cluster.ports.apiserver),
        "kubelet on the node": (hostnet.BRIDGE_IP, kubelet_port),
        "a pod of another namespace": (listener["status"]["podIP"], 8080),
    }

    for what, (address, port) in targets.items():
        wait_until(
            lambda a=address, p=port: can_connect(tenants, tenants.client_ns, "client-out", a, p),  # type: ignore[misc]
            timeout=30,
            what=f"a client without policies reaching {what}",
        )
        assert not _from_proxy(tenants, address, port), (
            f"A's proxy reached {what} ({address}:{port})"
        )
    assert _from_proxy(tenants, ORIGIN_IP, 80)


def test_kubectl_logs_and_exec_on_tenant_pods(tenants: Tenants) -> None:
    cluster = tenants.cluster
    pod = cluster.kubectl_json(
        "get", "pods", "-n", tenants.ns_a, "-l", "app.kubernetes.io/component=proxy"
    )["items"][0]["metadata"]["name"]
    logs = cluster.kubectl("logs", pod, "-n", tenants.ns_a, "-c", "squid")
    assert logs.stdout.strip()
    out = cluster.kubectl("exec", pod, "-n", tenants.ns_a, "-c", "squid", "--", "id", "-u")
    assert out.stdout.strip() == "10001"


def test_a_spec_change_rolls_the_proxy_without_a_failed_request(tenants: Tenants) -> None:
    cluster = tenants.cluster
    before = cluster.kubectl_json("get", "deployment", "proxy", "-n", tenants.ns_a)
    generation = before["metadata"]["generation"]
    clean = _clean_payload(tenants)
    proxy = f"http://proxy.{tenants.ns_a}.svc:{PROXY_PORT}"
    url = f"http://{ORIGIN_IP}/files/{clean.name}"
    loop = subprocess.Popen(
        [str(cluster.kubectl_path), "--kubeconfig", str(cluster.kubeconfig),
         "exec", "client-in", "-n", tenants.client_ns, "--",
         "python", "-c", LOOP, proxy, url, "90"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        cluster.kubectl(
            "patch", "swg", tenants.a, "--type=merge", "-p",
            json.dumps({"spec": {"urlFiltering": {"deny": {"domains": [
                f".{DENIED_DOMAIN}", ".rolled.test"]}}}}),
        )  # fmt: skip

        def rolled() -> bool:
            dep = cluster.kubectl_json("get", "deployment", "proxy", "-n", tenants.ns_a)
            status = dep.get("status", {})
            return (
                dep["metadata"]["generation"] > generation
                and status.get("observedGeneration") == dep["metadata"]["generation"]
                and status.get("updatedReplicas") == dep["spec"]["replicas"]
                and status.get("availableReplicas") == dep["spec"]["replicas"]
                and not status.get("unavailableReplicas")
            )

        wait_until(rolled, timeout=240, what="the proxy Deployment rolled out")
        stdout, _ = loop.communicate(timeout=300)
    finally:
        if loop.poll() is None:
            loop.kill()
    counts = json.loads(stdout.strip().splitlines()[-1])
    assert counts["ok"] > 20, counts
    assert counts["failed"] == 0, counts


def test_cancellation_removes_the_namespace_and_the_log_bytes(tenants: Tenants) -> None:
    cluster = tenants.cluster
    claim = cluster.kubectl_json(
        "get", "pvc", "-n", tenants.ns_b, "-l", "app.kubernetes.io/component=logstore"
    )["items"][0]
    volume = cluster.kubectl_json("get", "pv", claim["spec"]["volumeName"])
    path = Path(volume["spec"].get("hostPath", volume["spec"].get("local", {}))["path"])
    assert path.is_dir(), path
    assert any(path.rglob("*")), path
    cluster.kubectl("delete", "swg", tenants.b, "--wait=false")
    wait_until(
        lambda: (
            get_tenant(cluster, tenants.b) is None
            and cluster.kubectl("get", "namespace", tenants.ns_b, check=False).returncode != 0
        ),
        timeout=300,
        what=f"tenant {tenants.b} purged",
    )
    wait_until(lambda: not path.exists(), timeout=120, what=f"{path} deleted from disk")
