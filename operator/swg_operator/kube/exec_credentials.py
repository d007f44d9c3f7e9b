"""kubeconfig users with an `exec` credential plugin (EKS' `aws eks get-token`, GKE's
`gke-gcloud-auth-plugin`, `kubelogin`, ...), which kopf's own kubeconfig login ignores.

The kubeconfig is parsed with lightkube's loader (its models carry the `exec` block); the
plugin is run as kubectl runs it (client.authentication.k8s.io v1, v1beta1 or v1alpha1,
`KUBERNETES_EXEC_INFO` in its environment, a relative command resolved against the kubeconfig's
folder) and its ExecCredential's token or client certificate replaces the user's credentials in
kopf's `ConnectionInfo`. The credential's `expirationTimestamp` becomes the connection's
expiration, so kopf logs in again (re-running the plugin) before the token runs out.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import kopf
from lightkube.config.kubeconfig import KubeConfig

EXEC_API_VERSIONS = (
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
    "client.authentication.k8s.io/v1alpha1",
)
EXEC_TIMEOUT_SECONDS = 60.0


def kubeconfig_path(environ: dict[str, str] | None = None) -> Path | None:
    """The kubeconfig kubectl would read first: $KUBECONFIG's first existing file, else
    ~/.kube/config; None when there is none."""
    env = os.environ if environ is None else environ
    candidates = [Path(p) for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    candidates = candidates or [Path.home() / ".kube" / "config"]
    return next((p for p in candidates if p.is_file()), None)


def parse_exec_credential(output: str, *, source: str) -> dict[str, Any]:
    """The `status` of an ExecCredential printed by a plugin; `source` names it in errors."""
    try:
        document = json.loads(output)
    except json.JSONDecodeError as exc:
        raise kopf.LoginError(f"{source} printed no ExecCredential JSON: {exc}") from None
    status = document.get("status") if isinstance(document, dict) else None
    if not isinstance(status, dict):
        raise kopf.LoginError(f"{source} printed an ExecCredential without status")
    if document.get("apiVersion") not in EXEC_API_VERSIONS:
        raise kopf.LoginError(
            f"{source} printed apiVersion {document.get('apiVersion')!r}; expected one of "
            + ", ".join(EXEC_API_VERSIONS)
        )
    if not status.get("token") and not (
        status.get("clientCertificateData") and status.get("clientKeyData")
    ):
        raise kopf.LoginError(
            f"{source} printed neither status.token nor status.clientCertificateData and "
            "clientKeyData"
        )
    return status


def _expiration(status: dict[str, Any]) -> datetime.datetime | None:
    stamp = status.get("expirationTimestamp")
    if not stamp:
        return None
    return datetime.datetime.fromisoformat(str(stamp).replace("Z", "+00:00"))


def run_exec_plugin(exec_config: Any, *, kubeconfig: Path) -> dict[str, Any]:
    """Run the user's `exec` plugin; the ExecCredential's status."""
    api_version = exec_config.apiVersion
    if api_version not in EXEC_API_VERSIONS:
        raise kopf.LoginError(
            f"{kubeconfig}: users[].user.exec.apiVersion {api_version!r} is not supported; "
            f"use one of {', '.join(EXEC_API_VERSIONS)}"
        )
    command = str(exec_config.command)
    if os.sep in command and not os.path.isabs(command):
        command = str((kubeconfig.parent / command).resolve())
    env = dict(os.environ)
    env.update({var.name: var.value for var in exec_config.env or []})
    env["KUBERNETES_EXEC_INFO"] = json.dumps(
        {"apiVersion": api_version, "kind": "ExecCredential", "spec": {"interactive": False}}
    )
    source = f"the exec credential plugin {command!r} of {kubeconfig}"
    try:
        done = subprocess.run(
            [command, *(exec_config.args or [])],
            env=env,
            capture_output=True,
            text=True,
            timeout=EXEC_TIMEOUT_SECONDS,
            check=False,
        )
    except FileNotFoundError:
        hint = f" ({exec_config.installHint.strip()})" if exec_config.installHint else ""
        raise kopf.LoginError(f"{source} is not installed or not on PATH{hint}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise kopf.LoginError(f"{source} could not run: {exc}") from None
    if done.returncode != 0:
        detail = done.stderr.strip().splitlines()[-1:] or ["no message"]
        raise kopf.LoginError(f"{source} exited {done.returncode}: {detail[0]}")
    return parse_exec_credential(done.stdout, source=source)


def login_with_exec_plugin(
    base: kopf.ConnectionInfo | None, *, path: Path | None = None
) -> kopf.ConnectionInfo | None:
    """`base` (kopf's kubeconfig login) with the credentials of the current user's `exec`
    plugin; None when the kubeconfig's current user has no `exec` block."""
    path = path or kubeconfig_path()
    if path is None or base is None:
        return None
    config = KubeConfig.from_file(path).get()
    user = config.user if config is not None else None
    if user is None or user.exec is None:
        return None
    status = run_exec_plugin(user.exec, kubeconfig=path)
    replaced: dict[str, Any] = {"expiration": _expiration(status)}
    if status.get("token"):
        replaced |= {"token": status["token"], "scheme": "Bearer"}
    if status.get("clientCertificateData") and status.get("clientKeyData"):
        replaced |= {
            "certificate_data": status["clientCertificateData"],
            "certificate_path": None,
            "private_key_data": status["clientKeyData"],
            "private_key_path": None,
        }
    return dataclasses.replace(base, **replaced)
