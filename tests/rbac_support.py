"""The model of the chart's RBAC tests (test_chart_rbac.py, test_chart_rbac_secrets.py): a
request's RBAC need (`Need`), what the rendered chart grants (`granted`, `covered`), and the
recorders that note what the operator's code asks for: `RecordingKube` (the in-memory API server,
through its `before` hook), `RecordingLeases` (the leader election's Lease), and kopf's registry
(`kopf_needs`). The scenario that drives the reconcile loop through them: rbac_scenario.py."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from fakes import FakeKube
from swg_operator import election
from swg_operator.api import OperatorSettings
from swg_operator.handlers import INFORMED_KINDS, RunOptions, register
from swg_operator.kube import KubeApiError, ResourceKind, kind_of
from swg_operator.kube.kinds import (
    EVENT,
    NODE,
    OWNED_KINDS,
    PERSISTENT_VOLUME,
    ROLE,
    SECRET,
    STORAGE_CLASS,
    TENANT,
)
from swg_operator.kube.lease import VERBS as LEASE_VERBS
from swg_operator.naming import (
    access_tls_secret_name,
    inspection_ca_secret_name,
    tenant_reader_cluster_role_name,
)
from swg_operator.reconcile.loop import PurgePolicy
from test_chart import one, render
from test_election import Clock, MemoryLeases

SETTINGS = OperatorSettings(operator_namespace="swg-system")
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)
CLUSTER = "cluster"  # cluster-scoped, all namespaces, or a tenant's (created at run time)
OWN = "own-namespace"  # the operator's namespace only


@dataclass(frozen=True, order=True)
class Need:
    group: str
    resource: str
    verb: str
    scope: str = CLUSTER
    name: str = ""  # a resourceNames restriction, when the grant may be limited to one name


def group_of(kind: ResourceKind) -> str:
    return kind.api_version.rpartition("/")[0]


# The kinds the operator's code asks the API server about, by the name `FakeKube.before` gets.
KINDS = {
    k.kind: k for k in (*OWNED_KINDS, SECRET, ROLE, TENANT, PERSISTENT_VOLUME, STORAGE_CLASS, NODE)
}
# A request of `FakeKube.before` -> its RBAC verb, and whether the API server authorises it
# with the object's name (so that the grant may be limited by resourceNames). A POST names no
# object; a PATCH is checked without a name too (server-side apply creates when absent); a GET,
# a DELETE and a list with a field selector on the name name it.
REQUEST_VERBS = {
    "create": ("create", False),
    "create?dryRun": ("create", False),
    "list": ("list", True),
    "get": ("get", True),
    "patch": ("patch", False),
    "delete": ("delete", True),
}


class RecordingKube(FakeKube):
    """The in-memory API server, noting the RBAC need of every request (`needs`); a read of a
    Secret that is not the operator's own is answered 403, as the chart's RBAC answers it, and
    noted apart (`refused`: see test_chart_rbac.py)."""

    def __init__(self, operator_namespace: str, *, now: datetime.datetime) -> None:
        super().__init__(now=now)
        self.needs: set[Need] = set()
        self.refused: set[Need] = set()
        self._own = operator_namespace

    def _note(
        self,
        kind: ResourceKind,
        verb: str,
        namespace: str | None,
        suffix: str = "",
        *,
        name: str = "",
    ) -> None:
        scope = OWN if namespace == self._own else CLUSTER
        self.needs.add(Need(group_of(kind), kind.plural + suffix, verb, scope, name))

    def before(self, verb: str, kind: str, namespace: str | None, name: str) -> None:
        if verb == "time":
            return  # GET /version: open to every authenticated user
        if verb == "event":
            self._note(EVENT, "create", None)
        elif verb == "status":
            self._note(KINDS[kind], "patch", None, "/status")
        elif verb == "apply":
            # Server-side apply is a PATCH that creates when absent: both verbs are checked.
            self._note(KINDS[kind], "create", namespace)
            self._note(KINDS[kind], "patch", namespace)
        else:
            if verb == "get":
                self._refuse_foreign_secret(KINDS[kind], name)
            rbac_verb, by_name = REQUEST_VERBS[verb]
            # A list by label (`?<selector>`) names no object.
            named = by_name and not name.startswith("?")
            self._note(KINDS[kind], rbac_verb, namespace, name=name if named else "")

    def _refuse_foreign_secret(self, kind: ResourceKind, name: str) -> None:
        own_secrets = (
            inspection_ca_secret_name(),
            access_tls_secret_name(),
            SETTINGS.receipts.signing_key_secret,
        )
        if kind.kind == "Secret" and name not in own_secrets:
            self.refused.add(Need(group_of(kind), kind.plural, "get", CLUSTER, name))
            raise KubeApiError(403, f'secrets "{name}" is forbidden', reason="Forbidden")

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        kind = kind_of(obj)
        assert kind.kind not in ("Role", "ClusterRole"), "the operator writes no role"
        if kind.kind == "RoleBinding":
            # Binding a role that grants rights the operator does not hold.
            ref = obj["roleRef"]
            self.needs.add(
                Need(
                    "rbac.authorization.k8s.io",
                    ref["kind"].lower() + "s",
                    "bind",
                    CLUSTER,
                    ref["name"],
                )
            )
        return await super().apply(obj)


def chart_lease_name() -> str:
    """The Lease the chart's Deployment tells the operator to hold (`--lease=NAME`)."""
    container = one(render(), "Deployment")["spec"]["template"]["spec"]["containers"][0]
    (name,) = [a.removeprefix("--lease=") for a in container["args"] if a.startswith("--lease=")]
    return str(name)


class RecordingLeases(MemoryLeases):
    """The in-memory Lease, noting each call's RBAC need as `kube.lease.HttpLeaseStore` makes it
    (one request per call, in the operator's namespace)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name
        self.needs: set[Need] = set()

    def _check(self, method: str) -> None:
        verb, by_name = LEASE_VERBS[method]
        self.needs.add(
            Need("coordination.k8s.io", "leases", verb, OWN, self.name if by_name else "")
        )
        super()._check(method)


def lease_needs(name: str) -> set[Need]:
    """Every request of the leader election: the first process creates the Lease and renews
    it, a standby reads it and takes over after expiry, a graceful stop releases it."""
    store, clock = RecordingLeases(name), Clock()

    def make(identity: str) -> election.Elector:
        return election.Elector(
            store, identity, clock=clock, wall_clock=clock.wall, sleep=clock.sleep
        )

    async def scenario() -> None:
        first, second = make("pod-a"), make("pod-b")
        await first.acquire()
        assert await first.try_acquire_or_renew()
        assert not await second.try_acquire_or_renew()
        await second.acquire()  # the first stopped renewing: taken over at expiry
        assert await second.release()

    asyncio.run(scenario())
    return store.needs


def kopf_needs() -> set[Need]:
    registry = kopf.OperatorRegistry()
    register(registry, RunOptions(settings=SETTINGS, purge=PurgePolicy()))
    needs: set[Need] = set()
    watched = [
        *registry._indexing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
        *registry._spawning.get_all_handlers(),
        *registry._changing.get_all_handlers(),
    ]
    for handler in watched:
        selector = handler.selector
        assert selector is not None
        for verb in ("list", "watch"):
            needs.add(Need(selector.group or "", str(selector.plural or selector.any_name), verb))
    for handler in registry._changing.get_all_handlers():
        # Finalizer and progress annotations on the object itself.
        selector = handler.selector
        assert selector is not None
        needs.add(Need(selector.group or "", str(selector.any_name), "patch"))
    # kopf's machinery: CRD observation, its own Events. No peering: kopf runs standalone in
    # the process that holds the leader Lease.
    needs |= {
        Need("apiextensions.k8s.io", "customresourcedefinitions", "list"),
        Need("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
        Need("", "events", "create"),
    }
    # The requeue path reads the tenant by name (handlers.requeued).
    needs.add(Need(group_of(TENANT), TENANT.plural, "get"))
    # The owned kinds' informers (handlers' startup, kube/informer.py): LIST and WATCH, all
    # namespaces.
    for kind in INFORMED_KINDS:
        for verb in ("list", "watch"):
            needs.add(Need(group_of(kind), kind.plural, verb))
    return needs


def operator_cluster_role(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (found,) = [
        d
        for d in docs
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] != tenant_reader_cluster_role_name()
    ]
    return found


def granted(docs: list[dict[str, Any]]) -> set[Need]:
    """What the chart grants the operator's ServiceAccount."""
    out: set[Need] = set()
    for doc, scope in ((operator_cluster_role(docs), CLUSTER), (one(docs, "Role"), OWN)):
        for rule in doc["rules"]:
            names = rule.get("resourceNames") or [""]
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    for verb in rule["verbs"]:
                        for name in names:
                            out.add(Need(group, resource, verb, scope, name))
    return out


def covered(need: Need, grants: Iterable[Need]) -> bool:
    for grant in grants:
        if (grant.group, grant.resource, grant.verb) != (need.group, need.resource, need.verb):
            continue
        if grant.scope == OWN and need.scope != OWN:
            continue
        if grant.name and grant.name != need.name:
            continue
        return True
    return False
