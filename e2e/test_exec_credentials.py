"""`swg-operator run` logs in with a kubeconfig whose user is an `exec` credential plugin (as on
EKS and GKE), against the real API server of the cluster tier.

The plugin is a tiny script printing an ExecCredential with a real ServiceAccount token (from
the TokenRequest API); the operator's own login (`kube.http.login`, what kopf's login handler
and the operator's API client use) must present it: the API server's SelfSubjectReview names
the ServiceAccount.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml

from e2e.cluster import Cluster
from swg_operator.kube.http import login

pytestmark = pytest.mark.cluster


def exec_kubeconfig(cluster: Cluster, tmp_path: Path, token: str) -> Path:
    plugin = tmp_path / "plugin.py"
    credential = {
        "apiVersion": "client.authentication.k8s.io/v1",
        "kind": "ExecCredential",
        "status": {"token": token, "expirationTimestamp": "2099-01-01T00:00:00Z"},
    }
    plugin.write_text(f"import json\nprint(json.dumps({credential!r}))\n")
    view = cluster.kubectl_json("config", "view", "--raw", "--minify", "--flatten")
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "target", "cluster": view["clusters"][0]["cluster"]}],
        "users": [
            {
                "name": "plugin-user",
                "user": {
                    "exec": {
                        "apiVersion": "client.authentication.k8s.io/v1",
                        "command": sys.executable,
                        "args": [str(plugin)],
                        "interactiveMode": "Never",
                    }
                },
            }
        ],
        "contexts": [{"name": "x", "context": {"cluster": "target", "user": "plugin-user"}}],
        "current-context": "x",
    }
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


async def who_am_i() -> str:
    info = login()
    async with (
        aiohttp.ClientSession(
            base_url=info.server,
            headers=info.as_http_headers(),
            connector=aiohttp.TCPConnector(ssl=info.as_ssl_context()),
        ) as session,
        session.post(
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            data=json.dumps(
                {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
            ),
            headers={"Content-Type": "application/json"},
        ) as response,
    ):
        body = await response.json()
        assert response.status == 201, body
        username: str = body["status"]["userInfo"]["username"]
        return username


def test_the_operator_logs_in_through_an_exec_plugin(
    cluster: Cluster, namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "exec-login", "namespace": namespace},
        }
    )
    token = cluster.kubectl("create", "token", "exec-login", "-n", namespace).stdout.strip()
    monkeypatch.setenv("KUBECONFIG", str(exec_kubeconfig(cluster, tmp_path, token)))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    username = asyncio.run(who_am_i())
    assert username == f"system:serviceaccount:{namespace}:exec-login"
