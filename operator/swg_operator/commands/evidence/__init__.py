"""`swg-operator evidence` (and `kubectl swg evidence`): what live state shows of a tenant's
ISO/IEC 27017 controls, read with the caller's own identity.

    swg-operator evidence TENANT [-o text|json|yaml|markdown] [--receipt-public-key FILE]
                                 [--operator-namespace NS] [--kubeconfig PATH] [--context NAME]

One check per control software can show, each with what was read and its result: `pass`,
`fail`, `unknown` (not readable with this identity) or `n/a` (the tenant does not use it):

  isolation     the namespace's NetworkPolicies: default deny, the operator's set, no other tenant
  hardening     Pod Security `restricted` enforced; containers read-only, non-root
  access        each declared admin's rights as the authorizer answers (SubjectAccessReview)
  quota         the ResourceQuota and replicas as sized
  placement     the workloads pinned to the declared region
  retention     the log store's retention and legal hold as contracted, its volume
  inspectionCa  the generated HTTPS-inspection CA's age and expiry
  notices       the notice history kept, recent notices, failed mails
  purge         cancellation, purge deadline, signed receipts

The platform team (who may read the `SecureWebGateway`) gets every check; a tenant's admin gets
what their read rights show (the status mirror, the notices, the CA certificate, their own
rights). Exit 0 when no check failed, 2 when one did, 1 when the cluster could not be asked.
docs/compliance.md maps each control to where it is built and which test shows it.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from swg_operator.commands.cluster_options import add_cluster_arguments
from swg_operator.commands.evidence.model import Reading
from swg_operator.commands.evidence.report import FORMATS

KEY_VARIABLE = "SWG_RECEIPT_PUBLIC_KEY"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tenant", metavar="TENANT", help="the SecureWebGateway's name")
    parser.add_argument(
        "-o",
        "--output",
        choices=FORMATS,
        default="text",
        help="text (default), json, yaml, or markdown (a table for a report)",
    )
    parser.add_argument(
        "--receipt-public-key",
        type=Path,
        metavar="FILE",
        help=f"check purge receipts' signatures with this PEM (default: ${KEY_VARIABLE})",
    )
    parser.add_argument(
        "--operator-namespace", default="swg-system", help="where the purge receipts are kept"
    )
    add_cluster_arguments(parser)
    parser.set_defaults(handler=run)


def add_parser(subparsers: Any) -> None:
    configure(
        subparsers.add_parser(
            "evidence",
            help="what live state shows of a tenant's ISO/IEC 27017 controls",
            description=__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
    )


def _public_key(args: argparse.Namespace) -> bytes | None:
    path = args.receipt_public_key or (
        Path(os.environ[KEY_VARIABLE]) if os.environ.get(KEY_VARIABLE) else None
    )
    if path is None:
        return None
    try:
        return path.read_bytes()
    except OSError as err:
        raise ValueError(
            f"{path}: could not be read (--receipt-public-key): {err.strerror}"
        ) from err


def run(args: argparse.Namespace) -> int:
    import httpx2 as httpx

    from swg_operator.commands.cluster_client import ClusterClientError, http_client
    from swg_operator.commands.evidence.collect import collect, describe, verify_receipts
    from swg_operator.commands.evidence.judge import gone, judge
    from swg_operator.commands.evidence.model import Result
    from swg_operator.commands.evidence.report import document, overall, render
    from swg_operator.receipts import ReceiptError

    try:
        key = _public_key(args)
        client = http_client(kubeconfig=args.kubeconfig, context=args.context)
    except (ValueError, ClusterClientError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1

    def answer(response: Any) -> Reading:
        try:
            return Reading(int(response.status_code), response.json())
        except ValueError:
            return Reading(int(response.status_code))

    def get(path: str) -> Reading:
        return answer(client.get(path))

    def post(path: str, body: Mapping[str, Any]) -> Reading:
        return answer(client.post(path, json=dict(body)))

    try:
        with client:
            facts = collect(args.tenant, get, post, operator_namespace=args.operator_namespace)
    except httpx.HTTPError as err:
        print(f"error: the cluster did not answer: {err}", file=sys.stderr)
        return 1
    if facts.tenant_reading.status == 401:
        print(f"error: {facts.tenant_reading.why_not()}; log in again", file=sys.stderr)
        return 1
    if gone(facts) and not facts.receipts.items():
        print(
            f"error: no tenant {args.tenant!r}: no SecureWebGateway, no namespace "
            f"{facts.namespace} and no purge receipt in {args.operator_namespace}",
            file=sys.stderr,
        )
        return 1
    if key is not None:
        try:
            facts = verify_receipts(facts, key)
        except ReceiptError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    now = datetime.datetime.now(datetime.UTC)
    checks = judge(facts, now)
    doc = document(describe(facts), checks, now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    sys.stdout.write(render(doc, args.output))
    return 2 if overall(checks) is Result.FAIL else 0
