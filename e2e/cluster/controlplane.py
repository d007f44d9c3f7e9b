"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (which plays every kubelet), with three fake Nodes in two regions.

State directory layout (`--dir`, default .local):

    kubeconfig                  admin kubeconfig (client certificate in system:masters)
    logs/<component>.log        one log per daemon, truncated on each fresh start
    control-plane/state.json    ports and pids (with start times) of the running daemons
    control-plane/pki/          CA, certificates, ServiceAccount signing key pair
    control-plane/etcd/         etcd data (a fresh cluster on every start)
    control-plane/*.kubeconfig  one per component identity
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from devtools.binaries import Binaries

from e2e.cluster import hostnet, processes
from e2e.cluster.client import Cluster, wait_until
from e2e.cluster.nodes import NODES, KwokNode
from e2e.cluster.pki import KeyPair, Pki, issue, make_pki
from e2e.cluster.realnode import LOCAL_PATH_NAMESPACE, RealNode

COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"  # first address of SERVICE_CIDR: the `kubernetes` Service
POD_CIDR = "10.244.0.0/16"  # kwok hands out fake pod IPs from here; nothing routes to them
ADMISSION_PLUGINS = (
    "NamespaceLifecycle",
    "LimitRanger",
    "ServiceAccount",
    "PodSecurity",
    "ResourceQuota",
    "NodeRestriction",
    "DefaultStorageClass",
    "DefaultTolerationSeconds",
)
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
CLUSTER_NAME = "swg-local"
# kwok's volume stages provision and bind PVCs of this class (fake hostPath PVs, nothing on disk).
DEFAULT_STORAGE_CLASS = "kwok-volume"
LOG_TAIL_LINES = 25


@dataclass(frozen=True)
class Tuning:
    """Flags for runs at scale (the provisioning benchmark). A field left None keeps the
    daemon's default, so `Tuning()`, what `make up` and the test tiers use, adds no flag.

    `client_qps`/`client_burst` are kube-controller-manager's and kube-scheduler's client rate
    limits (`--kube-api-qps`/`--kube-api-burst`, 20/30 and 50/100 by default); the controller
    manager's limit is per controller. `controller_workers` is the controller manager's workers
    per controller for the kinds a tenant makes (Deployments, ReplicaSets, quotas, namespaces,
    ServiceAccount tokens, EndpointSlices; 5 or 10 by default). The API server's in-flight limits
    (400 + 200) are the total seats API Priority and Fairness shares out. etcd refuses writes
    once its database reaches `etcd_quota_bytes` (2 GiB by default)."""

    client_qps: float | None = None
    client_burst: int | None = None
    controller_workers: int | None = None
    max_requests_inflight: int | None = None
    max_mutating_requests_inflight: int | None = None
    etcd_quota_bytes: int | None = None

    def etcd_args(self) -> list[str]:
        if self.etcd_quota_bytes is None:
            return []
        return [f"--quota-backend-bytes={self.etcd_quota_bytes}"]

    def apiserver_args(self) -> list[str]:
        args: list[str] = []
        if self.max_requests_inflight is not None:
            args.append(f"--max-requests-inflight={self.max_requests_inflight}")
        if self.max_mutating_requests_inflight is not None:
            args.append(f"--max-mutating-requests-inflight={self.max_mutating_requests_inflight}")
        return args

    def client_args(self) -> list[str]:
        """kube-controller-manager's and kube-scheduler's client rate limits."""
        args: list[str] = []
        if self.client_qps is not None:
            args.append(f"--kube-api-qps={self.client_qps:g}")
        if self.client_burst is not None:
            args.append(f"--kube-api-burst={self.client_burst}")
        return args

    def controller_manager_args(self) -> list[str]:
        args = self.client_args()
        if self.controller_workers is not None:
            args += [f"--{name}={self.controller_workers}" for name in CONTROLLER_WORKER_FLAGS]
        return args


# The controller manager's worker counts for what a tenant makes (see `Tuning`).
CONTROLLER_WORKER_FLAGS = (
    "concurrent-deployment-syncs",
    "concurrent-replicaset-syncs",
    "concurrent-resource-quota-syncs",
    "concurrent-namespace-syncs",
    "concurrent-serviceaccount-token-syncs",
    "concurrent-service-endpoint-syncs",
)


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or stop; the message names the component and its log."""


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int

    @classmethod
    def allocate(cls) -> Ports:
        return cls(*processes.free_ports(5))


def _no_proxy_opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def http_get(
    url: str, *, ca: Path | None = None, client: KeyPair | None = None, timeout: float = 3.0
) -> tuple[int, str] | None:
    """GET `url` (TLS verified against `ca`, optional client certificate); None if unreachable."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
    try:
        with _no_proxy_opener(context).open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None


def _kubeconfig(server: str, ca: Path, client: KeyPair, user: str) -> dict[str, Any]:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER_NAME,
                "cluster": {"server": server, "certificate-authority-data": b64(ca)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(client.cert),
                    "client-key-data": b64(client.key),
                },
            }
        ],
        "contexts": [{"name": CLUSTER_NAME, "context": {"cluster": CLUSTER_NAME, "user": user}}],
        "current-context": CLUSTER_NAME,
    }


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class ControlPlane(Cluster):
    """The local control plane living in `state_dir`.

    >>> cp = ControlPlane(Path(".local/e2e-cluster"))
    >>> cp.start()          # returns False when it was already running and healthy
    >>> cp.kubectl("get", "nodes")
    >>> cp.stop()           # every daemon gone, verified

    `up` and `down` from different processes work too: pids live in the state file.

    With `real_node=True` a real worker node (`e2e.cluster.realnode`) joins the kwok nodes: the
    API server then listens on the pod bridge's gateway address instead of 127.0.0.1 (pods reach
    it through the `kubernetes` Service) and the kubeconfig names that address. `stop` also
    stops a real node found in the state dir, whoever started it.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        binaries: Binaries | None = None,
        nodes: Sequence[KwokNode] = NODES,
        start_timeout: float = 180.0,
        real_node: bool = False,
        tuning: Tuning | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.tuning = tuning or Tuning()
        self.binaries = binaries or Binaries.from_cache()
        self.nodes = tuple(nodes)
        self.start_timeout = start_timeout
        self.work_dir = self.state_dir / "control-plane"
        self.logs_dir = self.state_dir / "logs"
        self.pki_dir = self.work_dir / "pki"
        self.state_file = self.work_dir / "state.json"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._records: list[processes.ProcessRecord] = []
        self._ports: Ports | None = None
        self._api_address: str | None = None
        self.node: RealNode | None = self._real_node() if real_node else None
        super().__init__(
            self.state_dir / "kubeconfig",
            kubectl=self.binaries.kubectl,
            helm=self.binaries.helm,
            local=True,
            kubectl_cache=self.work_dir / "kubectl-cache",
        )

    def _real_node(self) -> RealNode:
        return RealNode(
            self.state_dir,
            kubernetes_version=self.binaries.kubernetes_version,
            service_cidr=SERVICE_CIDR,
        )

    # ------------------------------------------------------------------ state file

    def _save_state(self) -> None:
        assert self._ports is not None
        state = {
            "ports": self._ports.__dict__,
            "api_address": self.api_address,
            "real_node": self.node is not None,
            "processes": [r.to_json() for r in self._records],
            "kubernetes_version": self.binaries.kubernetes_version,
        }
        _write_private(self.state_file, json.dumps(state, indent=2) + "\n")

    def _load_state(self) -> tuple[Ports | None, list[processes.ProcessRecord]]:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None, []
        return Ports(**state["ports"]), [
            processes.ProcessRecord.from_json(p) for p in state["processes"]
        ]

    @property
    def ports(self) -> Ports:
        if self._ports is None:
            self._ports, self._records = self._load_state()
        if self._ports is None:
            raise ControlPlaneError(f"no control plane state in {self.state_file}")
        return self._ports

    @property
    def api_address(self) -> str:
        """Where the API server listens: 127.0.0.1, or the pod bridge's gateway with a real node."""
        if self._api_address is None:
            try:
                saved = json.loads(self.state_file.read_text()).get("api_address")
            except (FileNotFoundError, json.JSONDecodeError):
                saved = None
            self._api_address = str(saved) if saved else "127.0.0.1"
        return self._api_address

    @property
    def server(self) -> str:
        """The API server URL, https://127.0.0.1:<port> (https://<bridge gateway>:<port> with a
        real node)."""
        return f"https://{self.api_address}:{self.ports.apiserver}"

    def _pki(self) -> Pki:
        d = self.pki_dir

        def pair(name: str) -> KeyPair:
            return KeyPair(d / f"{name}.crt", d / f"{name}.key")

        return Pki(
            ca=pair("ca"),
            apiserver=pair("apiserver"),
            admin=pair("admin"),
            controller_manager=pair("controller-manager"),
            controller_manager_serving=pair("controller-manager-serving"),
            scheduler=pair("scheduler"),
            scheduler_serving=pair("scheduler-serving"),
            kwok=pair("kwok"),
            service_account_key=d / "sa.key",
            service_account_pub=d / "sa.pub",
        )

    # ------------------------------------------------------------------ health

    def _apiserver_ready(self) -> bool:
        pki = self._pki()
        got = http_get(f"{self.server}/readyz", ca=pki.ca.cert, client=pki.admin)
        return got == (200, "ok")

    def records(self) -> list[processes.ProcessRecord]:
        """The daemons recorded in the state file (running or not)."""
        _, records = self._load_state()
        return records

    def status(self) -> dict[str, str]:
        """Each component's state, plus the API server's /readyz answer."""
        records = self.records()
        report = processes.describe(COMPONENTS, records, self.logs_dir)
        if records:
            report["readyz"] = "ok" if self._apiserver_ready() else "not ready"
        node = self.node or (self._real_node() if (self.state_dir / "node").exists() else None)
        if node is not None:
            report.update({f"node/{k}": v for k, v in node.status().items()})
        return report

    def is_healthy(self) -> bool:
        """Every daemon alive and /readyz answering ok."""
        records = self.records()
        names = {r.name for r in records}
        if names != set(COMPONENTS) or not all(processes.is_alive(r) for r in records):
            return False
        self._ports, self._records = self._load_state()
        self._api_address = None
        if self.node is not None and not (
            self.api_address == hostnet.BRIDGE_IP and self.node.is_healthy()
        ):
            return False
        return self._apiserver_ready()

    def listening(self) -> dict[str, list[str]]:
        """Addresses each running daemon listens on (for the loopback-only check)."""
        return {
            r.name: processes.listening_addresses(r.pid)
            for r in self.records()
            if processes.is_alive(r)
        }

    # ------------------------------------------------------------------ start

    def start(self) -> bool:
        """Start everything and wait until usable; False if it was already running and healthy.

        Usable means: /readyz ok, controller manager and scheduler healthy, every kwok Node Ready
        and the `default` ServiceAccount present in the `default` namespace.
        """
        if self.is_healthy():
            return False
        self.binaries.require()
        self.stop()
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)
        self.work_dir.chmod(0o700)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._ports = Ports.allocate()
        self._api_address = hostnet.BRIDGE_IP if self.node is not None else "127.0.0.1"
        self._records = []
        self._save_state()
        try:
            if self.node is not None:
                self.node.prepare_host()
            self._start_all()
            if self.node is not None:
                self.node.start(self, server=self.server, ca=self._pki().ca, pki_dir=self.pki_dir)
        except BaseException:
            self.stop()
            raise
        return True

    def _start_all(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        ports = self.ports
        pki = make_pki(
            self.pki_dir,
            service_ip=SERVICE_IP,
            apiserver_ips=(hostnet.BRIDGE_IP,) if self.node is not None else (),
        )
        self._write_kubeconfigs(pki)

        self._launch("etcd", self._etcd_args(ports))
        self._wait(
            "etcd /health",
            lambda: (
                (got := http_get(f"http://127.0.0.1:{ports.etcd_client}/health"))
                and got[0] == 200
                and '"health":"true"' in got[1]
            ),
            deadline,
        )
        self._launch("kube-apiserver", self._apiserver_args(ports, pki))
        self._wait("kube-apiserver /readyz", self._apiserver_ready, deadline)
        self._launch("kube-controller-manager", self._controller_manager_args(ports, pki))
        self._launch("kube-scheduler", self._scheduler_args(ports, pki))
        self._launch("kwok", self._kwok_args())

        self.apply(*(node.manifest() for node in self.nodes), field_manager="swg-cluster")
        self.apply(self._default_storage_class(), field_manager="swg-cluster")

        for name, port in (
            ("kube-controller-manager", ports.controller_manager),
            ("kube-scheduler", ports.scheduler),
        ):
            url = f"https://127.0.0.1:{port}/healthz"
            self._wait(
                f"{name} /healthz",
                lambda u=url: http_get(u, ca=pki.ca.cert) == (200, "ok"),
                deadline,
            )
        self._wait("kwok Nodes Ready", self._nodes_ready, deadline)
        self._wait(
            "ServiceAccount default/default",
            lambda: (
                self.kubectl(
                    "get", "serviceaccount", "default", "-n", "default", check=False
                ).returncode
                == 0
            ),
            deadline,
        )

    def _wait(self, what: str, probe: Any, deadline: float) -> None:
        def checked() -> object:
            self._assert_alive()
            return probe()

        try:
            wait_until(checked, timeout=max(deadline - time.monotonic(), 0.0), what=what)
        except TimeoutError as err:
            raise ControlPlaneError(f"{err}\n{self._log_tails()}") from None

    def _assert_alive(self) -> None:
        for record in self._records:
            proc = self._children.get(record.pid)
            if proc is not None and proc.poll() is not None:
                log = self.logs_dir / f"{record.name}.log"
                raise ControlPlaneError(
                    f"{record.name} exited with code {proc.returncode}; last lines of {log}:\n"
                    + _tail(log)
                )

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- {r.name} ({self.logs_dir / r.name}.log)\n{_tail(self.logs_dir / f'{r.name}.log')}"
            for r in self._records
        )

    def _launch(self, name: str, args: list[str]) -> None:
        binary = {
            "etcd": self.binaries.etcd,
            "kube-apiserver": self.binaries.kube_apiserver,
            "kube-controller-manager": self.binaries.kube_controller_manager,
            "kube-scheduler": self.binaries.kube_scheduler,
            "kwok": self.binaries.kwok,
        }[name]
        log = self.logs_dir / f"{name}.log"
        log.write_text("")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.work_dir)}
        proc, record = processes.spawn(name, [str(binary), *args], log_path=log, env=env)
        self._children[proc.pid] = proc
        self._records.append(record)
        self._save_state()

    def _component_kubeconfig(self, name: str) -> Path:
        return self.work_dir / f"{name}.kubeconfig"

    def _write_kubeconfigs(self, pki: Pki) -> None:
        server = self.server
        for path, client, user in (
            (self.kubeconfig, pki.admin, "swg-local-admin"),
            (
                self._component_kubeconfig("controller-manager"),
                pki.controller_manager,
                "system:kube-controller-manager",
            ),
            (self._component_kubeconfig("scheduler"), pki.scheduler, "system:kube-scheduler"),
            (self._component_kubeconfig("kwok"), pki.kwok, "kwok"),
        ):
            _write_private(
                path,
                yaml.safe_dump(_kubeconfig(server, pki.ca.cert, client, user), sort_keys=False),
            )

    # ------------------------------------------------------------------ flags

    def _etcd_args(self, ports: Ports) -> list[str]:
        client = f"http://127.0.0.1:{ports.etcd_client}"
        peer = f"http://127.0.0.1:{ports.etcd_peer}"
        return [
            "--name=swg-local",
            f"--data-dir={self.work_dir / 'etcd'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=swg-local={peer}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
            *self.tuning.etcd_args(),
        ]

    def _apiserver_args(self, ports: Ports, pki: Pki) -> list[str]:
        if self.node is not None:
            # Pods reach the API server through the `kubernetes` Service, whose endpoint is the
            # pod bridge's gateway address; it never listens on the uplink.
            kubelet_client = issue(
                pki.ca,
                self.pki_dir,
                "apiserver-kubelet-client",
                subject="/O=system:masters/CN=kube-apiserver-kubelet-client",
            )
            endpoints = [
                "--endpoint-reconciler-type=lease",
                f"--kubelet-client-certificate={kubelet_client.cert}",
                f"--kubelet-client-key={kubelet_client.key}",
                f"--kubelet-certificate-authority={pki.ca.cert}",
                "--kubelet-preferred-address-types=InternalIP",
            ]
        else:
            # Endpoints may not hold loopback addresses, and no pod could reach the API server
            # anyway: leave the `kubernetes` Service without endpoints instead of failing to
            # write them every ten seconds.
            endpoints = ["--endpoint-reconciler-type=none"]
        return [
            f"--etcd-servers=http://127.0.0.1:{ports.etcd_client}",
            f"--bind-address={self.api_address}",
            f"--advertise-address={self.api_address}",
            *endpoints,
            f"--secure-port={ports.apiserver}",
            f"--cert-dir={self.pki_dir}",
            f"--tls-cert-file={pki.apiserver.cert}",
            f"--tls-private-key-file={pki.apiserver.key}",
            f"--client-ca-file={pki.ca.cert}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={pki.service_account_pub}",
            f"--service-account-signing-key-file={pki.service_account_key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--authorization-mode=Node,RBAC",
            f"--enable-admission-plugins={','.join(ADMISSION_PLUGINS)}",
            # Privileged pods must reach admission so PodSecurity (not this flag) rejects them.
            "--allow-privileged=true",
            "--profiling=false",
            *self.tuning.apiserver_args(),
        ]

    def _secure_serving(self, port: int, serving: KeyPair, pki: Pki, kubeconfig: Path) -> list[str]:
        return [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={serving.cert}",
            f"--tls-private-key-file={serving.key}",
            f"--client-ca-file={pki.ca.cert}",
            # There is no front proxy (requestheader) CA to look up from kube-system.
            "--authentication-skip-lookup=true",
            "--leader-elect=false",
            "--profiling=false",
        ]

    def _controller_manager_args(self, ports: Ports, pki: Pki) -> list[str]:
        return [
            *self._secure_serving(
                ports.controller_manager,
                pki.controller_manager_serving,
                pki,
                self._component_kubeconfig("controller-manager"),
            ),
            "--controllers=*",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={pki.service_account_key}",
            f"--root-ca-file={pki.ca.cert}",
            f"--cluster-signing-cert-file={pki.ca.cert}",
            f"--cluster-signing-key-file={pki.ca.key}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            f"--cluster-cidr={POD_CIDR}",
            "--allocate-node-cidrs=false",
            f"--cluster-name={CLUSTER_NAME}",
            *self.tuning.controller_manager_args(),
        ]

    def _scheduler_args(self, ports: Ports, pki: Pki) -> list[str]:
        return [
            *self._secure_serving(
                ports.scheduler, pki.scheduler_serving, pki, self._component_kubeconfig("scheduler")
            ),
            *self.tuning.client_args(),
        ]

    def _kwok_extra_stages(self) -> Path:
        """With a real node, `local-path` is the default class, so PVCs of pods on kwok nodes
        are provisioned by local-path-provisioner too: its helper pods land on the kwok node,
        and this stage (kwok's pod-complete, selecting the helper pods' namespace instead of
        Jobs) completes them. Their PVs name a path on the kwok node; nothing is written."""
        stages = list(yaml.safe_load_all(self.binaries.kwok_stages.read_text()))
        complete = next(s for s in stages if s and s["metadata"]["name"] == "pod-complete")
        complete["metadata"]["name"] = "local-path-helper-complete"
        expressions = complete["spec"]["selector"]["matchExpressions"]
        for expression in expressions:
            if expression["key"] == ".metadata.ownerReferences.[].kind":
                expression["key"] = ".metadata.namespace"
                expression["values"] = [LOCAL_PATH_NAMESPACE]
        path = self.work_dir / "kwok-local-path-stages.yaml"
        path.write_text(yaml.safe_dump(complete, sort_keys=False))
        return path

    def _kwok_args(self) -> list[str]:
        # No --server-address: kwok would serve on 0.0.0.0 (and there is nothing to serve,
        # as there is no kubelet API to fake for logs or exec here).
        extra = [f"--config={self._kwok_extra_stages()}"] if self.node is not None else []
        return [
            f"--kubeconfig={self._component_kubeconfig('kwok')}",
            f"--config={self.binaries.kwok_stages}",
            *extra,
            # Only its own Nodes: the real node belongs to its kubelet.
            "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
            f"--cidr={POD_CIDR}",
            # Renew node Leases, or the node lifecycle controller marks the nodes NotReady.
            "--node-lease-duration-seconds=40",
        ]

    def _default_storage_class(self) -> dict[str, Any]:
        # The class kwok's pvc-provision stage acts on; default, so PVCs without a class bind.
        # With a real node, its `local-path` class (real directories) is the default instead:
        # kwok's fake hostPath PVs cannot serve a pod that really runs.
        default = "false" if self.node is not None else "true"
        return {
            "apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass",
            "metadata": {
                "name": DEFAULT_STORAGE_CLASS,
                "annotations": {"storageclass.kubernetes.io/is-default-class": default},
            },
            "provisioner": "kwok.x-k8s.io/volume",
            "reclaimPolicy": "Delete",
            "volumeBindingMode": "Immediate",
        }

    def _nodes_ready(self) -> bool:
        listed = self.kubectl_json("get", "nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in listed
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }
        return {n.name for n in self.nodes} <= ready

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every daemon of this state dir (recorded or stray) and its real node if there is
        one; raise if any survives."""
        node = self.node or (self._real_node() if (self.state_dir / "node").exists() else None)
        if node is not None:
            node.stop(timeout=timeout)
        records = self.records()
        marker = f"{self.work_dir}/"
        known = {r.pid for r in records}
        strays = [r for r in processes.find_strays(marker, COMPONENTS) if r.pid not in known]
        # Reverse start order: the API server's clients first, etcd last.
        ordered = sorted([*records, *strays], key=lambda r: -COMPONENTS.index(r.name))
        survivors = processes.stop(ordered, timeout=timeout, children=self._children)
        survivors += processes.find_strays(marker, COMPONENTS)
        self._children.clear()
        self._records = []
        if survivors:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in survivors)
            raise ControlPlaneError(f"still running after SIGKILL: {names}")
        with contextlib.suppress(FileNotFoundError):
            if self.state_file.exists():
                state = json.loads(self.state_file.read_text())
                state["processes"] = []
                _write_private(self.state_file, json.dumps(state, indent=2) + "\n")

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
