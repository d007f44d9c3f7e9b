"""The objects the real node applies to the cluster once it is up: CoreDNS, kube-router's
and local-path-provisioner's RBAC, the StorageClass, and the rest its pods need."""

from __future__ import annotations

from typing import Any

from e2e.cluster import images
from e2e.cluster.realnode_base import (
    CLUSTER_DOMAIN,
    DNS_SERVICE_IP,
    LOCAL_PATH_NAMESPACE,
    PROVISIONER,
    REAL_NODE_LABEL,
    STORAGE_CLASS,
    TOLERATION,
)
from e2e.cluster.realnode_configs import NodeConfigs


class NodeObjects(NodeConfigs):
    """The cluster objects `RealNode.start` applies."""

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
