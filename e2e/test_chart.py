"""The Helm chart on a real API server, as a platform team installs it, and the operator running
with nothing but the chart's ServiceAccount.

On the local control plane the chart gets a control plane of its own (started by this module):
its release owns cluster-wide objects (the CRD, ClusterRoles) and the
operator it runs reconciles every tenant it sees, so sharing the session's cluster with other
modules would let each disturb the other. Pods are simulated by kwok there: the operator image
never runs, so the operator runs as a local process authenticated with a token of the chart's
ServiceAccount, which proves the chart's RBAC sufficient.

On an external cluster ($SWG_E2E_KUBECONFIG, e.g. kind through hack/e2e-kind.sh) the chart is
installed in its own release; the tests that need the operator itself use the release named by
$SWG_E2E_CHART_RELEASE ("namespace/name", installed by hack/e2e-kind.sh with real images) and
are skipped without it.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import (
    Cluster,
    ControlPlane,
    ControlPlaneError,
    service_account_kubeconfig,
    unique_name,
    wait_until,
)

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[1]
CHART = REPO_ROOT / "charts" / "swg-operator"
HEALTH_LUA = REPO_ROOT / "deploy/argocd/resource_customizations/swg.dev/SecureWebGateway/health.lua"
CRD_NAME = "securewebgateways.swg.dev"
TENANT_READER = "swg-tenant-reader"
READY_TIMEOUT = 180.0
PURGE_TIMEOUT = 180.0


@dataclass
class Release:
    cluster: Cluster
    name: str
    namespace: str
    install_output: str
    owned: bool  # installed by this module (uninstalled at the end)

    @property
    def fullname(self) -> str:
        return self.name if "swg-operator" in self.name else f"{self.name}-swg-operator"

    def helm(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cluster.helm(*args, "--namespace", self.namespace, check=check)

    def manifest(self) -> list[dict[str, Any]]:
        text = self.helm("get", "manifest", self.name).stdout
        return [d for d in yaml.safe_load_all(text) if d]

    def settings_json(self) -> str:
        config_map = self.cluster.kubectl_json(
            "get", "configmap", f"{self.fullname}-settings", "-n", self.namespace
        )
        return str(config_map["data"]["settings.json"])


# --- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart_cluster(cluster: Cluster) -> Iterator[Cluster]:
    """A control plane for this module alone when the session's is local; else the cluster."""
    if not cluster.local:
        yield cluster
        return
    plane = ControlPlane(REPO_ROOT / ".local" / "e2e-chart")
    try:
        plane.start()
    except ControlPlaneError as err:
        pytest.fail(f"the chart's control plane did not start: {err}", pytrace=False)
    try:
        yield plane
    finally:
        plane.stop()


def _adopt(cluster: Cluster, release: str, namespace: str) -> None:
    """A CRD applied before the chart (kubectl apply --server-side -f crds/), and the tenant
    admins' ClusterRole as `make up` applies it, are adopted by the release, the way
    docs/install.md tells users to."""
    for kind, name in (("crd", CRD_NAME), ("clusterrole", TENANT_READER)):
        found = cluster.kubectl("get", kind, name, "--ignore-not-found", "-o", "name").stdout
        if not found.strip():
            continue
        cluster.kubectl("label", kind, name, "app.kubernetes.io/managed-by=Helm", "--overwrite")
        cluster.kubectl(
            "annotate",
            kind,
            name,
            f"meta.helm.sh/release-name={release}",
            f"meta.helm.sh/release-namespace={namespace}",
            "--overwrite",
        )


@pytest.fixture(scope="module")
def release(chart_cluster: Cluster) -> Iterator[Release]:
    """The chart installed into a namespace enforcing Pod Security `restricted`, as NOTES.txt's
    reader would: `helm install` and nothing else. On an external cluster where
    hack/e2e-kind.sh installed the chart ($SWG_E2E_CHART_RELEASE), that release: a second one
    would compete for the CRD and the tenants."""
    named = os.environ.get("SWG_E2E_CHART_RELEASE")
    if named and not chart_cluster.local:
        namespace, _, name = named.partition("/")
        notes = chart_cluster.helm("status", name, "--namespace", namespace).stdout
        yield Release(chart_cluster, name, namespace, notes, owned=False)
        return
    name = unique_name("swg")
    namespace = unique_name("swg-system")
    chart_cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        }
    )
    _adopt(chart_cluster, name, namespace)
    result = chart_cluster.helm(
        "install", name, str(CHART), "--namespace", namespace, "--wait", "--timeout", "3m"
    )
    installed = Release(chart_cluster, name, namespace, result.stdout, owned=True)
    try:
        yield installed
    finally:
        chart_cluster.helm("uninstall", name, "--namespace", namespace, "--wait", check=False)
        chart_cluster.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


@pytest.fixture(scope="module")
def operator_release(chart_cluster: Cluster, release: Release) -> Release:
    """The release whose operator reconciles tenants: this module's on the local control plane
    (the operator then runs as a local process), the one hack/e2e-kind.sh installed elsewhere."""
    if chart_cluster.local or not release.owned:
        return release
    pytest.skip("external cluster without $SWG_E2E_CHART_RELEASE: no operator image to run")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class OperatorProcess:
    process: subprocess.Popen[bytes] | None
    log: Path | None
    sa_cluster: Cluster

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""


@pytest.fixture(scope="module")
def operator(
    operator_release: Release, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """`swg-operator run` with a kubeconfig holding a token of the chart's ServiceAccount."""
    rel = operator_release
    work = tmp_path_factory.mktemp("chart-operator")
    sa_kubeconfig = service_account_kubeconfig(
        rel.cluster,
        namespace=rel.namespace,
        name=rel.fullname,
        path=work / "operator.kubeconfig",
        create=False,
    )
    sa_cluster = rel.cluster.with_kubeconfig(sa_kubeconfig)
    if not rel.owned:  # the release's own pod runs the operator
        yield OperatorProcess(None, None, sa_cluster)
        return
    settings = work / "settings.json"
    settings.write_text(rel.settings_json())
    port = _free_port()
    log = work / "operator.log"
    command = [
        str(Path(sys.executable).with_name("swg-operator")),
        "run",
        f"--settings={settings}",
        f"--metrics-address=127.0.0.1:{port}",
        f"--lease={rel.fullname}",  # the chart's Lease, as its Deployment passes it
        "--resync-seconds=60",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("KUBERNETES_")}
    env.update(KUBECONFIG=str(sa_kubeconfig), SWG_OPERATOR_NAMESPACE=rel.namespace)
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    running = OperatorProcess(process, log, sa_cluster)

    def healthy() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the operator exited {process.returncode}:\n{running.log_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    try:
        wait_until(healthy, timeout=60, what="the operator's /healthz")
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# --- the chart on the server -------------------------------------------------------------------


def test_template_output_passes_server_side_validation(release: Release) -> None:
    """Everything `helm template` renders, with every optional part that needs no third-party
    CRD switched on, is accepted by the API server (schemas, admission, strict fields)."""
    rendered = release.cluster.helm(
        "template",
        release.name,
        str(CHART),
        "--namespace",
        release.namespace,
        "--include-crds",
        "--kube-version",
        release.cluster.server_version(),
        "--set",
        "image.digest=sha256:" + "ab" * 32,
        "--set",
        "networkPolicy.apiServer.cidrs[0]=192.0.2.10/32",
    ).stdout
    release.cluster.kubectl(
        "apply",
        "--dry-run=server",
        "--server-side",
        "--force-conflicts",
        "--validate=strict",
        "--field-manager=swg-e2e-dry-run",
        "-f",
        "-",
        input=rendered,
    )


def test_install_is_deployed_and_the_operator_pod_is_admitted_as_restricted(
    release: Release,
) -> None:
    status = json.loads(release.helm("status", release.name, "-o", "json").stdout)
    assert status["info"]["status"] == "deployed"
    deployment = release.cluster.kubectl_json(
        "get", "deployment", release.fullname, "-n", release.namespace
    )
    assert deployment["status"].get("availableReplicas") == 1
    crd = release.cluster.kubectl_json("get", "crd", CRD_NAME)
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    role = release.cluster.kubectl_json("get", "role", release.fullname, "-n", release.namespace)
    lease_rules = [r for r in role["rules"] if r["resources"] == ["leases"]]
    assert {(tuple(r.get("resourceNames", ())), tuple(r["verbs"])) for r in lease_rules} == {
        ((), ("create",)),
        ((release.fullname,), ("get", "update")),
    }


def _notes_tenant(notes: str) -> dict[str, Any]:
    """The tenant example NOTES.txt shows, as the reader would save it."""
    block = re.search(r"^( +)apiVersion: swg\.dev/v1alpha1\n(?:\1.*\n|\n)+", notes, re.M)
    assert block, "NOTES.txt shows no tenant example"
    indent = len(block.group(1))
    text = "\n".join(line[indent:] for line in block.group(0).splitlines())
    document = yaml.safe_load(text.split("\n\n   then", 1)[0])
    assert isinstance(document, dict)
    return document


def test_notes_tell_the_next_steps_and_their_example_tenant_is_valid(release: Release) -> None:
    notes = release.install_output
    for step in ("kubectl get swg", "kubectl apply -f tenant.yaml", "docs/install.md"):
        assert step in notes
    tenant = _notes_tenant(notes)
    release.cluster.kubectl("apply", "--dry-run=server", "-f", "-", input=yaml.safe_dump(tenant))


def test_helm_test_hook(release: Release) -> None:
    """`helm test` asks /healthz through the Service. kwok never runs a bare pod to completion,
    so on the local control plane the hook pod is only checked to be admitted."""
    if release.cluster.local:
        hooks = [
            d for d in yaml.safe_load_all(release.helm("get", "hooks", release.name).stdout) if d
        ]
        (pod,) = [h for h in hooks if h["kind"] == "Pod"]
        release.cluster.kubectl(
            "apply",
            "--dry-run=server",
            "-n",
            release.namespace,
            "-f",
            "-",
            input=yaml.safe_dump(pod),
        )
        return
    release.helm("test", release.name, "--timeout", "2m")


def test_upgrade_rolls_the_operator_and_upgrades_the_crd(release: Release, tmp_path: Path) -> None:
    """`helm upgrade` applies a changed CRD (Helm would not for crds/) and a settings change
    replaces the operator pod; upgrading back restores both."""
    cluster = release.cluster
    before = cluster.kubectl_json("get", "deployment", release.fullname, "-n", release.namespace)
    changed = tmp_path / "swg-operator"
    shutil.copytree(CHART, changed, symlinks=False)  # files/crds: the generated files themselves
    (crd_file,) = (changed / "files" / "crds").glob("*.yaml")
    crd = yaml.safe_load(crd_file.read_text())
    column = {"name": "UpgradeProbe", "type": "string", "jsonPath": ".metadata.uid"}
    crd["spec"]["versions"][0]["additionalPrinterColumns"].append(column)
    crd_file.write_text(yaml.safe_dump(crd, sort_keys=False))

    def columns() -> list[str]:
        stored = cluster.kubectl_json("get", "crd", CRD_NAME)
        return [c["name"] for c in stored["spec"]["versions"][0]["additionalPrinterColumns"]]

    release.helm(
        "upgrade",
        release.name,
        str(changed),
        "--reuse-values",
        "--set",
        "dataplane.proxyPort=8128",
        "--wait",
        "--timeout",
        "3m",
    )
    assert "UpgradeProbe" in columns()
    after = cluster.kubectl_json("get", "deployment", release.fullname, "-n", release.namespace)
    annotation = "swg.dev/settings-checksum"
    assert (
        after["spec"]["template"]["metadata"]["annotations"][annotation]
        != before["spec"]["template"]["metadata"]["annotations"][annotation]
    )
    assert '"proxyPort": 8128' in release.settings_json()
    history = json.loads(release.helm("history", release.name, "-o", "json").stdout)
    assert history[-1]["status"] == "deployed"

    release.helm(
        "upgrade",
        release.name,
        str(CHART),
        "--reuse-values",
        "--set",
        "dataplane.proxyPort=3128",
        "--wait",
        "--timeout",
        "3m",
    )
    assert "UpgradeProbe" not in columns()
    assert '"proxyPort": 3128' in release.settings_json()


# --- the operator with the chart's ServiceAccount ----------------------------------------------


def _tenant(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "swg.dev/v1alpha1",
        "kind": "SecureWebGateway",
        "metadata": {"name": name},
        "spec": {
            "serviceCode": "SWG-0000001",
            "sizing": {"endpoints": 50, "requestsPerSecond": 20},
            "clients": {"allowedCIDRs": ["203.0.113.0/24"]},
            "admins": [{"kind": "User", "name": "admin@example.com"}],
            "cancellation": {"purgeAfterDays": 0},
            **spec,
        },
    }


def _status(cluster: Cluster, name: str) -> dict[str, Any] | None:
    found = cluster.kubectl("get", "swg", name, "-o", "json", "--ignore-not-found").stdout
    return json.loads(found) if found.strip() else None


def _condition(obj: dict[str, Any] | None, kind: str) -> str | None:
    for condition in (obj or {}).get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            return str(condition["status"])
    return None


def _lua_health(obj: dict[str, Any]) -> dict[str, str]:
    from lupa import lua51

    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(HEALTH_LUA.read_text())
    return {"status": str(result["status"]), "message": str(result["message"])}


def _argo_health(obj: dict[str, Any]) -> dict[str, str]:
    """What Argo CD shows: an object being deleted is "Progressing: Pending deletion" before any
    health check runs (gitops-engine); otherwise health.lua decides."""
    if obj["metadata"].get("deletionTimestamp"):
        return {"status": "Progressing", "message": "Pending deletion"}
    return _lua_health(obj)


def _capture(obj: dict[str, Any], case: str) -> None:
    """With $SWG_ARGOCD_CAPTURE_DIR set, keep the live object for Argo CD's testdata."""
    target = os.environ.get("SWG_ARGOCD_CAPTURE_DIR")
    if not target:
        return
    keep = {
        k: v
        for k, v in obj["metadata"].items()
        if k in ("name", "generation", "deletionTimestamp", "finalizers", "creationTimestamp")
    }
    document = {
        "apiVersion": obj["apiVersion"],
        "kind": obj["kind"],
        "metadata": keep,
        "spec": obj["spec"],
        "status": obj.get("status"),
    }
    Path(target).mkdir(parents=True, exist_ok=True)
    (Path(target) / f"{case}.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def test_operator_with_only_the_chart_rbac_makes_a_tenant_ready(
    operator_release: Release, operator: OperatorProcess
) -> None:
    cluster = operator_release.cluster
    name = unique_name("chart-only")
    cluster.apply(_tenant(name))

    def outcome() -> str | None:
        obj = _status(cluster, name)
        if _condition(obj, "Ready") == "True":
            return "ready"
        for condition in (obj or {}).get("status", {}).get("conditions", []):
            if condition["type"] == "Stalled" and "forbidden" in condition.get("message", ""):
                return f"refused: {condition['message']}"
        return None

    try:
        result = wait_until(outcome, timeout=READY_TIMEOUT, what=f"{name} Ready or refused")
        assert result == "ready", result
        # It led with the chart's Lease rights alone: created, read and renewed by name.
        lease = cluster.kubectl_json(
            "get", "lease", operator_release.fullname, "-n", operator_release.namespace
        )
        assert lease["spec"]["holderIdentity"]
    finally:
        cluster.kubectl("delete", "swg", name, "--wait=false", check=False)


def test_operator_with_only_the_chart_rbac_generates_the_inspection_ca_and_checks_references(
    operator_release: Release, operator: OperatorProcess
) -> None:
    """HTTPS inspection with the chart's rights alone: the CA Secret is created (`create`, the
    only verb on Secrets) and its certificate published; a CA Secret the spec names is looked
    for with a dry-run create and, missing, stalls the tenant until it exists."""
    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    generated, named = unique_name("chart-inspect"), unique_name("chart-own-ca")
    cluster.apply(_tenant(generated, options={"httpsInspection": {"enabled": True}}))
    cluster.apply(
        _tenant(
            named, options={"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
        )
    )
    try:
        ready = wait_until(
            lambda: (s := _status(cluster, generated)) and _condition(s, "Ready") == "True" and s,
            timeout=READY_TIMEOUT,
            what=f"{generated} Ready (operator log:\n{operator.log_text()[-3000:]})",
        )
        namespace = ready["status"]["namespace"]
        secret = cluster.kubectl_json("get", "secret", "https-inspection-ca", "-n", namespace)
        assert secret["type"] == "kubernetes.io/tls"
        published = cluster.kubectl_json(
            "get", "configmap", "https-inspection-ca-cert", "-n", namespace
        )
        assert published["data"]["ca.crt"] == base64.b64decode(secret["data"]["tls.crt"]).decode()

        def stalled_reason() -> str | None:
            for condition in (
                (_status(cluster, named) or {}).get("status", {}).get("conditions", [])
            ):
                if condition["type"] == "Stalled" and condition["status"] == "True":
                    return str(condition["reason"])
            return None

        reason = wait_until(stalled_reason, timeout=READY_TIMEOUT, what=f"{named} Stalled")
        assert reason == "CASecretNotFound"
        own_namespace = f"swg-{named}"
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "own-ca", "namespace": own_namespace},
                "type": "kubernetes.io/tls",
                "data": {
                    "tls.crt": secret["data"]["tls.crt"],
                    "tls.key": secret["data"]["tls.key"],
                },
            }
        )
        wait_until(  # the resync (60 s here) notices the customer's Secret
            lambda: _condition(_status(cluster, named), "Ready") == "True",
            timeout=READY_TIMEOUT,
            what=f"{named} Ready once its CA Secret exists",
        )
        if operator.process is not None:
            log = operator.log_text()[log_start:]
            assert "Forbidden" not in log, log[-3000:]
    finally:
        for name in (generated, named):
            cluster.kubectl("delete", "swg", name, "--wait=false", check=False)


def test_operator_with_the_chart_service_account_reconciles_cancels_and_purges(
    operator_release: Release, operator: OperatorProcess
) -> None:
    """A tenant becomes Ready, is suspended and resumed, and is cancelled and purged by the
    operator holding only the chart's RBAC; each live status meets the Argo CD health check."""
    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    name = unique_name("chart-tenant")
    cluster.apply(_tenant(name))
    seen_first = wait_until(
        lambda: (s := _status(cluster, name)) and s.get("status") and s,
        timeout=60,
        what=f"first status of {name}",
    )
    _capture(seen_first, "live-first-status")
    assert _lua_health(seen_first)["status"] in ("Progressing", "Healthy")

    ready = wait_until(
        lambda: (s := _status(cluster, name)) and _condition(s, "Ready") == "True" and s,
        timeout=READY_TIMEOUT,
        what=f"{name} Ready (operator log:\n{operator.log_text()[-3000:]})",
    )
    _capture(ready, "live-ready")
    assert _lua_health(ready)["status"] == "Healthy"
    namespace = ready["status"]["namespace"]
    assert cluster.kubectl_json("get", "deployment", "proxy", "-n", namespace)
    assert cluster.kubectl_json("get", "rolebindings", "-n", namespace)["items"]

    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", '{"spec":{"suspended":true}}')
    suspended = wait_until(
        lambda: (
            (s := _status(cluster, name))
            and s["status"].get("phase") == "Suspended"
            and s["status"].get("observedGeneration") == s["metadata"]["generation"]
            and s
        ),
        timeout=READY_TIMEOUT,
        what=f"{name} Suspended",
    )
    _capture(suspended, "live-suspended")
    assert _lua_health(suspended)["status"] == "Suspended"
    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", '{"spec":{"suspended":false}}')
    wait_until(
        lambda: (
            (s := _status(cluster, name))
            and _condition(s, "Ready") == "True"
            and s["status"].get("observedGeneration") == s["metadata"]["generation"]
        ),
        timeout=READY_TIMEOUT,
        what=f"{name} Ready again",
    )

    cluster.kubectl("delete", "swg", name, "--wait=false")
    wait_until(
        lambda: _status(cluster, name) is None,
        timeout=PURGE_TIMEOUT,
        what=f"{name} purged (operator log:\n{operator.log_text()[-3000:]})",
    )
    assert not cluster.kubectl(
        "get", "namespace", namespace, "--ignore-not-found", "-o", "name"
    ).stdout.strip()
    receipts = cluster.kubectl_json(
        "get", "configmaps", "-n", operator_release.namespace, "-l", "swg.dev/purge-receipt=true"
    )["items"]
    assert any(r["data"].get("tenant") == name for r in receipts)
    if operator.process is not None:
        log = operator.log_text()[log_start:]
        assert "Forbidden" not in log, log[-3000:]


def test_operator_reports_a_spec_it_cannot_honour_as_degraded(
    operator_release: Release, operator: OperatorProcess
) -> None:
    """An unknown URL category passes the CRD (the catalogue is the operator's to judge): the
    operator marks the tenant Stalled, and Argo CD shows Degraded."""
    cluster = operator_release.cluster
    name = unique_name("chart-stalled")
    cluster.apply(_tenant(name, urlFiltering={"blockedCategories": ["no-such-category"]}))
    try:
        stalled = wait_until(
            lambda: (s := _status(cluster, name)) and _condition(s, "Stalled") == "True" and s,
            timeout=READY_TIMEOUT,
            what=f"{name} Stalled",
        )
        _capture(stalled, "live-stalled")
        assert _lua_health(stalled)["status"] == "Degraded"
    finally:
        cluster.kubectl("delete", "swg", name, "--wait=false", check=False)


def test_a_cancelled_tenant_waits_for_its_purge_and_shows_so(
    operator_release: Release, operator: OperatorProcess
) -> None:
    """Cancelled with a purge date ahead: traffic stops, the tenant stays; health.lua says
    Suspended, Argo CD shows Progressing "Pending deletion" (docs/argocd.md)."""
    cluster = operator_release.cluster
    name = unique_name("chart-cancelled")
    cluster.apply(_tenant(name, cancellation={"purgeAfterDays": 30}))
    try:
        wait_until(
            lambda: _condition(_status(cluster, name), "Ready") == "True",
            timeout=READY_TIMEOUT,
            what=f"{name} Ready",
        )
        cluster.kubectl("delete", "swg", name, "--wait=false")
        cancelled = wait_until(
            lambda: (
                (s := _status(cluster, name))
                and s["status"].get("phase") == "Cancelled"
                and (s["status"].get("cancellation") or {}).get("purgeAt")
                and s
            ),
            timeout=READY_TIMEOUT,
            what=f"{name} Cancelled",
        )
        _capture(cancelled, "live-cancelled")
        assert _lua_health(cancelled)["status"] == "Suspended"
        assert _argo_health(cancelled) == {"status": "Progressing", "message": "Pending deletion"}
    finally:
        # The purge is 30 days away: release the tenant by hand so nothing outlives the test.
        cluster.kubectl(
            "patch",
            "swg",
            name,
            "--type=merge",
            "-p",
            '{"metadata":{"finalizers":null}}',
            check=False,
        )
        cluster.kubectl("delete", "namespace", f"swg-{name}", "--wait=false", check=False)


# --- the tenant admins, bound by the operator with the chart's RBAC ---------------------------


def _admin_tenant(name: str, admin: str) -> dict[str, Any]:
    tenant = _tenant(name)
    tenant["spec"]["admins"] = [{"kind": "User", "name": admin}]
    return tenant


def _ready(cluster: Cluster, name: str, operator: OperatorProcess) -> dict[str, Any]:
    found: dict[str, Any] = wait_until(
        lambda: (s := _status(cluster, name)) and _condition(s, "Ready") == "True" and s,
        timeout=READY_TIMEOUT,
        what=f"{name} Ready (operator log:\n{operator.log_text()[-3000:]})",
    )
    return found


def _proxy_can_i(who: Cluster, namespace: str) -> str:
    return _can(who, "get", "services/logstore:http", "--subresource=proxy", "-n", namespace)


def test_tenant_admins_read_their_tenant_and_nothing_of_another(
    operator_release: Release,
    operator: OperatorProcess,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Two tenants, one admin each (ServiceAccount identities declared as Users, as an OIDC
    user would be). The operator, with the chart's RBAC alone, binds each admin to the chart's
    ClusterRole in their tenant's namespace; the API server then lets A's admin download A's
    logs (the service-proxy request of `kubectl swg logs`), read A's status (`kubectl swg
    status`) and A's Events, and refuses everything of B."""
    from swg_operator.commands.logs import kubectl_main

    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    identities = unique_name("chart-admins")
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": identities}})
    admins = {
        who: cluster.with_kubeconfig(
            service_account_kubeconfig(
                cluster, namespace=identities, name=who, path=tmp_path / f"{who}.kubeconfig"
            )
        )
        for who in ("alice", "bob")
    }
    a, b = unique_name("chart-admin-a"), unique_name("chart-admin-b")
    cluster.apply(_admin_tenant(a, f"system:serviceaccount:{identities}:alice"))
    cluster.apply(_admin_tenant(b, f"system:serviceaccount:{identities}:bob"))
    try:
        ns_a = _ready(cluster, a, operator)["status"]["namespace"]
        ns_b = _ready(cluster, b, operator)["status"]["namespace"]
        (binding,) = cluster.kubectl_json(
            "get", "rolebindings", "-n", ns_a, "--show-managed-fields"
        )["items"]
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": TENANT_READER,
        }
        assert {f["manager"] for f in binding["metadata"]["managedFields"]} == {"swg-operator"}
        assert not cluster.kubectl_json("get", "roles", "-n", ns_a)["items"]
        alice, bob = admins["alice"], admins["bob"]

        # Logs: the API server's decision on the plugin's request.
        assert _proxy_can_i(alice, ns_a) == "yes"
        assert _proxy_can_i(alice, ns_b) == "no"
        assert _proxy_can_i(bob, ns_b) == "yes"
        assert _proxy_can_i(bob, ns_a) == "no"
        output = str(tmp_path / "logs.ndjson")
        code = kubectl_main(
            ["logs", a, "--kubeconfig", str(bob.kubeconfig), "-q", "--file", output]
        )
        assert code == 1
        assert "(403, refused by the API server" in capsys.readouterr().err

        # Status, through the mirror.
        code = kubectl_main(["status", a, "--kubeconfig", str(alice.kubeconfig)])
        out, err = capsys.readouterr()
        assert code == 0, err
        assert "Phase:           Ready" in out
        assert f"Proxy endpoint:  proxy.{ns_a}.svc:" in out
        code = kubectl_main(["status", b, "--kubeconfig", str(alice.kubeconfig)])
        assert code == 1
        assert "(403)" in capsys.readouterr().err

        # The change notices, in the namespace.
        events = alice.kubectl_json("get", "events", "-n", ns_a)["items"]
        notices = [e for e in events if e["involvedObject"].get("name") == "tenant-status"]
        assert {"Created"} <= {e["reason"] for e in notices}, events
        refused = alice.kubectl("get", "events", "-n", ns_b, check=False)
        assert refused.returncode != 0
        for verb, resource in (("get", "secrets"), ("list", "configmaps"), ("patch", "services")):
            assert _can(alice, verb, resource, "-n", ns_a) == "no", (verb, resource)
        assert _can(alice, "get", f"securewebgateways.swg.dev/{a}") == "no"
        if operator.process is not None:
            log = operator.log_text()[log_start:]
            assert "Forbidden" not in log, log[-3000:]
    finally:
        for name in (a, b):
            cluster.kubectl("delete", "swg", name, "--wait=false", check=False)
        cluster.kubectl("delete", "namespace", identities, "--wait=false", check=False)


def test_an_upgrade_removes_the_admins_role_of_earlier_versions(
    operator_release: Release, operator: OperatorProcess
) -> None:
    """A tenant namespace as an earlier version left it (the tenant's labels but no UID stamp, a
    Role `tenant-reader` and a binding to it; the tenant's status names the namespace): the
    operator, with the chart's RBAC alone, adopts the namespace, finds the Role by name, deletes
    it, and replaces the binding by one to the chart's ClusterRole."""
    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    name = unique_name("chart-upgrade")
    namespace = f"swg-{name}"
    owned = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": name}
    admin = "carol@example.com"
    # The tenant first, with a spec the operator refuses (an unknown URL category), so that
    # this operator creates nothing; then the namespace as the earlier version made it, after
    # the tenant, and the status that version wrote.
    waiting = _admin_tenant(name, admin)
    waiting["spec"]["urlFiltering"] = {"blockedCategories": ["no-such-category"]}
    cluster.apply(waiting)
    wait_until(
        lambda: (s := _status(cluster, name)) and _condition(s, "Stalled") == "True",
        timeout=READY_TIMEOUT,
        what=f"{name} Stalled on its unknown category",
    )
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": owned}}
    )
    cluster.kubectl(
        "patch",
        "swg",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"namespace": namespace}}),
    )
    cluster.apply(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-reader", "namespace": namespace, "labels": owned},
            "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "admin-user-carol-old", "namespace": namespace, "labels": owned},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "tenant-reader",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": admin}],
        },
    )
    cluster.apply(_admin_tenant(name, admin))
    try:
        _ready(cluster, name, operator)
        adopted = cluster.kubectl_json("get", "namespace", namespace)
        assert (
            adopted["metadata"]["annotations"]["swg.dev/tenant-uid"]
            == (cluster.kubectl_json("get", "swg", name)["metadata"]["uid"])
        )

        def migrated() -> bool:
            roles = cluster.kubectl_json("get", "roles", "-n", namespace)["items"]
            bindings = cluster.kubectl_json("get", "rolebindings", "-n", namespace)["items"]
            refs = [(b["metadata"]["name"], b["roleRef"]["kind"]) for b in bindings]
            return not roles and len(refs) == 1 and refs[0][1] == "ClusterRole"

        wait_until(migrated, timeout=60, what=f"the Role of {namespace} replaced")
        assert (
            _can(cluster, "get", "pods", "--subresource=log", "-n", namespace, "--as", admin)
            == "yes"
        )
        if operator.process is not None:
            log = operator.log_text()[log_start:]
            assert "Forbidden" not in log, log[-3000:]
            assert f"Role/{namespace}/tenant-reader" in log
    finally:
        cluster.kubectl("delete", "swg", name, "--wait=false", check=False)


# --- what the ServiceAccount may not do (ISO/IEC 27017 15.1.1) --------------------------------


CANNOT = [
    ("get", "secrets", "kube-system"),
    ("list", "secrets", "kube-system"),
    ("list", "secrets", None),
    ("watch", "secrets", None),
    ("get", "secrets", None),
    ("patch", "secrets", None),
    ("update", "secrets", None),
    ("delete", "secrets", None),
    ("get", "pods/log", None),
    ("create", "pods/exec", None),
    ("create", "pods/attach", None),
    ("create", "pods/portforward", None),
    ("get", "services/proxy", None),
    ("get", "pods/proxy", None),
    ("get", "nodes/proxy", None),
    ("create", "pods", None),
    ("create", "serviceaccounts/token", None),
    ("create", "clusterrolebindings", None),
    ("create", "clusterroles", None),
    ("escalate", "clusterroles", None),
    ("bind", "clusterroles", None),
    ("create", "roles", None),
    ("patch", "roles", None),
    ("escalate", "roles", None),
    ("bind", "roles", None),
    ("impersonate", "users", None),
    ("delete", "customresourcedefinitions", None),
    ("*", "*", None),
]


@pytest.mark.parametrize(
    ("verb", "resource", "namespace"),
    CANNOT,
    ids=[f"{v} {r} {n or 'any'}" for v, r, n in CANNOT],
)
def test_service_account_cannot(
    operator: OperatorProcess, verb: str, resource: str, namespace: str | None
) -> None:
    # `can-i VERB TYPE/NAME` reads "pods/log" as the pod named log: subresources go apart.
    kind, _, subresource = resource.partition("/")
    args = ["auth", "can-i", verb, kind]
    if subresource:
        args.append(f"--subresource={subresource}")
    args += ["-n", namespace] if namespace else ["--all-namespaces"]
    result = operator.sa_cluster.kubectl(*args, check=False)
    assert result.stdout.strip() == "no", f"the operator's ServiceAccount can {verb} {resource}"


def test_can_i_answers_yes_for_a_right_the_operator_holds(
    operator: OperatorProcess,
) -> None:
    """Control for the checks above: the same can-i calls answer yes where a right exists."""
    result = operator.sa_cluster.kubectl(
        "auth", "can-i", "create", "deployments", "-n", "swg-x", check=False
    )
    assert result.stdout.strip() == "yes"


def _can(who: Cluster, *args: str) -> str:
    return who.kubectl("auth", "can-i", *args, check=False).stdout.strip()


def test_service_account_binds_only_the_tenant_admins_cluster_role(
    operator: OperatorProcess,
) -> None:
    """`bind` on the chart's tenant admins' ClusterRole by name; no `escalate` anywhere; of
    Roles only the list and delete of the one earlier versions wrote."""
    sa = operator.sa_cluster
    assert _can(sa, "bind", f"clusterroles/{TENANT_READER}") == "yes"
    for role in ("cluster-admin", "admin", "edit", "view"):
        assert _can(sa, "bind", f"clusterroles/{role}") == "no", role
    assert _can(sa, "escalate", f"clusterroles/{TENANT_READER}") == "no"
    assert _can(sa, "escalate", "roles/tenant-reader", "-n", "swg-x") == "no"
    assert _can(sa, "bind", "roles/tenant-reader", "-n", "swg-x") == "no"
    assert _can(sa, "delete", "roles/tenant-reader", "-n", "swg-x") == "yes"
    assert _can(sa, "delete", "roles/other", "-n", "swg-x") == "no"
    assert _can(sa, "list", "roles", "-n", "swg-x") == "no"  # only with the name selected


def _binding(namespace: str, role_kind: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": unique_name("probe"), "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": role},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}],
    }


def _apply_as(who: Cluster, obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """Server-side apply, dry run on the server (authorisation and RBAC's escalation check run,
    nothing is stored), as the operator writes."""
    return who.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "--field-manager=swg-operator",
        "-f",
        "-",
        input=yaml.safe_dump(obj),
        check=False,
    )


def test_service_account_cannot_bind_any_other_role(
    operator_release: Release, operator: OperatorProcess
) -> None:
    """The API server refuses the operator a RoleBinding to any ClusterRole but the tenant
    admins' (cluster-admin, admin, edit, view) and to a Role granting what it lacks, and it
    cannot write a Role: it holds `bind` on that one ClusterRole only and lacks the rights the
    others grant."""
    sa, namespace = operator.sa_cluster, operator_release.namespace
    allowed = _apply_as(sa, _binding(namespace, "ClusterRole", TENANT_READER))
    assert allowed.returncode == 0, allowed.stderr  # the control: the same request, allowed
    for role in ("cluster-admin", "admin", "edit", "view"):
        refused = _apply_as(sa, _binding(namespace, "ClusterRole", role))
        assert refused.returncode != 0, role
        assert "forbidden" in refused.stderr.lower(), refused.stderr
    # A Role granting what the operator lacks (log reading), made by the cluster's admin.
    readers = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": unique_name("log-readers"), "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    }
    operator_release.cluster.apply(readers)
    refused = _apply_as(sa, _binding(namespace, "Role", readers["metadata"]["name"]))
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower(), refused.stderr
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "tenant-reader", "namespace": namespace},
        "rules": [{"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]}],
    }
    refused = _apply_as(sa, role)
    assert refused.returncode != 0
    assert "forbidden" in refused.stderr.lower(), refused.stderr


def test_can_i_list_matches_the_chart(operator_release: Release, operator: OperatorProcess) -> None:
    """`kubectl auth can-i --list` in a tenant namespace: no wildcard, no log, and on Secrets
    nothing but `create`, and `get` of the generated CA's Secret by its name."""
    listing = operator.sa_cluster.kubectl("auth", "can-i", "--list", "-n", "swg-probe").stdout
    rows = [line.split() for line in listing.splitlines()[1:] if line.strip()]
    resources = {row[0] for row in rows}
    assert "*.*" not in resources
    assert not {"pods/log", "services/proxy", "pods/exec"} & resources
    assert {"deployments.apps", "networkpolicies.networking.k8s.io", "namespaces"} <= resources
    secret_verbs = {
        (verb, row[2])
        for row in rows
        if row[0] == "secrets"
        for verb in " ".join(row[3:]).strip("[]").split()
    }
    assert secret_verbs == {("create", "[]"), ("get", "[https-inspection-ca]")}
    sa = operator.sa_cluster
    assert _can(sa, "get", "secrets/https-inspection-ca", "-n", "swg-probe") == "yes"
    assert _can(sa, "get", "secrets/own-ca", "-n", "swg-probe") == "no"


def test_uninstall_keeps_the_crd_and_the_tenants(chart_cluster: Cluster, release: Release) -> None:
    """Runs last in this module: `helm uninstall` removes the operator and keeps the CRD."""
    if not release.owned:
        pytest.skip("the release belongs to hack/e2e-kind.sh")
    release.helm("uninstall", release.name, "--wait")
    assert chart_cluster.kubectl_json("get", "crd", CRD_NAME)
    gone = chart_cluster.kubectl(
        "get", "clusterrole", release.fullname, "--ignore-not-found", "-o", "name"
    ).stdout
    assert not gone.strip()


# --- real traffic (kind: real pods) ------------------------------------------------------------


def _host_address_towards(address: str) -> str:
    """This machine's source address on the route to `address` (a kind node)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, 9))
        return str(probe.getsockname()[0])


def test_real_traffic_through_a_tenant_proxy(
    operator_release: Release, operator: OperatorProcess, tmp_path: Path
) -> None:
    """On kind (real pods, NetworkPolicy enforced): a client inside allowedCIDRs fetches from an
    origin through its tenant's proxy, and a URL the tenant denies is refused by Squid."""
    import http.server
    import threading

    cluster = operator_release.cluster
    if cluster.local:
        pytest.skip("kwok simulates pods: proxy traffic is the data-plane tier's (e2e/dataplane)")
    node_ip = cluster.kubectl(
        "get",
        "nodes",
        "-l",
        "!node-role.kubernetes.io/control-plane",
        "-o",
        'jsonpath={.items[0].status.addresses[?(@.type=="InternalIP")].address}',
    ).stdout.strip()
    client_ip = _host_address_towards(node_ip)
    (tmp_path / "hello").write_text("hello through the gateway\n")
    (tmp_path / "blocked-page").write_text("must not arrive\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    def handler(*args: Any, **kwargs: Any) -> Quiet:
        return Quiet(*args, directory=str(tmp_path), **kwargs)

    origin = http.server.ThreadingHTTPServer((client_ip, 0), handler)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    name = unique_name("chart-traffic")
    cluster.apply(
        _tenant(
            name,
            clients={"allowedCIDRs": [f"{client_ip}/32"]},
            urlFiltering={"deny": {"urlRegex": ["blocked-page"]}},
        )
    )
    try:
        ready = wait_until(
            lambda: (s := _status(cluster, name)) and _condition(s, "Ready") == "True" and s,
            timeout=600,
            what=f"{name} Ready",
        )
        service = cluster.kubectl_json(
            "get", "service", "proxy", "-n", ready["status"]["namespace"]
        )
        node_port = service["spec"]["ports"][0]["nodePort"]
        proxy = urllib.request.ProxyHandler({"http": f"http://{node_ip}:{node_port}"})
        opener = urllib.request.build_opener(proxy)
        base = f"http://{client_ip}:{origin.server_address[1]}"
        with opener.open(f"{base}/hello", timeout=30) as response:
            assert response.status == 200
            assert response.read() == b"hello through the gateway\n"
        with pytest.raises(urllib.error.HTTPError) as refused:
            opener.open(f"{base}/blocked-page", timeout=30)
        assert refused.value.code == 403
    finally:
        origin.shutdown()
        cluster.kubectl("delete", "swg", name, "--wait=false", check=False)
