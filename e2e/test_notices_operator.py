"""Notices end to end: the operator as a process on the real API server mails a tenant's change,
cancellation and purge through a real SMTP relay (aiosmtpd on 127.0.0.1, STARTTLS with a
certificate the operator's process trusts through SSL_CERT_FILE, and the login from the Secret
the settings name), each once, also across an operator restart; the notices show in
`swg-operator notices` and the tenant's ConfigMap; the purge receipt verifies with
`swg-operator receipt verify` against the public key of the operator's signing key Secret.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from devtools.processes import free_port
from devtools.smtp_relay import Received, SmtpRelay, relay_certificate

from e2e.cluster import Cluster, wait_until
from e2e.operator_process import (
    OperatorProcess,
    get_tenant,
    tenant_manifest,
)

pytestmark = pytest.mark.cluster

OPERATOR_NS = "swg-system"
USER, PASSWORD = "swg-relay", "relay-password-e2e"
CONTACTS = ["ops@acme.example", "security@acme.example"]
SIGNING_SECRET = "swg-receipt-signing-key"


@pytest.fixture
def relay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Received, int]]:
    certificate = relay_certificate(tmp_path)
    port = free_port()
    with SmtpRelay(certificate, port, user=USER, password=PASSWORD) as received:
        # The operator's process trusts the relay.
        monkeypatch.setenv("SSL_CERT_FILE", str(certificate.cert))
        yield received, port


def _secret(cluster: Cluster, name: str, data: dict[str, str]) -> None:
    cluster.kubectl("delete", "secret", name, "-n", OPERATOR_NS, "--ignore-not-found")
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": OPERATOR_NS},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
        }
    )


def _cli(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig)}
    return subprocess.run(
        [sys.executable, "-m", "swg_operator.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


def _count(received: Received, word: str) -> int:
    return sum(word in s for s in received.subjects())


def test_change_cancellation_and_purge_reach_the_relay_once_each(
    prepared: Cluster,
    new_operator: Callable[..., OperatorProcess],
    tenant_name: str,
    relay: tuple[Received, int],
    tmp_path: Path,
) -> None:
    cluster, name = prepared, tenant_name
    received, port = relay
    _secret(cluster, "smtp-login", {"username": USER, "password": PASSWORD})
    settings = tmp_path / "settings.yaml"
    settings.write_text(
        yaml.safe_dump(
            {
                "operatorNamespace": OPERATOR_NS,
                "mail": {
                    "host": "127.0.0.1",
                    "port": port,
                    "sender": "noc@provider.example",
                    "credentialsSecret": "smtp-login",
                    "retrySeconds": 1,
                },
            }
        )
    )
    process = new_operator("--settings", str(settings))
    manifest = tenant_manifest(name, contacts=CONTACTS, cancellation={"purgeAfterDays": 0})
    cluster.apply(manifest)
    wait_until(
        lambda: _count(received, "settings changed (generation 1)") == 2,
        timeout=90,
        what=f"the change notice's mails ({process.log_tail()})",
    )
    shown = _cli(cluster, "notices", name, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    assert "generation 1" in shown.stdout
    stored = cluster.kubectl_json("get", "configmap", "tenant-notices", "-n", f"swg-{name}")
    mail = json.loads(stored["data"]["mail.json"])
    states = [d["state"] for per in mail.values() for d in per.values()]
    assert states == ["sent", "sent"]

    # A restart: nothing is mailed again.
    process = new_operator("--settings", str(settings))
    wait_until(
        lambda: "Started the notices' outbox" in process.log_text(),
        timeout=60,
        what="the outbox of the restarted operator",
    )
    cluster.kubectl("delete", "securewebgateway", name, "--wait=false")
    wait_until(
        lambda: get_tenant(cluster, name) is None,
        timeout=240,
        what=f"the purge of {name} ({process.log_tail()})",
    )
    wait_until(
        lambda: _count(received, "Purged") == 2,
        timeout=90,
        what=f"the purge notice's mails ({process.log_tail()})",
    )
    assert _count(received, "settings changed") == 2, received.subjects()
    assert _count(received, "Cancelled") == 2, received.subjects()
    assert len(received.messages) == 6, received.subjects()
    assert len({m["Message-ID"] for m in received.messages}) == 6

    # The receipt, signed by the operator's key, verifies offline; a changed one does not.
    receipts = cluster.kubectl_json(
        "get", "configmap", "-n", OPERATOR_NS, "-l", "swg.dev/purge-receipt=true"
    )["items"]
    (receipt,) = [r for r in receipts if r["data"]["tenant"] == name]
    receipt_file = tmp_path / "receipt.json"
    receipt_file.write_text(json.dumps(receipt))
    secret = cluster.kubectl_json("get", "secret", SIGNING_SECRET, "-n", OPERATOR_NS)
    public = tmp_path / "key.pem"
    public.write_bytes(base64.b64decode(secret["data"]["ed25519.pub"]))
    verify = ("receipt", "verify", str(receipt_file), "--public-key", str(public))
    verified = _cli(cluster, *verify)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    receipt["data"]["completedAt"] = "2000-01-01T00:00:00Z"
    receipt_file.write_text(json.dumps(receipt))
    forged = _cli(cluster, *verify)
    assert forged.returncode != 0
    assert "completedAt" in forged.stdout + forged.stderr
    # The attachment of the purge mail is that receipt.
    purge_mail = next(m for m in received.messages if "Purged" in str(m["Subject"]))
    parts = [p for p in purge_mail.walk() if p.get_filename()]
    assert parts
    assert parts[0].get_filename() == f"{receipt['metadata']['name']}.json"
    # Its box in the operator's namespace goes once its mail is settled.
    wait_until(
        lambda: (
            cluster.kubectl(
                "get", "configmap", f"purged-notices-{name}", "-n", OPERATOR_NS, check=False
            ).returncode
            != 0
        ),
        timeout=90,
        what="the purged box's deletion",
    )
