"""The operator does no echo work on a real API server: a new tenant gets no false drift notice,
and a reconcile of a tenant whose objects are as desired makes no request.

The request count is the operator's own metric of its adapter's requests (kopf's requests, its
watches and its finalizer, are not in it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e.cluster import Cluster, unique_name, wait_until
from e2e.operator_process import (
    OperatorProcess,
    forget_tenant,
    install_prerequisites,
    tenant_events,
    tenant_manifest,
    wait_phase,
)

pytestmark = pytest.mark.cluster

LOGS = Path(__file__).resolve().parents[1] / ".local" / "logs" / "e2e"


@pytest.fixture(scope="module")
def prepared(cluster: Cluster) -> Cluster:
    install_prerequisites(cluster)
    return cluster


@pytest.fixture
def operator(prepared: Cluster, request: pytest.FixtureRequest) -> Iterator[OperatorProcess]:
    process = OperatorProcess(prepared, log_path=LOGS / f"{request.node.name}.log")
    with process:
        yield process


@pytest.fixture
def tenant_name(prepared: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = unique_name(request.node.name.removeprefix("test_")[:20])
    yield name
    forget_tenant(prepared, name)


def total(samples: dict[str, float], metric: str) -> float:
    return sum(value for key, value in samples.items() if key.split("{")[0] == metric)


def settled(operator: OperatorProcess) -> dict[str, float]:
    """The operator's metrics once its request count holds still (the reconcile that wrote
    `Ready` still mirrors it into the tenant namespace)."""
    seen: list[float] = []

    def probe() -> dict[str, float] | None:
        samples = operator.metrics()
        seen.append(total(samples, "swg_operator_api_requests_total"))
        return samples if len(seen) >= 3 and seen[-1] == seen[-3] else None

    return wait_until(probe, timeout=30, interval=1.0, what="the operator's requests to settle")


def test_a_new_tenant_gets_no_drift_notice(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    """The API server defaults fields of the new objects (a claim's class); none of that reads
    as a change by hand."""
    prepared.apply(tenant_manifest(tenant_name))
    wait_phase(prepared, tenant_name, "Ready", generation=1)
    reasons = [event.get("reason") for event in tenant_events(prepared, tenant_name)]
    assert "Created" in reasons
    assert "Reverted" not in reasons, reasons
    assert "Restored" not in reasons, reasons


def test_a_reconcile_of_an_unchanged_tenant_makes_no_request(
    prepared: Cluster, operator: OperatorProcess, tenant_name: str
) -> None:
    prepared.apply(tenant_manifest(tenant_name))
    wait_phase(prepared, tenant_name, "Ready", generation=1)
    before = settled(operator)
    reconciles = total(before, "swg_operator_reconciles_total")
    # A label is not in the spec: the tenant's desired state is the same, and so are its
    # objects, but it is an event on the tenant, so it asks for a reconcile.
    prepared.kubectl("label", "swg", tenant_name, "swg.test/touched=yes", "--overwrite")
    wait_until(
        lambda: total(operator.metrics(), "swg_operator_reconciles_total") > reconciles or None,
        timeout=30,
        what="a reconcile after the label change",
    )
    after = operator.metrics()
    requests = total(after, "swg_operator_api_requests_total")
    assert requests == total(before, "swg_operator_api_requests_total"), operator.log_tail()
