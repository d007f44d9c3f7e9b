"""Public sites on the real node, played by the test origin (`e2e.node.origin`): their names in
the cluster's DNS, and the origin's CA trusted by the tenants' proxies as a public CA is.

* `public_names`: while the context lasts, the local cluster's CoreDNS answers the given names
  (www.google.com, the sandbox analyser's, ...) with the origin's address, by a `hosts` block
  in its Corefile (the local cluster's DNS resolves nothing outside the cluster otherwise:
  nothing leaves the host). CoreDNS is restarted to read it, and again after the original
  Corefile is put back.
* `trust_origin_ca`: a proxy checks the certificates of the sites it decrypts for and of the
  sandbox analyser against its image's CA bundle (the public CAs). Here the origin's CA plays a
  public CA: in each running proxy pod, the squid container's bundle is replaced by the image's
  own bundle plus the origin's CA (a file of the container's /tmp emptyDir bind-mounted over
  /etc/ssl/certs/ca-certificates.crt in the container's mount namespace, as the data-plane tier
  mounts its bundle), and Squid reconfigured (SIGHUP) to load it. The image, the pod spec and
  everything the operator rendered are untouched; a proxy pod started later needs it again.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from e2e.cluster import ControlPlane, wait_until

DNS_NAMESPACE = "kube-system"
COREDNS = "coredns"
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
TRUSTED_COPY = "/tmp/swg-test-ca-certificates.crt"  # the container's /tmp (an emptyDir)
SQUID_CONTAINER = "squid"
# The real node applies its cluster objects (CoreDNS among them) as this field manager.
CLUSTER_FIELD_MANAGER = "swg-cluster"


def _restart_coredns(cluster: ControlPlane) -> None:
    deployment = ("deployment", COREDNS, "-n", DNS_NAMESPACE)
    cluster.kubectl("rollout", "restart", *deployment)
    cluster.kubectl("rollout", "status", *deployment, "--timeout=180s", timeout=240)


def _corefile_with_hosts(corefile: str, names: Mapping[str, str]) -> str:
    entries = "".join(f"        {address} {name}\n" for name, address in sorted(names.items()))
    block = f"    hosts {{\n{entries}        fallthrough\n    }}\n"
    first_line_end = corefile.index("\n") + 1  # after ".:53 {"
    return corefile[:first_line_end] + block + corefile[first_line_end:]


def _set_corefile(cluster: ControlPlane, corefile: str) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": COREDNS, "namespace": DNS_NAMESPACE},
            "data": {"Corefile": corefile},
        },
        field_manager=CLUSTER_FIELD_MANAGER,
    )


@contextlib.contextmanager
def public_names(cluster: ControlPlane, names: Mapping[str, str]) -> Iterator[None]:
    """`names` (name -> address) resolved by the cluster's DNS while the context lasts."""
    original: str = cluster.kubectl_json("get", "configmap", COREDNS, "-n", DNS_NAMESPACE)["data"][
        "Corefile"
    ]
    _set_corefile(cluster, _corefile_with_hosts(original, names))
    try:
        _restart_coredns(cluster)
        yield
    finally:
        _set_corefile(cluster, original)
        _restart_coredns(cluster)


def _container_id(pod: dict[str, Any]) -> str | None:
    for status in pod.get("status", {}).get("containerStatuses", []):
        if status["name"] == SQUID_CONTAINER and status.get("state", {}).get("running"):
            container_id: str = status.get("containerID", "")
            return container_id.split("://", 1)[-1] or None
    return None


def _squid_pid(container_id: str) -> int | None:
    """The host PID of the container's Squid (its cgroup path names the container)."""
    found: list[int] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if container_id not in (proc / "cgroup").read_text():
                continue
            if (proc / "comm").read_text().strip() == "squid":
                found.append(int(proc.name))
    return min(found) if found else None


def _trust(pid: int, ca_pem: str) -> bool:
    """Add `ca_pem` to the bundle the process sees and reconfigure it; False when it already
    trusts it."""
    root = Path(f"/proc/{pid}/root")
    bundle = (root / BUNDLE.lstrip("/")).read_text()
    if ca_pem.strip() in bundle:
        return False
    copy = root / TRUSTED_COPY.lstrip("/")
    copy.write_text(bundle.rstrip("\n") + "\n" + ca_pem.strip() + "\n")
    copy.chmod(0o644)
    subprocess.run(
        ["nsenter", f"--target={pid}", "--mount", "--", "mount", "--bind", TRUSTED_COPY, BUNDLE],
        check=True,
        capture_output=True,
        timeout=30,
    )
    os.kill(pid, signal.SIGHUP)  # squid -k reconfigure
    return True


def trust_origin_ca(cluster: ControlPlane, namespace: str, ca_pem: str) -> int:
    """Every running proxy pod of `namespace` trusts `ca_pem`; returns how many were changed."""

    def pods() -> list[dict[str, Any]] | None:
        listed = cluster.kubectl_json(
            "get", "pods", "-n", namespace, "-l", "app.kubernetes.io/component=proxy"
        )["items"]
        live = [p for p in listed if not p["metadata"].get("deletionTimestamp")]
        return live if live and all(_container_id(p) for p in live) else None

    changed = 0
    for pod in wait_until(pods, timeout=180, what=f"running proxy pods in {namespace}"):
        container_id = _container_id(pod)
        assert container_id is not None
        pid = wait_until(
            lambda c=container_id: _squid_pid(c),  # type: ignore[misc]
            timeout=60,
            what=f"Squid of {pod['metadata']['name']} on this host",
        )
        changed += _trust(pid, ca_pem)
    return changed
