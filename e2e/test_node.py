"""Smoke tests of the real worker node (`make test-node`, `pytest e2e -m node`; root).

They use the control plane of `.local` (what `make cluster-up` starts, override with
$SWG_E2E_NODE_DIR) and start it with its real node when it is not running; only one real node
runs on a machine. Every packet stays on this machine: pods talk to pods, to the Service range
and to the API server on the pod bridge; the guard test's off-machine destination is an address
routed by this test into a network namespace it creates (never the uplink).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from e2e.cluster import ControlPlane, hostnet, unique_name, wait_until
from e2e.cluster.realnode import (
    BUSYBOX_IMAGE,
    DNS_SERVICE_IP,
    NODE_NAME,
    REAL_NODE_LABEL,
    STORAGE_CLASS,
    TOLERATION,
)

pytestmark = [pytest.mark.node, pytest.mark.timeout(600)]

REPO_ROOT = Path(__file__).resolve().parents[1]
POD_TIMEOUT = 120.0
# TEST-NET-2 (RFC 5737): never routed on the internet. The test routes this one address into a
# network namespace of its own before anything is sent to it.
OFF_MACHINE_ADDRESS = "198.51.100.7"


@pytest.fixture
def node_namespace(node_cluster: ControlPlane, request: pytest.FixtureRequest) -> Iterator[str]:
    name = unique_name(request.node.name.removeprefix("test_").replace("_", "-"))
    node_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": {"swg.dev/e2e": "true"}},
        }
    )
    wait_until(
        lambda: (
            node_cluster.kubectl("get", "sa", "default", "-n", name, check=False).returncode == 0
        ),
        timeout=60,
        what=f"ServiceAccount {name}/default",
    )
    yield name
    node_cluster.kubectl("delete", "namespace", name, "--wait=false", check=False)


def pod(name: str, command: str, **extra: Any) -> dict[str, Any]:
    """A busybox pod pinned to the real node running `sh -c command`."""
    spec: dict[str, Any] = {
        "nodeSelector": {REAL_NODE_LABEL: "true"},
        "tolerations": [TOLERATION],
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": BUSYBOX_IMAGE,
                "imagePullPolicy": "Never",
                "command": ["sh", "-c", command],
                **extra.pop("container", {}),
            }
        ],
        **extra,
    }
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": spec,
    }


def run_pods(cluster: ControlPlane, namespace: str, *pods: dict[str, Any]) -> list[Any]:
    cluster.apply(*pods, namespace=namespace)
    got: list[Any] = []
    for p in pods:
        name = p["metadata"]["name"]

        def running(n: str = name) -> Any:
            obj = cluster.kubectl_json("get", "pod", n, "-n", namespace)
            ready = any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in obj.get("status", {}).get("conditions", [])
            )
            return obj if ready else None

        def describe(n: str = name) -> str:
            return cluster.kubectl("describe", "pod", n, "-n", namespace, check=False).stdout

        got.append(
            wait_until(running, timeout=POD_TIMEOUT, what=f"pod {name} Ready", describe=describe)
        )
    return got


def exec_in(
    cluster: ControlPlane, namespace: str, name: str, command: str, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    return cluster.kubectl(
        "exec", name, "-n", namespace, "--", "sh", "-c", command, check=check, timeout=60
    )


def test_pod_runs_on_the_real_node_resolves_and_reaches_the_api_server(
    node_cluster: ControlPlane, node_namespace: str
) -> None:
    (obj,) = run_pods(node_cluster, node_namespace, pod("probe", "sleep 3600"))
    assert obj["spec"]["nodeName"] == NODE_NAME
    node = node_cluster.kubectl_json("get", "node", NODE_NAME)
    assert "kwok.x-k8s.io/node" not in node["metadata"].get("annotations", {})
    assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://2.")
    assert ipaddress.ip_address(obj["status"]["podIP"]) in ipaddress.ip_network(hostnet.POD_SUBNET)
    # The pod's interface is on the bridge: its default route is the bridge's address.
    routes = exec_in(node_cluster, node_namespace, "probe", "ip route").stdout
    assert f"default via {hostnet.BRIDGE_IP}" in routes
    # CoreDNS answers from the API server's data. busybox's nslookup does not walk the search
    # path, so the names are given in full and the search path is checked in resolv.conf.
    resolv = exec_in(node_cluster, node_namespace, "probe", "cat /etc/resolv.conf").stdout
    assert f"nameserver {DNS_SERVICE_IP}" in resolv
    assert f"search {node_namespace}.svc.cluster.local svc.cluster.local" in resolv
    node_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "proxy"},
            "spec": {"selector": {"app": "probe"}, "ports": [{"port": 3128}]},
        },
        namespace=node_namespace,
    )
    proxy_ip = node_cluster.kubectl_json("get", "service", "proxy", "-n", node_namespace)["spec"][
        "clusterIP"
    ]
    for name, address in (
        ("kubernetes.default.svc.cluster.local", "10.96.0.1"),
        (f"proxy.{node_namespace}.svc.cluster.local", proxy_ip),
    ):
        answer = exec_in(node_cluster, node_namespace, "probe", f"nslookup {name}").stdout
        assert f"Address: {address}" in answer, answer
    # The API server behind the Service IP: a Go TLS server answers a plain-HTTP request so.
    reply = exec_in(
        node_cluster,
        node_namespace,
        "probe",
        "printf 'GET /version HTTP/1.0\\r\\n\\r\\n' | nc -w 5 10.96.0.1 443",
    ).stdout
    assert "Client sent an HTTP request to an HTTPS server" in reply, reply


def test_pvc_binds_to_a_real_directory(node_cluster: ControlPlane, node_namespace: str) -> None:
    assert node_cluster.node is not None
    claim = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Mi"}}},
    }
    token = unique_name("bytes")
    writer = pod(
        "writer",
        f"echo {token} > /data/proof && sleep 3600",
        container={"volumeMounts": [{"name": "data", "mountPath": "/data"}]},
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}],
    )
    node_cluster.apply(claim, namespace=node_namespace)
    run_pods(node_cluster, node_namespace, writer)
    pvc = node_cluster.kubectl_json("get", "pvc", "data", "-n", node_namespace)
    assert pvc["spec"]["storageClassName"] == STORAGE_CLASS  # the default class
    pv = node_cluster.kubectl_json("get", "pv", pvc["spec"]["volumeName"])
    path = Path(pv["spec"].get("hostPath", pv["spec"].get("local", {}))["path"])
    assert path.is_relative_to(node_cluster.node.volumes_dir)
    proof = path / "proof"
    wait_until(proof.exists, timeout=30, what=f"{proof} on disk")
    assert proof.read_text().strip() == token


# busybox's wget (static glibc build) crashes; plain HTTP over nc does the same job.
def http_get_command(ip: str, port: int = 8080) -> str:
    return f"printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {port}"


def _http_ok(cluster: ControlPlane, namespace: str, client: str, ip: str) -> bool:
    got = exec_in(cluster, namespace, client, http_get_command(ip), check=False)
    return "served" in got.stdout


def test_network_policy_denying_ingress_drops_tcp(
    node_cluster: ControlPlane, node_namespace: str
) -> None:
    server, _client = run_pods(
        node_cluster,
        node_namespace,
        pod("server", "mkdir -p /www && echo served > /www/index.html && httpd -f -p 8080 -h /www"),
        pod("client", "sleep 3600"),
    )
    ip = server["status"]["podIP"]
    assert _http_ok(node_cluster, node_namespace, "client", ip)  # the probe can succeed
    deny = {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "deny-server-ingress"},
        "spec": {"podSelector": {"matchLabels": {"app": "server"}}, "policyTypes": ["Ingress"]},
    }
    node_cluster.apply(deny, namespace=node_namespace)
    wait_until(
        lambda: not _http_ok(node_cluster, node_namespace, "client", ip),
        timeout=30,
        what="the policy drops the connection",
    )
    # Removing the policy opens the path again.
    node_cluster.kubectl("delete", "networkpolicy", "deny-server-ingress", "-n", node_namespace)
    wait_until(
        lambda: _http_ok(node_cluster, node_namespace, "client", ip),
        timeout=30,
        what="the connection works again without the policy",
    )


@contextlib.contextmanager
def routed_namespace(address: str) -> Iterator[str]:
    """A network namespace holding `address`, reachable from the host only through a veth
    route this function installs (checked before use), with an HTTP server on port 8080."""
    suffix = os.urandom(3).hex()
    netns, host_if, ns_if = f"swg-probe-{suffix}", f"swgph{suffix}", f"swgpn{suffix}"

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True)

    listener: subprocess.Popen[bytes] | None = None
    ip("netns", "add", netns)
    try:
        ip("link", "add", host_if, "type", "veth", "peer", "name", ns_if, "netns", netns)
        ip("link", "set", host_if, "up")
        ip("-n", netns, "link", "set", "lo", "up")
        ip("-n", netns, "addr", "add", f"{address}/32", "dev", ns_if)
        ip("-n", netns, "link", "set", ns_if, "up")
        ip("-n", netns, "route", "add", "default", "dev", ns_if)
        ip("route", "add", f"{address}/32", "dev", host_if)
        www = Path(f"/tmp/{netns}")
        www.mkdir()
        (www / "index.html").write_text("served\n")
        listener = subprocess.Popen(
            ["ip", "netns", "exec", netns, "busybox", "httpd", "-f", "-p", "8080", "-h", str(www)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        yield host_if
    finally:
        if listener is not None:
            listener.kill()
            listener.wait()
        subprocess.run(["ip", "route", "del", f"{address}/32"], capture_output=True, check=False)
        subprocess.run(["ip", "link", "del", host_if], capture_output=True, check=False)
        subprocess.run(["ip", "netns", "del", netns], capture_output=True, check=False)
        shutil.rmtree(f"/tmp/{netns}", ignore_errors=True)


def _drop_counter() -> int:
    listed = hostnet.run([*hostnet.IPT, "-L", hostnet.FORWARD_CHAIN, "-v", "-x", "-n"]).stdout
    total = 0
    for line in listed.splitlines():
        cols = line.split()
        if len(cols) > 3 and cols[2] == "DROP":
            total += int(cols[0])
    return total


def test_forward_guard_drops_pod_traffic_leaving_the_machine(
    node_cluster: ControlPlane, node_namespace: str
) -> None:
    assert hostnet.guard_in_place()
    for rule in hostnet.guard_rules(hostnet.POD_SUBNET, "10.96.0.0/16"):
        hostnet.run([*hostnet.IPT, "-C", *rule])
    nat = hostnet.run(["iptables", "-w", "-t", "nat", "-S"]).stdout
    assert "MASQUERADE" not in "\n".join(
        line for line in nat.splitlines() if "-o eth" in line or hostnet.POD_SUBNET in line
    )
    run_pods(node_cluster, node_namespace, pod("escaper", "sleep 3600"))
    with routed_namespace(OFF_MACHINE_ADDRESS) as host_if:
        route = subprocess.run(
            ["ip", "route", "get", OFF_MACHINE_ADDRESS], capture_output=True, text=True, check=True
        ).stdout
        assert f"dev {host_if}" in route, route  # never the uplink

        def host_reaches() -> bool:
            got = subprocess.run(
                ["sh", "-c", http_get_command(OFF_MACHINE_ADDRESS).replace("nc ", "busybox nc ")],
                capture_output=True,
                text=True,
                check=False,
                stdin=subprocess.DEVNULL,
            )
            return "served" in got.stdout

        # The destination answers (so the test can fail) ...
        wait_until(host_reaches, timeout=15, what="the probe namespace answers the host")
        before = _drop_counter()
        # ... but not a pod: its packets are forwarded traffic from the pod range.
        got = exec_in(
            node_cluster,
            node_namespace,
            "escaper",
            http_get_command(OFF_MACHINE_ADDRESS),
            check=False,
        )
        assert "served" not in got.stdout
        assert _drop_counter() > before


def test_kubectl_logs_and_exec(node_cluster: ControlPlane, node_namespace: str) -> None:
    token = unique_name("logline")
    run_pods(node_cluster, node_namespace, pod("talker", f"echo {token}; sleep 3600"))
    logs = wait_until(
        lambda: token in node_cluster.kubectl("logs", "talker", "-n", node_namespace).stdout,
        timeout=30,
        what="kubectl logs shows the line",
    )
    assert logs
    out = exec_in(node_cluster, node_namespace, "talker", "echo exec-$((40+2))").stdout
    assert out.strip() == "exec-42"


def test_only_one_real_node_per_machine(node_cluster: ControlPlane, tmp_path: Path) -> None:
    other = ControlPlane(tmp_path / "second", real_node=True)
    assert other.node is not None
    with pytest.raises(Exception, match="another real node is running"):
        other.node.prepare_host()
    owner: Callable[[], dict[str, object] | None] = hostnet.owner
    assert json.dumps(owner()).find(str(node_cluster.state_dir)) >= 0
