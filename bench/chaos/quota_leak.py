"""Reproducer: a client killed during a create leaks a ResourceQuota charge.

`python -m bench.chaos.quota_leak [--tries 40]` starts a local control plane of its own, makes
`tries` namespaces each with a ResourceQuota that admits exactly one PersistentVolumeClaim (as
the operator's tenant quota does), then sends each a PVC create and drops the connection a few
milliseconds later, as an operator SIGKILLed in the middle of an apply would. The API server
charges the quota at admission; when the dropped request then fails to store the object, the
charge stays until kube-controller-manager's next full quota resync
(`--resource-quota-sync-period`, 5 minutes by default). In that window a new create of the claim
is refused: `exceeded quota: ..., requested: persistentvolumeclaims=1, used:
persistentvolumeclaims=1, limited: persistentvolumeclaims=1`. This is what the chaos test found.

It prints how many namespaces ended with a charge but no claim, and shows one refused create.
"""

from __future__ import annotations

import argparse
import json
import random
import socket
import ssl
import struct
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from e2e.cluster import ControlPlane, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]


def _claim(namespace: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": "logstore-data", "namespace": namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }


def _abandoned_create(plane: ControlPlane, namespace: str, after: float) -> None:
    """POST the claim, then close the connection `after` seconds later without reading."""
    pki = plane.pki_dir
    context = ssl.create_default_context(cafile=str(pki / "ca.crt"))
    context.load_cert_chain(str(pki / "admin.crt"), str(pki / "admin.key"))
    body = json.dumps(_claim(namespace)).encode()
    request = (
        f"POST /api/v1/namespaces/{namespace}/persistentvolumeclaims HTTP/1.1\r\n"
        f"Host: 127.0.0.1:{plane.ports.apiserver}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    with (
        socket.create_connection(("127.0.0.1", plane.ports.apiserver)) as raw,
        context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.sendall(request)
        time.sleep(after)
        # Closed with a reset, as the kernel closes the sockets of a killed process that still
        # had unread data.
        tls.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos.quota_leak", description=__doc__)
    parser.add_argument("--tries", type=int, default=40)
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".local" / "quota-leak")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)  # noqa: S311 - timing jitter, not crypto
    plane = ControlPlane(args.dir.resolve())
    plane.stop()
    plane.start()
    try:
        names = [f"leak-{i:03d}" for i in range(args.tries)]
        for name in names:
            plane.apply(
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                {
                    "apiVersion": "v1",
                    "kind": "ResourceQuota",
                    "metadata": {"name": "tenant-quota", "namespace": name},
                    "spec": {"hard": {"persistentvolumeclaims": "1", "requests.storage": "1Gi"}},
                },
            )
        wait_until(
            lambda: all(
                plane.kubectl(
                    "get", "resourcequota", "tenant-quota", "-n", n, "-o", "jsonpath={.status.hard}"
                ).stdout
                for n in names
            ),
            timeout=60,
            what="quota status",
        )
        for name in names:
            _abandoned_create(plane, name, rng.uniform(0.0, 0.02))
        time.sleep(3.0)
        leaked = []
        for name in names:
            claims = plane.kubectl_json("get", "pvc", "-n", name)["items"]
            used = plane.kubectl(
                "get",
                "resourcequota",
                "tenant-quota",
                "-n",
                name,
                "-o",
                "jsonpath={.status.used.persistentvolumeclaims}",
            ).stdout
            if not claims and used == "1":
                leaked.append(name)
        print(f"{len(leaked)} of {len(names)} namespaces: quota charged, no claim: {leaked[:10]}")
        if leaked:
            refused = plane.kubectl(
                "create", "-f", "-", input=json.dumps(_claim(leaked[0])), check=False
            )
            print(
                f"A new create in {leaked[0]}: {refused.stderr.strip() or refused.stdout.strip()}"
            )
        return 0 if leaked else 1
    finally:
        plane.stop()


if __name__ == "__main__":
    sys.exit(main())
