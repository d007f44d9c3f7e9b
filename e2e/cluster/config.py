"""The control plane's configuration: its daemons' flags and the files they read.

`ControlPlane` (e2e.cluster.controlplane) starts and stops the processes; everything here is what
they are started with: the fixed addresses and names, `Tuning` for runs at scale, the ports,
the kubeconfigs of the components, and `ComponentFlags`, the command lines of etcd,
kube-apiserver, kube-controller-manager, kube-scheduler and kwok (methods, so a subclass such as
the benchmark's control plane can add flags) and the default StorageClass.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from devtools.binaries import Binaries

from e2e.cluster import processes
from e2e.cluster.pki import KeyPair, Pki, issue
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


def kubeconfig_document(server: str, ca: Path, client: KeyPair, user: str) -> dict[str, Any]:
    """A kubeconfig for `user` (client certificate) on `server`, the CA and keys inlined."""

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


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path`, readable by its owner only (mode 0600 before any byte)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(text)


class ComponentFlags:
    """The daemons' command lines and the files they read, for `ControlPlane` to launch.

    A mixin of `ControlPlane`: it reads the control plane's directories, binaries, tuning, real
    node and addresses, and writes nothing but the components' kubeconfigs and kwok's stages.
    """

    work_dir: Path
    pki_dir: Path
    kubeconfig: Path
    binaries: Binaries
    tuning: Tuning
    node: RealNode | None

    if TYPE_CHECKING:

        @property
        def api_address(self) -> str: ...

        @property
        def server(self) -> str: ...

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
            write_private(
                path,
                yaml.safe_dump(
                    kubeconfig_document(server, pki.ca.cert, client, user), sort_keys=False
                ),
            )

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
