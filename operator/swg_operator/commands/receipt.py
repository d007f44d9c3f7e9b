"""`swg-operator receipt`: signed purge receipts, checked offline.

    swg-operator receipt verify FILE [--public-key FILE] [-o text|json]
    swg-operator receipt keygen [--secret NAME] [--namespace NS] --public-key-out FILE
                                [-o yaml|json]

FILE: the receipt ConfigMap as `kubectl get configmap -o yaml` (or `-o json`) writes it, or its
`data` alone. --public-key: the operator's published public key, a PEM file or the chart's
ConfigMap (default: $SWG_RECEIPT_PUBLIC_KEY). Exit 0 and "valid" when the receipt is signed by
that key and unchanged since; exit 1 naming each field or part that does not match; exit 2 when
a file cannot be read. -o json prints the verdict as one JSON object (valid, tenant, state,
keyId, problems). No cluster is contacted (docs/operator.md, "Signed receipts").

keygen: a new signing key, as the Secret manifest the operator reads (on stdout as YAML, or
JSON with -o json, for `kubectl apply -f -`) and its public key in PEM (FILE, for the chart's
`receipts.publicKey`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

KEY_VARIABLE = "SWG_RECEIPT_PUBLIC_KEY"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "receipt",
        help="check a signed purge receipt offline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="verify a receipt's signature")
    verify.add_argument("file", metavar="FILE", type=Path, help="the receipt (YAML or JSON)")
    verify.add_argument(
        "--public-key",
        type=Path,
        help=f"the operator's public key: PEM, or the chart's ConfigMap (default: ${KEY_VARIABLE})",
    )
    verify.add_argument(
        "-o",
        "--output",
        choices=("text", "json"),
        default="text",
        help="text (default): a line, and one per problem; json: the verdict as an object",
    )
    verify.set_defaults(handler=run_verify)
    keygen = sub.add_parser(
        "keygen", help="make a signing key: a Secret manifest and its public key"
    )
    keygen.add_argument("--secret", default="swg-receipt-signing-key", help="the Secret's name")
    keygen.add_argument("--namespace", default="swg-system", help="the operator's namespace")
    keygen.add_argument(
        "--public-key-out", type=Path, required=True, metavar="FILE", help="write the PEM here"
    )
    keygen.add_argument(
        "-o",
        "--output",
        choices=("yaml", "json"),
        default="yaml",
        help="format of the Secret manifest on stdout (default yaml)",
    )
    keygen.set_defaults(handler=run_keygen)


def run_keygen(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from swg_operator.commands import yamltext
    from swg_operator.commands.errors import file_error
    from swg_operator.receipts import key_id, key_secret, public_key_pem

    key = Ed25519PrivateKey.generate()
    try:
        args.public_key_out.write_bytes(public_key_pem(key.public_key()))
    except OSError as err:
        print(f"error: {file_error(err, 'could not write the public key')}", file=sys.stderr)
        return 2
    secret = key_secret(args.secret, args.namespace, key)
    if args.output == "json":
        sys.stdout.write(json.dumps(secret, indent=2) + "\n")
    else:
        sys.stdout.write(yamltext.dump(secret))
    print(f"key {key_id(key.public_key())}: public key in {args.public_key_out}", file=sys.stderr)
    return 0


def run_verify(args: argparse.Namespace) -> int:
    from swg_operator.commands.errors import file_error
    from swg_operator.receipts import ReceiptError, load_public_key, read_receipt, verify_receipt

    key_path = args.public_key or (
        Path(os.environ[KEY_VARIABLE]) if os.environ.get(KEY_VARIABLE) else None
    )
    if key_path is None:
        print(
            f"error: give the operator's public key with --public-key FILE (or ${KEY_VARIABLE}); "
            "docs/operator.md says where the platform publishes it",
            file=sys.stderr,
        )
        return 2
    try:
        public_key = load_public_key(key_path.read_bytes(), where=str(key_path))
        receipt = read_receipt(args.file.read_bytes(), where=str(args.file))
    except OSError as err:
        print(f"error: {file_error(err, 'could not be read')}", file=sys.stderr)
        return 2
    except ReceiptError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    verdict = verify_receipt(receipt, public_key)
    if args.output == "json":
        document = {
            "valid": verdict.valid,
            "tenant": receipt.get("tenant"),
            "state": receipt.get("state"),
            "keyId": verdict.key_id,
            "problems": list(verdict.problems),
        }
        sys.stdout.write(json.dumps(document, indent=2) + "\n")
        return 0 if verdict.valid else 1
    what = f"receipt of tenant {receipt.get('tenant', '?')} ({receipt.get('state', '?')})"
    if verdict.valid:
        print(f"valid: {what}, signed with key {verdict.key_id}")
        return 0
    print(f"invalid: {what}", file=sys.stderr)
    for problem in verdict.problems:
        print(f"  {problem}", file=sys.stderr)
    return 1
