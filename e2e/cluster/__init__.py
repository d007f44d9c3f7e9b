"""The local Kubernetes control plane for `make up` and the e2e tier, usable as a library.

python -m e2e.cluster up [--no-real-node]|down|status|env [--dir .local]
python -m e2e.cluster load-images [--dir .local] TAR...
python -m e2e.cluster kubectl-path|helm-path
"""

from devtools.binaries import Binaries, BinariesMissingError

from e2e.cluster.client import (
    Cluster,
    KubectlError,
    service_account_kubeconfig,
    unique_name,
    wait_until,
)
from e2e.cluster.config import Tuning
from e2e.cluster.controlplane import ControlPlane, ControlPlaneError
from e2e.cluster.nodes import NODES, REGION_LABEL, ZONE_LABEL, KwokNode

__all__ = [
    "NODES",
    "REGION_LABEL",
    "ZONE_LABEL",
    "Binaries",
    "BinariesMissingError",
    "Cluster",
    "ControlPlane",
    "ControlPlaneError",
    "KubectlError",
    "KwokNode",
    "Tuning",
    "service_account_kubeconfig",
    "unique_name",
    "wait_until",
]
