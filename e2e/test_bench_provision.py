"""The provisioning benchmark's pure parts: the control plane's tuning flags, the kwok Nodes
sized for N tenants, the metric and log readers, and the goals a result is judged by. In the
cluster tier because bench.localcluster builds on e2e.cluster (tests/ imports no e2e module)."""

from __future__ import annotations

from typing import Any

import pytest
from bench.localcluster import BENCH_TUNING, metric_sums, nodes_for, throttle_delta
from bench.provision.__main__ import GOALS_1000, GOALS_10000, goals_for, targets
from bench.provision.audit import Request
from bench.provision.errors import adapter_errors, scan_log, transient_errors

from e2e.cluster import Tuning
from e2e.cluster.nodes import NODES


def test_default_tuning_adds_no_flag() -> None:
    tuning = Tuning()
    assert tuning.etcd_args() == []
    assert tuning.apiserver_args() == []
    assert tuning.client_args() == []
    assert tuning.controller_manager_args() == []


def test_bench_tuning_lifts_the_controllers_client_throttle() -> None:
    assert BENCH_TUNING.client_args() == ["--kube-api-qps=1000", "--kube-api-burst=2000"]
    manager = BENCH_TUNING.controller_manager_args()
    assert manager[:2] == BENCH_TUNING.client_args()
    assert "--concurrent-deployment-syncs=50" in manager
    assert "--concurrent-replicaset-syncs=50" in manager
    assert BENCH_TUNING.apiserver_args() == [
        "--max-requests-inflight=800",
        "--max-mutating-requests-inflight=400",
    ]
    assert BENCH_TUNING.etcd_args() == [f"--quota-backend-bytes={8 * 1024**3}"]


@pytest.mark.parametrize(("tenants", "count"), [(1, 3), (100, 3), (1000, 12), (10000, 102)])
def test_nodes_hold_twice_the_tenants_pods(tenants: int, count: int) -> None:
    nodes = nodes_for(tenants)
    assert len(nodes) == count
    assert sum(int(n.pods) for n in nodes) >= 2 * 5 * tenants
    assert all(int(n.pods) <= 1000 for n in nodes)
    assert len({n.name for n in nodes}) == count
    # Every zone of the default topology has the same number of Nodes.
    zones = [n.zone for n in nodes]
    assert {zones.count(z.zone) for z in NODES} == {count // 3}


def test_nodes_need_a_tenant() -> None:
    with pytest.raises(ValueError, match="tenants must be at least 1"):
        nodes_for(0)


EXPOSITION = """# HELP x y
rest_client_rate_limiter_duration_seconds_sum{host="a",verb="GET"} 1.5
rest_client_rate_limiter_duration_seconds_sum{host="a",verb="PUT"} 0.25
apiserver_flowcontrol_rejected_requests_total{priority_level="workload-low",reason="x"} 2
apiserver_flowcontrol_rejected_requests_total{priority_level="workload-low",reason="y"} 1
apiserver_flowcontrol_rejected_requests_total{priority_level="global-default",reason="x"} 4
"""


def test_metric_sums_over_labels_and_by_one_label() -> None:
    assert metric_sums(
        EXPOSITION,
        ["rest_client_rate_limiter_duration_seconds_sum", "absent_total"],
    ) == {"rest_client_rate_limiter_duration_seconds_sum": 1.75, "absent_total": 0.0}
    assert metric_sums(
        EXPOSITION, ["apiserver_flowcontrol_rejected_requests_total"], by="priority_level"
    ) == {
        'apiserver_flowcontrol_rejected_requests_total{priority_level="workload-low"}': 3.0,
        'apiserver_flowcontrol_rejected_requests_total{priority_level="global-default"}': 4.0,
    }


def test_throttle_delta_counts_from_zero_for_new_series() -> None:
    before = {"kube-scheduler": {"a": 1.0}}
    after = {"kube-scheduler": {"a": 1.5, "b": 2.0}, "kube-apiserver": {"c": 3.0}}
    assert throttle_delta(before, after) == {
        "kube-scheduler": {"a": 0.5, "b": 2.0},
        "kube-apiserver": {"c": 3.0},
    }


LOG = [
    "INFO reconciled bench-0001",
    "ERROR Handler 'reconcile' failed temporarily: Transient API error: 0 NoAnswer: GET /x: "
    "TimeoutError()",
    "ERROR Handler 'reconcile' failed temporarily: Transient API error: 429 TooManyRequests: x",
    "ERROR Handler 'reconcile' failed temporarily: Transient API error: 503 ServiceUnavailable",
    "ERROR Handler 'reconcile' failed temporarily: Transient API error: 409 Conflict: x",
    "INFO took 0.503 s",
]


def test_scan_log_counts_each_line_once_by_category() -> None:
    assert scan_log(LOG) == {
        "noAnswer": 1,
        "throttled": 1,
        "serverError": 1,
        "conflict": 1,
        "kopfTemporaryFailure": 4,
    }


def test_adapter_errors_counts_no_answer_429_and_5xx() -> None:
    metrics = {
        'swg_operator_api_requests_total{code="0",verb="get"}': 3.0,
        'swg_operator_api_requests_total{code="200",verb="get"}': 100.0,
        'swg_operator_api_requests_total{code="409",verb="patch"}': 5.0,
        'swg_operator_api_requests_total{code="503",verb="patch"}': 2.0,
        'swg_operator_reconciles_total{result="ok"}': 9.0,
    }
    assert adapter_errors(metrics) == 5


def _request(code: int) -> Request:
    return Request(user="u", verb="get", resource="pods", client="adapter", code=code, at=0.0)


STAMPED = "[2026-12-06 19:46:21,{ms}] swg_operator.reconcile [INFO    ] Created for bench-0004"


def test_a_clean_run_has_no_transient_error_in_any_source() -> None:
    log = "\n".join(["INFO ok", "INFO took 0.503 s", STAMPED.format(ms=429)])
    clean = transient_errors(log, [_request(200)], {})
    assert clean["clean"] is True
    assert clean["logLines"] == 0
    audited = transient_errors("INFO ok\n", [_request(200), _request(429)], {})
    assert audited["clean"] is False
    assert audited["auditTransientAnswers"] == 1


def _operator(n: int, **overrides: Any) -> dict[str, Any]:
    result: dict[str, Any] = {
        "tenants": n,
        "totalSeconds": 105.0,
        "apiRequests": {
            "untilReady": {"perTenant": {"total": 30.0}},
            "untilQuiet": {"perTenant": {"mutating": 26.0}},
        },
        "process": {"cpuMsPerTenantUntilQuiet": 40.0, "peakRssMiB": 150.0},
        "transientErrors": {"logLines": 0, "clean": True},
        "idle": {"apiRequests": {"mutating": 0}},
    }
    result.update(overrides)
    return result


FLOOR = {"totalSeconds": 100.0, "apiRequests": {"perTenant": {"mutating": 24.0}}}


def test_targets_at_the_goals_are_met() -> None:
    got = targets({**FLOOR, "renderMsPerTenant": 1.8}, _operator(1000))
    assert got["column"] == "1,000 tenants"
    met = {k: v["met"] for k, v in got.items() if isinstance(v, dict)}
    assert met == dict.fromkeys(met, True)
    assert len(met) == 7
    assert got["operatorCpuMsPerTenant"]["floorRenderMsPerTenant"] == 1.8


def test_targets_missed_and_without_a_floor() -> None:
    operator = _operator(
        100,
        process={"cpuMsPerTenantUntilQuiet": 430.0, "peakRssMiB": 151.0},
        transientErrors={"logLines": 0, "clean": False},
        idle={"apiRequests": {"mutating": 1}},
    )
    got = targets(None, operator)
    assert "applied to 100" in got["column"]
    assert got["operatorCpuMsPerTenant"]["met"] is False
    assert got["peakRssMiB"]["met"] is False
    assert got["transientErrors"]["met"] is False
    assert got["apiWritesPerIdleTenant"] == {"goal": "0", "measured": 0.01, "met": False}
    assert got["mutatingCallsPerTenant"]["met"] is None
    assert got["readyVersusFloor"]["met"] is None


def test_goals_per_size() -> None:
    assert goals_for(1000) is GOALS_1000
    assert goals_for(1001) is GOALS_10000
    assert (GOALS_10000.peak_rss_mib, GOALS_10000.ready_versus_floor) == (400.0, 1.2)
    floor = {**FLOOR, "renderMsPerTenant": 1.8}
    at_10000 = targets(
        floor, _operator(10000, process={"cpuMsPerTenantUntilQuiet": 1.0, "peakRssMiB": 390.0})
    )
    assert at_10000["peakRssMiB"]["met"] is True
    assert at_10000["readyVersusFloor"]["met"] is True  # 1.05 <= 1.2
