"""`kubectl swg status`: the request it makes, what it prints, and how it explains refusals, against
a stand-in API server on 127.0.0.1 (the real API server's decision: e2e/test_logs_rbac.py)."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from swg_operator.api import CancellationStatus, Condition, SecureWebGatewayStatus
from swg_operator.commands.logs import kubectl_main
from swg_operator.commands.status import format_text, status_path
from swg_operator.render.rbac import reader_rules
from swg_operator.render.status_mirror import read_status_data, status_data

STATUS = SecureWebGatewayStatus(
    observed_generation=4,
    phase="Cancelled",
    namespace="swg-acme",
    conditions=(
        Condition(
            type="Ready",
            status="False",
            reason="Cancelled",
            message="The service is cancelled; logs are kept for export",
            last_transition_time="2026-01-01T12:00:00Z",
        ),
    ),
    cancellation=CancellationStatus(
        cancelled_at="2026-01-01T12:00:00Z", purge_at="2026-01-31T12:00:00Z", legal_hold=True
    ),
)


def test_the_request_is_the_one_configmap_the_admins_may_read() -> None:
    assert status_path("acme") == "/api/v1/namespaces/swg-acme/configmaps/tenant-status"
    (rule,) = [r for r in reader_rules() if r["resources"] == ["configmaps"]]
    assert "tenant-status" in rule["resourceNames"]
    assert rule["verbs"] == ["get"]


def test_text_output_summarises_the_status() -> None:
    text = format_text(read_status_data(status_data("acme", STATUS)))
    assert "Tenant:          acme" in text
    assert "Phase:           Cancelled" in text
    assert "Proxy endpoint:  (none)" in text
    assert "purge due 2026-01-31T12:00:00Z (postponed by a legal hold)" in text
    header, row = text.splitlines()[-2:]
    assert header.split() == ["TYPE", "STATUS", "REASON", "SINCE", "MESSAGE"]
    assert row.split()[:4] == ["Ready", "False", "Cancelled", "2026-01-01T12:00:00Z"]
    assert row.endswith("logs are kept for export")


class _ApiServer(http.server.BaseHTTPRequestHandler):
    answers: ClassVar[dict[str, tuple[int, dict[str, Any]]]] = {}
    seen: ClassVar[list[tuple[str, str]]] = []

    def do_GET(self) -> None:
        self.seen.append((self.path, self.headers.get("Authorization", "")))
        code, body = self.answers.get(self.path, (404, {"kind": "Status", "code": 404}))
        payload = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def api(tmp_path: Path) -> Iterator[tuple[Path, type[_ApiServer]]]:
    handler = type("Api", (_ApiServer,), {"answers": {}, "seen": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "c",
                        "cluster": {"server": f"http://127.0.0.1:{server.server_address[1]}"},
                    }
                ],
                "users": [{"name": "alice", "user": {"token": "alice-token"}}],
                "contexts": [{"name": "c", "context": {"cluster": "c", "user": "alice"}}],
                "current-context": "c",
            }
        )
    )
    try:
        yield kubeconfig, handler
    finally:
        server.shutdown()


def _mirror() -> dict[str, Any]:
    return {"kind": "ConfigMap", "data": status_data("acme", STATUS)}


def test_status_is_read_with_the_callers_identity_and_printed(
    api: tuple[Path, type[_ApiServer]], capsys: pytest.CaptureFixture[str]
) -> None:
    kubeconfig, server = api
    server.answers[status_path("acme")] = (200, _mirror())
    assert kubectl_main(["status", "acme", "--kubeconfig", str(kubeconfig)]) == 0
    assert server.seen == [(status_path("acme"), "Bearer alice-token")]
    assert "Phase:           Cancelled" in capsys.readouterr().out
    assert kubectl_main(["status", "acme", "--kubeconfig", str(kubeconfig), "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["phase"] == "Cancelled"
    assert document["observedGeneration"] == 4
    assert document["cancellation"]["legalHold"] is True


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (401, "did not accept your credentials"),
        (403, "only the admins declared in its spec may"),
        (404, "has not reported on it yet"),
        (500, "failed with HTTP 500"),
    ],
)
def test_refusals_are_explained(
    api: tuple[Path, type[_ApiServer]],
    capsys: pytest.CaptureFixture[str],
    code: int,
    words: str,
) -> None:
    kubeconfig, server = api
    server.answers[status_path("acme")] = (code, {"kind": "Status", "code": code})
    assert kubectl_main(["status", "acme", "--kubeconfig", str(kubeconfig)]) == 1
    assert words in capsys.readouterr().err
