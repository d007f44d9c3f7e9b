"""The generated CRD on a real API server: it installs, valid tenants are admitted with the
models' defaults, and every malformed tenant is refused at `kubectl apply --server-side` with an
error that names the offending field."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e.cluster import Cluster, unique_name
from swg_operator.api import API_VERSION, KIND, SecureWebGatewayStatus, parse_spec
from swg_operator.api.crd import custom_resource_definition

pytestmark = pytest.mark.cluster

REPO_ROOT = Path(__file__).resolve().parents[1]
CRD_FILE = REPO_ROOT / "crds" / "swg.dev_securewebgateways.yaml"
CRD_NAME = "securewebgateways.swg.dev"
EXAMPLES = REPO_ROOT / "examples" / "tenants"

MINIMAL_SPEC: dict[str, Any] = {
    "serviceCode": "SWG-0001234",
    "sizing": {"endpoints": 100, "requestsPerSecond": 50},
    "clients": {"allowedCIDRs": ["10.20.0.0/16"]},
}

FULL_SPEC: dict[str, Any] = {
    "serviceCode": "SWG-0009876",
    "displayName": "Example Corp (head office)",
    "contacts": ["noc@example.com"],
    "sizing": {"endpoints": 2500, "requestsPerSecond": 800},
    "clients": {"allowedCIDRs": ["10.20.0.0/16", "2001:db8:10::/48"]},
    "urlFiltering": {
        "blockedCategories": ["gambling", "malware"],
        "allow": {"domains": [".example.com"]},
        "deny": {"domains": ["bad.example.net"], "urlRegex": [r"^https?://[^/]+/ads/"]},
        "policies": [
            {"name": "finance", "sourceCIDRs": ["10.20.1.0/24"], "blockedCategories": ["social"]},
            {"name": "it", "sourceCIDRs": ["10.20.2.0/24"], "allow": {"domains": ["github.com"]}},
        ],
    },
    "antivirus": {"enabled": True, "maxScanSize": "100Mi", "failOpen": False},
    "options": {
        "bypass": {"domains": ["update.example.org"], "CIDRs": ["192.0.2.0/24"]},
        "httpsInspection": {"enabled": True, "doNotInspect": {"categories": ["banking"]}},
        "sandbox": {"enabled": True, "icapURL": "icaps://sandbox.example.net:1344/analyze"},
    },
    "logs": {"retentionDays": 30, "timeZone": "Asia/Tokyo", "storage": {"size": "20Gi"}},
    "placement": {"region": "region-a"},
    "admins": [{"kind": "Group", "name": "example-corp:admins"}],
    "cancellation": {"purgeAfterDays": 30, "legalHold": False},
}


def tenant(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": {"name": name}, "spec": spec}


_DELETE = object()


def with_changes(**changes: Any) -> dict[str, Any]:
    """MINIMAL_SPEC with `changes` set (or removed, with `_DELETE`); `__` separates the parts
    of a nested key: `sizing__endpoints=0`."""
    spec = copy.deepcopy(MINIMAL_SPEC)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        if value is _DELETE:
            del node[leaf]
        else:
            node[leaf] = value
    return spec


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


# (id, spec or full object, text the error must contain: the field path, and a message part)
MALFORMED: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("missing-serviceCode", with_changes(serviceCode=_DELETE), ("spec.serviceCode", "Required")),
    ("serviceCode-lowercase", with_changes(serviceCode="swg-1"), ("spec.serviceCode",)),
    ("missing-sizing", with_changes(sizing=_DELETE), ("spec.sizing", "Required")),
    ("endpoints-0", with_changes(sizing__endpoints=0), ("spec.sizing.endpoints",)),
    (
        "rps-over-1e6",
        with_changes(sizing__requestsPerSecond=1_000_001),
        ("spec.sizing.requestsPerSecond", "1000000"),
    ),
    (
        "cidr-host-bits",
        with_changes(clients__allowedCIDRs=["10.20.1.0/16"]),
        ("spec.clients.allowedCIDRs[0]", "host bits"),
    ),
    (
        "cidr-ipv6-not-canonical",
        with_changes(clients__allowedCIDRs=["2001:DB8::/32"]),
        ("spec.clients.allowedCIDRs[0]", "canonical"),
    ),
    (
        "cidr-prefix-too-long",
        with_changes(clients__allowedCIDRs=["10.0.0.0/33"]),
        ("spec.clients.allowedCIDRs[0]", "must be a CIDR"),
    ),
    (
        "cidr-garbage",
        with_changes(clients__allowedCIDRs=["example.com/8"]),
        ("spec.clients.allowedCIDRs[0]",),
    ),
    (
        "catch-all-without-consent",
        with_changes(clients__allowedCIDRs=["10.0.0.0/8", "0.0.0.0/0"]),
        ("spec.clients.allowedCIDRs", "allowAnyClient"),
    ),
    (
        "ipv6-catch-all-without-consent",
        with_changes(clients__allowedCIDRs=["::/0"]),
        ("spec.clients.allowedCIDRs", "allowAnyClient"),
    ),
    (
        "no-allowed-cidrs",
        with_changes(clients__allowedCIDRs=[]),
        ("spec.clients.allowedCIDRs",),
    ),
    (
        "duplicate-allowed-cidrs",
        with_changes(clients__allowedCIDRs=["10.0.0.0/8", "10.0.0.0/8"]),
        ("spec.clients.allowedCIDRs", "duplicate"),
    ),
    (
        "policy-cidr-host-bits",
        with_changes(urlFiltering={"policies": [{"name": "a", "sourceCIDRs": ["10.0.0.1/8"]}]}),
        ("spec.urlFiltering.policies[0].sourceCIDRs[0]", "host bits"),
    ),
    (
        "bypass-cidr-invalid",
        with_changes(options={"bypass": {"CIDRs": ["300.0.0.0/8"]}}),
        ("spec.options.bypass.CIDRs[0]", "must be a CIDR"),
    ),
    (
        "domain-with-newline",
        with_changes(urlFiltering={"deny": {"domains": ["bad.example\nhttp_access allow all"]}}),
        ("spec.urlFiltering.deny.domains[0]",),
    ),
    (
        "domain-with-space",
        with_changes(urlFiltering={"allow": {"domains": ["a b.example"]}}),
        ("spec.urlFiltering.allow.domains[0]",),
    ),
    (
        "url-regex-with-space",
        with_changes(urlFiltering={"deny": {"urlRegex": ["^http://a b"]}}),
        ("spec.urlFiltering.deny.urlRegex[0]",),
    ),
    (
        "url-regex-leading-hash",
        with_changes(urlFiltering={"deny": {"urlRegex": ["#include /etc/passwd"]}}),
        ("spec.urlFiltering.deny.urlRegex[0]",),
    ),
    (
        "url-regex-unicode-line-separator",
        with_changes(urlFiltering={"deny": {"urlRegex": ["a\u2028b"]}}),
        ("spec.urlFiltering.deny.urlRegex[0]",),
    ),
    (
        "duplicate-policy-names",
        with_changes(
            urlFiltering={
                "policies": [
                    {"name": "staff", "sourceCIDRs": ["10.1.0.0/16"]},
                    {"name": "staff", "sourceCIDRs": ["10.2.0.0/16"]},
                ]
            }
        ),
        ("spec.urlFiltering.policies", "duplicate", "staff"),
    ),
    (
        "duplicate-blocked-categories",
        with_changes(urlFiltering={"blockedCategories": ["adult", "adult"]}),
        ("spec.urlFiltering.blockedCategories", "duplicate"),
    ),
    (
        "category-with-directive",
        with_changes(urlFiltering={"blockedCategories": ["adult include"]}),
        ("spec.urlFiltering.blockedCategories[0]",),
    ),
    (
        "sandbox-enabled-without-url",
        with_changes(options={"sandbox": {"enabled": True}}),
        ("spec.options.sandbox.icapURL", "Required"),
    ),
    (
        "sandbox-url-not-icap",
        with_changes(options={"sandbox": {"enabled": True, "icapURL": "http://x.example/"}}),
        ("spec.options.sandbox.icapURL",),
    ),
    (
        "sandbox-fail-open-not-bool",
        with_changes(
            options={
                "sandbox": {"enabled": True, "icapURL": "icaps://x.example/", "failOpen": "yes"}
            }
        ),
        ("spec.options.sandbox.failOpen",),
    ),
    (
        "file-types-without-antivirus",
        with_changes(
            antivirus={"enabled": False},
            contentControls={"fileTypes": {"blocked": ["executable"]}},
        ),
        ("spec.contentControls", "antivirus.enabled"),
    ),
    (
        "safe-search-without-inspection",
        with_changes(
            options={"httpsInspection": {"enabled": False}},
            contentControls={"safeSearch": {"enabled": True}},
        ),
        ("spec.contentControls", "options.httpsInspection.enabled"),
    ),
    (
        "file-type-unknown",
        with_changes(contentControls={"fileTypes": {"blocked": ["exe"]}}),
        ("spec.contentControls.fileTypes.blocked[0]", "Unsupported value"),
    ),
    (
        "custom-file-type-magic-not-hex",
        with_changes(contentControls={"fileTypes": {"custom": [{"name": "x", "magic": "MZ"}]}}),
        ("spec.contentControls.fileTypes.custom[0].magic",),
    ),
    (
        "custom-file-type-duplicate",
        with_changes(
            contentControls={
                "fileTypes": {
                    "custom": [{"name": "x", "magic": "4d5a"}, {"name": "x", "magic": "7f45"}]
                }
            }
        ),
        ("spec.contentControls.fileTypes.custom", "duplicate"),
    ),
    ("retention-91", with_changes(logs={"retentionDays": 91}), ("spec.logs.retentionDays", "90")),
    ("retention-0", with_changes(logs={"retentionDays": 0}), ("spec.logs.retentionDays",)),
    ("time-zone-injection", with_changes(logs={"timeZone": "UTC\n"}), ("spec.logs.timeZone",)),
    (
        "log-size-not-quantity",
        with_changes(logs={"storage": {"size": "lots"}}),
        ("spec.logs.storage.size",),
    ),
    (
        "purge-after-minus-1",
        with_changes(cancellation={"purgeAfterDays": -1}),
        ("spec.cancellation.purgeAfterDays",),
    ),
    (
        "purge-after-91",
        with_changes(cancellation={"purgeAfterDays": 91}),
        ("spec.cancellation.purgeAfterDays",),
    ),
    (
        "max-scan-size-injection",
        with_changes(antivirus={"maxScanSize": "50Mi; rm"}),
        ("spec.antivirus.maxScanSize",),
    ),
    ("bad-contact", with_changes(contacts=["not-an-email"]), ("spec.contacts[0]",)),
    (
        "admin-kind-unknown",
        with_changes(admins=[{"kind": "ServiceAccount", "name": "x"}]),
        ("spec.admins[0].kind", "Unsupported value"),
    ),
    (
        "display-name-newline",
        with_changes(displayName="Example\nCorp"),
        ("spec.displayName",),
    ),
    (
        "region-not-label-value",
        with_changes(placement={"region": "eu west"}),
        ("spec.placement.region",),
    ),
    ("unknown-field", with_changes(proxyPort=8080), ("spec.proxyPort", "not declared")),
    (
        "unknown-nested-field",
        with_changes(sizing__burst=10),
        ("spec.sizing.burst", "not declared"),
    ),
]


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
