"""The product as a platform team gets it, on the local cluster's real node: the images built
here (`make images`) imported into the node's containerd, and the operator installed by
`helm upgrade --install` of charts/swg-operator, running as a pod with the chart's own
ServiceAccount, probes and security context.

Used by `make up` and by the node tier. The chart's values for the local cluster are in
`local_values()`; everything else is the chart's default.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml
from devtools.images import NAMES, Layout, cache_root, read_index

from e2e.cluster import ControlPlane, hostnet
from e2e.cluster.realnode import NODE_NAME, NODE_TAINT, REAL_NODE_LABEL

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "swg-operator"
CATALOGUE_DIR = REPO_ROOT / "examples" / "catalogue"
# The platform signature set of the local cluster: the EICAR test file and nothing else (no
# public database can be downloaded here).
PLATFORM_SIGNATURES = REPO_ROOT / "e2e" / "dataplane" / "testdata" / "tenant" / "signatures"
PLATFORM_SIGNATURE_FILE = "platform-eicar.ndb"
RELEASE = "swg-operator"
NAMESPACE = "swg-system"
SIGNATURE_CONFIG_MAP = "swg-clamav-signatures"
# With the product installed, workload pods belong on the real node: the kwok nodes (fake
# kubelets, for the large-scale runs) take none.
KWOK_TAINT = "kwok.x-k8s.io/node=fake:NoSchedule"
# The local cluster has one real node of 2 CPUs; the example tenants request 1.1 and 4.35 CPUs
# as sized. The platform's over-commit ratio (docs/sizing.md) lets them all fit.
REQUESTS_PERCENT = 10
INSTALL_TIMEOUT = "5m"


class LocalInstallError(RuntimeError):
    """A step of the local install failed; the message says which and what to run."""


def image_archives() -> list[Path]:
    """The four images' tars from the index `make images` writes; a clear error if missing."""
    layout = Layout(cache_root())
    index = read_index(layout.index)
    by_name = {entry.name: entry for entry in index.images.values()}
    archives: list[Path] = []
    missing: list[str] = []
    for name in NAMES:
        entry = by_name.get(name)
        if entry is None or not Path(entry.archive).is_file():
            missing.append(name)
            continue
        archives.append(Path(entry.archive))
    if missing:
        raise LocalInstallError(
            f"images not built: {', '.join(missing)} (run `make images`; index {layout.index})"
        )
    return archives


def local_values(plane: ControlPlane) -> dict[str, Any]:
    """The chart's values for the local cluster: only what differs from the defaults."""
    api_server = f"{hostnet.BRIDGE_IP}/32"
    return {
        "nodeSelector": {REAL_NODE_LABEL: "true"},
        "dataplane": {
            # No load balancer here: clients are pods of the cluster.
            "proxyServiceType": "ClusterIP",
            # The API server dials pods (log downloads) from the pod bridge's gateway.
            "apiServerCIDRs": [api_server],
            "resourceRequestsPercent": REQUESTS_PERCENT,
            "antivirus": {"signatureSource": "configMap"},
        },
        "networkPolicy": {
            "apiServer": {"cidrs": [api_server], "ports": [plane.ports.apiserver]},
        },
    }


def install_platform_objects(plane: ControlPlane) -> None:
    """What the platform team provides before the operator: its namespace, the URL catalogue
    and the platform signature ConfigMap (signatureSource configMap)."""
    plane.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}})
    catalogue = subprocess.run(
        [sys.executable, "-m", "swg_operator.cli", "catalogue", "import", "-n", NAMESPACE,
         str(CATALOGUE_DIR)],
        capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    ).stdout  # fmt: skip
    plane.kubectl("apply", "--server-side", "-f", "-", input=catalogue)
    signature = PLATFORM_SIGNATURES / PLATFORM_SIGNATURE_FILE
    plane.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": SIGNATURE_CONFIG_MAP, "namespace": NAMESPACE},
            "data": {PLATFORM_SIGNATURE_FILE: signature.read_text()},
        }
    )


def install_operator(plane: ControlPlane, *, extra: dict[str, Any] | None = None) -> None:
    """`helm upgrade --install` of the chart with the local values (and `extra` on top), and
    wait until the operator pod is Ready by its own readiness probe."""
    if plane.node is None:
        raise LocalInstallError("the local install needs the real node (make cluster-up)")
    values = _merge(local_values(plane), extra or {})
    values_file = plane.state_dir / "swg-operator-values.yaml"
    values_file.write_text(yaml.safe_dump(values, sort_keys=False))
    result = plane.helm(
        "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--values", str(values_file), "--wait", "--timeout", INSTALL_TIMEOUT,
        check=False,
    )  # fmt: skip
    if result.returncode != 0:
        pods = plane.kubectl("get", "pods", "-n", NAMESPACE, "-o", "wide", check=False).stdout
        raise LocalInstallError(
            f"helm upgrade --install {RELEASE} failed: {result.stderr.strip()}\n{pods}"
        )


def operator_pod(plane: ControlPlane) -> dict[str, Any] | None:
    """The running operator pod of the release, if any."""
    listed = plane.kubectl_json(
        "get", "pods", "-n", NAMESPACE, "-l", f"app.kubernetes.io/instance={RELEASE}"
    )
    running = [p for p in listed.get("items", []) if p["status"].get("phase") == "Running"]
    return running[0] if running else None


def install(plane: ControlPlane, *, extra: dict[str, Any] | None = None) -> None:
    """Images into the node, the platform's objects, then the chart."""
    if plane.node is None:
        raise LocalInstallError("the local install needs the real node (make cluster-up)")
    began = time.monotonic()
    plane.node.load_images(image_archives())
    print(f"Images imported into the real node in {time.monotonic() - began:.1f}s")
    schedule_on_the_real_node(plane)
    install_platform_objects(plane)
    began = time.monotonic()
    install_operator(plane, extra=extra)
    pod = operator_pod(plane)
    where = pod["spec"].get("nodeName") if pod else "?"
    print(f"Operator installed by helm in {time.monotonic() - began:.1f}s (pod on node {where})")


def schedule_on_the_real_node(plane: ControlPlane) -> None:
    """The project's images are on the real node: lift its taint, and taint the kwok nodes so
    that tenant pods (which tolerate nothing) run where their processes really start."""
    taint = f"{NODE_TAINT['key']}={NODE_TAINT['value']}:{NODE_TAINT['effect']}"
    plane.kubectl("taint", "node", NODE_NAME, f"{taint}-", check=False)
    plane.kubectl("taint", "nodes", "-l", "type=kwok", KWOK_TAINT, "--overwrite")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(base))
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out
