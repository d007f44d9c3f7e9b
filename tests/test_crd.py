"""The CRD generated from the API models: converter, structure, rules, and drift of crds/."""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import pydantic
import pytest
import yaml
from pydantic import Field

from swg_operator import naming
from swg_operator.api import access as access_module
from swg_operator.api import spec as spec_module
from swg_operator.api import status as status_module
from swg_operator.api.base import CamelModel
from swg_operator.api.crd import (
    SchemaConversionError,
    crd_yaml,
    custom_resource_definition,
    structural_schema,
    walk_schema,
)
from swg_operator.api.crd_rules import SCHEMA_OVERLAYS
from swg_operator.api.resource import parse_spec
from swg_operator.api.types import Cidr
from swg_operator.cli import main

REPO_ROOT = Path(__file__).resolve().parents[1]
COMMITTED_CRD = REPO_ROOT / "crds" / "swg.dev_securewebgateways.yaml"

MINIMAL_SPEC: dict[str, Any] = {
    "serviceCode": "SWG-0001234",
    "sizing": {"endpoints": 100, "requestsPerSecond": 50},
    "clients": {"allowedCIDRs": ["10.20.0.0/16"]},
}


def _version() -> dict[str, Any]:
    versions: list[dict[str, Any]] = custom_resource_definition()["spec"]["versions"]
    assert len(versions) == 1
    return versions[0]


def _root() -> dict[str, Any]:
    root: dict[str, Any] = _version()["schema"]["openAPIV3Schema"]
    return root


# --- drift -----------------------------------------------------------------------------------


def test_committed_crd_matches_the_models() -> None:
    assert COMMITTED_CRD.read_text() == crd_yaml(), (
        "crds/swg.dev_securewebgateways.yaml is stale: run `make crds` and commit it"
    )


def test_cli_prints_the_crd(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crd"]) == 0
    assert capsys.readouterr().out == crd_yaml()


def test_cli_writes_the_crd_to_a_file(tmp_path: Path) -> None:
    target = tmp_path / "crd.yaml"
    assert main(["crd", "--file", str(target)]) == 0
    assert yaml.safe_load(target.read_text()) == custom_resource_definition()


# --- the converter on small models -----------------------------------------------------------


class _Inner(CamelModel):
    """An inner object."""

    size: Annotated[int, Field(ge=1, le=10)] = 3


class _Sample(CamelModel):
    ref_field: _Inner
    optional_ref: _Inner | None = None
    optional_text: Annotated[str, Field(pattern=r"^[a-z]+$", max_length=8)] | None = None
    pair: tuple[int, int] = (1, 2)
    many: tuple[str, ...] = ()
    kind: Literal["User", "Group"] = "User"
    only: Literal["fixed"] = "fixed"
    inner_default: _Inner = _Inner()
    positive: Annotated[int, Field(gt=0, lt=100)] = 5
    cidr: Cidr | None = None


def _sample_schema() -> dict[str, Any]:
    return structural_schema(_Sample.model_json_schema(by_alias=True))


def test_ref_is_inlined_with_its_description() -> None:
    node = _sample_schema()["properties"]["refField"]
    assert node["type"] == "object"
    assert node["description"] == "An inner object."
    assert node["properties"]["size"] == {
        "type": "integer",
        "minimum": 1,
        "maximum": 10,
        "default": 3,
    }


def test_nullable_becomes_the_plain_type_without_null_default() -> None:
    properties = _sample_schema()["properties"]
    assert properties["optionalRef"]["type"] == "object"
    assert properties["optionalText"] == {"type": "string", "pattern": "^[a-z]+$", "maxLength": 8}
    assert "default" not in properties["optionalRef"]
    assert "nullable" not in properties["optionalText"]


def test_tuples_become_arrays_with_items() -> None:
    properties = _sample_schema()["properties"]
    assert properties["pair"] == {
        "type": "array",
        "items": {"type": "integer"},
        "minItems": 2,
        "maxItems": 2,
        "default": [1, 2],
    }
    assert properties["many"] == {"type": "array", "items": {"type": "string"}, "default": []}


def test_literals_become_enums() -> None:
    properties = _sample_schema()["properties"]
    assert properties["kind"] == {"type": "string", "enum": ["User", "Group"], "default": "User"}
    assert properties["only"]["enum"] == ["fixed"]
    assert "const" not in properties["only"]


def test_model_default_is_reduced_to_what_nested_defaults_do_not_produce() -> None:
    assert _sample_schema()["properties"]["innerDefault"]["default"] == {}


def test_exclusive_bounds_become_kubernetes_booleans() -> None:
    node = _sample_schema()["properties"]["positive"]
    assert node["minimum"] == 0
    assert node["exclusiveMinimum"] is True
    assert node["maximum"] == 100
    assert node["exclusiveMaximum"] is True


def test_cidr_marker_becomes_cel_rules() -> None:
    node = _sample_schema()["properties"]["cidr"]
    assert "x-swg-cidr" not in node
    rules = [r["rule"] for r in node["x-kubernetes-validations"]]
    assert "isCIDR(self)" in rules
    assert any("masked()" in r for r in rules)


def test_required_and_title_handling() -> None:
    schema = _sample_schema()
    assert schema["required"] == ["refField"]
    assert "title" not in schema
    assert "additionalProperties" not in schema


def test_overlays_merge_into_the_named_model() -> None:
    overlay = {"_Inner": {"x-kubernetes-validations": [{"rule": "true", "message": "m"}]}}
    schema = structural_schema(_Sample.model_json_schema(by_alias=True), overlays=overlay)
    assert schema["properties"]["refField"]["x-kubernetes-validations"] == [
        {"rule": "true", "message": "m"}
    ]


def test_int_or_string_union() -> None:
    class Port(CamelModel):
        port: int | str

    node = structural_schema(Port.model_json_schema())["properties"]["port"]
    assert node == {"x-kubernetes-int-or-string": True}


@pytest.mark.parametrize(
    "schema",
    [
        {
            "type": "object",
            "properties": {"x": {"anyOf": [{"type": "string"}, {"type": "boolean"}]}},
        },
        {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/Missing"}}},
        {"type": "string", "contentEncoding": "base64"},
        {"properties": {"x": {"description": "no type"}}},
    ],
)
def test_unsupported_constructs_are_errors(schema: dict[str, Any]) -> None:
    with pytest.raises(SchemaConversionError):
        structural_schema(schema)


# --- the generated CRD is structural ---------------------------------------------------------

FORBIDDEN_KEYS = ("$ref", "$defs", "anyOf", "oneOf", "allOf", "not", "title", "const")


def test_schema_is_structural() -> None:
    for path, node in walk_schema(_root()):
        for key in FORBIDDEN_KEYS:
            assert key not in node, f"{path or '<root>'} keeps {key}"
        assert node.get("additionalProperties") is not False, path
        assert "x-swg-cidr" not in node, path
        typed = (
            "type" in node
            or node.get("x-kubernetes-int-or-string")
            or node.get("x-kubernetes-preserve-unknown-fields")
        )
        assert typed, f"{path or '<root>'} has no type"
        if "properties" in node:
            assert node["type"] == "object", path
        if node.get("type") == "array":
            assert "items" in node, path
        assert "nullable" not in node or node["nullable"] is True, path


def test_no_preserve_unknown_fields_anywhere() -> None:
    """kopf keeps its progress in annotations; every status field is declared."""
    for path, node in walk_schema(_root()):
        assert not node.get("x-kubernetes-preserve-unknown-fields"), path


def test_every_status_field_is_declared() -> None:
    status = _root()["properties"]["status"]

    def declared(model: type[pydantic.BaseModel], node: dict[str, Any], where: str) -> None:
        for name, field in model.model_fields.items():
            alias = field.alias or name
            assert alias in node["properties"], f"{where}.{alias} missing from the CRD"

    declared(status_module.SecureWebGatewayStatus, status, "status")
    declared(status_module.Condition, status["properties"]["conditions"]["items"], "conditions")
    declared(status_module.ComputedSizing, status["properties"]["sizing"], "status.sizing")
    declared(status_module.CancellationStatus, status["properties"]["cancellation"], "cancellation")


def _rules_below(node: dict[str, Any]) -> bool:
    return any("x-kubernetes-validations" in sub for _, sub in walk_schema(node))


def test_everything_a_cel_rule_touches_is_bounded() -> None:
    """The API server refuses a CRD whose rule cost it cannot bound."""
    for path, node in walk_schema(_root()["properties"]["spec"], ".spec"):
        if not _rules_below(node):
            continue
        if node.get("type") == "array":
            assert "maxItems" in node, f"{path}: a rule iterates it, set maxItems"
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, f"{path}: set maxLength"


def test_every_spec_string_is_bounded() -> None:
    for path, node in walk_schema(_root()["properties"]["spec"], ".spec"):
        if node.get("type") == "string":
            assert "maxLength" in node or "enum" in node, path
        if node.get("type") == "array":
            assert "maxItems" in node, path


# --- the rules mirror the models -------------------------------------------------------------


def _models_with_validators() -> set[str]:
    found: set[str] = set()
    for module in (spec_module, status_module, access_module):
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, pydantic.BaseModel)
                and value.__module__ == module.__name__
                and value.__pydantic_decorators__.model_validators
            ):
                found.add(value.__name__)
    return found


def test_every_model_validator_has_a_crd_counterpart() -> None:
    missing = _models_with_validators() - set(SCHEMA_OVERLAYS)
    assert not missing, (
        f"mirror these models' validators in api/crd_rules.py SCHEMA_OVERLAYS: {missing}"
    )


def _spec_schema() -> dict[str, Any]:
    spec: dict[str, Any] = _root()["properties"]["spec"]
    return spec


def test_every_cidr_field_carries_the_cel_rules() -> None:
    raw = str(spec_module.SecureWebGatewaySpec.model_json_schema(by_alias=True))
    cidr_nodes = [
        path
        for path, node in walk_schema(_spec_schema(), ".spec")
        if any(r["rule"] == "isCIDR(self)" for r in node.get("x-kubernetes-validations", []))
    ]
    assert sorted(cidr_nodes) == [
        ".spec.clients.allowedCIDRs[]",
        ".spec.options.bypass.CIDRs[]",
        ".spec.urlFiltering.policies[].sourceCIDRs[]",
    ]
    assert "x-swg-cidr" in raw


def test_service_code_is_immutable() -> None:
    node = _spec_schema()["properties"]["serviceCode"]
    assert {"rule": "self == oldSelf", "message": "serviceCode is immutable"} in node[
        "x-kubernetes-validations"
    ]


def test_uniqueness_is_a_list_type() -> None:
    props = _spec_schema()["properties"]
    policies = props["urlFiltering"]["properties"]["policies"]
    assert policies["x-kubernetes-list-type"] == "map"
    assert policies["x-kubernetes-list-map-keys"] == ["name"]
    assert "name" in policies["items"]["required"]
    assert props["clients"]["properties"]["allowedCIDRs"]["x-kubernetes-list-type"] == "set"
    blocked = props["urlFiltering"]["properties"]["blockedCategories"]
    assert blocked["x-kubernetes-list-type"] == "set"


def test_cross_field_rules_name_their_field() -> None:
    for path, node in walk_schema(_root()):
        for rule in node.get("x-kubernetes-validations", []):
            assert rule["message"], path
            if "fieldPath" in rule:
                target = rule["fieldPath"].lstrip(".")
                assert target in node["properties"], f"{path}: bad fieldPath {target}"
                assert target in rule["message"], path


def test_tenant_name_is_limited_so_the_namespace_is_exactly_swg_name() -> None:
    name = _root()["properties"]["metadata"]["properties"]["name"]
    longest = "a" * name["maxLength"]
    assert naming.tenant_namespace(longest) == f"swg-{longest}"
    assert naming.tenant_label_value(longest) == longest
    assert re.fullmatch(name["pattern"].strip("^$"), "acme-corp")
    assert not re.fullmatch(name["pattern"].strip("^$"), "acme.corp")


# --- defaults agree with the models ----------------------------------------------------------


def _apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """What the API server's structural defaulting does: fill absent properties with their
    default, then recurse into every value."""
    if isinstance(value, dict) and "properties" in schema:
        result = dict(value)
        for name, sub in schema["properties"].items():
            if name not in result and "default" in sub:
                result[name] = copy.deepcopy(sub["default"])
            if name in result:
                result[name] = _apply_defaults(result[name], sub)
        return result
    if isinstance(value, list) and "items" in schema:
        return [_apply_defaults(v, schema["items"]) for v in value]
    return value


def test_crd_defaults_produce_the_models_defaults() -> None:
    defaulted = _apply_defaults(copy.deepcopy(MINIMAL_SPEC), _spec_schema())
    model = parse_spec(MINIMAL_SPEC)
    assert parse_spec(defaulted) == model
    expected = model.model_dump(by_alias=True, exclude_none=True, mode="json")
    assert defaulted == expected


# --- printer columns -------------------------------------------------------------------------


def test_printer_columns() -> None:
    columns = {c["name"]: c for c in _version()["additionalPrinterColumns"]}
    assert list(columns) == [
        "Ready",
        "Phase",
        "Service Code",
        "Endpoints",
        "RPS",
        "Purge At",
        "Age",
        "Proxy",
        "Message",
    ]
    assert columns["Purge At"]["jsonPath"] == ".status.cancellation.purgeAt"
    assert columns["Ready"]["jsonPath"] == '.status.conditions[?(@.type=="Ready")].status'
    spec = _spec_schema()
    for column in columns.values():
        parts = column["jsonPath"].split(".")
        if parts[1] == "spec":
            node = spec
            for part in parts[2:]:
                node = node["properties"][part]
            assert node["type"] == column["type"], column["name"]


def test_crd_identity() -> None:
    crd = custom_resource_definition()
    assert crd["metadata"]["name"] == "securewebgateways.swg.dev"
    assert crd["spec"]["scope"] == "Cluster"
    assert crd["spec"]["names"]["shortNames"] == ["swg"]
    assert _version()["subresources"] == {"status": {}}
    assert _version()["name"] == "v1alpha1"


def test_docs_name_every_spec_field() -> None:
    doc = (REPO_ROOT / "docs" / "api.md").read_text()
    for path, node in walk_schema(_spec_schema()):
        leaf = path.rsplit(".", 1)[-1].removesuffix("[]")
        if leaf and not (node.get("type") == "object" and "properties" in node):
            assert f"{leaf}" in doc, f"docs/api.md does not mention spec{path}"
