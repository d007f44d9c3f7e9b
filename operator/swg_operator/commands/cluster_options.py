"""The options every `kubectl swg` command finds the caller's cluster and identity with. Apart
from `cluster_client` so that building the parsers imports no HTTP client (that module is
imported only when a command runs)."""

from __future__ import annotations

import argparse


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """`--kubeconfig` and `--context` (what `cluster_client.http_client` is given)."""
    parser.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube)")
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
