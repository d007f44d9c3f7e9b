"""What the real node's tenant tests (e2e/test_node_tenants.py, e2e/test_node_access.py,
e2e/test_node_content.py, e2e/test_node_directory.py) share: the two tenants and their clients,
the clients' and admins' namespaces (`make_namespaces`, `clean_up`), client pods and the Python
scripts they run (fetch through a proxy, a TCP connect, a request loop), a tenant manifest, and
a tenant's log records as its admin downloads them (`admin_records`)."""

from __future__ import annotations

import json
import os
import textwrap
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from e2e import local_install
from e2e.cluster import ControlPlane, service_account_kubeconfig, unique_name, wait_until
from e2e.cluster.realnode import REAL_NODE_LABEL
from e2e.dataplane.payloads import Payload
from swg_operator.commands.logs import kubectl_main

CLIENT_IMAGE = "ghcr.io/swg-operator/logstore:0.1.0"  # has Python: the clients' HTTP tool
POD_TIMEOUT = 180.0
READY_TIMEOUT = 420.0
DENIED_DOMAIN = "denied.test"
PROXY_PORT = 3128


@dataclass(frozen=True)
class Tenants:
    cluster: ControlPlane
    a: str
    b: str
    admins_ns: str
    client_ns: str
    client_in_ip: str
    client_out_ip: str
    payloads: dict[str, Payload]
    workdir: Path

    @property
    def ns_a(self) -> str:
        return f"swg-{self.a}"

    @property
    def ns_b(self) -> str:
        return f"swg-{self.b}"


def client_pod(name: str, *, serve: int | None = None) -> dict[str, Any]:
    """A client that idles (tests exec Python in it), or serves HTTP on port `serve`
    (restricted Pod Security either way)."""
    command = (
        ["python", "-m", "http.server", str(serve), "--directory", "/tmp"]
        if serve
        else ["python", "-c", "import time; time.sleep(86400)"]
    )
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "nodeSelector": {REAL_NODE_LABEL: "true"},
            "terminationGracePeriodSeconds": 1,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 10001,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "client",
                    "image": CLIENT_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "command": command,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                    "resources": {
                        "requests": {"cpu": "10m", "memory": "32Mi"},
                        "limits": {"cpu": "200m", "memory": "128Mi"},
                    },
                }
            ],
        },
    }


def installed_with_clients(cluster: ControlPlane, prefix: str) -> tuple[str, str]:
    """The operator installed (`local_install`), and two new namespaces made: the clients' (for
    client pods) and the admins' (for their ServiceAccounts), named after `prefix`."""
    local_install.install(cluster)
    client_ns = unique_name(f"{prefix}-clients")
    admins_ns = unique_name(f"{prefix}-admins")
    make_namespaces(cluster, client_ns, admins_ns)
    return client_ns, admins_ns


def make_namespaces(cluster: ControlPlane, *names: str) -> None:
    """The clients' and the admins' namespaces, each once its default ServiceAccount exists (a
    pod is refused before)."""
    for ns in names:
        cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
        wait_until(
            lambda ns=ns: (  # type: ignore[misc]
                cluster.kubectl("get", "sa", "default", "-n", ns, check=False).returncode == 0
            ),
            timeout=60,
            what=f"ServiceAccount {ns}/default",
        )


def clean_up(cluster: ControlPlane, tenants: Iterable[str], namespaces: Iterable[str]) -> None:
    """Delete the tests' tenants, then their namespaces, without waiting; nothing when
    $SWG_E2E_KEEP_NODE is set (to look at them after the run)."""
    if os.environ.get("SWG_E2E_KEEP_NODE"):
        return
    for name in tenants:
        cluster.kubectl("delete", "swg", name, "--wait=false", check=False)
    for ns in namespaces:
        cluster.kubectl("delete", "namespace", ns, "--wait=false", check=False)


def run_pod(cluster: ControlPlane, namespace: str, pod: dict[str, Any]) -> dict[str, Any]:
    name = pod["metadata"]["name"]
    cluster.apply(pod, namespace=namespace)

    def ready() -> dict[str, Any] | None:
        obj = cluster.kubectl_json("get", "pod", name, "-n", namespace)
        conditions = obj.get("status", {}).get("conditions", [])
        ok = any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)
        return obj if ok else None

    def describe() -> str:
        return cluster.kubectl("describe", "pod", name, "-n", namespace, check=False).stdout

    result: dict[str, Any] = wait_until(
        ready, timeout=POD_TIMEOUT, what=f"pod {namespace}/{name} Ready", describe=describe
    )
    return result


# Runs in a client pod: one request through a proxy, prints JSON {status, body | error}.
FETCH = textwrap.dedent(
    """
    import json, sys, urllib.request, urllib.error
    proxy, url = sys.argv[1], sys.argv[2]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
    try:
        with opener.open(url, timeout=20) as r:
            print(json.dumps({"status": r.status, "body": r.read(4096).decode("latin-1")}))
    except urllib.error.HTTPError as e:
        print(json.dumps({"status": e.code, "body": e.read(4096).decode("latin-1")}))
    except Exception as e:
        print(json.dumps({"status": None, "error": repr(e)}))
    """
)

# Runs in a client pod: can a TCP connection to argv[1]:argv[2] be opened within argv[3]
# seconds? prints "open" or "closed: <error>".
CONNECT = textwrap.dedent(
    """
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], int(sys.argv[2])), float(sys.argv[3])).close()
        print("open")
    except OSError as e:
        print(f"closed: {e!r}")
    """
)

# Runs in a client pod: requests through the proxy in a loop for N seconds; prints counts.
LOOP = textwrap.dedent(
    """
    import json, sys, time, urllib.request, urllib.error
    proxy, url, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
    ok, failed, errors = 0, 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            with opener.open(url, timeout=10) as r:
                r.read()
                ok += 1
        except Exception as e:
            failed += 1
            errors.append(repr(e)[:200])
        time.sleep(0.1)
    print(json.dumps({"ok": ok, "failed": failed, "errors": errors[:5]}))
    """
)


def py(cluster: ControlPlane, namespace: str, pod: str, script: str, *args: str) -> str:
    result = cluster.kubectl(
        "exec", pod, "-n", namespace, "--", "python", "-c", script, *args, timeout=600
    )
    return result.stdout.strip()


def fetch(t: Tenants, pod: str, url: str) -> dict[str, Any]:
    proxy = f"http://proxy.{t.ns_a}.svc:{PROXY_PORT}"
    out = py(t.cluster, t.client_ns, pod, FETCH, proxy, url)
    result: dict[str, Any] = json.loads(out)
    return result


def can_connect(t: Tenants, namespace: str, pod: str, address: str, port: int) -> bool:
    return py(t.cluster, namespace, pod, CONNECT, address, str(port), "3") == "open"


def pod_ips(cluster: ControlPlane, namespace: str, component: str) -> list[str]:
    listed = cluster.kubectl_json(
        "get", "pods", "-n", namespace, "-l", f"app.kubernetes.io/component={component}"
    )
    return [
        p["status"]["podIP"]
        for p in listed.get("items", [])
        if p["status"].get("phase") == "Running" and p["status"].get("podIP")
    ]


def tenant(name: str, *, allowed: list[str], admin: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "serviceCode": f"SWG-{abs(hash(name)) % 10_000_000:07d}",
        "sizing": {"endpoints": 50, "requestsPerSecond": 20},
        "clients": {"allowedCIDRs": allowed},
        "urlFiltering": {"deny": {"domains": [f".{DENIED_DOMAIN}"]}},
        "antivirus": {"enabled": True, "failOpen": False},
        "admins": [{"kind": "User", "name": admin}],
        "cancellation": {"purgeAfterDays": 0},
        **spec,
    }
    return {
        "apiVersion": "swg.dev/v1alpha1",
        "kind": "SecureWebGateway",
        "metadata": {"name": name},
        "spec": body,
    }


def admin_records(
    cluster: ControlPlane,
    name: str,
    *,
    admins_ns: str,
    workdir: Path,
    log_type: str,
    found: Callable[[dict[str, Any]], bool],
    capsys: pytest.CaptureFixture[str],
) -> list[dict[str, Any]]:
    """The records of one log of tenant `name`'s store that `found` picks, downloaded by its
    first admin (a ServiceAccount of `admins_ns`) with `kubectl swg logs`, waiting until there
    are some."""
    admin = cluster.kubectl_json("get", "swg", name)["spec"]["admins"][0]["name"]
    account = admin.rsplit(":", 1)[-1]
    kubeconfig = service_account_kubeconfig(
        cluster, namespace=admins_ns, name=account, path=workdir / f"{account}.kubeconfig"
    )
    out = workdir / f"{name}-{log_type}.ndjson"
    seen: list[str] = []

    def downloaded() -> list[dict[str, Any]] | None:
        out.unlink(missing_ok=True)
        argv = ["logs", name, "--type", log_type, "--kubeconfig", str(kubeconfig)]
        code = kubectl_main([*argv, "-q", "--file", str(out)])
        seen[:] = [f"exit {code}: {capsys.readouterr().err.strip()[-500:]}"]
        if code != 0 or not out.exists():
            return None
        records = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
        seen.extend(json.dumps(r) for r in records[-20:])
        return [r for r in records if found(r)] or None

    records: list[dict[str, Any]] = wait_until(
        downloaded,
        timeout=180,
        what=f"{log_type} records in {name}'s log store",
        describe=lambda: "\n".join(seen),
    )
    return records
