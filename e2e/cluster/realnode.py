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
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from devtools.binaries import cache_dir, pinned_version

from e2e.cluster import hostnet, images, processes
from e2e.cluster.client import Cluster, wait_until
from e2e.cluster.nodes import REGION_LABEL, ZONE_LABEL
from e2e.cluster.pki import KeyPair, issue

NODE_NAME = "swg-node"
REGION = "region-local"
ZONE = "region-local-1"
REAL_NODE_LABEL = "swg.dev/real-node"
# Until the project's images are loaded into the node, only pods that tolerate this taint land on
# it (the node's own pods and the node tier's); the kwok nodes keep running everything else.
NODE_TAINT = {"key": REAL_NODE_LABEL, "value": "true", "effect": "NoSchedule"}
TOLERATION = {"key": REAL_NODE_LABEL, "operator": "Exists", "effect": "NoSchedule"}
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
STORAGE_CLASS = "local-path"
PROVISIONER = "rancher.io/local-path"
LOCAL_PATH_NAMESPACE = "local-path-storage"
HOST_COMPONENTS = (
    "containerd",
    "kubelet",
    "kube-proxy",
    "kube-router",
    "local-path-provisioner",
)
SHIM = "containerd-shim-runc-v2"
RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"
BUSYBOX = Path("/bin/busybox")
IMAGE_REGISTRY = "swg.local"
BUSYBOX_IMAGE = f"{IMAGE_REGISTRY}/busybox:1.35.0"
# The shim's socket path must fit a unix socket (containerd: at most 42 characters of dir).
MAX_SOCKET_DIR = 42
CGROUP_ROOT = Path("/sys/fs/cgroup")
# Fixed host paths no option moves: libcni's result cache (containerd sets no cache dir) and
# kubelet's device-plugin socket. `down` removes our entries, and the folders if we made them.
FIXED_HOST_PATHS = (Path("/var/lib/cni"), Path("/var/lib/kubelet"))
FIXED_HOST_FILES = (
    "/var/lib/cni/results/swg-*",
    "/var/lib/cni/results/cni-loopback-*",
    "/var/lib/kubelet/device-plugins/kubelet.sock",
)
LOG_TAIL_LINES = 25
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class RealNodeError(RuntimeError):
    """The real node failed to start or stop; the message names the component and its log."""


@dataclass(frozen=True)
class NodeBinaries:
    kubelet: Path
    kube_proxy: Path
    containerd: Path
    ctr: Path
    shim: Path
    coredns: Path
    kube_router: Path
    local_path: Path
    pause: Path

    @classmethod
    def from_cache(cls, kubernetes_version: str, root: Path | None = None) -> NodeBinaries:
        bin_root = (root or cache_dir()) / "bin"
        version = pinned_version
        k8s = bin_root / f"kubernetes-node-{kubernetes_version}"
        containerd = bin_root / f"containerd-{version('CONTAINERD_VERSION')}"
        pause_dirs = sorted(bin_root.glob("pause-*/pause"))
        return cls(
            kubelet=k8s / "kubelet",
            kube_proxy=k8s / "kube-proxy",
            containerd=containerd / "containerd",
            ctr=containerd / "ctr",
            shim=containerd / SHIM,
            coredns=bin_root / f"coredns-{version('COREDNS_VERSION')}" / "coredns",
            kube_router=bin_root / f"kube-router-{version('KUBE_ROUTER_VERSION')}" / "kube-router",
            local_path=bin_root
            / f"local-path-provisioner-{version('LOCAL_PATH_VERSION')}"
            / "local-path-provisioner",
            pause=pause_dirs[-1] if pause_dirs else bin_root / "pause-missing" / "pause",
        )

    def require(self) -> NodeBinaries:
        missing = [f"{name} ({path})" for name, path in self.__dict__.items() if not path.exists()]
        for tool in (RUNC, f"{CNI_BIN_DIR}/bridge", str(BUSYBOX), "/usr/sbin/iptables"):
            if not Path(tool).exists():
                missing.append(f"{tool} (Debian package: make deps)")
        if missing:
            raise RealNodeError(
                "missing for the real node: "
                + ", ".join(missing)
                + "; build them with `e2e/cluster/build-binaries.sh node` (make setup)"
            )
        return self


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_for(server: str, ca: Path, client: KeyPair, user: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "swg-local",
                "cluster": {"server": server, "certificate-authority-data": _b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": _b64(client.cert),
                    "client-key-data": _b64(client.key),
                },
            }
        ],
        "contexts": [{"name": "swg-local", "context": {"cluster": "swg-local", "user": user}}],
        "current-context": "swg-local",
    }
    return yaml.safe_dump(config, sort_keys=False)


class RealNode:
    """The real worker node of the control plane in `state_dir` (see the module docstring)."""

    def __init__(
        self,
        state_dir: Path,
        *,
        kubernetes_version: str,
        service_cidr: str,
        start_timeout: float = 240.0,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.dir = self.state_dir / "node"
        self.logs_dir = self.state_dir / "logs"
        self.state_file = self.dir / "state.json"
        self.service_cidr = service_cidr
        self.start_timeout = start_timeout
        self.binaries = NodeBinaries.from_cache(kubernetes_version)
        self.image_cache = cache_dir() / "images"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._records: list[processes.ProcessRecord] = []
        self._sysctls: dict[str, str] = {}
        self._ports: dict[str, int] = {}

    # ------------------------------------------------------------------ paths

    @property
    def containerd_dir(self) -> Path:
        return self.dir / "containerd"

    @property
    def socket(self) -> Path:
        return self.containerd_dir / "containerd.sock"

    @property
    def volumes_dir(self) -> Path:
        """Where local-path-provisioner puts PersistentVolumes (one directory each)."""
        return self.dir / "volumes"

    def _shim_socket_dir(self) -> Path:
        own = self.containerd_dir / "s"
        if len(str(own)) <= MAX_SOCKET_DIR:
            return own
        # A long state dir: a short directory of ours instead, removed by `down`.
        return Path("/run/swg-operator/s")

    def log(self, name: str) -> Path:
        return self.logs_dir / f"{name}.log"

    # ------------------------------------------------------------------ images

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
                f"containerd log {self.log('containerd')}:\n{_tail(self.log('containerd'))}"
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

    def _save_state(self) -> None:
        state = {
            "processes": [r.to_json() for r in self._records],
            "sysctls": self._sysctls,
            "ports": self._ports,
        }
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps(state, indent=2) + "\n")

    def _load_state(self) -> None:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return
        self._records = [processes.ProcessRecord.from_json(p) for p in state.get("processes", [])]
        self._sysctls = dict(state.get("sysctls", {}))
        self._ports = dict(state.get("ports", {}))

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
                f"--- {r.name} ({self.log(r.name)})\n{_tail(self.log(r.name))}"
                for r in self._records
            )
            raise RealNodeError(f"real node: {err}\n{tails}") from None

    def _assert_alive(self) -> None:
        for record in self._records:
            proc = self._children.get(record.pid)
            if proc is not None and proc.poll() is not None:
                raise RealNodeError(
                    f"{record.name} exited with code {proc.returncode}; last lines of "
                    f"{self.log(record.name)}:\n{_tail(self.log(record.name))}"
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

    def _write(self, relative: str, text: str, *, mode: int = 0o644) -> Path:
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=mode, exist_ok=True)
        path.chmod(mode)
        path.write_text(text)
        return path

    # ------------------------------------------------------------------ configuration

    def _certificates(self, ca: KeyPair, pki_dir: Path) -> dict[str, KeyPair]:
        directory = self.dir / "pki"
        directory.mkdir(parents=True, exist_ok=True)
        directory.chmod(0o700)
        return {
            "kubelet": issue(
                ca, directory, "kubelet", subject=f"/O=system:nodes/CN=system:node:{NODE_NAME}"
            ),
            "kubelet-serving": issue(
                ca,
                directory,
                "kubelet-serving",
                subject=f"/CN={NODE_NAME}",
                server=True,
                sans=(f"DNS:{NODE_NAME}", f"IP:{hostnet.BRIDGE_IP}"),
            ),
            "kube-proxy": issue(ca, directory, "kube-proxy", subject="/CN=system:kube-proxy"),
            "local-path": issue(
                ca, directory, "local-path", subject="/CN=swg-local-path-provisioner"
            ),
            "kube-router": issue(ca, directory, "kube-router", subject="/CN=swg-kube-router"),
        }

    def _containerd_config(self, pause_image: str) -> Path:
        c = self.containerd_dir
        shim_dir = self._shim_socket_dir()
        cri_runtime = 'plugins."io.containerd.cri.v1.runtime"'
        text = f"""\
version = 3
root = "{c / "root"}"
state = "{c / "state"}"
temp = "{c / "tmp"}"
# No NRI socket in /var/run/nri, no /opt/containerd, no snapshotters needing cgo.
disabled_plugins = [
  "io.containerd.nri.v1.nri",
  "io.containerd.internal.v1.opt",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing",
]

[grpc]
  address = "{self.socket}"

[ttrpc]
  address = "{c / "containerd.sock.ttrpc"}"

[debug]
  address = "{c / "debug.sock"}"
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.shim.v1.manager"]
  socket_dir = "{shim_dir}"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "overlayfs"

[plugins."io.containerd.cri.v1.images".pinned_images]
  sandbox = "{pause_image}"

[{cri_runtime}]
  # No CAP_SYS_RESOURCE here: a negative oom_score_adj would fail every sandbox.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_unprivileged_ports = false

[{cri_runtime}.containerd]
  default_runtime_name = "runc"

[{cri_runtime}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[{cri_runtime}.containerd.runtimes.runc.options]
  BinaryName = "{RUNC}"
  Root = "{c / "runc"}"
  SystemdCgroup = false

[{cri_runtime}.cni]
  bin_dirs = ["{CNI_BIN_DIR}"]
  conf_dir = "{self.dir / "cni" / "net.d"}"
  max_conf_num = 1
"""
        self._write_cni()
        return self._write("containerd/config.toml", text)

    def _write_cni(self) -> None:
        conflist = {
            "cniVersion": "1.0.0",
            "name": "swg",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": hostnet.BRIDGE,
                    "isGateway": True,
                    # Never masquerade: nothing leaves this machine (hostnet's guard drops it).
                    "ipMasq": False,
                    "hairpinMode": True,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [[{"subnet": hostnet.POD_SUBNET, "gateway": hostnet.BRIDGE_IP}]],
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.dir / "cni" / "ipam"),
                    },
                }
            ],
        }
        self._write("cni/net.d/10-swg.conflist", json.dumps(conflist, indent=2) + "\n")

    def _kubelet_args(self, kubeconfig: Path, certs: dict[str, KeyPair]) -> list[str]:
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "address": hostnet.BRIDGE_IP,
            "port": self._ports["kubelet"],
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "healthzPort": self._ports["kubelet_healthz"],
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": True},
                "x509": {"clientCAFile": str(self.state_dir / "control-plane" / "pki" / "ca.crt")},
            },
            "authorization": {"mode": "Webhook"},
            "tlsCertFile": str(certs["kubelet-serving"].cert),
            "tlsPrivateKeyFile": str(certs["kubelet-serving"].key),
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            # These machines run cgroup v1 only, with swap possibly on.
            "failCgroupV1": False,
            "cgroupDriver": "cgroupfs",
            "failSwapOn": False,
            "clusterDomain": CLUSTER_DOMAIN,
            "clusterDNS": [DNS_SERVICE_IP],
            "resolvConf": "",
            "podLogsDir": str(self.dir / "pod-logs"),
            "maxPods": 110,
            "serializeImagePulls": False,
            # Images are preloaded and cannot be pulled again: never collect them.
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "evictionHard": {
                "memory.available": "100Mi",
                "nodefs.available": "1%",
                "imagefs.available": "1%",
            },
            "rotateCertificates": False,
            "serverTLSBootstrap": False,
            "registerNode": True,
            "nodeStatusReportFrequency": "10s",
        }
        path = self._write("kubelet/config.yaml", yaml.safe_dump(config, sort_keys=False))
        labels = f"{REGION_LABEL}={REGION},{ZONE_LABEL}={ZONE},{REAL_NODE_LABEL}=true"
        return [
            str(self.binaries.kubelet),
            f"--config={path}",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={hostnet.BRIDGE_IP}",
            f"--node-labels={labels}",
            f"--register-with-taints={NODE_TAINT['key']}={NODE_TAINT['value']}:"
            f"{NODE_TAINT['effect']}",
            f"--root-dir={self.dir / 'kubelet' / 'root'}",
            f"--cert-dir={self.dir / 'kubelet' / 'pki'}",
            "--v=1",
        ]

    def _kube_proxy_args(self, kubeconfig: Path) -> list[str]:
        return [
            str(self.binaries.kube_proxy),
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            "--proxy-mode=iptables",
            f"--cluster-cidr={hostnet.POD_SUBNET}",
            # NodePorts only on the bridge, never on the uplink or on loopback.
            f"--nodeport-addresses={hostnet.POD_SUBNET}",
            "--iptables-localhost-nodeports=false",
            f"--healthz-bind-address=127.0.0.1:{self._ports['proxy_healthz']}",
            f"--metrics-bind-address=127.0.0.1:{self._ports['proxy_metrics']}",
            # Leave the host's conntrack sysctls alone.
            "--conntrack-max-per-core=0",
            "--conntrack-tcp-timeout-established=0",
            "--conntrack-tcp-timeout-close-wait=0",
            "--v=1",
        ]

    def _local_path_config(self, helper_image: str) -> dict[str, str]:
        """The ConfigMap local-path-provisioner reads (its helper pods mount the scripts)."""
        config = {
            "nodePathMap": [
                {"node": "DEFAULT_PATH_FOR_NON_LISTED_NODES", "paths": [str(self.volumes_dir)]}
            ]
        }
        helper = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "helper-pod"},
            "spec": {
                "containers": [
                    {"name": "helper-pod", "image": helper_image, "imagePullPolicy": "Never"}
                ],
                "tolerations": [{"operator": "Exists"}],
            },
        }
        return {
            "config.json": json.dumps(config, indent=2) + "\n",
            "setup": '#!/bin/sh\nset -eu\nmkdir -m 0777 -p "$VOL_DIR"\n',
            "teardown": '#!/bin/sh\nset -eu\nrm -rf "$VOL_DIR"\n',
            "helperPod.yaml": yaml.safe_dump(helper, sort_keys=False),
        }

    def _local_path_args(self, kubeconfig: Path, helper_image: str) -> list[str]:
        return [
            str(self.binaries.local_path),
            "start",
            f"--kubeconfig={kubeconfig}",
            f"--namespace={LOCAL_PATH_NAMESPACE}",
            "--configmap-name=local-path-config",
            f"--helper-image={helper_image}",
            f"--provisioner-name={PROVISIONER}",
            "--service-account-name=local-path-provisioner",
        ]

    def _kube_router_args(self, kubeconfig: Path) -> list[str]:
        return [
            str(self.binaries.kube_router),
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            # Firewall only: no routing (its GoBGP port), no service proxy (kube-proxy's job).
            "--run-firewall=true",
            "--run-router=false",
            "--run-service-proxy=false",
            "--enable-ipv4=true",
            "--enable-ipv6=false",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--health-port=0",
            "--metrics-port=0",
            "--v=1",
        ]

    def _cluster_objects(self, specs: dict[str, images.ImageSpec]) -> list[dict[str, Any]]:
        corefile = f"""\
.:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }}
    cache 5
}}
"""
        # No `forward`: names outside the cluster are not resolved (nothing leaves the host).
        node_selector = {REAL_NODE_LABEL: "true"}
        system = "kube-system"

        def rbac(
            name: str, subject: dict[str, str], rules: list[dict[str, Any]]
        ) -> list[dict[str, Any]]:
            return [
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRole",
                    "metadata": {"name": name},
                    "rules": rules,
                },
                {
                    "apiVersion": "rbac.authorization.k8s.io/v1",
                    "kind": "ClusterRoleBinding",
                    "metadata": {"name": name},
                    "roleRef": {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "ClusterRole",
                        "name": name,
                    },
                    "subjects": [subject],
                },
            ]

        def sa(namespace: str, name: str) -> dict[str, Any]:
            return {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            }

        objects: list[dict[str, Any]] = [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": LOCAL_PATH_NAMESPACE}},
            sa(LOCAL_PATH_NAMESPACE, "local-path-provisioner"),
            *rbac(
                "swg:local-path-provisioner",
                {
                    "kind": "User",
                    "name": "swg-local-path-provisioner",
                    "apiGroup": "rbac.authorization.k8s.io",
                },
                [
                    {
                        "apiGroups": [""],
                        "resources": [
                            "nodes",
                            "persistentvolumeclaims",
                            "configmaps",
                            "pods",
                            "pods/log",
                        ],
                        "verbs": ["get", "list", "watch"],
                    },
                    {"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "delete"]},
                    {
                        "apiGroups": [""],
                        "resources": ["persistentvolumes"],
                        "verbs": ["get", "list", "watch", "create", "patch", "update", "delete"],
                    },
                    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                    {
                        "apiGroups": ["storage.k8s.io"],
                        "resources": ["storageclasses"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {
                        "apiGroups": ["coordination.k8s.io"],
                        "resources": ["leases"],
                        "verbs": ["get", "list", "watch", "create", "update", "patch"],
                    },
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints"],
                        "verbs": ["get", "list", "watch", "create", "update", "patch"],
                    },
                ],
            ),
            {
                "apiVersion": "storage.k8s.io/v1",
                "kind": "StorageClass",
                "metadata": {
                    "name": STORAGE_CLASS,
                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"},
                },
                "provisioner": PROVISIONER,
                "reclaimPolicy": "Delete",
                # Bound once a pod is scheduled, on that pod's node.
                "volumeBindingMode": "WaitForFirstConsumer",
            },
            sa(system, "coredns"),
            *rbac(
                "swg:coredns",
                {"kind": "ServiceAccount", "name": "coredns", "namespace": system},
                [
                    {
                        "apiGroups": [""],
                        "resources": ["endpoints", "services", "pods", "namespaces"],
                        "verbs": ["list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["list", "watch"],
                    },
                ],
            ),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "coredns", "namespace": system},
                "data": {"Corefile": corefile},
            },
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": "coredns",
                    "namespace": system,
                    "labels": {"k8s-app": "kube-dns"},
                },
                "spec": {
                    "replicas": 1,
                    "selector": {"matchLabels": {"k8s-app": "kube-dns"}},
                    "template": {
                        "metadata": {"labels": {"k8s-app": "kube-dns"}},
                        "spec": {
                            "serviceAccountName": "coredns",
                            "nodeSelector": node_selector,
                            "tolerations": [TOLERATION],
                            "dnsPolicy": "Default",
                            "containers": [
                                {
                                    "name": "coredns",
                                    "image": specs["coredns"].name,
                                    "imagePullPolicy": "Never",
                                    "args": ["-conf", "/etc/coredns/Corefile"],
                                    "ports": [
                                        {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                        {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                    ],
                                    "readinessProbe": {
                                        "httpGet": {"path": "/ready", "port": 8181},
                                        "periodSeconds": 2,
                                    },
                                    "livenessProbe": {
                                        "httpGet": {"path": "/health", "port": 8080},
                                        "periodSeconds": 10,
                                    },
                                    "resources": {
                                        "requests": {"cpu": "50m", "memory": "64Mi"},
                                        "limits": {"memory": "170Mi"},
                                    },
                                    "securityContext": {
                                        "allowPrivilegeEscalation": False,
                                        "capabilities": {
                                            "drop": ["ALL"],
                                            "add": ["NET_BIND_SERVICE"],
                                        },
                                        "readOnlyRootFilesystem": True,
                                    },
                                    "volumeMounts": [
                                        {"name": "config", "mountPath": "/etc/coredns"}
                                    ],
                                }
                            ],
                            "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                        },
                    },
                },
            },
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": "kube-dns",
                    "namespace": system,
                    "labels": {"k8s-app": "kube-dns"},
                },
                "spec": {
                    "clusterIP": DNS_SERVICE_IP,
                    "selector": {"k8s-app": "kube-dns"},
                    "ports": [
                        {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                        {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                    ],
                },
            },
            *rbac(
                "swg:kube-router",
                {
                    "kind": "User",
                    "name": "swg-kube-router",
                    "apiGroup": "rbac.authorization.k8s.io",
                },
                [
                    {
                        "apiGroups": [""],
                        "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {
                        "apiGroups": ["networking.k8s.io"],
                        "resources": ["networkpolicies"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {
                        "apiGroups": ["discovery.k8s.io"],
                        "resources": ["endpointslices"],
                        "verbs": ["get", "list", "watch"],
                    },
                    {"apiGroups": [""], "resources": ["events"], "verbs": ["create", "patch"]},
                ],
            ),
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": "local-path-config", "namespace": LOCAL_PATH_NAMESPACE},
                "data": self._local_path_config(specs["busybox"].name),
            },
        ]
        return objects

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 15.0) -> None:
        """Stop everything the node started and remove what it added to the host (idempotent,
        also after a crash): pods' processes, shims, host processes, mounts under the node dir,
        pod cgroups, iptables and nftables rules, the bridge, sysctls, the ownership record."""
        self._load_state()
        record = hostnet.owner()
        ours = record is None or Path(str(record.get("state_dir", ""))) == self.state_dir
        marker = f"{self.dir}/"
        names = (*HOST_COMPONENTS, SHIM)
        # kubelet first (it would restart what we kill), then every pod process, then the rest.
        kubelet = [r for r in self._records if r.name == "kubelet"]
        kubelet += [r for r in processes.find_strays(marker, ("kubelet",)) if r not in kubelet]
        survivors = processes.stop(kubelet, timeout=timeout, children=self._children)
        if ours:
            self._kill_pod_processes()
        others = [r for r in self._records if r.name != "kubelet"]
        # Shims exit once their containers are gone; a pass may find ones still on their way.
        for _ in range(3):
            known = {r.pid for r in others}
            others += [r for r in processes.find_strays(marker, names) if r.pid not in known]
            survivors += processes.stop(others, timeout=timeout, children=self._children)
            others = processes.find_strays(marker, names)
            if not others:
                break
        survivors += others
        self._children.clear()
        self._records = []
        if survivors:
            listed = ", ".join(f"{r.name} (pid {r.pid})" for r in survivors)
            raise RealNodeError(f"real node: still running after SIGKILL: {listed}")
        self._unmount_all()
        if ours:
            self._remove_pod_cgroups()
            if record is not None:
                saved = record.get("sysctls")
                if isinstance(saved, dict):
                    self._sysctls.update({str(k): str(v) for k, v in saved.items()})
            hostnet.restore_sysctls(self._sysctls)  # forwarding off before the guard goes
            if self.binaries.kube_proxy.exists():
                subprocess.run(
                    [str(self.binaries.kube_proxy), "--cleanup"],
                    capture_output=True,
                    check=False,
                    timeout=60,
                )
            for tool in ("iptables", "ip6tables"):
                hostnet.remove_chains(tool)
            hostnet.remove_ipsets()
            hostnet.delete_bridge()
            shutil.rmtree("/run/swg-operator/s", ignore_errors=True)
            self._remove_fixed_host_paths(record)
            hostnet.clear_owner()
        self._sysctls = {}
        if self.dir.exists():
            self._save_state()

    @staticmethod
    def _remove_fixed_host_paths(record: dict[str, object] | None) -> None:
        for pattern in FIXED_HOST_FILES:
            for path in Path("/").glob(pattern.lstrip("/")):
                path.unlink(missing_ok=True)
        created = (record or {}).get("created_paths")
        if isinstance(created, list):
            for path in created:
                shutil.rmtree(str(path), ignore_errors=True)

    def _pod_cgroups(self) -> list[Path]:
        """Every kubepods cgroup directory, deepest first, in every hierarchy."""
        found: list[Path] = []
        if not CGROUP_ROOT.is_dir():
            return found
        for hierarchy in CGROUP_ROOT.iterdir():
            top = hierarchy / "kubepods"
            if top.is_dir():
                found += [Path(d) for d, _, _ in os.walk(top)]
        return sorted(found, key=lambda p: len(p.parts), reverse=True)

    def _kill_pod_processes(self) -> None:
        def pids() -> set[int]:
            out: set[int] = set()
            for cgroup in self._pod_cgroups():
                with contextlib.suppress(OSError):
                    out |= {int(p) for p in (cgroup / "cgroup.procs").read_text().split()}
            return out

        for pid in pids():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            wait_until(lambda: not pids(), timeout=15.0, what="pod processes gone", describe=pids)
        except TimeoutError as err:
            raise RealNodeError(f"real node: {err}") from None

    def _remove_pod_cgroups(self) -> None:
        for cgroup in self._pod_cgroups():
            with contextlib.suppress(OSError):
                cgroup.rmdir()

    def _unmount_all(self) -> None:
        prefix = f"{self.dir}/"
        for _ in range(3):
            mounts = []
            with contextlib.suppress(FileNotFoundError):
                for line in Path("/proc/self/mountinfo").read_text().splitlines():
                    point = line.split()[4].replace("\\040", " ")
                    if point.startswith(prefix) or point == str(self.dir):
                        mounts.append(point)
            if not mounts:
                return
            for point in sorted(mounts, key=len, reverse=True):
                if subprocess.run(["umount", point], capture_output=True, check=False).returncode:
                    subprocess.run(["umount", "-l", point], capture_output=True, check=False)
        raise RealNodeError(f"real node: mounts left under {self.dir}")


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
