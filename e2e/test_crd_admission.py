"""The generated CRD on a real API server: it installs, valid tenants are admitted with the
models' defaults, and every malformed tenant is refused at `kubectl apply --server-side` with an
error that names the offending field."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster, unique_name
from e2e.crd_cases import FULL_SPEC, MALFORMED, MINIMAL_SPEC, tenant, with_changes
from swg_operator.api import GROUP, KIND, PLURAL, SecureWebGatewayStatus, parse_spec
from swg_operator.api.crd import custom_resource_definition

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = REPO_ROOT / "crds" / "swg.dev_securewebgateways.yaml"
CRD_NAME = f"{PLURAL}.{GROUP}"
EXAMPLES = REPO_ROOT / "examples" / "tenants"


@pytest.fixture(scope="module")
def swg(cluster: Cluster) -> Cluster:
    """The cluster with the committed CRD installed and Established (left installed: other
    tests of the session use it)."""
    cluster.kubectl(
        "apply",
        "--server-side",
        "--force-conflicts",
        "--field-manager=swg-e2e",
        "-f",
        str(CRD_FILE),
    )
    cluster.kubectl(
        "wait", "--for=condition=Established", f"crd/{CRD_NAME}", "--timeout=60s", timeout=90
    )
    return cluster


@pytest.fixture
def make_tenant_name(swg: Cluster) -> Iterator[Callable[[str], str]]:
    """Unique tenant names; whatever got created under them is deleted after the test."""
    names: list[str] = []

    def make(prefix: str) -> str:
        name = unique_name(prefix)
        names.append(name)
        return name

    yield make
    if names:
        swg.kubectl("delete", "swg", *names, "--ignore-not-found", "--wait=false", check=False)


def test_crd_is_established(swg: Cluster) -> None:
    crd = swg.kubectl_json("get", "crd", CRD_NAME)
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions.get("Established") == "True"
    assert conditions.get("NamesAccepted") == "True"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["status"]["acceptedNames"]["shortNames"] == ["swg"]


def _example_tenants() -> list[Path]:
    return sorted(EXAMPLES.glob("*.yaml")) if EXAMPLES.is_dir() else []


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(MINIMAL_SPEC, id="minimal"),
        pytest.param(FULL_SPEC, id="full"),
        pytest.param(
            with_changes(clients={"allowedCIDRs": ["0.0.0.0/0", "::/0"], "allowAnyClient": True}),
            id="catch-all-with-consent",
        ),
    ],
)
def test_valid_tenant_is_admitted_with_the_models_defaults(
    swg: Cluster, make_tenant_name: Callable[[str], str], spec: dict[str, Any]
) -> None:
    name = make_tenant_name("valid")
    swg.apply(tenant(name, spec))
    stored = swg.kubectl_json("get", "swg", name)["spec"]
    expected = parse_spec(spec).model_dump(by_alias=True, exclude_none=True, mode="json")
    assert stored == expected, "the CRD's defaults differ from the models' defaults"


@pytest.mark.parametrize("path", _example_tenants(), ids=lambda p: p.stem)
def test_example_tenant_is_admitted(swg: Cluster, path: Path) -> None:
    for document in yaml.safe_load_all(path.read_text()):
        if document and document.get("kind") == KIND:
            swg.kubectl(
                "apply",
                "--server-side",
                "--dry-run=server",
                "-f",
                "-",
                input=yaml.safe_dump(document),
            )


@pytest.mark.parametrize(
    ("spec", "expected"),
    [pytest.param(spec, expected, id=case) for case, spec, expected in MALFORMED],
)
def test_malformed_tenant_is_refused_naming_the_field(
    swg: Cluster,
    make_tenant_name: Callable[[str], str],
    spec: dict[str, Any],
    expected: tuple[str, ...],
) -> None:
    name = make_tenant_name("malformed")
    result = swg.apply(tenant(name, spec), check=False)
    assert result.returncode != 0, f"admitted: {result.stdout}"
    error = result.stderr
    for text in expected:
        assert text.lower() in error.lower(), f"{text!r} not in: {error}"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("a" * 60, "metadata.name", id="name-too-long"),
        pytest.param("acme.example", "metadata.name", id="name-with-dot"),
    ],
)
def test_tenant_name_must_give_a_namespace_name(swg: Cluster, name: str, expected: str) -> None:
    result = swg.apply(tenant(name, MINIMAL_SPEC), check=False)
    if result.returncode == 0:
        swg.kubectl("delete", "swg", name, "--wait=false", check=False)
    assert result.returncode != 0
    assert expected in result.stderr


def test_service_code_is_immutable(swg: Cluster, make_tenant_name: Callable[[str], str]) -> None:
    name = make_tenant_name("immutable")
    swg.apply(tenant(name, MINIMAL_SPEC))
    resized = with_changes(sizing={"endpoints": 200, "requestsPerSecond": 80})
    swg.apply(tenant(name, resized))  # other fields may change

    result = swg.apply(tenant(name, {**resized, "serviceCode": "SWG-0009999"}), check=False)
    assert result.returncode != 0
    assert "spec.serviceCode" in result.stderr
    assert "serviceCode is immutable" in result.stderr
    assert swg.kubectl_json("get", "swg", name)["spec"]["serviceCode"] == "SWG-0001234"


def test_status_round_trips_and_printer_columns_show_it(
    swg: Cluster, make_tenant_name: Callable[[str], str]
) -> None:
    """Every status field survives the API server (nothing pruned), and `kubectl get swg`
    shows the columns from spec and status."""
    name = make_tenant_name("columns")
    swg.apply(tenant(name, MINIMAL_SPEC))
    status = SecureWebGatewayStatus.model_validate(
        {
            "observedGeneration": 1,
            "phase": "Cancelled",
            "namespace": f"swg-{name}",
            "proxyEndpoint": f"proxy.swg-{name}.svc:3128",
            "sizing": {
                "proxyReplicas": 2,
                "antivirusReplicas": 2,
                "quotaCpu": "4",
                "quotaMemory": "8Gi",
                "logStorage": "10Gi",
            },
            "conditions": [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "Cancelled",
                    "message": "Service stopped; logs are exportable until the purge.",
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                    "observedGeneration": 1,
                },
                {
                    "type": "Stalled",
                    "status": "False",
                    "reason": "SpecValid",
                    "lastTransitionTime": "2026-01-02T03:04:05Z",
                },
            ],
            "cancellation": {
                "cancelledAt": "2026-01-02T03:04:05Z",
                "purgeAt": "2026-04-02T03:04:05Z",
                "legalHold": True,
                "purgedAt": None,
                "receipt": None,
            },
        }
    )
    body = status.model_dump(by_alias=True, exclude_none=True, mode="json")
    swg.kubectl(
        "patch",
        "swg",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": body}),
    )
    stored = swg.kubectl_json("get", "swg", name)["status"]
    assert stored == body

    table = swg.kubectl("get", "swg", name).stdout.splitlines()
    header, row = table[0], table[1]
    for column in ("NAME", "READY", "PHASE", "SERVICE CODE", "ENDPOINTS", "RPS", "PURGE AT", "AGE"):
        assert column in header, header
    for value in (name, "False", "Cancelled", "SWG-0001234", "100", "50", "2026-04-02T03:04:05Z"):
        assert value in row.split(), row


def test_api_server_refuses_the_crd_when_a_rule_target_is_unbounded(swg: Cluster) -> None:
    """Why every list and string a CEL rule touches has maxItems/maxLength (checked statically
    in tests/test_crd.py): without them the API server cannot bound the rule's cost."""
    crd = custom_resource_definition()
    crd["metadata"]["name"] = "unboundeds.swg.dev"
    crd["spec"]["names"] = {
        "kind": "Unbounded",
        "listKind": "UnboundedList",
        "plural": "unboundeds",
        "singular": "unbounded",
    }
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    cidrs = schema["properties"]["spec"]["properties"]["clients"]["properties"]["allowedCIDRs"]
    del cidrs["maxItems"], cidrs["items"]["maxLength"]
    result = swg.kubectl(
        "apply",
        "--server-side",
        "--dry-run=server",
        "-f",
        "-",
        input=yaml.safe_dump(crd),
        check=False,
    )
    assert result.returncode != 0
    assert "estimated rule cost exceeds budget" in result.stderr
