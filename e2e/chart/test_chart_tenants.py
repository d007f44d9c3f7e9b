"""Tenants reconciled by the operator holding nothing but the chart's RBAC: made Ready, given a
generated inspection CA, suspended, cancelled and purged, reported Stalled, each live status
met by the Argo CD health check; and, on kind, real traffic through a tenant's proxy."""

from __future__ import annotations

import base64
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from e2e.chart.support import (
    PURGE_TIMEOUT,
    READY_TIMEOUT,
    ChartOperator,
    Release,
    argo_health,
    capture,
    condition_status,
    delete_tenants,
    log_without_refusals,
    lua_health,
    tenant_manifest,
    with_condition,
)
from e2e.cluster import unique_name, wait_until
from e2e.operator_process import forget_tenant, get_tenant

pytestmark = pytest.mark.cluster


def test_operator_with_only_the_chart_rbac_makes_a_tenant_ready(
    operator_release: Release, operator: ChartOperator
) -> None:
    cluster = operator_release.cluster
    name = unique_name("chart-only")
    cluster.apply(tenant_manifest(name))

    def outcome() -> str | None:
        obj = get_tenant(cluster, name)
        if condition_status(obj, "Ready") == "True":
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
        delete_tenants(cluster, name)


def test_operator_with_only_the_chart_rbac_generates_the_inspection_ca_and_checks_references(
    operator_release: Release, operator: ChartOperator
) -> None:
    """HTTPS inspection with the chart's rights alone: the CA Secret is created (`create`, the
    only verb on Secrets) and its certificate published; a CA Secret the spec names is looked
    for with a dry-run create and, missing, stalls the tenant until it exists."""
    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    generated, named = unique_name("chart-inspect"), unique_name("chart-own-ca")
    cluster.apply(tenant_manifest(generated, options={"httpsInspection": {"enabled": True}}))
    cluster.apply(
        tenant_manifest(
            named, options={"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}}
        )
    )
    try:
        ready = wait_until(
            lambda: with_condition(cluster, generated, "Ready"),
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
                (get_tenant(cluster, named) or {}).get("status", {}).get("conditions", [])
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
            lambda: condition_status(get_tenant(cluster, named), "Ready") == "True",
            timeout=READY_TIMEOUT,
            what=f"{named} Ready once its CA Secret exists",
        )
        log_without_refusals(operator, log_start)
    finally:
        delete_tenants(cluster, generated, named)


def test_operator_with_the_chart_service_account_reconciles_cancels_and_purges(
    operator_release: Release, operator: ChartOperator
) -> None:
    """A tenant becomes Ready, is suspended and resumed, and is cancelled and purged by the
    operator holding only the chart's RBAC; each live status meets the Argo CD health check."""
    cluster = operator_release.cluster
    log_start = len(operator.log_text())
    name = unique_name("chart-tenant")
    cluster.apply(tenant_manifest(name))
    seen_first = wait_until(
        lambda: (s := get_tenant(cluster, name)) and s.get("status") and s,
        timeout=60,
        what=f"first status of {name}",
    )
    capture(seen_first, "live-first-status")
    assert lua_health(seen_first)["status"] in ("Progressing", "Healthy")

    ready = wait_until(
        lambda: with_condition(cluster, name, "Ready"),
        timeout=READY_TIMEOUT,
        what=f"{name} Ready (operator log:\n{operator.log_text()[-3000:]})",
    )
    capture(ready, "live-ready")
    assert lua_health(ready)["status"] == "Healthy"
    namespace = ready["status"]["namespace"]
    assert cluster.kubectl_json("get", "deployment", "proxy", "-n", namespace)
    assert cluster.kubectl_json("get", "rolebindings", "-n", namespace)["items"]

    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", '{"spec":{"suspended":true}}')
    suspended = wait_until(
        lambda: (
            (s := get_tenant(cluster, name))
            and s["status"].get("phase") == "Suspended"
            and s["status"].get("observedGeneration") == s["metadata"]["generation"]
            and s
        ),
        timeout=READY_TIMEOUT,
        what=f"{name} Suspended",
    )
    capture(suspended, "live-suspended")
    assert lua_health(suspended)["status"] == "Suspended"
    cluster.kubectl("patch", "swg", name, "--type=merge", "-p", '{"spec":{"suspended":false}}')
    wait_until(
        lambda: (
            (s := get_tenant(cluster, name))
            and condition_status(s, "Ready") == "True"
            and s["status"].get("observedGeneration") == s["metadata"]["generation"]
        ),
        timeout=READY_TIMEOUT,
        what=f"{name} Ready again",
    )

    cluster.kubectl("delete", "swg", name, "--wait=false")
    wait_until(
        lambda: get_tenant(cluster, name) is None,
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
    log_without_refusals(operator, log_start)


def test_operator_reports_a_spec_it_cannot_honour_as_degraded(
    operator_release: Release, operator: ChartOperator
) -> None:
    """An unknown URL category passes the CRD (the catalogue is the operator's to judge): the
    operator marks the tenant Stalled, and Argo CD shows Degraded."""
    cluster = operator_release.cluster
    name = unique_name("chart-stalled")
    cluster.apply(tenant_manifest(name, urlFiltering={"blockedCategories": ["no-such-category"]}))
    try:
        stalled = wait_until(
            lambda: with_condition(cluster, name, "Stalled"),
            timeout=READY_TIMEOUT,
            what=f"{name} Stalled",
        )
        capture(stalled, "live-stalled")
        assert lua_health(stalled)["status"] == "Degraded"
    finally:
        delete_tenants(cluster, name)


def test_a_cancelled_tenant_waits_for_its_purge_and_shows_so(
    operator_release: Release, operator: ChartOperator
) -> None:
    """Cancelled with a purge date ahead: traffic stops, the tenant stays; health.lua says
    Suspended, Argo CD shows Progressing "Pending deletion" (docs/argocd.md)."""
    cluster = operator_release.cluster
    name = unique_name("chart-cancelled")
    cluster.apply(tenant_manifest(name, cancellation={"purgeAfterDays": 30}))
    try:
        wait_until(
            lambda: condition_status(get_tenant(cluster, name), "Ready") == "True",
            timeout=READY_TIMEOUT,
            what=f"{name} Ready",
        )
        cluster.kubectl("delete", "swg", name, "--wait=false")
        cancelled = wait_until(
            lambda: (
                (s := get_tenant(cluster, name))
                and s["status"].get("phase") == "Cancelled"
                and (s["status"].get("cancellation") or {}).get("purgeAt")
                and s
            ),
            timeout=READY_TIMEOUT,
            what=f"{name} Cancelled",
        )
        capture(cancelled, "live-cancelled")
        assert lua_health(cancelled)["status"] == "Suspended"
        assert argo_health(cancelled) == {"status": "Progressing", "message": "Pending deletion"}
    finally:
        # The purge is 30 days away: release the tenant by hand so nothing outlives the test.
        forget_tenant(cluster, name)
        delete_tenants(cluster, name)  # waits until it is gone


# --- the tenant admins, bound by the operator with the chart's RBAC ---------------------------


def _host_address_towards(address: str) -> str:
    """This machine's source address on the route to `address` (a kind node)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((address, 9))
        return str(probe.getsockname()[0])


def test_real_traffic_through_a_tenant_proxy(
    operator_release: Release, operator: ChartOperator, tmp_path: Path
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
        tenant_manifest(
            name,
            clients={"allowedCIDRs": [f"{client_ip}/32"]},
            urlFiltering={"deny": {"urlRegex": ["blocked-page"]}},
        )
    )
    try:
        ready = wait_until(
            lambda: with_condition(cluster, name, "Ready"),
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
        delete_tenants(cluster, name)
