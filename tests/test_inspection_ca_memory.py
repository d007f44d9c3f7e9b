"""The CA Secrets are not watched: what a read found is remembered, so a reconcile of an
unchanged tenant asks nothing, and the Secret is read again when what the check rests on changed
(the published certificate, the spec, the generation) or the recheck interval passed."""

from __future__ import annotations

import asyncio
import datetime
from typing import Any

from fakes import FakeKube, make_available, watch_cache
from inspection_support import (
    CERT_CM,
    INSPECTION,
    NOW,
    NS,
    OWN_CA,
    SECRET,
    condition,
    generated_ca,
    kube_kind,
    later,
    respec,
    run,
    secret_reads,
    setup,
    tenant,
    tls_secret,
)
from swg_operator.reconcile.loop import Context
from swg_operator.reconcile.secret_checks import RECHECK, Purpose, SecretCheck, SecretChecks


def ready(options: dict[str, Any], *, secret: bool = False) -> tuple[FakeKube, Context]:
    """A Ready tenant observed from the watches, its requests counted from here on."""
    kube, ctx = setup(tenant(options=options))
    ctx.cache = watch_cache(kube, "swg-system")
    run(kube, ctx)
    if secret:
        ca = generated_ca()
        kube.put(tls_secret("own-ca", ca.certificate, ca.key))
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    run(kube, ctx)  # once more: the once-per-process lookups are behind
    kube.reads.clear()
    kube.writes.clear()
    return kube, ctx


def test_an_unchanged_tenant_with_a_generated_ca_makes_no_request() -> None:
    kube, ctx = ready(INSPECTION)
    later(ctx)  # read once after the interval ...
    run(kube, ctx)
    assert secret_reads(kube) == [("get", "Secret", NS)]
    kube.reads.clear()
    for _ in range(3):  # ... and not again while nothing changes
        status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert kube.reads == []
    assert kube.writes == []


def test_an_unchanged_tenant_with_a_readable_customer_ca_makes_no_request() -> None:
    kube, ctx = ready(OWN_CA, secret=True)
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert kube.reads == []
    assert kube.writes == []


def test_a_missing_customer_ca_is_asked_for_on_every_reconcile() -> None:
    """Only a Secret found is remembered: one created after the tenant is seen at once."""
    kube, ctx = setup(tenant(options=OWN_CA))
    run(kube, ctx)
    make_available(kube)
    assert condition(run(kube, ctx), "Stalled")["reason"] == "CASecretNotFound"
    ca = generated_ca()
    kube.put(tls_secret("own-ca", ca.certificate, ca.key))
    assert run(kube, ctx)["phase"] == "Ready"


def test_a_hand_deleted_secret_is_noticed_once_the_interval_passed() -> None:
    kube, ctx = ready(INSPECTION)
    asyncio.run(kube.delete(kube_kind("Secret"), SECRET, namespace=NS))
    run(kube, ctx)
    assert kube.find("Secret", SECRET, NS) is None  # not seen yet: Secrets are not watched
    later(ctx)
    run(kube, ctx)
    assert kube.find("Secret", SECRET, NS) is not None  # a new CA


def test_a_new_generation_reads_the_secret_again() -> None:
    kube, ctx = ready(OWN_CA, secret=True)
    respec(kube, clients={"allowedCIDRs": ["192.0.2.0/25"]})
    run(kube, ctx)
    assert secret_reads(kube) == [("get", "Secret", NS)]


def test_a_changed_published_certificate_reads_the_secret_again() -> None:
    """The published certificate edited by hand (seen by the watch): the Secret is compared
    with it at once, and found apart."""
    kube, ctx = ready(INSPECTION)
    other = generated_ca()
    cm = kube.edit("ConfigMap", CERT_CM, NS)
    cm["data"]["ca.crt"] = other.certificate
    status = run(kube, ctx)
    assert secret_reads(kube) == [("get", "Secret", NS)]
    assert condition(status, "Stalled")["reason"] == "InspectionCAMismatch"


def test_a_forgotten_tenant_leaves_no_check_behind() -> None:
    kube, ctx = ready(OWN_CA, secret=True)
    later(ctx)
    run(kube, ctx)
    assert len(ctx.secret_checks) == 1
    ctx.forget_tenant("acme")
    assert len(ctx.secret_checks) == 0


def test_a_check_holds_for_its_basis_and_the_interval_only() -> None:
    checks = SecretChecks()
    check = SecretCheck("b1", NOW, "uid", "7", readable=True)
    checks.remember("acme", Purpose.GENERATED, check)
    assert checks.recall("acme", Purpose.GENERATED, basis="b1", now=NOW) == check
    almost = NOW + RECHECK - datetime.timedelta(seconds=1)
    assert checks.recall("acme", Purpose.GENERATED, basis="b1", now=almost) == check
    assert checks.recall("acme", Purpose.GENERATED, basis="b1", now=NOW + RECHECK) is None
    assert checks.recall("acme", Purpose.GENERATED, basis="b2", now=NOW) is None
    assert checks.recall("acme", Purpose.CUSTOMER, basis="b1", now=NOW) is None
    earlier = NOW - datetime.timedelta(seconds=1)  # a clock that went back: stale
    assert checks.recall("acme", Purpose.GENERATED, basis="b1", now=earlier) is None
    assert datetime.timedelta(minutes=10) == RECHECK
