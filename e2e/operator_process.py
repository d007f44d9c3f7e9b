"""The operator as a real process (`swg-operator run`) for the e2e tier and `make up`.

Each `OperatorProcess` runs in its own session (so SIGKILL reaches only it), logs to a file,
serves /metrics and /healthz on a free loopback port, and can run under a shifted clock through
Debian's `faketime` (libfaketime: the process's clock is moved; the API server's is not).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from devtools import readiness

from e2e.cluster import Cluster, wait_until
from e2e.cluster.processes import ProcessRecord, free_ports, is_alive
from e2e.cluster.processes import stop as stop_processes

REPO_ROOT = Path(__file__).resolve().parents[1]
# The operator tests' logs, one file per test named after it.
LOG_DIR = REPO_ROOT / ".local" / "logs" / "e2e"
STARTUP_TIMEOUT = 60.0
_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")


class OperatorProcess:
    def __init__(
        self,
        cluster: Cluster,
        *,
        log_path: Path,
        operator_namespace: str = "swg-system",
        args: Sequence[str] = (),
        clock_offset: str | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.cluster = cluster
        self.log_path = log_path
        self.operator_namespace = operator_namespace
        self.args = tuple(args)
        self.clock_offset = clock_offset  # e.g. "+91d": run under `faketime -f +91d`
        self.port = metrics_port or free_ports(1)[0]
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_start = 0

    @property
    def argv(self) -> list[str]:
        argv = [
            sys.executable,
            "-m",
            "swg_operator.cli",
            "run",
            f"--metrics-address=127.0.0.1:{self.port}",
            f"--operator-namespace={self.operator_namespace}",
            *self.args,
        ]
        if self.clock_offset:
            faketime = shutil.which("faketime")
            if faketime is None:
                raise FileNotFoundError("faketime is not installed: run `make deps`")
            argv = [faketime, "-f", self.clock_offset, *argv]
        return argv

    def start(self) -> OperatorProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        env = {k: v for k, v in os.environ.items() if not k.startswith("FAKETIME")}
        env["KUBECONFIG"] = str(self.cluster.kubeconfig)
        env["PYTHONUNBUFFERED"] = "1"
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                env=env,
                cwd=REPO_ROOT,
            )
        wait_until(
            self._healthy, timeout=STARTUP_TIMEOUT, what=f"operator /healthz ({self.log_path})"
        )
        return self

    def _healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(
                f"the operator exited with {self.proc.returncode}:\n{self.log_tail()}"
            )
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2) as r:
                return bool(r.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def metrics(self) -> dict[str, float]:
        """Every sample of /metrics as {'name{labels}': value}."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            text = r.read().decode()
        samples = {}
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if match:
                samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
        return samples

    def log_text(self) -> str:
        """What this run wrote to the log."""
        with self.log_path.open("rb") as log:
            log.seek(self._log_start)
            return log.read().decode(errors="replace")

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (kopf stops gracefully), SIGKILL after `timeout`."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL: the operator dies wherever it is, as on a node crash."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


# --- what the tests and `make up` need around the operator -----------------------------------

CRD_DIR = REPO_ROOT / "crds"
CATALOGUE_DIR = REPO_ROOT / "examples" / "catalogue"


def install_tenant_reader(cluster: Cluster) -> None:
    """The tenant admins' ClusterRole, which the chart ships (templates/tenant-reader.yaml) and
    the operator binds in tenant namespaces, for clusters without the chart. Its rules are the
    operator's `render.rbac.reader_rules()`, which tests/test_chart_rbac.py holds the chart to."""
    from swg_operator.render.rbac import reader_cluster_role

    cluster.apply(reader_cluster_role({"app.kubernetes.io/part-of": "swg-operator"}))


def install_prerequisites(cluster: Cluster, *, operator_namespace: str = "swg-system") -> None:
    """The CRD (Established), the tenant admins' ClusterRole, the operator's namespace and the
    sample URL catalogue."""
    cluster.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD_DIR))
    install_tenant_reader(cluster)
    cluster.kubectl(
        "wait", "--for=condition=Established", "crd/securewebgateways.swg.dev", "--timeout=60s"
    )
    # Established is not yet served: until its watch cache of the new kind is ready, the API
    # server answers a list with 429 "storage is (re)initializing", which an operator started
    # then logs as an error and retries (a clean benchmark run has none).
    wait_until(
        lambda: (
            cluster.kubectl(
                "get", "securewebgateways.swg.dev", "--all-namespaces", "-o", "name", check=False
            ).returncode
            == 0
        ),
        timeout=60,
        what="the API server serves securewebgateways",
    )
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": operator_namespace}}
    )
    catalogue = subprocess.run(
        [
            sys.executable,
            "-m",
            "swg_operator.cli",
            "catalogue",
            "import",
            "-n",
            operator_namespace,
            str(CATALOGUE_DIR),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO_ROOT,
    ).stdout
    cluster.kubectl("apply", "--server-side", "-f", "-", input=catalogue)


# --- helpers of the operator tests ---------------------------------------------------------------

OWNED_KINDS = (
    "namespaces,serviceaccounts,configmaps,secrets,services,persistentvolumeclaims,"
    "resourcequotas,limitranges,deployments.apps,statefulsets.apps,"
    "networkpolicies.networking.k8s.io,poddisruptionbudgets.policy,"
    "roles.rbac.authorization.k8s.io,rolebindings.rbac.authorization.k8s.io"
)


def tenant_manifest(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "swg.dev/v1alpha1",
        "kind": "SecureWebGateway",
        "metadata": {"name": name},
        "spec": {
            "serviceCode": "SWG-E2E-0001",
            "sizing": {"endpoints": 50, "requestsPerSecond": 20},
            "clients": {"allowedCIDRs": ["192.0.2.0/24"]},
            **spec,
        },
    }


def get_tenant(cluster: Cluster, name: str) -> dict[str, Any] | None:
    """The tenant, or None when there is none (any other kubectl failure raises)."""
    found = cluster.kubectl("get", "swg", name, "-o", "json", "--ignore-not-found").stdout
    return json.loads(found) if found.strip() else None


def condition(body: Mapping[str, Any] | None, kind: str) -> dict[str, Any]:
    for c in ((body or {}).get("status") or {}).get("conditions", []):
        if c["type"] == kind:
            return dict(c)
    return {}


def wait_phase(
    cluster: Cluster, name: str, phase: str, *, generation: int | None = None, timeout: float = 90
) -> dict[str, Any]:
    """The tenant once its status shows `phase` (for `generation` when given)."""

    def probe() -> dict[str, Any] | None:
        body = get_tenant(cluster, name)
        status = (body or {}).get("status") or {}
        if status.get("phase") != phase:
            return None
        if generation is not None and status.get("observedGeneration") != generation:
            return None
        return body

    return wait_until(probe, timeout=timeout, what=f"tenant {name} in phase {phase}")


def labelled_objects(cluster: Cluster, name: str) -> set[str]:
    """Every object in the cluster labelled as tenant `name`'s: {"Kind/namespace/name"}."""
    listed = cluster.kubectl_json(
        "get",
        OWNED_KINDS,
        "-A",
        "-l",
        f"app.kubernetes.io/managed-by=swg-operator,swg.dev/tenant={name}",
    )
    return {
        f"{o['kind']}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}"
        for o in listed["items"]
    }


def tenant_events(cluster: Cluster, name: str) -> list[dict[str, Any]]:
    listed = cluster.kubectl_json(
        "get",
        "events",
        "-A",
        "--field-selector",
        f"involvedObject.kind=SecureWebGateway,involvedObject.name={name}",
    )
    return list(listed["items"])


def wait_event(
    cluster: Cluster, name: str, reason: str, text: str, *, timeout: float = 60
) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        for event in tenant_events(cluster, name):
            if event.get("reason") == reason and text in event.get("message", ""):
                return event
        return None

    return wait_until(probe, timeout=timeout, what=f"Event {reason} mentioning {text!r} on {name}")


def forget_tenant(cluster: Cluster, name: str) -> None:
    """Test cleanup: drop the tenant without its purge (finalizer removed by hand)."""
    cluster.kubectl("delete", "swg", name, "--wait=false", "--ignore-not-found", check=False)
    cluster.kubectl(
        "patch", "swg", name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}', check=False
    )
    cluster.kubectl(
        "delete", "namespace", f"swg-{name}", "--wait=false", "--ignore-not-found", check=False
    )


# --- `make up` / `make down`: the operator in the background ----------------------------------

EXAMPLE_TENANTS = REPO_ROOT / "examples" / "tenants"


def _pid_file(state_dir: Path) -> Path:
    return state_dir / "operator.pid"


def _running(state_dir: Path) -> ProcessRecord | None:
    path = _pid_file(state_dir)
    if not path.exists():
        return None
    record = ProcessRecord.from_json(json.loads(path.read_text()))
    return record if is_alive(record) else None


def provide_referenced_objects(cluster: Cluster, tenant: Mapping[str, Any]) -> None:
    """What a customer provides for an example tenant in its namespace: the CA Secret and the
    custom signatures ConfigMap its spec names (a throw-away CA, a signature that matches nothing
    real). Made after the tenant, in the namespace the operator created for it (it manages no
    namespace it did not create), then the tenant is annotated so that it is reconciled at once:
    referenced objects are not watched, so they would otherwise wait for the next resync."""
    import base64
    import datetime

    from swg_operator.naming import tenant_namespace
    from swg_operator.reconcile.secrets import generate_inspection_ca

    name, spec = tenant["metadata"]["name"], tenant["spec"]
    namespace = tenant_namespace(name)
    ca_secret = ((spec.get("options") or {}).get("httpsInspection") or {}).get("caSecret")
    signatures = (spec.get("antivirus") or {}).get("customSignatures")
    if not ca_secret and not signatures:
        return
    wait_until(
        lambda: cluster.kubectl("get", "namespace", namespace, check=False).returncode == 0,
        timeout=120,
        what=f"namespace {namespace} created by the operator",
        describe=lambda: "\n".join(readiness.condition_lines(name, get_tenant(cluster, name))),
    )
    if ca_secret:
        ca = generate_inspection_ca(
            tenant=name,
            service_code=spec["serviceCode"],
            now=datetime.datetime.now(datetime.UTC),
        )
        data = {"tls.crt": ca.certificate, "tls.key": ca.key}
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": ca_secret["name"], "namespace": namespace},
                "type": "kubernetes.io/tls",
                "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
            }
        )
    if signatures:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": signatures["name"], "namespace": namespace},
                "data": {"example.ndb": "Example.Local.Test-1:0:*:73776700736967\n"},
            }
        )
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    cluster.kubectl(
        "annotate", "swg", name, f"swg.dev/referenced-objects-provided={stamp}", "--overwrite"
    )


def _write_now(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def up(state_dir: Path, *, timeout: float = 420.0) -> int:
    """The product as a user gets it on the local cluster: images into the real node, the
    operator by `helm upgrade --install`, the example tenants applied and Ready for real."""
    from e2e import local_install
    from e2e.cluster import ControlPlane

    plane = ControlPlane(state_dir, real_node=True)
    if not plane.is_healthy():
        print(f"error: no healthy cluster with a real node in {state_dir}: run make cluster-up",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        local_install.install(plane)
    except local_install.LocalInstallError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    tenants = [
        document
        for path in sorted(EXAMPLE_TENANTS.glob("*.yaml"))
        for document in yaml.safe_load_all(path.read_text())
        if document
    ]
    plane.kubectl("apply", "-f", str(EXAMPLE_TENANTS))
    for tenant in tenants:
        provide_referenced_objects(plane, tenant)
    names = [tenant["metadata"]["name"] for tenant in tenants]
    print(f"Waiting for {', '.join(names)} to be Ready (pods pull nothing: images are local)")
    operator_log = f"kubectl -n {local_install.NAMESPACE} logs deploy/{local_install.RELEASE}"
    try:
        readiness.wait_ready(
            lambda name: get_tenant(plane, name),
            names,
            timeout=timeout,
            write=_write_now,
            operator_log=operator_log,
        )
    except readiness.TenantsNotReadyError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(plane.kubectl("get", "swg").stdout, end="")
    for name in names:
        print(plane.kubectl("get", "pods", "-n", f"swg-{name}", "-o", "wide").stdout, end="")
    print(f"Operator: kubectl -n {local_install.NAMESPACE} logs deploy/{local_install.RELEASE}")
    return 0


def down(state_dir: Path) -> int:
    record = _running(state_dir)
    if record is not None:
        left = stop_processes([record])
        if left:
            print(f"Operator (pid {record.pid}) did not stop", file=sys.stderr)
            return 1
        print(f"Operator (pid {record.pid}) stopped")
    _pid_file(state_dir).unlink(missing_ok=True)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m e2e.operator_process")
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("--dir", type=Path, default=REPO_ROOT / ".local")
    args = parser.parse_args(argv)
    state_dir = args.dir.resolve()
    return up(state_dir) if args.action == "up" else down(state_dir)


if __name__ == "__main__":
    sys.exit(main())
