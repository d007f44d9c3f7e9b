"""The Argo CD health check of SecureWebGateway (deploy/argocd/.../health.lua), run in Lua 5.1.

Argo CD runs health checks in gopher-lua (Lua 5.1) with a reduced standard library; lupa's
`lua51` module is the reference Lua 5.1, and the script runs in an environment holding only what
Argo CD opens, so a script passing here uses nothing Argo CD lacks. The cases are those of
health_test.yaml (Argo CD's own layout, testdata captured from a live operator by
e2e/chart/), plus statuses the operator's reconcile loop writes through the in-memory
API fake.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

from fakes import FakeKube, make_available
from reconcile_support import stored_tenant
from swg_operator.api import OperatorSettings, SecureWebGatewayStatus, parse_spec
from swg_operator.reconcile.loop import Context, reconcile
from swg_operator.reconcile.purge import NotYet, cancel_and_purge

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECK_DIR = REPO_ROOT / "deploy/argocd/resource_customizations/swg.dev/SecureWebGateway"
HEALTH_LUA = CHECK_DIR / "health.lua"
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended"}
# What gopher-lua offers an Argo CD health script (base, table, string, math; no io, no os).
SANDBOX_GLOBALS = [
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "select",
    "tonumber",
    "tostring",
    "type",
    "unpack",
    "string",
    "table",
    "math",
]


def run_health(obj: dict[str, Any]) -> dict[str, str]:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    script = lua.compile(HEALTH_LUA.read_text())
    env = lua.table()
    for name in SANDBOX_GLOBALS:
        env[name] = lua.globals()[name]
    env["obj"] = lua.table_from(copy.deepcopy(obj), recursive=True)
    lua.globals().setfenv(script, env)
    result = script()
    assert result is not None, "health.lua returned nothing"
    return {"status": str(result["status"]), "message": str(result["message"] or "")}


def argo_cd_shows(obj: dict[str, Any]) -> dict[str, str]:
    """Argo CD (gitops-engine) answers "Progressing: Pending deletion" for an object being
    deleted before it asks any health check."""
    if obj.get("metadata", {}).get("deletionTimestamp"):
        return {"status": "Progressing", "message": "Pending deletion"}
    return run_health(obj)


def _cases() -> list[dict[str, Any]]:
    return list(yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())["tests"])


CASES = _cases()


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_health_test_yaml_case(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    assert run_health(obj) == case["healthStatus"]


def test_every_testdata_file_is_a_case_and_every_health_is_covered() -> None:
    listed = {c["inputPath"] for c in CASES}
    on_disk = {f"testdata/{p.name}" for p in (CHECK_DIR / "testdata").glob("*.yaml")}
    assert listed == on_disk
    assert {c["healthStatus"]["status"] for c in CASES} == ARGO_STATUSES


@pytest.mark.parametrize("case", CASES, ids=[Path(c["inputPath"]).stem for c in CASES])
def test_testdata_is_a_valid_tenant(case: dict[str, Any]) -> None:
    """Every input is what the API server would hold: a valid spec, and a status the operator's
    model reads (so field names and values are the operator's, not invented)."""
    obj = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    assert obj["apiVersion"] == "swg.dev/v1alpha1"
    assert obj["kind"] == "SecureWebGateway"
    parse_spec(obj["spec"])
    if obj.get("status") is not None:
        SecureWebGatewayStatus.model_validate(obj["status"])


def test_script_is_lua_5_1_without_later_syntax() -> None:
    text = HEALTH_LUA.read_text()
    for token in ("goto ", "//", "~=nil and ~", "<const>", "<close>", "&", "|", ">>", "<<"):
        assert token not in text.replace("--", "\n"), token


# --- statuses the operator's own loop writes ---------------------------------------------------


SETTINGS = OperatorSettings(operator_namespace="swg-system")
NOW = datetime.datetime(2026, 1, 1, 12, 0, tzinfo=datetime.UTC)


def _tenant(name: str, **spec: Any) -> dict[str, Any]:
    return stored_tenant(name, uid=f"{name}-uid", **spec)


def _journey() -> list[tuple[str, dict[str, Any]]]:
    """A tenant's life through the real reconcile loop, one snapshot per step."""
    kube = FakeKube(now=NOW)
    kube.put({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "swg-system"}})
    ctx = Context(kube=kube, settings=SETTINGS, clock=lambda: NOW)
    snaps: list[tuple[str, dict[str, Any]]] = []

    def body(name: str) -> dict[str, Any]:
        found = kube.find("SecureWebGateway", name)
        assert found is not None
        return copy.deepcopy(found)

    def edit(name: str, **changes: Any) -> None:
        obj = body(name)
        obj["metadata"]["generation"] += 1
        obj["spec"].update(changes)
        kube.put(obj)

    async def settle(name: str) -> None:
        await reconcile(body(name), ctx=ctx)
        make_available(kube)
        await reconcile(body(name), ctx=ctx)

    async def go() -> None:
        kube.put(_tenant("acme", cancellation={"purgeAfterDays": 30}))
        snaps.append(("new", body("acme")))
        await reconcile(body("acme"), ctx=ctx)
        snaps.append(("provisioning", body("acme")))
        await settle("acme")
        snaps.append(("ready", body("acme")))
        edit("acme", sizing={"endpoints": 60, "requestsPerSecond": 20})
        snaps.append(("spec-changed", body("acme")))
        await settle("acme")
        snaps.append(("ready-again", body("acme")))
        edit("acme", suspended=True)
        await settle("acme")
        snaps.append(("suspended", body("acme")))
        cancelled = body("acme")
        cancelled["metadata"]["deletionTimestamp"] = "2026-01-01T12:00:00Z"
        cancelled["metadata"]["finalizers"] = ["swg.dev/purge"]
        kube.put(cancelled)
        with contextlib.suppress(NotYet):
            await cancel_and_purge(body("acme"), ctx=ctx)
        snaps.append(("cancelled", body("acme")))
        kube.put(_tenant("bad", urlFiltering={"blockedCategories": ["no-such-category"]}))
        await reconcile(body("bad"), ctx=ctx)
        snaps.append(("stalled", body("bad")))

    asyncio.run(go())
    return snaps


EXPECTED = {
    "new": "Progressing",
    "provisioning": "Progressing",
    "ready": "Healthy",
    "spec-changed": "Progressing",
    "ready-again": "Healthy",
    "suspended": "Suspended",
    "cancelled": "Suspended",
    "stalled": "Degraded",
}


def test_statuses_the_reconcile_loop_writes() -> None:
    seen = {label: run_health(obj)["status"] for label, obj in _journey()}
    assert seen == EXPECTED


def test_what_argo_cd_shows_for_a_cancelled_tenant() -> None:
    cancelled = dict(_journey())["cancelled"]
    assert cancelled["status"]["phase"] == "Cancelled"
    assert run_health(cancelled)["status"] == "Suspended"
    assert argo_cd_shows(cancelled) == {"status": "Progressing", "message": "Pending deletion"}


def test_the_sandbox_lacks_what_argo_cd_lacks() -> None:
    lua = lua51.LuaRuntime(unpack_returned_tuples=True)
    probe = lua.compile("return os == nil and io == nil and require == nil and obj.x == 1")
    env = lua.table()
    for name in SANDBOX_GLOBALS:
        env[name] = lua.globals()[name]
    env["obj"] = lua.table_from({"x": 1})
    lua.globals().setfenv(probe, env)
    assert probe() is True


def test_argocd_cm_snippet_carries_the_same_script() -> None:
    snippet = yaml.safe_load((REPO_ROOT / "deploy/argocd/argocd-cm.yaml").read_text())
    key = "resource.customizations.health.swg.dev_SecureWebGateway"
    assert snippet["data"][key] == HEALTH_LUA.read_text()


def test_example_applications_use_server_side_apply() -> None:
    for name in ("application-operator.yaml", "application-tenants.yaml"):
        app = yaml.safe_load((REPO_ROOT / "deploy/argocd" / name).read_text())
        assert app["kind"] == "Application"
        assert "ServerSideApply=true" in app["spec"]["syncPolicy"]["syncOptions"]
