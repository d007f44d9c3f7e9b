"""The sizing model: exact hand-derived examples, properties over every valid input, and the
capacity data file's validation."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from swg_operator import cli
from swg_operator.capacity import Capacity
from swg_operator.quantities import GIB, MIB
from swg_operator.render.resources import (
    container_resources,
    limit_range_spec,
    quota_hard,
    sizing_document,
)
from swg_operator.sizing import compute_sizing
from swg_operator.sizing_io import load_capacity
from swg_operator.sizing_plan import (
    CICAP,
    CLAMD,
    FRESHCLAM,
    LOGSTORE,
    SHIPPER,
    SQUID,
    ClamavDatabase,
    SizingPlan,
)

PACKAGED = load_capacity()

# The constants the hand-derived examples below use, pinned here so that calibrating
# data/capacity.yaml does not silently change what these examples prove.
PINNED = Capacity(
    target_utilisation_percent=50,
    cpu_limit_percent=200,
    memory_limit_percent=150,
    max_surge_percent=25,
    disruption_budget_percent=25,
    quota_headroom_percent=10,
    quota_spare_pods=2,
    proxy_rps_per_core=11_000,
    proxy_cpu_min=100,
    proxy_cpu_max=1000,
    proxy_memory_base=64 * MIB,
    connections_per_endpoint=4,
    memory_per_connection=64 * 1024,
    max_connections_per_replica=16_384,
    acl_entry_memory=128,
    antivirus_rps_per_core=1250,
    antivirus_cpu_min=200,
    antivirus_cpu_max=2000,
    icap_cpu_share_percent=25,
    icap_memory_base=64 * MIB,
    icap_memory_per_core=128 * MIB,
    clamd_database_memory_full=1280 * MIB,
    clamd_database_memory_custom=64 * MIB,
    clamd_scan_memory_per_core=256 * MIB,
    logstore_lines_per_core=20_000,
    logstore_cpu_min=100,
    logstore_cpu_max=4000,
    logstore_memory=128 * MIB,
    access_log_line_bytes=512,
    antivirus_log_line_bytes=256,
    compression_ratio_percent=15,
    average_to_peak_percent=30,
    uncompressed_log_days=2,
    log_volume_headroom_percent=20,
    shipper_lines_per_core=42_000,
    shipper_cpu_min=50,
    shipper_memory=64 * MIB,
    log_spool_outage_minutes=60,
    freshclam_cpu=100,
    freshclam_memory=128 * MIB,
    init_container_cpu=100,
    init_container_memory=64 * MIB,
    provenance={},
)


def _plan(endpoints: int, rps: int, **kwargs: Any) -> SizingPlan:
    arguments: dict[str, Any] = {
        "retention_days": 90,
        "antivirus_enabled": True,
        "capacity": PINNED,
    }
    arguments.update(kwargs)
    return compute_sizing(endpoints=endpoints, requests_per_second=rps, **arguments)


def _resources(plan: SizingPlan, workload: str, container: str) -> dict[str, Any]:
    return container_resources(plan.workloads()[workload].containers[container])


# ------------------------------------------------------------------------------------------------
# Exact examples, derived by hand from PINNED. Notation: ceil(a/b); "r16" = rounded up to 16 MiB.
# ------------------------------------------------------------------------------------------------


def test_small_customer_50_endpoints_20_rps() -> None:
    plan = _plan(50, 20)
    # Proxy CPU needed = ceil(20 * 1000 m / (11,000 req/s/core * 50%)) = 4m -> 50m step -> floor
    # 100m; limit 2x = 200m. Connections 50 * 4 = 200; replicas = max(2, ceil(4/1000),
    # ceil(200/16384)) = 2. Memory = 64Mi + 200 * 64Ki = 76.5Mi -> r16 80Mi; limit 120 -> 128Mi.
    assert plan.proxy.replicas == 2
    assert _resources(plan, "proxy", SQUID) == {
        "requests": {"cpu": "100m", "memory": "80Mi"},
        "limits": {"cpu": "200m", "memory": "128Mi"},
    }
    # Surge ceil(2 * 25%) = 1, maxUnavailable 0; PDB maxUnavailable max(1, floor(0.5)) = 1.
    assert (plan.proxy.max_surge, plan.proxy.max_unavailable) == (1, 0)
    assert (plan.proxy.pdb_max_unavailable, plan.proxy.pdb_min_available) == (1, 1)
    # Anti-virus CPU needed = ceil(20 * 1000 / (1250 * 50%)) = 32m -> floor 200m, split 25/75:
    # c-icap 50m (limit 100m), clamd 150m (limit 300m).
    # c-icap memory 64Mi + 50m * 128Mi/core = 70.4Mi -> 80Mi; limit 120 -> 128Mi.
    # clamd memory 1280Mi + 150m * 256Mi/core = 1318.4Mi -> 1328Mi; limit + 1280Mi = 2608Mi.
    assert plan.antivirus is not None
    assert plan.antivirus.replicas == 2
    assert _resources(plan, "antivirus", CICAP) == {
        "requests": {"cpu": "50m", "memory": "80Mi"},
        "limits": {"cpu": "100m", "memory": "128Mi"},
    }
    assert _resources(plan, "antivirus", CLAMD) == {
        "requests": {"cpu": "150m", "memory": "1328Mi"},
        "limits": {"cpu": "300m", "memory": "2608Mi"},
    }
    # Log store: 40 lines/s -> ceil(40 * 1000 / (20,000 * 50%)) = 4m -> floor 100m.
    assert plan.log_store.replicas == 1
    assert plan.log_store.pdb_max_unavailable is None
    assert _resources(plan, "logStore", LOGSTORE) == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "200m", "memory": "192Mi"},
    }
    # Shipper sidecars: one pod carries all 20 req/s (below a replica's 5,500 at 50%): 20 lines/s
    # -> ceil(20 * 1000 / (42,000 * 50%)) = 1m -> floor 50m (limit 100m); 64Mi (limit 96Mi).
    # freshclam (full database): 100m (limit 200m), 128Mi (limit 192Mi).
    shipper = {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"cpu": "100m", "memory": "96Mi"},
    }
    assert _resources(plan, "proxy", SHIPPER) == shipper
    assert _resources(plan, "antivirus", SHIPPER) == shipper
    assert _resources(plan, "antivirus", FRESHCLAM) == {
        "requests": {"cpu": "100m", "memory": "128Mi"},
        "limits": {"cpu": "200m", "memory": "192Mi"},
    }
    # Spools: 60 minutes of 20 req/s x 512 B (proxy) and x 256 B (anti-virus): 36.9 MB and
    # 18.4 MB -> one 64 MiB step each.
    assert (plan.proxy.log_spool, plan.antivirus.log_spool) == (64 * MIB, 64 * MIB)
    assert plan.log_store.log_spool == 0
    # Log volume: 20 req/s x 30 % (average of the peak) x (512 + 256) B x 86,400 s
    # = 398,131,200 B/day; x (2 raw days + 90 days x 15%) = x 15.5 -> 6,171,033,600; x 1.2
    # -> 7,405,240,320 B = 6.9 GiB -> 7Gi.
    assert plan.log_volume == 7 * GIB
    # Quota: pods in a rollout = replicas + 2 x surge: proxy 4, anti-virus 4, log store 3;
    # + 2 spare = 13. Pods: proxy 150m/300m 144Mi/224Mi (squid + shipper); anti-virus
    # 350m/700m 1600Mi/3024Mi (c-icap + clamd + shipper + freshclam).
    # requests.cpu = (4x150 + 4x350 + 3x100 + 2x100) x 1.1 = 2750 -> 2800m
    # limits.cpu = (4x300 + 4x700 + 3x200 + 2x200) x 1.1 = 5500m
    # requests.memory = (4x144 + 4x1600 + 3x128 + 2x64)Mi x 1.1 = 8236.8 -> r64 8256Mi
    # limits.memory = (4x224 + 4x3024 + 3x192 + 2x96)Mi x 1.1 = 15136 -> r64 15168Mi
    assert quota_hard(plan.quota) == {
        "requests.cpu": "2800m",
        "limits.cpu": "5500m",
        "requests.memory": "8256Mi",
        "limits.memory": "15168Mi",
        "pods": "13",
        "requests.storage": "7Gi",
        "persistentvolumeclaims": "1",
    }
    assert limit_range_spec(plan.limit_range) == {
        "limits": [
            {
                "type": "Container",
                "default": {"cpu": "200m", "memory": "96Mi"},
                "defaultRequest": {"cpu": "100m", "memory": "64Mi"},
                "max": {"cpu": "300m", "memory": "2608Mi"},
            }
        ]
    }


def test_medium_customer_500_endpoints_200_rps() -> None:
    plan = _plan(500, 200)
    # Proxy: ceil(200,000/550) = 37m -> 100m. Memory 64Mi + 2000 x 64Ki = 189Mi -> 192Mi;
    # limit 288Mi.
    assert plan.proxy.replicas == 2
    assert _resources(plan, "proxy", SQUID)["requests"] == {"cpu": "100m", "memory": "192Mi"}
    assert _resources(plan, "proxy", SQUID)["limits"] == {"cpu": "200m", "memory": "288Mi"}
    # Anti-virus: ceil(200,000/62.5) = 320m -> 350m; c-icap ceil(87.5) -> 100m, clamd
    # ceil(262.5) -> 300m. c-icap memory 64 + 12.8 -> 80Mi; clamd 1280 + 76.8 -> 1360Mi,
    # limit 2640Mi.
    assert plan.antivirus is not None
    assert _resources(plan, "antivirus", CICAP)["requests"] == {"cpu": "100m", "memory": "80Mi"}
    assert _resources(plan, "antivirus", CLAMD) == {
        "requests": {"cpu": "300m", "memory": "1360Mi"},
        "limits": {"cpu": "600m", "memory": "2640Mi"},
    }
    # Shippers: 200 lines/s -> ceil(200,000 / 21,000) = 10m -> 50m.
    assert _resources(plan, "proxy", SHIPPER)["requests"] == {"cpu": "50m", "memory": "64Mi"}
    # Log volume: 200 x 30% x 768 x 86,400 x 15.5 x 1.2 = 74,052,403,200 B = 68.97 GiB -> 69Gi.
    assert plan.log_volume == 69 * GIB
    # Pods: proxy 150m/300m 256Mi/384Mi; anti-virus 550m/1100m 1632Mi/3056Mi.
    # requests.cpu (4x150 + 4x550 + 3x100 + 200) x 1.1 = 3630 -> 3700m
    # limits.cpu (4x300 + 4x1100 + 3x200 + 400) x 1.1 = 7260 -> 7300m
    # requests.memory (4x256 + 4x1632 + 3x128 + 128) x 1.1 = 8870.4 -> 8896Mi
    # limits.memory (4x384 + 4x3056 + 3x192 + 192) x 1.1 = 15980.8 -> 16000Mi
    assert quota_hard(plan.quota) == {
        "requests.cpu": "3700m",
        "limits.cpu": "7300m",
        "requests.memory": "8896Mi",
        "limits.memory": "16000Mi",
        "pods": "13",
        "requests.storage": "69Gi",
        "persistentvolumeclaims": "1",
    }


def test_large_customer_50000_endpoints_20000_rps() -> None:
    plan = _plan(50_000, 20_000)
    # Proxy CPU needed ceil(2e9/550,000) = 3637m -> 4 replicas by CPU; 200,000 connections
    # -> ceil(200,000/16,384) = 13 replicas: connections decide. Each replica at its maximum:
    # 1 core, 64Mi + 16,384 x 64Ki = 1088Mi (limit 1632Mi).
    assert plan.proxy.replicas == 13
    assert _resources(plan, "proxy", SQUID) == {
        "requests": {"cpu": "1", "memory": "1088Mi"},
        "limits": {"cpu": "1", "memory": "1632Mi"},
    }
    # Surge ceil(13 x 25%) = 4; PDB maxUnavailable floor(3.25) = 3, minAvailable 10.
    assert (plan.proxy.max_surge, plan.proxy.pdb_max_unavailable) == (4, 3)
    assert plan.proxy.pdb_min_available == 10
    # Anti-virus needed 32,000m -> 16 replicas of 2 cores (c-icap 500m, clamd 1500m).
    # c-icap memory 64 + 64 = 128Mi; clamd 1280 + 384 = 1664Mi, limit 2944Mi.
    assert plan.antivirus is not None
    assert (plan.antivirus.replicas, plan.antivirus.max_surge) == (16, 4)
    assert _resources(plan, "antivirus", CICAP)["requests"] == {"cpu": "500m", "memory": "128Mi"}
    assert _resources(plan, "antivirus", CLAMD) == {
        "requests": {"cpu": "1500m", "memory": "1664Mi"},
        "limits": {"cpu": "1500m", "memory": "2944Mi"},
    }
    # Log store: 40,000 lines/s -> 4000m, its maximum.
    assert _resources(plan, "logStore", LOGSTORE)["requests"]["cpu"] == "4"
    # A proxy pod carries at most what one replica at 1 core serves at 50%: 5,500 req/s ->
    # shipper ceil(5,500,000 / 21,000) = 262m -> 300m; spool 5,500 x 512 B x 3,600 s =
    # 10,137,600,000 B -> 152 x 64Mi = 9728Mi. An anti-virus pod: 1,250 req/s -> 60m -> 100m.
    assert _resources(plan, "proxy", SHIPPER)["requests"]["cpu"] == "300m"
    assert plan.proxy.log_spool == 9728 * MIB
    assert _resources(plan, "antivirus", SHIPPER)["requests"]["cpu"] == "100m"
    # Log volume: 1000x the small customer's bytes: 7,405,240,320,000 B = 6,896.7 GiB -> 6897Gi.
    assert plan.log_volume == 6897 * GIB
    # Pods: proxy 13 + 8, anti-virus 16 + 8, log store 3, spare 2 = 50.
    # requests.cpu (21x1300 + 24x2200 + 3x4000 + 200) x 1.1 = 101,530 -> 101,600m
    # limits.memory (21x1728 + 24x3424 + 3x192 + 192)Mi x 1.1 = 131,155.2 -> 131,200Mi
    hard = quota_hard(plan.quota)
    assert (hard["pods"], hard["requests.cpu"], hard["limits.memory"]) == (
        "50",
        "101600m",
        "131200Mi",
    )


def test_without_antivirus_and_one_day_of_logs() -> None:
    plan = _plan(50, 20, antivirus_enabled=False, retention_days=1)
    assert plan.antivirus is None
    assert "antivirus" not in sizing_document(plan)["workloads"]
    # 20 x 30% x 512 x 86,400 = 265,420,800 B/day x (2 + 0.15) x 1.2 = 684,785,664 B -> the
    # 1Gi floor.
    assert plan.log_volume == GIB
    # Pods: proxy 4 + log store 3 + 2 spare.
    assert plan.quota.pods == 9


def test_custom_signature_database_lowers_the_clamd_floor() -> None:
    full = _plan(50, 20)
    custom = _plan(50, 20, clamav_database=ClamavDatabase.CUSTOM)
    assert custom.antivirus is not None
    # 64Mi + 38.4Mi scan memory -> 112Mi; limit + 64Mi reload copy = 176Mi.
    assert _resources(custom, "antivirus", CLAMD)["requests"]["memory"] == "112Mi"
    assert _resources(custom, "antivirus", CLAMD)["limits"]["memory"] == "176Mi"
    assert custom.quota.limits_memory < full.quota.limits_memory
    # No public database, no signature updater.
    assert full.antivirus is not None
    assert FRESHCLAM in full.antivirus.containers
    assert FRESHCLAM not in custom.antivirus.containers


def test_filter_list_entries_add_squid_memory() -> None:
    # 1,000,000 entries x 128 B = 122.07Mi on top of 76.5Mi -> 198.57Mi -> 208Mi.
    plan = _plan(50, 20, acl_entries=1_000_000)
    assert _resources(plan, "proxy", SQUID)["requests"]["memory"] == "208Mi"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"endpoints": 0}, "endpoints"),
        ({"endpoints": 1_000_001}, "endpoints"),
        ({"requests_per_second": 0}, "requests_per_second"),
        ({"retention_days": 91}, "retention_days"),
        ({"retention_days": True}, "retention_days"),
        ({"acl_entries": -1}, "acl_entries"),
    ],
)
def test_inputs_out_of_bounds_are_refused(arguments: dict[str, Any], message: str) -> None:
    values: dict[str, Any] = {
        "endpoints": 10,
        "requests_per_second": 10,
        "retention_days": 90,
        "antivirus_enabled": True,
        "capacity": PINNED,
    }
    values.update(arguments)
    with pytest.raises(ValueError, match=message):
        compute_sizing(**values)


# ------------------------------------------------------------------------------------------------
# The command
# ------------------------------------------------------------------------------------------------


def test_sizing_command_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sizing", "--endpoints", "500", "--rps", "200", "-o", "json"]) == 0
    document = json.loads(capsys.readouterr().out)
    expected = compute_sizing(
        endpoints=500,
        requests_per_second=200,
        retention_days=90,
        antivirus_enabled=True,
        capacity=PACKAGED,
    )
    assert document == sizing_document(expected)
    assert document["provisional"] is True


def test_sizing_command_table(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sizing", "--endpoints", "50", "--rps", "20", "--no-antivirus", "--retention-days", "7"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "PROVISIONAL" in out
    assert "7 days of logs, anti-virus off" in out
    assert "squid" in out
    assert "clamd" not in out
    assert "ResourceQuota" in out
    assert "Log volume" in out


def test_sizing_command_markdown_several_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sizing", "--endpoints", "50", "--rps", "20", "--endpoints", "500", "--rps", "200"]
    assert cli.main([*argv, "-o", "markdown"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert len(rows) == 4  # header, alignment, two sizes


@pytest.mark.parametrize(
    "argv",
    [
        ["sizing", "--endpoints", "0", "--rps", "10"],
        ["sizing", "--endpoints", "10", "--rps", "10", "--retention-days", "91"],
        ["sizing", "--endpoints", "10"],
    ],
)
def test_sizing_command_refuses_bad_arguments(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    assert exc.value.code == 2


def test_sizing_command_unpaired_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["sizing", "--endpoints", "10", "--endpoints", "20", "--rps", "10"]
    assert cli.main(argv) == 2
    assert "pairs" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------
# docs/sizing.md
# ------------------------------------------------------------------------------------------------

DOC = Path(__file__).resolve().parent.parent / "docs" / "sizing.md"


def test_doc_table_is_what_the_command_prints(capsys: pytest.CaptureFixture[str]) -> None:
    text = DOC.read_text()
    match = re.search(
        r"<!-- generated-by: swg-operator (?P<argv>[^>]*?) -->\n(?P<table>.*?)<!-- end generated",
        text,
        re.DOTALL,
    )
    assert match is not None
    assert cli.main(match["argv"].split()) == 0
    assert capsys.readouterr().out == match["table"], "regenerate the table in docs/sizing.md"


def test_doc_names_every_constant() -> None:
    text = DOC.read_text()
    missing = [key for key in PACKAGED.provenance if f"`{key}`" not in text]
    assert not missing


def test_storage_override_is_a_sizing_input() -> None:
    modelled = _plan(500, 200).log_volume
    larger = _plan(500, 200, log_volume_override=modelled + 10 * GIB)
    assert larger.log_volume == modelled + 10 * GIB
    assert larger.quota.requests_storage == modelled + 10 * GIB
    smaller = _plan(500, 200, log_volume_override=GIB)
    assert smaller.log_volume == GIB
    # The quota keeps room for the modelled volume, so that going back to auto needs no change.
    assert smaller.quota.requests_storage == modelled
    assert sizing_document(smaller)["inputs"]["logVolumeOverride"] == "1Gi"
    with pytest.raises(ValueError, match="log_volume_override"):
        _plan(500, 200, log_volume_override=0)
