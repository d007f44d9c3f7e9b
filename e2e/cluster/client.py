"""A handle on any cluster the e2e tier talks to: a kubeconfig plus the kubectl and helm to use.

The local control plane (`ControlPlane`) is one; an existing cluster such as kind, reached through
$SWG_E2E_KUBECONFIG, is another. Tests only use this interface, so they run against either.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from swg_operator.commands import yamltext

T = TypeVar("T")


class KubectlError(subprocess.CalledProcessError):
    """kubectl (or helm) exited non-zero; the message carries its stderr."""

    def __str__(self) -> str:
        cmd = " ".join(str(part) for part in self.cmd)
        return f"`{cmd}` exited {self.returncode}: {(self.stderr or '').strip()}"


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    interval: float = 0.25,
    describe: Callable[[], object] | None = None,
) -> T:
    """Call `probe` until it returns something truthy and return that; TimeoutError after
    `timeout` seconds, naming `what` and the last value seen, or what `describe()` returns
    (so a failure says why; a text is shown as it is, on lines of its own)."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while True:
        last = probe()
        if last:
            return last
        if time.monotonic() >= deadline:
            if describe is not None:
                seen = describe()
                shown = f":\n{seen}" if isinstance(seen, str) else f" ({seen!r})"
            else:
                shown = f" (last seen: {last!r})"
            raise TimeoutError(f"{what}: not reached within {timeout:.0f}s{shown}")
        time.sleep(interval)


def unique_name(prefix: str, *, max_length: int = 40) -> str:
    """A DNS-label name no other test or run uses: `<prefix>-<6 hex digits>`."""
    stem = re.sub(r"[^a-z0-9-]+", "-", prefix.lower()).strip("-")[: max_length - 7].rstrip("-")
    return f"{stem or 'e2e'}-{secrets.token_hex(3)}"


def _clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(extra or {})
    return env


def to_yaml_stream(manifests: Iterable[Mapping[str, Any]]) -> str:
    """What `swg-operator render` writes: strings a Go YAML reader could take for numbers quoted."""
    return yamltext.dump_all(manifests)


class Cluster:
    """kubectl and helm bound to one kubeconfig.

    `local` is True for the kwok-based control plane started by this package (fake nodes, no
    kubelet) and False for an external cluster; tests use it to decide what they may expect.
    """

    def __init__(
        self,
        kubeconfig: Path,
        *,
        kubectl: Path,
        helm: Path | None = None,
        local: bool = False,
        kubectl_cache: Path | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.kubectl_path = kubectl
        self.helm_path = helm
        self.local = local
        self._kubectl_cache = kubectl_cache

    def _run(
        self, argv: list[str], *, input: str | None, check: bool, timeout: float
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            argv,
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=_clean_env(),
            check=False,
        )
        if check and result.returncode != 0:
            raise KubectlError(result.returncode, argv, result.stdout, result.stderr)
        return result

    def kubectl(
        self,
        *args: str,
        input: str | None = None,
        check: bool = True,
        timeout: float = 60.0,
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl with this cluster's kubeconfig; raises KubectlError unless check=False."""
        argv = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}"]
        if self._kubectl_cache is not None:
            argv.append(f"--cache-dir={self._kubectl_cache}")
        return self._run([*argv, *args], input=input, check=check, timeout=timeout)

    def kubectl_json(self, *args: str, timeout: float = 60.0) -> Any:
        """Run `kubectl ... -o json` and return the parsed document."""
        return json.loads(self.kubectl(*args, "-o", "json", timeout=timeout).stdout)

    def get_raw(self, path: str) -> Any:
        """GET an API path (e.g. /version) as JSON through kubectl."""
        return json.loads(self.kubectl("get", "--raw", path).stdout)

    def apply(
        self,
        *manifests: Mapping[str, Any],
        namespace: str | None = None,
        check: bool = True,
        field_manager: str = "swg-e2e",
    ) -> subprocess.CompletedProcess[str]:
        """Server-side apply of the given objects, as `kubectl apply --server-side -f -`."""
        args = ["apply", "--server-side", f"--field-manager={field_manager}", "-f", "-"]
        if namespace:
            args += ["-n", namespace]
        return self.kubectl(*args, input=to_yaml_stream(manifests), check=check)

    def helm(
        self, *args: str, check: bool = True, timeout: float = 300.0
    ) -> subprocess.CompletedProcess[str]:
        """Run helm against this cluster."""
        if self.helm_path is None:
            raise FileNotFoundError("no helm binary: run `make setup`")
        argv = [str(self.helm_path), f"--kubeconfig={self.kubeconfig}", *args]
        return self._run(argv, input=None, check=check, timeout=timeout)

    def with_kubeconfig(self, kubeconfig: Path) -> Cluster:
        """The same cluster and tools seen through other credentials (e.g. a ServiceAccount)."""
        return Cluster(
            kubeconfig,
            kubectl=self.kubectl_path,
            helm=self.helm_path,
            local=self.local,
            kubectl_cache=self._kubectl_cache,
        )

    def server_version(self) -> str:
        return str(self.get_raw("/version")["gitVersion"])


def service_account_kubeconfig(
    cluster: Cluster,
    *,
    namespace: str,
    name: str,
    path: Path,
    create: bool = True,
    duration: str = "1h",
) -> Path:
    """Write a kubeconfig at `path` that authenticates as ServiceAccount `namespace/name`.

    The ServiceAccount is created unless `create=False`; its token comes from the TokenRequest
    API (`kubectl create token`), the way a pod's projected token would.
    """
    if create:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ServiceAccount",
                "metadata": {"name": name, "namespace": namespace},
            }
        )
    token = cluster.kubectl(
        "create", "token", name, "-n", namespace, f"--duration={duration}"
    ).stdout.strip()
    view = cluster.kubectl_json("config", "view", "--raw", "--minify", "--flatten")
    cluster_entry = dict(view["clusters"][0]["cluster"])
    user = f"system:serviceaccount:{namespace}:{name}"
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "target", "cluster": cluster_entry}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [
            {"name": user, "context": {"cluster": "target", "user": user, "namespace": namespace}}
        ],
        "current-context": user,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
