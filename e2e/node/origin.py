"""The node tier's test origin: web servers in a network namespace on this machine that tenant
proxies on the real node reach as if it were a site on the internet.

The namespace has one veth link to the host, the address ORIGIN_IP (outside every network the
operator treats as the cluster's, so a proxy's egress policy and its Squid ACLs let it through)
and one route: back to the pod subnet. The host forwards exactly two flows for it, pods to the
origin and the origin to pods, by rules put first in the real node's guard chain while the origin
runs; everything else stays as the guard has it (dropped). Nothing here can reach an address off
this machine: the namespace has no default route and the host forwards nothing else from it.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from e2e.cluster import hostnet
from e2e.dataplane.netns import NETNS_DIR, NetNamespace, join
from e2e.dataplane.origin import Origin
from e2e.dataplane.payloads import Payload, write_payloads
from e2e.dataplane.pki import TestPki, make_pki

T = TypeVar("T")

# RFC 2544's benchmarking range: never routed on the internet, outside the clusterCIDRs.
ORIGIN_IP = "198.18.0.1"
HOST_SIDE_IP = "198.18.0.2"
PREFIX = 30
HOST_LINK = "swg-origin0"
NETNS = "swg-node-origin"


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    if check and proc.returncode != 0:
        raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def forward_rules(pod_subnet: str) -> list[list[str]]:
    """The two flows the host forwards for the origin, as `iptables` rule specifications."""
    return [
        ["-i", hostnet.BRIDGE, "-o", HOST_LINK, "-s", pod_subnet, "-d", f"{ORIGIN_IP}/32",
         "-j", "ACCEPT"],
        ["-i", HOST_LINK, "-o", hostnet.BRIDGE, "-s", f"{ORIGIN_IP}/32", "-d", pod_subnet,
         "-j", "ACCEPT"],
    ]  # fmt: skip


class OriginNamespace(NetNamespace):
    """The origin's namespace: lo and one veth link whose only route leads back to the pods."""

    def __init__(self, name: str, pod_subnet: str) -> None:
        super().__init__(name)
        self.pod_subnet = pod_subnet
        self._pool: ThreadPoolExecutor | None = None

    def call(self, fn: Callable[[], T], *, timeout: float = 60.0) -> T:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=1, initializer=join, initargs=(str(NETNS_DIR / self.name),)
            )
        return self._pool.submit(fn).result(timeout=timeout)

    def routes(self) -> list[str]:
        out = _run("ip", "-n", self.name, "-4", "route", "show", "table", "main").stdout
        return [line.strip() for line in out.splitlines() if line.strip()]

    def delete(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        for rule in forward_rules(self.pod_subnet):
            while (
                _run(
                    "iptables",
                    "-w",
                    "-t",
                    hostnet.GUARD_TABLE,
                    "-D",
                    hostnet.FORWARD_CHAIN,
                    *rule,
                    check=False,
                ).returncode
                == 0
            ):
                pass
        _run("ip", "link", "delete", HOST_LINK, check=False)
        super().delete()


def _create(pod_subnet: str) -> OriginNamespace:
    if not hostnet.guard_in_place():
        raise RuntimeError("the real node's forward guard is not in place: start the node first")
    stale = OriginNamespace(NETNS, pod_subnet)
    if (NETNS_DIR / NETNS).exists() or Path(f"/sys/class/net/{HOST_LINK}").exists():
        stale.delete()
    _run("ip", "netns", "add", NETNS)
    ns = OriginNamespace(NETNS, pod_subnet)
    try:
        _run("ip", "link", "add", HOST_LINK, "type", "veth", "peer", "name", "eth0", "netns", NETNS)
        _run("ip", "addr", "add", f"{HOST_SIDE_IP}/{PREFIX}", "dev", HOST_LINK)
        _run("ip", "link", "set", HOST_LINK, "up")
        _run("ip", "-n", NETNS, "link", "set", "lo", "up")
        _run("ip", "-n", NETNS, "addr", "add", f"{ORIGIN_IP}/{PREFIX}", "dev", "eth0")
        _run("ip", "-n", NETNS, "link", "set", "eth0", "up")
        _run("ip", "-n", NETNS, "route", "add", pod_subnet, "via", HOST_SIDE_IP)
        unexpected = [r for r in ns.routes() if not r.startswith((pod_subnet, "198.18.0.0/30"))]
        if unexpected:
            raise RuntimeError(f"origin namespace has routes off the pod network: {unexpected}")
        for rule in reversed(forward_rules(pod_subnet)):
            _run(
                "iptables", "-w", "-t", hostnet.GUARD_TABLE, "-I", hostnet.FORWARD_CHAIN, "1", *rule
            )
    except BaseException:
        ns.delete()
        raise
    return ns


@dataclass(frozen=True)
class NodeSite:
    """The running origin, its payloads, its namespace and the test PKI (the origin's CA and
    certificate, which names every name given to `node_site`)."""

    origin: Origin
    payloads: dict[str, Payload]
    ns: OriginNamespace
    pki: TestPki


@contextlib.contextmanager
def node_site(workdir: Path, names: tuple[str, ...] = ("origin.test",)) -> Iterator[NodeSite]:
    """The origin serving the data-plane tier's payloads (EICAR among them) on ORIGIN_IP:80
    and :443, for as long as the context lasts."""
    payloads = write_payloads(workdir / "payloads")
    pki = make_pki(workdir / "pki", names)
    ns = _create(hostnet.POD_SUBNET)
    try:
        origin = Origin(ns, payloads, cert=pki.origin_cert, key=pki.origin_key)
        try:
            yield NodeSite(origin, payloads, ns, pki)
        finally:
            origin.close()
    finally:
        ns.delete()


@contextlib.contextmanager
def node_origin(
    workdir: Path, names: tuple[str, ...] = ("origin.test",)
) -> Iterator[tuple[Origin, dict[str, Payload]]]:
    """`node_site`'s origin and payloads."""
    with node_site(workdir, names) as site:
        yield site.origin, site.payloads
