"""The Argo CD examples (deploy/argocd/): the CRD and operator sync before the tenants, syncs
retry, tenants skip the dry run while the CRD is missing, one Application per tenant directory."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import yaml

from chart_support import template
from test_argocd_health_lua import SANDBOX, lua5_1, lua_literal

ARGOCD = Path(__file__).resolve().parents[1] / "deploy" / "argocd"
WAVE = "argocd.argoproj.io/sync-wave"


def load(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ARGOCD / name).read_text())
    return document


def wave(metadata: dict[str, Any]) -> int:
    return int(metadata.get("annotations", {}).get(WAVE, "0"))


def tenant_apps() -> list[dict[str, Any]]:
    """The tenants' Application and the ApplicationSet's Application template."""
    appset = load("applicationset-tenants.yaml")
    assert appset["kind"] == "ApplicationSet"
    return [load("application-tenants.yaml"), appset["spec"]["template"]]


def test_the_operator_syncs_in_an_earlier_wave_than_every_tenant() -> None:
    operator = load("application-operator.yaml")
    for app in tenant_apps():
        assert wave(operator["metadata"]) < wave(app["metadata"])


def test_inside_the_chart_the_crd_comes_before_the_operator() -> None:
    docs = template()
    crd = next(d for d in docs if d["kind"] == "CustomResourceDefinition")
    deployment = next(d for d in docs if d["kind"] == "Deployment")
    assert wave(crd["metadata"]) < wave(deployment["metadata"])


def test_every_sync_retries_and_tenants_skip_the_dry_run_without_the_crd() -> None:
    for app in [load("application-operator.yaml"), load("application-root.yaml"), *tenant_apps()]:
        retry = app["spec"]["syncPolicy"]["retry"]
        assert retry["limit"] >= 3
        assert retry["backoff"]["factor"] >= 2
    for app in tenant_apps():
        options = app["spec"]["syncPolicy"]["syncOptions"]
        assert "SkipDryRunOnMissingResource=true" in options
        assert "ServerSideApply=true" in options


def test_the_applicationset_makes_one_application_per_tenant_directory() -> None:
    appset = load("applicationset-tenants.yaml")
    (generator,) = appset["spec"]["generators"]
    assert generator["git"]["directories"] == [{"path": "tenants/*"}]
    template_spec = appset["spec"]["template"]
    assert "{{ .path.basename }}" in template_spec["metadata"]["name"]
    assert template_spec["spec"]["source"]["path"] == "{{ .path.path }}"
    # Removing a directory must not cancel a tenant as a side effect.
    assert appset["spec"]["syncPolicy"]["preserveResourcesOnDeletion"] is True


def application_health(application: dict[str, Any], tmp_path: Path) -> str:
    script = tmp_path / "app.lua"
    key = "resource.customizations.health.argoproj.io_Application"
    script.write_text(load("argocd-cm.yaml")["data"][key])
    driver = tmp_path / "driver.lua"
    driver.write_text(
        "local chunk = assert(loadfile(arg[1]))\n"
        f"local env = {{obj = {lua_literal(application)}}}\n"
        f'for n in string.gmatch("{SANDBOX}", "%S+") do env[n] = _G[n] end\n'
        "setfenv(chunk, env)\nio.write(chunk().status)\n"
    )
    result = subprocess.run(
        [lua5_1(), str(driver), str(script)], capture_output=True, text=True, check=True
    )
    return result.stdout


def test_the_application_health_check_lets_an_app_of_apps_wait_for_each_wave(
    tmp_path: Path,
) -> None:
    healthy = {"status": {"health": {"status": "Healthy"}}}
    assert application_health(healthy, tmp_path) == "Healthy"
    assert application_health({"status": {}}, tmp_path) == "Progressing"
