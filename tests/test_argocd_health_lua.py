"""The Argo CD health check run by Debian's standalone Lua 5.1 interpreter (`lua5.1`, the
language version of Argo CD's gopher-lua), in a sandbox holding only what Argo CD offers, on
every case of health_test.yaml: one tenant body per phase."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from swg_operator.api.spec import Phase

CHECK_DIR = (
    Path(__file__).resolve().parents[1]
    / "deploy/argocd/resource_customizations/swg.dev/SecureWebGateway"
)
SANDBOX = (
    "assert error ipairs next pairs pcall select tonumber tostring type unpack string table math"
)
DRIVER = """
local chunk = assert(loadfile(arg[1]))
local env = {obj = %s}
for name in string.gmatch("%s", "%%S+") do env[name] = _G[name] end
setfenv(chunk, env)
local hs = chunk()
io.write(tostring(hs.status), "\\n", tostring(hs.message))
"""


def lua_literal(value: Any) -> str:
    """`value` (what the API server's JSON decodes to) as a Lua table constructor."""
    if isinstance(value, dict):
        items = (f"[{lua_literal(str(k))}]={lua_literal(v)}" for k, v in value.items())
        return "{" + ",".join(items) + "}"
    if isinstance(value, list):
        return "{" + ",".join(lua_literal(v) for v in value) + "}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if value is None:
        return "nil"
    if isinstance(value, datetime.datetime):
        value = value.strftime("%Y-%m-%dT%H:%M:%SZ")
    encoded = str(value).encode()
    return '"' + "".join(f"\\{byte:03d}" for byte in encoded) + '"'


def lua5_1() -> str:
    found = shutil.which("lua5.1")
    if found is None:
        pytest.fail("lua5.1 is missing: run `make deps` (hack/install-apt.sh installs it)")
    return found


def cases() -> list[dict[str, Any]]:
    tests: list[dict[str, Any]] = yaml.safe_load((CHECK_DIR / "health_test.yaml").read_text())[
        "tests"
    ]
    return tests


def test_the_literal_survives_quotes_newlines_and_unicode(tmp_path: Path) -> None:
    text = 'a "quoted"\nline \\ é'
    driver = tmp_path / "echo.lua"
    driver.write_text(f"io.write(({lua_literal({'k': [text]})}).k[1])")
    result = subprocess.run([lua5_1(), str(driver)], capture_output=True, check=True)
    assert result.stdout.decode() == text


def test_every_phase_has_a_case() -> None:
    phases = {
        (yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text()).get("status") or {}).get(
            "phase"
        )
        for case in cases()
    }
    assert {phase.value for phase in Phase} <= phases


@pytest.mark.parametrize("case", cases(), ids=lambda case: Path(case["inputPath"]).stem)
def test_lua5_1_returns_the_expected_health(case: dict[str, Any], tmp_path: Path) -> None:
    body = yaml.safe_load((CHECK_DIR / case["inputPath"]).read_text())
    driver = tmp_path / "driver.lua"
    driver.write_text(DRIVER % (lua_literal(body), SANDBOX))
    result = subprocess.run(
        [lua5_1(), str(driver), str(CHECK_DIR / "health.lua")],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    status, message = result.stdout.split("\n", 1)
    assert (status, message) == (case["healthStatus"]["status"], case["healthStatus"]["message"])
