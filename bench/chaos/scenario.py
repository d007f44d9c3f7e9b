"""A chaos scenario against a local control plane, reproducible from its seed.

Tenants (half cancelled with `purgeAfterDays: 0`, half with 90) are created, changed (sizing,
suspension, client networks) and cancelled while the operator is SIGKILLed at random points:
each round starts an operator, makes zero to two changes (some while the operator is down), lets
it run a random time and kills it. Once, the API server is paused (SIGSTOP) for longer than the
operator's watch timeouts and resumed; once, etcd is restarted; after each, one change must be
reconciled by the same operator process (its watches must have recovered; the resync timer is
far away). In the end one operator runs until everything converges or a deadline passes, and the
invariants of `bench.chaos.checks` are evaluated on a snapshot of the cluster.
"""

from __future__ import annotations

import copy
import json
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, cast

from e2e.cluster import ControlPlane, wait_until
from e2e.operator_process import OperatorProcess, tenant_manifest

from bench.chaos.checks import (
    FINALIZER,
    Snapshot,
    convergence,
    every_check,
    quota_charge_leaks,
)
from bench.chaos.model import (
    RESYNC_SECONDS,
    SPEC_VARIANTS,
    WATCH_CLIENT_TIMEOUT,
    WATCH_SERVER_TIMEOUT,
    Options,
    Report,
    Tenant,
)
from bench.chaos.observe import renderer, snapshot
from bench.localcluster import pause, restart, resume
from swg_operator.naming import tenant_label_value, tenant_namespace


class Chaos:
    def __init__(self, plane: ControlPlane, opts: Options, *, log_dir: Path) -> None:
        self.plane = plane
        self.opts = opts
        self.rng = random.Random(opts.seed)  # noqa: S311 - reproducible chaos, not crypto
        self.log_path = log_dir / f"chaos-{opts.seed}.operator.log"
        self.report = Report(seed=opts.seed)
        self.operator: OperatorProcess | None = None
        total = opts.tenants + opts.late_tenants
        self.tenants = [
            Tenant(
                name=f"{opts.prefix}-{i:02d}",
                purge_after_days=0 if i % 2 == 0 else 90,
                spec=self._initial_spec(0 if i % 2 == 0 else 90),
            )
            for i in range(total)
        ]

    # --- the operator --------------------------------------------------------------------------

    def _start_operator(self) -> OperatorProcess:
        operator = OperatorProcess(
            self.plane,
            log_path=self.log_path,
            operator_namespace=self.opts.operator_namespace,
            args=(
                f"--watch-server-timeout={WATCH_SERVER_TIMEOUT}",
                f"--watch-client-timeout={WATCH_CLIENT_TIMEOUT}",
                f"--resync-seconds={RESYNC_SECONDS}",
                "--purge-recheck-seconds=2",
            ),
        )
        self.operator = operator.start()
        return operator

    def _kill_operator(self) -> str:
        operator = self.operator
        assert operator is not None
        tail = operator.log_tail(1)
        self._collect_errors(operator)
        operator.kill()
        self.operator = None
        self.report.kills += 1
        return tail

    def _collect_errors(self, operator: OperatorProcess) -> None:
        for line in operator.log_text().splitlines():
            if "Failed to reconcile" in line or "Traceback" in line:
                self.report.operator_errors.append(line[:300])

    # --- tenants -------------------------------------------------------------------------------

    @staticmethod
    def _initial_spec(days: int) -> dict[str, Any]:
        spec = cast(dict[str, Any], copy.deepcopy(tenant_manifest("x")["spec"]))
        spec["cancellation"] = {"purgeAfterDays": days}
        spec["suspended"] = False  # explicit, as the API server defaults it: changes compare true
        return spec

    def _create(self, tenant: Tenant) -> str:
        manifest = tenant_manifest(tenant.name)
        manifest["spec"] = tenant.spec
        self.plane.apply(manifest)
        tenant.uid = self.plane.kubectl(
            "get", "swg", tenant.name, "-o", "jsonpath={.metadata.uid}"
        ).stdout.strip()
        tenant.created = True
        return f"create {tenant.name}"

    def _change(self, tenant: Tenant) -> str:
        """A spec change that changes something (the generation moves)."""
        variant = self.rng.choice([v for v in SPEC_VARIANTS if {**tenant.spec, **v} != tenant.spec])
        tenant.spec = {**tenant.spec, **copy.deepcopy(dict(variant))}
        self.plane.kubectl(
            "patch", "swg", tenant.name, "--type=merge", "-p", json.dumps({"spec": variant})
        )
        return f"change {tenant.name} {json.dumps(variant, separators=(',', ':'))}"

    def _cancel(self, tenant: Tenant) -> str:
        before = self.plane.kubectl_json("get", "swg", tenant.name)
        had_finalizer = FINALIZER in (before["metadata"].get("finalizers") or [])
        self.plane.kubectl("delete", "swg", tenant.name, "--wait=false")
        still_there = self.plane.kubectl(
            "get", "swg", tenant.name, "--ignore-not-found", "-o", "name"
        ).stdout.strip()
        tenant.finalized = had_finalizer or bool(still_there)
        namespace = tenant_namespace(tenant.name)
        tenant.provisioned = bool(
            self.plane.kubectl(
                "get", "namespace", namespace, "--ignore-not-found", "-o", "name"
            ).stdout.strip()
        )
        tenant.deleted = True
        return f"cancel {tenant.name} ({tenant.purge_after_days} days)"

    def _random_action(self, budget: dict[str, int]) -> str | None:
        waiting = [t for t in self.tenants if not t.created]
        active = [t for t in self.tenants if t.created and not t.deleted]
        choices: list[Callable[[], str]] = []
        if waiting and budget["create"] > 0:
            choices.append(lambda: self._create(waiting[0]))
        if active:
            choices.append(lambda: self._change(self.rng.choice(active)))
            choices.append(lambda: self._change(self.rng.choice(active)))
        if len(active) > 2 and budget["cancel"] > 0:
            choices.append(lambda: self._cancel(self.rng.choice(active)))
        if not choices:
            return None
        action = self.rng.choice(choices)
        done = action()
        if done.startswith("create"):
            budget["create"] -= 1
        elif done.startswith("cancel"):
            budget["cancel"] -= 1
        return done

    def _body(self, name: str) -> dict[str, Any] | None:
        got = self.plane.kubectl("get", "swg", name, "-o", "json", check=False)
        return json.loads(got.stdout) if got.returncode == 0 else None

    def _settled(self, tenant: Tenant) -> bool:
        return settled(tenant, self._body(tenant.name))

    # --- faults --------------------------------------------------------------------------------

    def _recovery(self, what: str, fault: Callable[[], dict[str, Any]]) -> None:
        """Run `fault` while an operator runs, then change a tenant and wait until the same
        operator process has reconciled the change."""
        operator = self._start_operator()
        time.sleep(self.rng.uniform(2.0, 4.0))  # its watches are established
        started = time.monotonic()
        details = fault()
        active = [t for t in self.tenants if t.created and not t.deleted]
        # A tenant that had settled: one blocked by a leaked quota charge could not show
        # anything about the watches.
        settled = [t for t in active if self._settled(t)]
        tenant = self.rng.choice(settled or active)
        before = (self._body(tenant.name) or {}).get("metadata", {}).get("generation")
        action = self._change(tenant)
        changed = time.monotonic()
        after = (self._body(tenant.name) or {}).get("metadata", {}).get("generation")
        if before == after:
            raise RuntimeError(f"{action} did not change the spec (generation {after})")
        wait_until(
            lambda: self._settled(tenant),
            timeout=self.opts.recovery_timeout,
            what=f"{action} reconciled by the same operator after the {what}",
            interval=0.5,
        )
        if operator.proc is None or operator.proc.poll() is not None:
            raise RuntimeError(f"the operator died during the {what}:\n{operator.log_tail()}")
        self.report.faults.append(
            {
                "fault": what,
                **details,
                "action": action,
                "reconciledSecondsAfterChange": round(time.monotonic() - changed, 1),
                "secondsFromFault": round(time.monotonic() - started, 1),
            }
        )
        self._kill_operator()

    def _pause_apiserver(self) -> dict[str, Any]:
        pid = pause(self.plane, "kube-apiserver")
        try:
            time.sleep(self.opts.pause_seconds)
        finally:
            resume(self.plane, "kube-apiserver")
        wait_until(
            lambda: (
                self.plane.kubectl("get", "--raw", "/readyz", check=False).stdout.strip() == "ok"
            ),
            timeout=60,
            what="/readyz after SIGCONT",
        )
        return {
            "pid": pid,
            "pausedSeconds": self.opts.pause_seconds,
            "watchServerTimeout": WATCH_SERVER_TIMEOUT,
            "watchClientTimeout": WATCH_CLIENT_TIMEOUT,
        }

    def _restart_etcd(self) -> dict[str, Any]:
        unready = restart(self.plane, "etcd", down_seconds=self.opts.etcd_down_seconds)
        return {"downSeconds": self.opts.etcd_down_seconds, "apiNotReadySeconds": round(unready, 1)}

    # --- the run -------------------------------------------------------------------------------

    def run(self) -> Report:
        started = time.monotonic()
        opts = self.opts
        print(
            f"Chaos seed {opts.seed}: {opts.kills} kills, {len(self.tenants)} tenants", flush=True
        )
        try:
            self._scenario()
            self._converge()
        finally:
            if self.operator is not None:
                self._collect_errors(self.operator)
                self.operator.stop()
                self.operator = None
            self.report.total_seconds = time.monotonic() - started
            self.report.tenants = [
                {
                    "name": t.name,
                    "uid": t.uid,
                    "purgeAfterDays": t.purge_after_days,
                    "created": t.created,
                    "cancelled": t.deleted,
                    "finalized": t.finalized,
                    "provisioned": t.provisioned,
                    "spec": t.spec,
                }
                for t in self.tenants
            ]
        return self.report

    def _scenario(self) -> None:
        opts = self.opts
        for tenant in self.tenants[: opts.tenants]:
            self._create(tenant)
        budget = {"create": opts.late_tenants, "cancel": opts.cancellations}
        pause_at = self.rng.randrange(opts.kills // 4, opts.kills // 2 + 1)
        etcd_at = self.rng.randrange(
            opts.kills // 2 + 1, max(opts.kills * 3 // 4, opts.kills // 2 + 2)
        )
        kills = 0
        while kills < opts.kills:
            if kills == pause_at:
                self._recovery("API server paused (SIGSTOP)", self._pause_apiserver)
                pause_at = -1
                kills += 1
                continue
            if kills == etcd_at:
                self._recovery("etcd restarted", self._restart_etcd)
                etcd_at = -1
                kills += 1
                continue
            actions: list[str] = []
            if self.rng.random() < 0.3:  # a change while no operator runs
                done = self._random_action(budget)
                if done:
                    actions.append(f"{done} (operator down)")
            self._start_operator()
            for _ in range(self.rng.randint(0, 2)):
                done = self._random_action(budget)
                if done:
                    actions.append(done)
            alive = self.rng.uniform(0.0, opts.max_run_seconds)
            time.sleep(alive)
            last_line = self._kill_operator()
            kills += 1
            self.report.rounds.append(
                {
                    "kill": kills,
                    "aliveSeconds": round(alive, 2),
                    "actions": actions,
                    "lastLog": last_line[-200:],
                }
            )
        for tenant in self.tenants:  # whatever the random draw left out
            if not tenant.created:
                self._create(tenant)
        while budget["cancel"] > 0:
            active = [t for t in self.tenants if t.created and not t.deleted]
            self._cancel(self.rng.choice(active))
            budget["cancel"] -= 1

    def _converge(self) -> None:
        """One operator until every tenant settled, or the deadline."""
        self._start_operator()
        started = time.monotonic()

        def done() -> bool:
            return all(self._settled(t) for t in self.tenants)

        try:
            wait_until(
                done,
                timeout=self.opts.converge_timeout,
                what="every tenant converged after the chaos",
                interval=1.0,
                describe=lambda: [t.name for t in self.tenants if not self._settled(t)],
            )
            self.report.converge_seconds = round(time.monotonic() - started, 1)
        except TimeoutError as exc:
            print(f"Not converged: {exc}", flush=True)
        names = [t.name for t in self.tenants]
        final = snapshot(self.plane, names, self.opts.operator_namespace)
        self.report.violations = every_check(
            [t.expected() for t in self.tenants],
            final,
            render=renderer(self.opts.operator_namespace),
            scope={tenant_label_value(t.name) for t in self.tenants},
        )
        values = {tenant_label_value(n): n for n in names}
        leaked = sorted(values[v] for v in quota_charge_leaks(final) if v in values)
        self.report.quota_charge_leaks = leaked


def settled(tenant: Tenant, body: Mapping[str, Any] | None) -> bool:
    """The tenant's current spec is reconciled, by the convergence check (`body`: the tenant as
    the API server holds it, None when it is gone)."""
    snapshot = Snapshot(tenants={} if body is None else {tenant.name: body}, objects=())
    return not convergence([tenant.expected()], snapshot)
