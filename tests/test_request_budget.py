"""What one tenant's provisioning costs in API requests, counted by the in-memory API server
(`FakeKube.requests`: every request, an Event and a read of the server's clock included), for the
tenant the provisioning benchmark creates (`examples/tenants/minimal.yaml`; the benchmark's
`bench_tenant` differs only in its service code).

The floor is a minimal client that applies the tenant's rendered objects with one server-side
apply each (`bench/provision/floor.py`): 24. What the operator does beyond it is listed in
`BEYOND_THE_FLOOR`, each with why; kopf's own two patches of a new tenant (its finalizer and its
last-handled-configuration annotation) are not in this count (docs/operator.md, "What a tenant's
provisioning costs").
"""

from __future__ import annotations

import asyncio
import copy
import datetime
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import yaml

from fakes import FakeKube, make_available, watch_cache
from reconcile_support import fake_cluster
from swg_operator.api import FINALIZER, OperatorSettings, parse_spec
from swg_operator.commands.render import read_catalogue
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge
from swg_operator.render import render_tenant
from swg_operator.sizing_io import load_capacity

SETTINGS = OperatorSettings()
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
MINIMAL = Path(__file__).resolve().parents[1] / "examples" / "tenants" / "minimal.yaml"
FLOOR = 24  # one server-side apply per rendered object

# What the operator writes beyond the floor while it provisions a tenant until Ready.
BEYOND_THE_FLOOR = Counter(
    {
        # The status, twice: Provisioning at the first reconcile, Ready once available.
        ("status", "SecureWebGateway//minimal"): 2,
        # Its mirror for the tenant's admins, after each status change.
        ("apply", "ConfigMap/swg-minimal/tenant-status"): 2,
        # The change notice (ISO/IEC 27017 12.1.2): on the tenant, and again in its namespace
        # for the admins (the Namespace is cluster-scoped).
        ("event", "Event(Created)//minimal"): 1,
        ("event", "Event(Created)/swg-minimal/tenant-status"): 1,
        # The notice history, created with the change notice and the operator's version.
        ("create", "ConfigMap/swg-minimal/tenant-notices"): 1,
    }
)


def minimal_tenant() -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(MINIMAL.read_text())
    body["metadata"].update(uid="5f0c-minimal", generation=1, finalizers=[FINALIZER])
    return body


def provisioned() -> tuple[FakeKube, Context, list[tuple[str, str]]]:
    """The minimal tenant reconciled from the watch cache until Ready, as the running operator
    does it: a first reconcile, the workloads become available, a second. Returns the requests
    until Ready."""
    kube, ctx = fake_cluster(minimal_tenant(), SETTINGS, NOW)
    ctx.cache = watch_cache(kube, SETTINGS.operator_namespace)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    make_available(kube)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert fresh(kube)["status"]["phase"] == "Ready"
    return kube, ctx, list(kube.requests)


def fresh(kube: FakeKube) -> dict[str, Any]:
    body = kube.find("SecureWebGateway", "minimal")
    assert body is not None
    return copy.deepcopy(body)


def listing(requests: list[tuple[str, str]]) -> str:
    return "\n".join(f"  {verb} {what}" for verb, what in requests)


def test_the_floor_is_24_objects() -> None:
    spec = parse_spec(minimal_tenant()["spec"])
    rendered = render_tenant(
        "minimal",
        spec,
        catalogue=read_catalogue(None),
        settings=SETTINGS,
        capacity=load_capacity(),
    )
    assert len(rendered.objects) == FLOOR


def test_a_reconcile_of_the_unchanged_tenant_makes_no_request() -> None:
    kube, ctx, _ = provisioned()
    kube.requests.clear()
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    assert kube.requests == [], "requests of an unchanged tenant:\n" + listing(kube.requests)


def test_provisioning_writes_the_objects_once_and_only_what_is_listed_beyond() -> None:
    kube, _, _ = provisioned()
    mutating = kube.mutating()
    objects = [r for r in mutating if r[0] in ("apply", "create") and r not in BEYOND_THE_FLOOR]
    assert len(objects) == len(set(objects)) == FLOOR, "object writes:\n" + listing(objects)
    beyond = Counter(r for r in mutating if r not in objects)
    assert beyond == BEYOND_THE_FLOOR, "mutating calls beyond the floor:\n" + listing(
        sorted(beyond.elements())
    )
    assert len(mutating) <= FLOOR + sum(BEYOND_THE_FLOOR.values()), listing(mutating)


def test_provisioning_reads_little() -> None:
    """Reads until Ready: the tenant read again just before its namespace is created (a copy
    older than its deletion creates nothing: tests/test_reconcile_admission.py) and the server's
    clock for the change notice. A new tenant's namespace is not looked up: it is created with a
    POST, which a namespace someone else made refuses (then it is read:
    tests/test_tenant_ownership.py). The notice history is not read: the namespace this
    reconcile made holds none, and a tenant that was never Ready has no incident to recover
    from."""
    kube, _, requests = provisioned()
    reads = [r for r in requests if r not in kube.mutating()]
    assert reads == [
        ("get", "SecureWebGateway//minimal"),
        ("time", "//"),
    ], "reads:\n" + listing(reads)


def test_a_recheck_of_a_cancelled_tenant_waiting_for_its_purge_makes_no_notice_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A tenant cancelled with its purge days ahead is checked again and again until the purge
    is due (90 days at most): its cancellation notice is recorded at the first pass, and a
    recheck neither reads the notice history again nor says it recorded the notice."""
    body = minimal_tenant()
    body["spec"]["cancellation"] = {"purgeAfterDays": 30}
    kube, ctx = fake_cluster(body, SETTINGS, NOW)
    ctx.cache = watch_cache(kube, SETTINGS.operator_namespace)
    asyncio.run(reconcile(fresh(kube), ctx=ctx))
    deleted = fresh(kube)
    deleted["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    deleted["metadata"]["generation"] += 1  # as the API server does with a finalizer
    kube.put(deleted)
    caplog.set_level(logging.INFO, logger="swg_operator")
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    recorded = [r for r in caplog.records if "notice" in r.getMessage()]
    assert [r.getMessage().split()[1] for r in recorded] == ["cancellation"]
    assert kube.find("ConfigMap", "tenant-notices", "swg-minimal") is not None
    caplog.clear()
    kube.requests.clear()
    for _ in range(3):
        with pytest.raises(NotYet):
            asyncio.run(cancel_and_purge(fresh(kube), ctx=ctx))
    history = [r for r in kube.requests if "tenant-notices" in r[1]]
    assert history == [], "notice history requests:\n" + listing(history)
    assert not [r for r in caplog.records if "Recorded" in r.getMessage()]
    assert kube.mutating() == [], "writes of a recheck:\n" + listing(kube.mutating())
    # A restarted operator looks (for the version that last reconciled the tenant, and for the
    # notice), finds the notice stored, and writes nothing.
    restarted = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    restarted.cache = watch_cache(kube, SETTINGS.operator_namespace)
    with pytest.raises(NotYet):
        asyncio.run(cancel_and_purge(fresh(kube), ctx=restarted))
    history = [r for r in kube.requests if "tenant-notices" in r[1]]
    assert history == [("list", "ConfigMap/swg-minimal/tenant-notices")] * 2, listing(history)
    assert not [r for r in caplog.records if "Recorded" in r.getMessage()]
    assert kube.mutating() == [], "writes after a restart:\n" + listing(kube.mutating())
