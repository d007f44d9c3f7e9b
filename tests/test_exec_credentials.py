"""kubeconfig `exec` credential plugins (kube/exec_credentials.py), with a real plugin process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import kopf
import pytest
import yaml

from swg_operator.kube.exec_credentials import login_with_exec_plugin, parse_exec_credential

SERVER = "https://127.0.0.1:6443"


def write_kubeconfig(tmp_path: Path, user: dict[str, object]) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "c", "cluster": {"server": SERVER}}],
                "users": [{"name": "u", "user": user}],
                "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
                "current-context": "x",
            }
        )
    )
    return path


def plugin(tmp_path: Path, credential: dict[str, object], exit_code: int = 0) -> Path:
    """An executable printing `credential` and the exec info it was given to a side file."""
    script = tmp_path / "plugin.py"
    script.write_text(
        "import json, os, sys\n"
        f"open({str(tmp_path / 'exec-info.json')!r}, 'w').write("
        "os.environ.get('KUBERNETES_EXEC_INFO', ''))\n"
        f"print(json.dumps({credential!r}))\n"
        "print('plugin says no', file=sys.stderr)\n"
        f"sys.exit({exit_code})\n"
    )
    return script


def exec_user(
    script: Path, api_version: str = "client.authentication.k8s.io/v1"
) -> dict[str, object]:
    return {
        "exec": {
            "apiVersion": api_version,
            "command": sys.executable,
            "args": [str(script)],
            "env": [{"name": "PLUGIN_REGION", "value": "eu-west-1"}],
            "interactiveMode": "Never",
        }
    }


def base(path: Path) -> kopf.ConnectionInfo:
    return kopf.ConnectionInfo(server=SERVER, default_namespace="default")


def test_the_plugin_token_and_expiry_become_the_connection_credentials(tmp_path: Path) -> None:
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": "tok-123", "expirationTimestamp": "2030-01-01T00:00:00Z"},
    }
    path = write_kubeconfig(tmp_path, exec_user(plugin(tmp_path, credential)))
    info = login_with_exec_plugin(base(path), path=path)
    assert info is not None
    assert info.as_http_headers()["Authorization"] == "Bearer tok-123"
    assert info.expiration is not None
    assert info.expiration.isoformat() == "2030-01-01T00:00:00+00:00"
    assert info.server == SERVER
    exec_info = json.loads((tmp_path / "exec-info.json").read_text())
    assert exec_info["apiVersion"] == "client.authentication.k8s.io/v1"
    assert exec_info["spec"]["interactive"] is False


def test_a_user_without_exec_is_left_to_kopf(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path, {"token": "static"})
    assert login_with_exec_plugin(base(path), path=path) is None


def test_a_failing_plugin_is_named_with_its_message(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path, exec_user(plugin(tmp_path, {}, exit_code=3)))
    with pytest.raises(
        kopf.LoginError, match=r"exec credential plugin .* exited 3: plugin says no"
    ):
        login_with_exec_plugin(base(path), path=path)


def test_a_missing_plugin_names_the_install_hint(tmp_path: Path) -> None:
    user = {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1beta1",
            "command": "no-such-plugin-xyz",
            "installHint": "Install it with your package manager.",
        }
    }
    path = write_kubeconfig(tmp_path, user)
    with pytest.raises(kopf.LoginError, match=r"not installed or not on PATH.*package manager"):
        login_with_exec_plugin(base(path), path=path)


@pytest.mark.parametrize(
    ("output", "problem"),
    [
        ("not json", "no ExecCredential JSON"),
        ('{"apiVersion": "client.authentication.k8s.io/v1"}', "without status"),
        ('{"apiVersion": "v9", "status": {"token": "t"}}', "apiVersion 'v9'"),
        ('{"apiVersion": "client.authentication.k8s.io/v1", "status": {}}', "neither"),
    ],
)
def test_malformed_credentials_are_refused(output: str, problem: str) -> None:
    with pytest.raises(kopf.LoginError, match=problem):
        parse_exec_credential(output, source="plugin")
