"""The kwok Nodes of the local control plane: three nodes in two regions.

Data-residency tests pin tenants to a region, so the topology is fixed and importable:
region-a has two zones with one node each, region-b has one zone with one node.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REGION_LABEL = "topology.kubernetes.io/region"
ZONE_LABEL = "topology.kubernetes.io/zone"


@dataclass(frozen=True)
class KwokNode:
    name: str
    region: str
    zone: str
    cpu: str = "32"
    memory: str = "128Gi"
    pods: str = "110"

    def manifest(self) -> dict[str, Any]:
        """A Node kwok adopts (it manages all nodes); schedulable, with generous resources."""
        resources = {"cpu": self.cpu, "memory": self.memory, "pods": self.pods}
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "annotations": {
                    "kwok.x-k8s.io/node": "fake",
                    "node.alpha.kubernetes.io/ttl": "0",
                },
                "labels": {
                    "type": "kwok",
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "node-role.kubernetes.io/agent": "",
                    REGION_LABEL: self.region,
                    ZONE_LABEL: self.zone,
                },
            },
            "spec": {},
            "status": {"capacity": resources, "allocatable": resources},
        }


NODES: tuple[KwokNode, ...] = (
    KwokNode("kwok-a1", region="region-a", zone="region-a-1"),
    KwokNode("kwok-a2", region="region-a", zone="region-a-2"),
    KwokNode("kwok-b1", region="region-b", zone="region-b-1"),
)
