"""The chart's RBAC is exactly what the operator's code uses: no more, no less, no wildcard.

What the operator needs is derived, not listed by hand:
* the reconcile loop and the purge run end to end against the in-memory `KubeApi` fake, wrapped
  in a recorder that notes every request as (API group, resource, verb, scope);
* the kopf handlers are registered as `swg-operator run` registers them, and every resource kopf
  then watches (list + watch) or changes (patch: finalizers, annotations) is read off the registry;
* the leader election runs acquire, renew, a takeover and a release against an in-memory Lease
  wrapped in a recorder; each of its calls is one request whose verb `kube.lease.VERBS` names,
  on the Lease the chart's Deployment passes to `--lease`, in the operator's namespace;
* kopf's own machinery (CRD observation, Events) is the one fixed part, named below;
* reads the operator may do without (a customer's CA Secret: checked when the platform lets the
  operator read it, else only asked whether it exists) are answered 403, as the chart's RBAC
  answers them, and noted apart: they must not be granted, and the code must carry on.

The rendered ClusterRole and Role must grant each of those, and nothing else. The tenant
admins' ClusterRole the chart ships must hold exactly the operator's `render.rbac.reader_rules()`.
"""

from __future__ import annotations

import asyncio
import copy
import datetime
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import kopf

from fakes import FakeKube, bind_log_volume, make_available
from reconcile_support import stored_tenant
from swg_operator import election
from swg_operator.api import OperatorSettings, SecureWebGatewaySpec
from swg_operator.handlers import RunOptions, register
from swg_operator.kube import KubeApiError, ResourceKind
from swg_operator.kube.kinds import EVENT, OWNED_KINDS, TENANT
from swg_operator.kube.lease import VERBS as LEASE_VERBS
from swg_operator.naming import (
    access_tls_secret_name,
    inspection_ca_secret_name,
    legacy_reader_role_name,
    tenant_reader_cluster_role_name,
)
from swg_operator.notices import deliver_pending
from swg_operator.receipts import signing_key
from swg_operator.reconcile.loop import Context, PurgePolicy, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge
from swg_operator.reconcile.region import region_problems
from swg_operator.render.rbac import reader_rules
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


def _group(kind: ResourceKind) -> str:
    return kind.api_version.rpartition("/")[0]


class RecordingKube:
    """Forwards to `FakeKube` and notes the RBAC need of every call."""

    def __init__(self, inner: FakeKube, operator_namespace: str) -> None:
        self.inner = inner
        self.needs: set[Need] = set()
        self.refused: set[Need] = set()  # asked, answered 403 (see the module docstring)
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
        self.needs.add(Need(_group(kind), kind.plural + suffix, verb, scope, name))

    async def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        from swg_operator.kube import kind_of

        kind = kind_of(obj)
        namespace = obj["metadata"].get("namespace")
        # Server-side apply is a PATCH that creates when absent: both verbs are checked.
        self._note(kind, "create", namespace)
        self._note(kind, "patch", namespace)
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
        return await self.inner.apply(obj)

    async def list_labelled(
        self, kind: ResourceKind, *, selector: Mapping[str, str], namespace: str | None = None
    ) -> list[dict[str, Any]]:
        self._note(kind, "list", namespace)
        return await self.inner.list_labelled(kind, selector=selector, namespace=namespace)

    async def find_named(
        self, kind: ResourceKind, name: str, *, namespace: str
    ) -> dict[str, Any] | None:
        # A list with a field selector on the name: the API server authorises it with that
        # name, so `list` can be limited by resourceNames.
        self._note(kind, "list", namespace, name=name)
        return await self.inner.find_named(kind, name, namespace=namespace)

    async def get(
        self, kind: ResourceKind, name: str, *, namespace: str | None = None
    ) -> dict[str, Any] | None:
        # A GET names its object when it is authorised: `get` can be limited by resourceNames.
        own_secrets = (
            inspection_ca_secret_name(),
            access_tls_secret_name(),
            SETTINGS.receipts.signing_key_secret,
        )
        if kind.kind == "Secret" and name not in own_secrets:
            self.refused.add(Need(_group(kind), kind.plural, "get", CLUSTER, name))
            raise KubeApiError(403, f'secrets "{name}" is forbidden', reason="Forbidden")
        self._note(kind, "get", namespace, name=name)
        return await self.inner.get(kind, name, namespace=namespace)

    async def create(self, obj: Mapping[str, Any], *, dry_run: bool = False) -> bool:
        from swg_operator.kube import kind_of

        # A POST names no object when it is authorised: `create` cannot be limited by name.
        self._note(kind_of(obj), "create", obj["metadata"].get("namespace"))
        return await self.inner.create(obj, dry_run=dry_run)

    async def patch(
        self,
        kind: ResourceKind,
        name: str,
        patch: Mapping[str, Any],
        *,
        namespace: str | None = None,
    ) -> dict[str, Any] | None:
        self._note(kind, "patch", namespace)
        return await self.inner.patch(kind, name, patch, namespace=namespace)

    async def delete(self, kind: ResourceKind, name: str, *, namespace: str | None = None) -> bool:
        self._note(kind, "delete", namespace, name=name)
        return await self.inner.delete(kind, name, namespace=namespace)

    async def patch_status(
        self, kind: ResourceKind, name: str, status: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        self._note(kind, "patch", None, "/status")
        return await self.inner.patch_status(kind, name, status)

    async def post_event(self, **kwargs: Any) -> None:
        self._note(EVENT, "create", None)
        await self.inner.post_event(**kwargs)

    async def server_time(self) -> datetime.datetime:
        return await self.inner.server_time()  # GET /version: open to every authenticated user


def tenant(name: str, **spec: Any) -> dict[str, Any]:
    return stored_tenant(name, uid=f"{name}-uid-0001", **spec)


def _fresh(kube: FakeKube, name: str) -> dict[str, Any]:
    found = kube.find("SecureWebGateway", name)
    assert found is not None
    return copy.deepcopy(found)


async def _lifecycle(kube: FakeKube, recorder: RecordingKube) -> None:
    """Every path of the loop: create, available, spec changes with pruning, admins, a region, HTTPS
    inspection with a generated CA and with the customer's, custom signatures, suspension,
    cancellation and purge (of a log volume of a `Retain` storage class); an invalid spec; an
    upgrade from the version that wrote a Role for the admins."""
    ctx = Context(kube=recorder, settings=SETTINGS, clock=lambda: NOW)  # type: ignore[arg-type]
    # As the leader starts: the receipts' signing key (created, then read back by name).
    ctx.receipt_key = await signing_key(
        recorder,  # type: ignore[arg-type]
        secret=SETTINGS.receipts.signing_key_secret,
        namespace=SETTINGS.operator_namespace,
    )
    _legacy_tenant(kube, "old")
    await reconcile(_fresh(kube, "old"), ctx=ctx)
    assert kube.find("Role", legacy_reader_role_name(), "swg-old") is None
    bad = tenant("old")
    bad["spec"]["sizing"] = {"endpoints": 0, "requestsPerSecond": 1}
    bad["metadata"]["generation"] = 2
    kube.put(bad)
    await reconcile(_fresh(kube, "old"), ctx=ctx)
    kube.put(
        tenant(
            "byo",
            antivirus={"customSignatures": {"name": "signatures"}},
            options={"httpsInspection": {"enabled": True, "caSecret": {"name": "own-ca"}}},
            access={
                "hostname": "proxy.byo.example",
                "tls": {"enabled": True, "certificateSecret": {"name": "own-listener"}},
            },
            logs={"storage": {"storageClassName": "no-such-class"}},
        )
    )
    await reconcile(_fresh(kube, "byo"), ctx=ctx)  # its claim does not bind: class looked up
    # Pinned to a region: its Ready nodes and the default StorageClass are listed.
    kube.put(tenant("pinned", placement={"region": "ap-northeast-1"}))
    await reconcile(_fresh(kube, "pinned"), ctx=ctx)
    # Its claim not stored (refused by the quota): the default StorageClass is looked for.
    pinned = SecureWebGatewaySpec.model_validate(_fresh(kube, "pinned")["spec"])
    await region_problems(recorder, pinned, [], namespace="swg-pinned")  # type: ignore[arg-type]
    name = "acme"
    kube.put(
        tenant(
            name,
            admins=[{"kind": "User", "name": "alice@example.com"}],
            contacts=["noc@example.com"],
            options={"httpsInspection": {"enabled": True}},
            access={"hostname": "proxy.acme.example", "tls": {"enabled": True}},
            cancellation={"purgeAfterDays": 0},
        )
    )
    await reconcile(_fresh(kube, name), ctx=ctx)
    make_available(kube)
    await reconcile(_fresh(kube, name), ctx=ctx)
    body = _fresh(kube, name)
    body["spec"]["antivirus"] = {"enabled": False}
    body["spec"]["admins"] = []
    body["spec"]["suspended"] = True
    body["metadata"]["generation"] = 2
    kube.put(body)
    await reconcile(_fresh(kube, name), ctx=ctx)
    bind_log_volume(kube, f"swg-{name}", policy="Retain")
    body = _fresh(kube, name)
    body["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
    body["metadata"]["finalizers"] = ["swg.dev/purge"]
    kube.put(body)
    for _ in range(10):
        try:
            await cancel_and_purge(_fresh(kube, name), ctx=ctx)
        except NotYet:
            continue
        break
    # The outbox: every notices ConfigMap listed, its deliveries written, a settled purged box
    # deleted (two passes: the first mails, the second finds the box settled).
    for _ in range(2):
        await deliver_pending(recorder, AcceptingMailer(), now=NOW)  # type: ignore[arg-type]


class AcceptingMailer:
    sender = "swg@example.net"

    async def send(self, message: Any) -> None:
        return None


def _legacy_tenant(kube: FakeKube, name: str) -> None:
    """A tenant as an earlier version left it: its namespace (the tenant's labels, no UID
    stamp; the tenant's status names it) with a Role for the admins."""
    body = tenant(name, admins=[{"kind": "User", "name": "carol@example.com"}])
    body["status"] = {"observedGeneration": 1, "phase": "Ready", "namespace": f"swg-{name}"}
    kube.put(body)
    labels = {"app.kubernetes.io/managed-by": "swg-operator", "swg.dev/tenant": name}
    namespace = f"swg-{name}"
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": labels}}
    )
    kube.put(
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "tenant-reader", "namespace": namespace, "labels": labels},
            "rules": [],
        }
    )


def _recorded() -> RecordingKube:
    kube = FakeKube(now=NOW)
    kube.put(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": SETTINGS.operator_namespace}}
    )
    recorder = RecordingKube(kube, SETTINGS.operator_namespace)
    asyncio.run(_lifecycle(kube, recorder))
    return recorder


def code_needs() -> set[Need]:
    needs = set(_recorded().needs)
    # observe() lists every owned kind and the prune deletes whatever labelled object the
    # desired state does not contain, of any owned kind (an object left by an older version, or
    # labelled by hand): list and delete for each, whether or not this scenario met one.
    for kind in OWNED_KINDS:
        needs.add(Need(_group(kind), kind.plural, "list"))
        needs.add(Need(_group(kind), kind.plural, "delete"))
    needs |= kopf_needs()
    needs |= lease_needs(chart_lease_name())
    return needs


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
    needs.add(Need(_group(TENANT), TENANT.plural, "get"))
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


def test_no_wildcards_and_escalation_only_by_name() -> None:
    for doc in render():
        for rule in doc.get("rules", []) if doc["kind"] in ("ClusterRole", "Role") else []:
            for field in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in rule.get(field, []), f"{doc['kind']}: wildcard in {field}"
            assert "nonResourceURLs" not in rule
            if {"escalate", "bind", "impersonate"} & set(rule["verbs"]):
                assert rule.get("resourceNames"), f"unrestricted {rule['verbs']}"
                assert "impersonate" not in rule["verbs"]


def test_no_escalate_and_bind_covers_only_the_tenant_admins_cluster_role() -> None:
    grants = granted(render())
    assert not [g for g in grants if g.verb == "escalate"]
    assert {(g.resource, g.name) for g in grants if g.verb == "bind"} == {
        ("clusterroles", tenant_reader_cluster_role_name())
    }


def test_roles_only_the_legacy_one_by_name() -> None:
    """The operator writes no Role; it finds and deletes the one earlier versions wrote."""
    grants = granted(render())
    assert {(g.verb, g.name) for g in grants if g.resource == "roles"} == {
        ("list", legacy_reader_role_name()),
        ("delete", legacy_reader_role_name()),
    }


def test_the_chart_ships_the_tenant_admins_cluster_role_of_the_code() -> None:
    (role,) = [
        d
        for d in render()
        if d["kind"] == "ClusterRole" and d["metadata"]["name"] == tenant_reader_cluster_role_name()
    ]
    assert role["rules"] == reader_rules()
    assert not [d for d in render({"rbac.create": "false"}) if "ClusterRole" in d["kind"]]


def test_every_need_of_the_code_is_granted() -> None:
    grants = granted(render())
    missing = sorted(n for n in code_needs() if not covered(n, grants))
    assert not missing, "the operator's code needs rights the chart does not grant:\n" + "\n".join(
        map(str, missing)
    )


def test_every_grant_is_needed_by_the_code() -> None:
    needs = code_needs()
    grants = granted(render())
    unused = sorted(g for g in grants if not any(covered(n, [g]) for n in needs))
    assert not unused, "the chart grants rights no code uses:\n" + "\n".join(map(str, unused))
    cluster = {g for g in grants if g.scope == CLUSTER}
    redundant = sorted(
        g
        for g in grants
        if g.scope == OWN and covered(Need(g.group, g.resource, g.verb, OWN), cluster)
    )
    assert not redundant, f"the Role repeats what the ClusterRole grants: {redundant}"


def test_nothing_grants_reading_secrets_or_tenant_logs() -> None:
    """Secrets: `create` (the generated inspection CA, the receipts' signing key, and the
    dry-run probe asking whether a Secret the spec names exists), `get` of the generated CA's
    Secret by its name only, and of the signing key's by its name in the operator's namespace."""
    forbidden = {
        "pods/log",
        "pods/exec",
        "pods/attach",
        "pods/portforward",
        "pods/proxy",
    }
    forbidden |= {"services/proxy", "nodes/proxy"}
    for grant in granted(render()):
        assert grant.resource not in forbidden, grant
        if grant.resource == "secrets":
            assert (grant.verb, grant.name, grant.scope) in {
                ("create", "", CLUSTER),
                ("get", inspection_ca_secret_name(), CLUSTER),
                ("get", access_tls_secret_name(), CLUSTER),
                ("get", SETTINGS.receipts.signing_key_secret, OWN),
            }, grant


def test_the_operator_code_reads_one_secret_by_name() -> None:
    """No list or watch (nor patch, delete): Secrets are created, and the generated CA's is
    read back by name to compare it with the published certificate. The customer's CA Secret
    is asked for too, and the refusal of the chart's RBAC is taken in stride."""
    recorder = _recorded()
    secrets = {(n.verb, n.name) for n in code_needs() if n.resource == "secrets"}
    assert secrets == {
        ("create", ""),
        ("get", inspection_ca_secret_name()),
        ("get", access_tls_secret_name()),
        ("get", SETTINGS.receipts.signing_key_secret),
    }
    assert {(n.verb, n.name) for n in recorder.refused} == {
        ("get", "own-ca"),
        ("get", "own-listener"),
    }
    assert not [n for n in recorder.refused if covered(n, granted(render()))]


def test_the_leader_lease_is_created_then_read_and_renewed_by_its_name_only() -> None:
    """create (unnamed by nature), get and update by the one name, in the release namespace;
    nothing of leases cluster-wide, no list, watch, patch or delete."""
    grants = {g for g in granted(render()) if g.resource == "leases"}
    assert grants == {
        Need("coordination.k8s.io", "leases", "create", OWN),
        Need("coordination.k8s.io", "leases", "get", OWN, "swg-swg-operator"),
        Need("coordination.k8s.io", "leases", "update", OWN, "swg-swg-operator"),
    }
    assert lease_needs("swg-swg-operator") == grants
    assert not [g for g in granted(render({"leaderElection.enabled": "false"})) if g in grants]
