"""A real worker node next to the kwok nodes: containerd, kubelet, kube-proxy, CoreDNS,
kube-router (NetworkPolicy) and local-path-provisioner, with pods on a bridge of their own.

Layout under the cluster's state dir (`<dir>/node/`, wiped on every fresh start):

    node/state.json             pids of the node's host processes, saved sysctls
    node/pki/                   kubelet (client, serving), kube-proxy, kube-router, local-path
    node/containerd/            config.toml, root, state, socket, shim sockets (`s/`), runc root
    node/cni/                   net.d/ (conflist) and the host-local IPAM data
    node/kubelet/               kubelet root dir, config; node/pod-logs/: container logs
    node/volumes/               local-path-provisioner's PersistentVolumes (real directories)
    logs/{containerd,kubelet,kube-proxy,kube-router,local-path-provisioner}.log

Host processes: containerd (CRI on a private socket), kubelet, kube-proxy (iptables mode),
kube-router (firewall only: it enforces NetworkPolicy with iptables and ipsets) and
local-path-provisioner (its helper pods run on the node). CoreDNS runs as a pod (`kube-system`,
labelled `k8s-app=kube-dns` as tenants' DNS policies expect, Service `kube-dns` at 10.96.0.10).
The images pods run are written here (`e2e.cluster.images`) and imported at start;
`load_images` (and `python -m e2e.cluster load-images`) imports more.

The API server listens on the bridge's gateway address (hostnet.BRIDGE_IP), which the
`kubernetes` Service's endpoints advertise, so pods reach it at 10.96.0.1:443.

The node is one class, `RealNode`, assembled from parts by concern: `realnode_base` (settings,
binaries, directories and state), `realnode_configs` (certificates, config files, command lines),
`realnode_objects` (the cluster objects it applies) and `realnode_teardown` (`stop`); this module
starts it (host preparation, processes, readiness) and imports images into it.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from e2e.cluster import hostnet, images, processes
from e2e.cluster.client import Cluster, wait_until
from e2e.cluster.pki import KeyPair
from e2e.cluster.realnode_base import (
    BUSYBOX,
    BUSYBOX_IMAGE,
    DNS_SERVICE_IP,
    FIXED_HOST_PATHS,
    HOST_COMPONENTS,
    IMAGE_REGISTRY,
    LOCAL_PATH_NAMESPACE,
    NODE_NAME,
    NODE_TAINT,
    REAL_NODE_LABEL,
    STORAGE_CLASS,
    SYSTEM_PATH,
    TOLERATION,
    NodeBinaries,
    RealNodeError,
    kubeconfig_for,
    log_tail,
)
from e2e.cluster.realnode_objects import NodeObjects
from e2e.cluster.realnode_teardown import NodeTeardown

# The names the rest of the e2e tier imports from here (settings live in realnode_base).
__all__ = [
    "BUSYBOX_IMAGE",
    "DNS_SERVICE_IP",
    "LOCAL_PATH_NAMESPACE",
    "NODE_NAME",
    "NODE_TAINT",
    "REAL_NODE_LABEL",
    "STORAGE_CLASS",
    "TOLERATION",
    "NodeBinaries",
    "RealNode",
    "RealNodeError",
    "kubeconfig_for",
    "load_images",
]


class RealNode(NodeObjects, NodeTeardown):
    """The real worker node of the control plane in `state_dir` (see the module docstring)."""

    def image_specs(self) -> dict[str, images.ImageSpec]:
        """The images the node itself needs, by role."""
        b = self.binaries
        applets = subprocess.run(
            [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
        ).stdout.split()
        return {
            "pause": images.ImageSpec(
                name=f"{IMAGE_REGISTRY}/pause:{b.pause.parent.name.removeprefix('pause-')}",
                files={"/pause": b.pause},
                entrypoint=("/pause",),
            ),
            "busybox": images.busybox_spec(BUSYBOX_IMAGE, BUSYBOX, applets),
            "coredns": images.ImageSpec(
                name=f"{IMAGE_REGISTRY}/coredns:{b.coredns.parent.name.removeprefix('coredns-')}",
                files={"/coredns": b.coredns},
                entrypoint=("/coredns",),
            ),
        }

    def ctr(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        argv = [str(self.binaries.ctr), "--address", str(self.socket), "-n", "k8s.io", *args]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RealNodeError(
                f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}\n"
                f"containerd log {self.log('containerd')}:\n{log_tail(self.log('containerd'))}"
            )
        return result

    def load_images(self, archives: Sequence[Path]) -> list[str]:
        """Import OCI or docker-archive tars into the node's containerd (namespace k8s.io).

        Pods use them with `imagePullPolicy: IfNotPresent` or `Never` (no registry is
        reachable). Returns the image names containerd now lists.
        """
        for archive in archives:
            if not Path(archive).is_file():
                raise RealNodeError(f"image archive {archive} not found")
            self.ctr("images", "import", "--no-unpack=false", str(archive), timeout=600.0)
        listed = self.ctr("images", "list", "-q").stdout.split()
        return sorted(name for name in listed if not name.startswith("sha256:"))

    # ------------------------------------------------------------------ state

    def records(self) -> list[processes.ProcessRecord]:
        self._load_state()
        return list(self._records)

    def is_healthy(self) -> bool:
        records = self.records()
        return {r.name for r in records} == set(HOST_COMPONENTS) and all(
            processes.is_alive(r) for r in records
        )

    def status(self) -> dict[str, str]:
        return processes.describe(HOST_COMPONENTS, self.records(), self.logs_dir)

    # ------------------------------------------------------------------ host network

    def prepare_host(self) -> None:
        """Before the API server starts: claim the host, guard, bridge, forwarding."""
        self.binaries.require()
        self._claim()
        self._sysctls = {}
        self.dir.mkdir(parents=True, exist_ok=True)
        hostnet.install_guard(hostnet.POD_SUBNET, self.service_cidr)
        hostnet.create_bridge()
        saved = dict(hostnet.owner() or {}).get("sysctls")
        if isinstance(saved, dict):
            self._sysctls.update({str(k): str(v) for k, v in saved.items()})
        hostnet.enable_forwarding(self._sysctls)
        created = [str(p) for p in FIXED_HOST_PATHS if not p.exists()]
        previous = dict(hostnet.owner() or {}).get("created_paths")
        if isinstance(previous, list):
            created = sorted({*created, *(str(p) for p in previous)})
        hostnet.write_owner(
            {"state_dir": str(self.state_dir), "sysctls": self._sysctls, "created_paths": created}
        )
        self._save_state()

    def _claim(self) -> None:
        record = hostnet.owner()
        if record is None:
            hostnet.write_owner({"state_dir": str(self.state_dir), "sysctls": {}})
            return
        other = Path(str(record.get("state_dir", "")))
        if other == self.state_dir:
            return
        theirs = RealNode(other, kubernetes_version="", service_cidr=self.service_cidr)
        if any(processes.is_alive(r) for r in theirs.records()):
            raise RealNodeError(
                f"another real node is running on this machine (state dir {other}); only one "
                f"can run at a time (host-global bridge {hostnet.BRIDGE} and chains): stop it "
                f"with `python -m e2e.cluster down --dir {other}`"
            )
        theirs.stop()  # a crashed one: clean its host state, then take over
        hostnet.write_owner({"state_dir": str(self.state_dir), "sysctls": {}})

    # ------------------------------------------------------------------ start

    def start(self, cluster: Cluster, *, server: str, ca: KeyPair, pki_dir: Path) -> None:
        """Start the node against the running control plane and wait until it is usable:
        Node Ready, kube-proxy's and kube-router's rules in place, CoreDNS Ready."""
        deadline = time.monotonic() + self.start_timeout
        # etcd is fresh on every start: so are the volumes (their claims are gone).
        for sub in ("containerd", "cni", "kubelet", "pki", "pod-logs", "volumes", "local-path"):
            path = self.dir / sub
            if path.exists():
                shutil.rmtree(path)
        self.volumes_dir.mkdir(parents=True, exist_ok=True)
        self._ports = dict(
            zip(
                ("kubelet", "kubelet_healthz", "proxy_healthz", "proxy_metrics"),
                processes.free_ports(4),
                strict=True,
            )
        )
        self._save_state()
        certs = self._certificates(ca, pki_dir)
        kubeconfigs = {
            name: self._write(
                f"pki/{name}.kubeconfig", kubeconfig_for(server, ca.cert, pair, user), mode=0o600
            )
            for name, (pair, user) in {
                "kubelet": (certs["kubelet"], f"system:node:{NODE_NAME}"),
                "kube-proxy": (certs["kube-proxy"], "system:kube-proxy"),
                "local-path-provisioner": (certs["local-path"], "swg-local-path-provisioner"),
                "kube-router": (certs["kube-router"], "swg-kube-router"),
            }.items()
        }
        specs = self.image_specs()
        archives = {
            role: images.cached_archive(spec, self.image_cache) for role, spec in specs.items()
        }

        self._launch(
            "containerd",
            [
                str(self.binaries.containerd),
                "--config",
                str(self._containerd_config(specs["pause"].name)),
            ],
        )
        self._wait("containerd socket", lambda: self._containerd_up(), deadline)
        self.load_images(list(archives.values()))

        cluster.apply(*self._cluster_objects(specs), field_manager="swg-cluster")
        self._launch("kubelet", self._kubelet_args(kubeconfigs["kubelet"], certs))
        self._launch("kube-proxy", self._kube_proxy_args(kubeconfigs["kube-proxy"]))
        self._launch(
            "local-path-provisioner",
            self._local_path_args(kubeconfigs["local-path-provisioner"], specs["busybox"].name),
        )
        self._wait("Node swg-node Ready", lambda: self._node_ready(cluster), deadline)
        # kube-router reads its node's address from the Node object.
        self._launch("kube-router", self._kube_router_args(kubeconfigs["kube-router"]))
        for table, chain, owner in (
            ("nat", "KUBE-SERVICES", "kube-proxy"),
            ("filter", "KUBE-ROUTER-FORWARD", "kube-router"),
        ):

            def present(t: str = table, c: str = chain) -> bool:
                listed = hostnet.run(["iptables", "-w", "-t", t, "-S", c], check=False)
                return listed.returncode == 0

            self._wait(f"{owner} rules ({table} {chain})", present, deadline)
        hostnet.ensure_guard_first()

        def system_pods() -> str:
            return cluster.kubectl("get", "pods", "-A", "-o", "wide", check=False).stdout

        self._wait(
            "deployment kube-system/coredns ready",
            lambda: self._workload_ready(cluster, "deployment", "coredns"),
            deadline,
            describe=system_pods,
        )

    def _containerd_up(self) -> bool:
        if not self.socket.exists():
            return False
        argv = [str(self.binaries.ctr), "--address", str(self.socket), "version"]
        return subprocess.run(argv, capture_output=True, check=False, timeout=10).returncode == 0

    def _node_ready(self, cluster: Cluster) -> bool:
        got = cluster.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if got.returncode != 0:
            return False
        conditions = json.loads(got.stdout).get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _workload_ready(self, cluster: Cluster, kind: str, name: str) -> bool:
        got = cluster.kubectl("get", kind, name, "-n", "kube-system", "-o", "json", check=False)
        if got.returncode != 0:
            return False
        status = json.loads(got.stdout).get("status", {})
        if kind == "daemonset":
            return int(status.get("numberReady", 0)) >= 1
        return int(status.get("readyReplicas", 0)) >= 1

    def _wait(
        self,
        what: str,
        probe: Callable[[], object],
        deadline: float,
        describe: Callable[[], object] | None = None,
    ) -> None:
        def checked() -> object:
            self._assert_alive()
            return probe()

        try:
            wait_until(
                checked,
                timeout=max(deadline - time.monotonic(), 0.0),
                what=what,
                interval=0.5,
                describe=describe,
            )
        except TimeoutError as err:
            tails = "\n".join(
                f"--- {r.name} ({self.log(r.name)})\n{log_tail(self.log(r.name))}"
                for r in self._records
            )
            raise RealNodeError(f"real node: {err}\n{tails}") from None

    def _assert_alive(self) -> None:
        for record in self._records:
            proc = self._children.get(record.pid)
            if proc is not None and proc.poll() is not None:
                raise RealNodeError(
                    f"{record.name} exited with code {proc.returncode}; last lines of "
                    f"{self.log(record.name)}:\n{log_tail(self.log(record.name))}"
                )

    def _launch(self, name: str, argv: list[str]) -> None:
        log = self.log(name)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("")
        env = {
            "PATH": f"{self.binaries.containerd.parent}:{SYSTEM_PATH}",
            "HOME": str(self.dir),
        }
        proc, record = processes.spawn(name, argv, log_path=log, env=env)
        self._children[proc.pid] = proc
        self._records.append(record)
        self._save_state()


def load_images(state_dir: Path, archives: Sequence[Path]) -> list[str]:
    """Import image tars into the running real node of `state_dir` (e.g. `.local`).

    Each archive is an OCI image layout tar or a docker-archive tar (`ctr images import`): the
    image is named by the docker-archive's RepoTags, or by the OCI index's
    `io.containerd.image.name` (else a full reference in `org.opencontainers.image.ref.name`).
    Pods use the names with `imagePullPolicy: IfNotPresent` or `Never`. Returns every image
    name the node holds. Also: `python -m e2e.cluster load-images [--dir .local] TAR...`.
    """
    from devtools.binaries import pinned_version as version

    node = RealNode(state_dir, kubernetes_version=version("K8S_VERSION"), service_cidr="")
    if not node.is_healthy():
        raise RealNodeError(f"no real node running in {node.state_dir} (make cluster-up)")
    return node.load_images(archives)
