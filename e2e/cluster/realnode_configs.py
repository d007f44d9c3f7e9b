"""The real node's configuration files and command lines: certificates, containerd's
config, the CNI bridge, and the arguments of kubelet, kube-proxy, local-path-provisioner and
kube-router."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from e2e.cluster import hostnet
from e2e.cluster.nodes import REGION_LABEL, ZONE_LABEL
from e2e.cluster.pki import KeyPair, issue
from e2e.cluster.realnode_base import (
    CLUSTER_DOMAIN,
    CNI_BIN_DIR,
    DNS_SERVICE_IP,
    LOCAL_PATH_NAMESPACE,
    NODE_NAME,
    NODE_TAINT,
    PROVISIONER,
    REAL_NODE_LABEL,
    REGION,
    RUNC,
    ZONE,
    NodeBase,
)


class NodeConfigs(NodeBase):
    """The files and arguments `RealNode.start` writes and launches with."""

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
