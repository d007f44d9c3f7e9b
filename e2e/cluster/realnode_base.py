"""The real node's settings (names, addresses, host paths), its binaries, and `NodeBase`:
the state every part of `e2e.cluster.realnode.RealNode` shares (directories, ports, the host
processes it started, saved sysctls) with its paths, log files and state file."""

from __future__ import annotations

import base64
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml
from devtools.binaries import cache_dir, pinned_version

from e2e.cluster import processes
from e2e.cluster.pki import KeyPair

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


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


def kubeconfig_for(server: str, ca: Path, client: KeyPair, user: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "swg-local",
                "cluster": {"server": server, "certificate-authority-data": b64_file(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64_file(client.cert),
                    "client-key-data": b64_file(client.key),
                },
            }
        ],
        "contexts": [{"name": "swg-local", "context": {"cluster": "swg-local", "user": user}}],
        "current-context": "swg-local",
    }
    return yaml.safe_dump(config, sort_keys=False)


class NodeBase:
    """What the parts of `RealNode` share: its directories, state file and host processes."""

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

    def _write(self, relative: str, text: str, *, mode: int = 0o644) -> Path:
        path = self.dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=mode, exist_ok=True)
        path.chmod(mode)
        path.write_text(text)
        return path
