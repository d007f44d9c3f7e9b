"""`kubectl swg status` (and `swg-operator status`): a tenant's status, as its admins see it.

    kubectl swg status TENANT [-o text|wide|json|yaml] [--kubeconfig PATH] [--context NAME]

The `SecureWebGateway` is cluster-scoped and its admins hold read rights in their tenant's
namespace only, so this reads the ConfigMap `tenant-status` the operator mirrors the status into
(docs/tenant-objects.md lists its keys): the status, and the contract as the operator applies it
(options, effective filtering, sizing, log retention and time zone, region; never a secret).
It needs `get` on that one ConfigMap, which the admins' ClusterRole grants. The caller's own
kubeconfig identity is used.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from swg_operator.commands.cluster_options import add_cluster_arguments
from swg_operator.naming import tenant_namespace, tenant_status_name


class StatusError(RuntimeError):
    """The status could not be read; the message says why in the admin's terms."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant", metavar="TENANT", help="the SecureWebGateway's name")
    parser.add_argument(
        "-o",
        "--output",
        choices=["text", "wide", "json", "yaml"],
        default="text",
        help="text (default): a summary and the conditions; wide: also each condition's "
        "observed generation; json, yaml: the mirrored status",
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def add_parser(subparsers: Any) -> None:
    configure(
        subparsers.add_parser(
            "status",
            help="show a tenant's status (as one of its declared admins)",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def status_path(tenant: str) -> str:
    return f"/api/v1/namespaces/{tenant_namespace(tenant)}/configmaps/{tenant_status_name()}"


def explain(status: int, body: str, tenant: str) -> str:
    namespace = tenant_namespace(tenant)
    if status == 401:
        return "the cluster did not accept your credentials (401); log in again"
    if status == 403:
        return (
            f"your identity may not read the status of tenant {tenant!r} (403): only the admins "
            f"declared in its spec may (ConfigMap {tenant_status_name()} in namespace "
            f"{namespace})"
        )
    if status == 404:
        return (
            f"no status of tenant {tenant!r} in namespace {namespace} (404): the tenant does "
            f"not exist, or the operator has not reported on it yet"
        )
    detail = body.strip().replace("\n", " ")[:300]
    return f"reading the status failed with HTTP {status}: {detail}"


def fetch(tenant: str, *, kubeconfig: str | None, context: str | None) -> dict[str, str]:
    """The mirror's `data`, read with the caller's identity."""
    from swg_operator.commands.cluster_client import ClusterClientError, read_config_map_data

    try:
        return read_config_map_data(
            status_path(tenant),
            kubeconfig=kubeconfig,
            context=context,
            explain=lambda status, body: explain(status, body, tenant),
        )
    except ClusterClientError as err:
        raise StatusError(str(err)) from err


def _table(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def format_text(status: Mapping[str, Any], *, wide: bool = False) -> str:
    """A summary of the mirrored status (`render.status_mirror.read_status_data`) for people."""
    lines = [f"Tenant:          {status.get('tenant', '?')}"]
    lines.append(f"Phase:           {status.get('phase', 'unknown')}")
    if "observedGeneration" in status:
        lines.append(f"Generation:      {status['observedGeneration']} (observed)")
    lines.append(f"Proxy endpoint:  {status.get('proxyEndpoint', '(none)')}")
    sizing = status.get("sizing")
    if sizing:
        lines.append(
            f"Sizing:          proxy {sizing.get('proxyReplicas', '?')} replica(s), anti-virus "
            f"{sizing.get('antivirusReplicas', '?')}; quota {sizing.get('quotaCpu', '?')} CPU, "
            f"{sizing.get('quotaMemory', '?')} memory; log volume {sizing.get('logStorage', '?')}"
        )
    cancellation = status.get("cancellation")
    if cancellation:
        hold = " (postponed by a legal hold)" if cancellation.get("legalHold") else ""
        lines.append(
            f"Cancellation:    cancelled {cancellation.get('cancelledAt', '?')}, purge due "
            f"{cancellation.get('purgeAt', '?')}{hold}"
        )
    conditions = status.get("conditions") or []
    if conditions:
        header = ("TYPE", "STATUS", "REASON", "SINCE", *(("GENERATION",) if wide else ()))
        rows: list[tuple[str, ...]] = [(*header, "MESSAGE")]
        rows += [
            (
                str(c.get("type", "")),
                str(c.get("status", "")),
                str(c.get("reason", "")),
                str(c.get("lastTransitionTime", "")),
                *((str(c.get("observedGeneration", "")),) if wide else ()),
                str(c.get("message", "")),
            )
            for c in conditions
        ]
        lines += ["", *_table(rows)]
    contract = status.get("contract")
    if isinstance(contract, dict):
        from swg_operator.render.contract_view import format_contract

        lines += format_contract(contract)
    return "\n".join(lines) + "\n"


def render_output(status: Mapping[str, Any], form: str) -> str:
    if form == "json":
        return json.dumps(status, indent=2, ensure_ascii=False) + "\n"
    if form == "yaml":
        import yaml

        return str(yaml.safe_dump(dict(status), sort_keys=False, allow_unicode=True))
    return format_text(status, wide=form == "wide")


def run(args: argparse.Namespace) -> int:
    from swg_operator.render.status_mirror import read_status_data

    try:
        data = fetch(args.tenant, kubeconfig=args.kubeconfig, context=args.context)
    except StatusError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render_output(read_status_data(data), args.output))
    return 0
