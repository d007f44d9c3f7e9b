"""Command line: `python -m e2e.cluster up|down|status|env|load-images|kubectl-path|helm-path`."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from devtools.binaries import Binaries, BinariesMissingError

from e2e.cluster.controlplane import ControlPlane, ControlPlaneError
from e2e.cluster.hostnet import HostNetError
from e2e.cluster.realnode import RealNodeError, load_images


def _up(plane: ControlPlane) -> int:
    began = time.monotonic()
    started = plane.start()
    elapsed = time.monotonic() - began
    if started:
        print(f"Control plane started in {elapsed:.1f}s: {plane.server}")
    else:
        print(f"Control plane already running and healthy: {plane.server}")
    print(f"  kubeconfig: {plane.kubeconfig}")
    print(f"  logs:       {plane.logs_dir}/")
    if plane.node is not None:
        print(f"  real node:  swg-node, pods on {plane.node.volumes_dir.parent}/ (see realnode.py)")
    return 0


def _load_images(plane: ControlPlane, archives: list[Path]) -> int:
    for name in load_images(plane.state_dir, archives):
        print(name)
    return 0


def _down(plane: ControlPlane) -> int:
    plane.stop()
    print(f"Control plane in {plane.state_dir} stopped; no process left.")
    return 0


def _status(plane: ControlPlane) -> int:
    report = plane.status()
    for name, state in report.items():
        print(f"{name:<24} {state}")
    return 0 if plane.is_healthy() else 1


def _env(plane: ControlPlane) -> int:
    bins = plane.binaries
    path_dirs = [str(bins.kubectl.parent), str(bins.helm.parent)]
    print(f"export KUBECONFIG={shlex.quote(str(plane.kubeconfig))}")
    print(f'export PATH={shlex.quote(":".join(path_dirs))}:"$PATH"')
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m e2e.cluster",
        description="Local Kubernetes control plane: etcd, kube-apiserver, "
        "kube-controller-manager, kube-scheduler and kwok; `up` adds a real worker node "
        "(containerd, kubelet, kube-proxy, CoreDNS, kube-router, local-path-provisioner; root) "
        "unless --no-real-node.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("up", "start the control plane and the real node, wait until usable (no-op if healthy)"),
        ("down", "stop every process of the control plane and its real node, clean the host"),
        ("status", "show each component; exit 1 unless healthy"),
        ("env", "print shell exports: KUBECONFIG and PATH with kubectl and helm"),
    ):
        sub = commands.add_parser(name, help=text)
        sub.add_argument("--dir", type=Path, default=Path(".local"), help="state directory")
        if name == "up":
            sub.add_argument(
                "--no-real-node",
                dest="real_node",
                action="store_false",
                help="kwok nodes only (no containerd, kubelet, ...; no root needed)",
            )
    sub = commands.add_parser(
        "load-images", help="import OCI or docker-archive tars into the real node's containerd"
    )
    sub.add_argument("--dir", type=Path, default=Path(".local"), help="state directory")
    sub.add_argument("archives", type=Path, nargs="+", help="image tar files")
    commands.add_parser("kubectl-path", help="print the path of the cached kubectl")
    commands.add_parser("helm-path", help="print the path of the cached helm")
    args = parser.parse_args(argv)

    if args.command == "kubectl-path":
        print(Binaries.from_cache().kubectl)
        return 0
    if args.command == "helm-path":
        print(Binaries.from_cache().helm)
        return 0
    plane = ControlPlane(args.dir, real_node=getattr(args, "real_node", False))
    actions = {"up": _up, "down": _down, "status": _status, "env": _env}
    try:
        if args.command == "load-images":
            return _load_images(plane, args.archives)
        return actions[args.command](plane)
    except (ControlPlaneError, BinariesMissingError, RealNodeError, HostNetError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
