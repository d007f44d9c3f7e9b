"""`kubectl swg notices` (and `swg-operator notices`): a tenant's notices, as its admins see them.

    kubectl swg notices TENANT [--kind KIND] [-o text|json|yaml] [--kubeconfig PATH]
                               [--context NAME]

Reads the ConfigMap `tenant-notices` of the tenant's namespace with the caller's own identity
(`get` on that one ConfigMap, which the admins' ClusterRole grants): every change, maintenance,
incident, cancellation and purge notice of the last 90 days, newest first, and what became of
its mail to each contact (docs/notices.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

from swg_operator.commands.cluster_options import add_cluster_arguments
from swg_operator.naming import notices_config_map_name, tenant_namespace
from swg_operator.notices.model import Entry, History, MailState, NoticeError, NoticeKind, decode


class NoticesError(RuntimeError):
    """The notices could not be read; the message says why in the admin's terms."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant", metavar="TENANT", help="the SecureWebGateway's name")
    parser.add_argument(
        "--kind", choices=[k.value for k in NoticeKind], help="only notices of this kind"
    )
    parser.add_argument(
        "-o",
        "--output",
        choices=["text", "json", "yaml"],
        default="text",
        help="text (default): one notice per paragraph; json, yaml: every field",
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def add_parser(subparsers: Any) -> None:
    configure(
        subparsers.add_parser(
            "notices",
            help="list a tenant's notices and their mail (as one of its declared admins)",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def notices_path(tenant: str) -> str:
    return f"/api/v1/namespaces/{tenant_namespace(tenant)}/configmaps/{notices_config_map_name()}"


def explain(status: int, body: str, tenant: str) -> str:
    namespace = tenant_namespace(tenant)
    name = notices_config_map_name()
    if status == 401:
        return "the cluster did not accept your credentials (401); log in again"
    if status == 403:
        return (
            f"your identity may not read the notices of tenant {tenant!r} (403): only the admins "
            f"declared in its spec may (ConfigMap {name} in namespace {namespace})"
        )
    if status == 404:
        return (
            f"no notices of tenant {tenant!r} in namespace {namespace} (404): the tenant does "
            "not exist, or nothing was recorded for it yet"
        )
    detail = body.strip().replace("\n", " ")[:300]
    return f"reading the notices failed with HTTP {status}: {detail}"


def fetch(tenant: str, *, kubeconfig: str | None, context: str | None) -> dict[str, str]:
    """The notices ConfigMap's `data`, read with the caller's identity."""
    from swg_operator.commands.cluster_client import ClusterClientError, read_config_map_data

    try:
        return read_config_map_data(
            notices_path(tenant),
            kubeconfig=kubeconfig,
            context=context,
            explain=lambda status, body: explain(status, body, tenant),
        )
    except ClusterClientError as err:
        raise NoticesError(str(err)) from err


def as_records(history: History, *, kind: str | None = None) -> list[dict[str, Any]]:
    """Newest first, each notice with its mail."""
    records = []
    for entry in reversed(history.entries):
        if kind is not None and entry.notice.kind != kind:
            continue
        record = entry.notice.to_dict()
        record["mail"] = [{"recipient": d.recipient, **d.to_dict()} for d in entry.deliveries]
        records.append(record)
    return records


def mail_summary(entry: Entry) -> str:
    if not entry.deliveries:
        return "no mail (no contacts)"
    counts = {state: 0 for state in MailState}
    for delivery in entry.deliveries:
        counts[delivery.state] += 1
    return ", ".join(f"{n} {state}" for state, n in counts.items() if n)


def format_text(history: History, *, kind: str | None = None) -> str:
    entries = [e for e in reversed(history.entries) if kind is None or e.notice.kind == kind]
    if not entries:
        return "No notices.\n"
    lines: list[str] = []
    for entry in entries:
        n = entry.notice
        lines.append(f"{n.time}  {n.kind:<12}  {n.subject}")
        lines += [f"    {line}" for line in n.body]
        lines.append(f"    mail: {mail_summary(entry)}; notice {n.id}")
        for d in entry.deliveries:
            if d.state is MailState.FAILED:
                lines.append(f"    failed to {d.recipient} after {d.tries} tries: {d.last_error}")
        lines.append("")
    return "\n".join(lines)


def render_output(history: History, form: str, *, kind: str | None = None) -> str:
    records: Sequence[Mapping[str, Any]] = as_records(history, kind=kind)
    if form == "json":
        return json.dumps(records, indent=2, ensure_ascii=False) + "\n"
    if form == "yaml":
        import yaml

        return str(yaml.safe_dump(list(records), sort_keys=False, allow_unicode=True))
    return format_text(history, kind=kind)


def run(args: argparse.Namespace) -> int:
    try:
        history = decode(fetch(args.tenant, kubeconfig=args.kubeconfig, context=args.context))
    except (NoticesError, NoticeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    sys.stdout.write(render_output(history, args.output, kind=args.kind))
    return 0
