"""The `SecureWebGateway` CustomResourceDefinition, generated from the API models.

pydantic's JSON schema is not a Kubernetes structural schema as is: it uses `$ref`/`$defs`,
`anyOf [X, null]` for optional fields, `title` on every node, `additionalProperties: false` and
JSON Schema 2020 numeric `exclusiveMinimum`. `structural_schema` converts it; anything it cannot
express structurally is an error here, never a CRD the API server refuses at install time.

The models' cross-field rules (`model_validator`s) are mirrored as CEL rules or list types in
`SCHEMA_OVERLAYS` (`api.crd_rules`), keyed by model name, so the API server refuses at
`kubectl apply` what the operator would otherwise have to mark `Stalled`. Each message names
the field it is about.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any, Final

import yaml

from swg_operator.api.crd_rules import CIDR_RULES, SCHEMA_OVERLAYS, JsonSchema
from swg_operator.api.resource import GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from swg_operator.api.spec import SecureWebGatewaySpec
from swg_operator.api.status import SecureWebGatewayStatus

CIDR_MARKER: Final = "x-swg-cidr"

# A tenant's name is a DNS label short enough that its namespace is exactly `swg-<name>` (a DNS
# label of at most 63 characters) and that it is a valid `swg.dev/tenant` label value as is:
# naming.tenant_namespace then never needs its digest fallback (tests/test_crd.py checks).
MAX_TENANT_NAME: Final = 63 - len("swg-")
TENANT_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"

# Keywords a structural schema may carry, besides the x-kubernetes-* extensions.
_KEPT_KEYWORDS: Final = frozenset(
    {
        "description",
        "type",
        "format",
        "pattern",
        "minLength",
        "maxLength",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minItems",
        "maxItems",
        "minProperties",
        "maxProperties",
        "enum",
        "default",
        "required",
        "properties",
        "items",
        "additionalProperties",
        "nullable",
    }
)
_DROPPED_KEYWORDS: Final = frozenset({"title", "examples", "$defs", "definitions", "$schema"})


class SchemaConversionError(ValueError):
    """The JSON schema uses a construct a Kubernetes structural schema cannot express."""


def structural_schema(
    json_schema: Mapping[str, Any], *, overlays: Mapping[str, JsonSchema] | None = None
) -> JsonSchema:
    """Convert a pydantic JSON schema into a Kubernetes structural schema.

    `$ref`s are inlined from `$defs`; `anyOf [X, null]` becomes X (the API server prunes nulls
    of fields that are not nullable, and pydantic reads an absent field as None); `title` is
    dropped; `additionalProperties: false` is omitted (structural schemas prune unknown fields,
    and `kubectl apply` refuses them); fixed-length tuples become arrays with `items`; `const`
    becomes a one-value `enum`; the `x-swg-cidr` marker becomes CEL rules; object defaults are
    reduced to what their properties' own defaults do not already produce. `overlays` are
    merged into the schema of the model whose title matches.
    """
    defs: Mapping[str, Any] = json_schema.get("$defs", {})
    return _convert(json_schema, defs=defs, overlays=overlays or {}, path="#")


def _convert(
    node: Mapping[str, Any],
    *,
    defs: Mapping[str, Any],
    overlays: Mapping[str, JsonSchema],
    path: str,
) -> JsonSchema:
    node = _inline(node, defs=defs, path=path)
    title = node.get("title")
    out: JsonSchema = {}
    for key, value in node.items():
        if key in _DROPPED_KEYWORDS or key == CIDR_MARKER:
            continue
        if key == "properties":
            out[key] = {
                name: _convert(sub, defs=defs, overlays=overlays, path=f"{path}.{name}")
                for name, sub in value.items()
            }
        elif key == "items":
            out[key] = _convert(value, defs=defs, overlays=overlays, path=f"{path}[]")
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, Mapping):
                out[key] = _convert(value, defs=defs, overlays=overlays, path=f"{path}{{}}")
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            out[key.replace("exclusiveM", "m")] = value
            out[key] = True
        elif key == "uniqueItems":
            if value:
                out["x-kubernetes-list-type"] = "set"
        elif key in _KEPT_KEYWORDS or key.startswith("x-kubernetes-"):
            out[key] = copy.deepcopy(value)
        else:
            raise SchemaConversionError(f"{path}: unsupported JSON schema keyword {key!r}")
    if "type" not in out and "x-kubernetes-int-or-string" not in out:
        if "properties" in out:
            out["type"] = "object"
        elif not out.get("x-kubernetes-preserve-unknown-fields"):
            raise SchemaConversionError(f"{path}: no type")
    if node.get(CIDR_MARKER):
        out.setdefault("x-kubernetes-validations", []).extend(copy.deepcopy(CIDR_RULES))
    if isinstance(title, str) and title in overlays:
        _merge(out, overlays[title])
    if "default" in out:
        default = _minimal_default(out["default"], out)
        if default is None:
            del out["default"]
        else:
            out["default"] = default
    return out


def _inline(node: Mapping[str, Any], *, defs: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """Resolve `$ref`, `anyOf`/`allOf` with one non-null branch, `const` and `prefixItems` into
    one plain node; siblings (description, default) win over the referenced schema."""
    if "$ref" in node:
        ref = node["$ref"]
        prefix = "#/$defs/"
        if not isinstance(ref, str) or not ref.startswith(prefix) or ref[len(prefix) :] not in defs:
            raise SchemaConversionError(f"{path}: unresolvable $ref {ref!r}")
        target = _inline(defs[ref[len(prefix) :]], defs=defs, path=path)
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        return {**target, **siblings}
    for keyword in ("anyOf", "oneOf", "allOf"):
        if keyword not in node:
            continue
        branches = [b for b in node[keyword] if b != {"type": "null"}]
        siblings = {k: v for k, v in node.items() if k != keyword}
        if len(branches) == 1:
            return {**_inline(branches[0], defs=defs, path=path), **siblings}
        types = {_inline(b, defs=defs, path=path).get("type") for b in branches}
        if keyword == "anyOf" and types == {"integer", "string"} and len(branches) == 2:
            return {**siblings, "x-kubernetes-int-or-string": True}
        raise SchemaConversionError(f"{path}: {keyword} of {len(branches)} schemas")
    if "const" in node:
        rest = {k: v for k, v in node.items() if k != "const"}
        return {**rest, "enum": [node["const"]]}
    if "prefixItems" in node:
        items = node["prefixItems"]
        if not items or any(item != items[0] for item in items):
            raise SchemaConversionError(f"{path}: tuple of different item types")
        rest = {k: v for k, v in node.items() if k not in ("prefixItems", "items")}
        return {
            **rest,
            "items": items[0],
            "minItems": node.get("minItems", len(items)),
            "maxItems": node.get("maxItems", len(items)),
        }
    return node


def _merge(target: JsonSchema, overlay: Mapping[str, Any]) -> None:
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        elif isinstance(value, list) and isinstance(target.get(key), list):
            target[key].extend(copy.deepcopy(value))
        else:
            target[key] = copy.deepcopy(value)


def _minimal_default(value: Any, schema: Mapping[str, Any]) -> Any:
    """Drop nulls, and object keys the property's own default reproduces (the API server applies
    defaults recursively), so a model-valued default becomes `{}`."""
    if value is None:
        return None
    if isinstance(value, dict):
        properties: Mapping[str, Any] = schema.get("properties", {})
        kept: dict[str, Any] = {}
        for key, sub in value.items():
            sub_schema = properties.get(key, {})
            sub = _minimal_default(sub, sub_schema)
            if sub is None or ("default" in sub_schema and sub == sub_schema["default"]):
                continue
            kept[key] = sub
        return kept
    if isinstance(value, list):
        item_schema = schema.get("items", {})
        return [_minimal_default(v, item_schema) for v in value if v is not None]
    return value


def _metadata_schema(max_name_length: int) -> JsonSchema:
    """The API server allows a CRD to restrict only `metadata.name` and `generateName`; plain
    schema keywords (not CEL) make its errors name `metadata.name` itself."""
    return {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "maxLength": max_name_length,
                "pattern": TENANT_NAME_PATTERN,
                "description": "The tenant's name: a DNS label; its namespace is swg-<name>.",
            },
        },
    }


def _printer_columns() -> list[JsonSchema]:
    def column(
        name: str, json_path: str, type_: str, description: str, *, wide: bool = False
    ) -> JsonSchema:
        # priority 1: shown by `kubectl get swg -o wide` only.
        return {
            "name": name,
            "type": type_,
            "jsonPath": json_path,
            "description": description,
            **({"priority": 1} if wide else {}),
        }

    return [
        column(
            "Ready",
            '.status.conditions[?(@.type=="Ready")].status',
            "string",
            "The Ready condition.",
        ),
        column("Phase", ".status.phase", "string", "Lifecycle phase."),
        column("Service Code", ".spec.serviceCode", "string", "Contract/service code."),
        column("Endpoints", ".spec.sizing.endpoints", "integer", "Declared client terminals."),
        column("RPS", ".spec.sizing.requestsPerSecond", "integer", "Declared peak requests/s."),
        # A string, not a date: kubectl renders a future date column as "<invalid>".
        column("Purge At", ".status.cancellation.purgeAt", "string", "When the purge is due."),
        column("Age", ".metadata.creationTimestamp", "date", "Time since creation."),
        column(
            "Proxy",
            ".status.proxyEndpoint",
            "string",
            "host:port the customer's clients use.",
            wide=True,
        ),
        column(
            "Message",
            '.status.conditions[?(@.type=="Ready")].message',
            "string",
            "The Ready condition's message.",
            wide=True,
        ),
    ]


def custom_resource_definition(*, max_name_length: int = MAX_TENANT_NAME) -> JsonSchema:
    """The complete `apiextensions.k8s.io/v1` CRD for `SecureWebGateway`."""
    spec = structural_schema(
        SecureWebGatewaySpec.model_json_schema(by_alias=True, mode="validation"),
        overlays=SCHEMA_OVERLAYS,
    )
    status = structural_schema(
        SecureWebGatewayStatus.model_json_schema(by_alias=True, mode="validation"),
        overlays=SCHEMA_OVERLAYS,
    )
    spec["description"] = "What the customer's contract declares."
    status["description"] = "What the operator observed and did."
    root: JsonSchema = {
        "type": "object",
        "description": "One customer's Secure Web Gateway: a forward proxy with URL filtering, "
        "anti-virus scanning and downloadable logs, in its own namespace swg-<name>.",
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": _metadata_schema(max_name_length),
            "spec": spec,
            "status": status,
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/part-of": "swg-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "categories": ["swg"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": root},
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                }
            ],
        },
    }


GENERATED_HEADER: Final = (
    "# Generated by `swg-operator crd` from swg_operator/api; do not edit.\n"
    "# `make crds` regenerates it; tests/test_crd.py fails when it drifts from the models.\n"
)


def crd_yaml(crd: Mapping[str, Any] | None = None) -> str:
    """The CRD as the YAML document committed under crds/."""
    document = custom_resource_definition() if crd is None else crd
    return GENERATED_HEADER + yaml.safe_dump(
        document, sort_keys=True, width=100, allow_unicode=False
    )


def walk_schema(schema: Mapping[str, Any], path: str = "") -> Sequence[tuple[str, JsonSchema]]:
    """Every schema node with its path (`.a.b`, `[]` for items), root first."""
    found: list[tuple[str, JsonSchema]] = [(path, dict(schema))]
    for name, sub in schema.get("properties", {}).items():
        found.extend(walk_schema(sub, f"{path}.{name}"))
    if isinstance(schema.get("items"), Mapping):
        found.extend(walk_schema(schema["items"], f"{path}[]"))
    if isinstance(schema.get("additionalProperties"), Mapping):
        found.extend(walk_schema(schema["additionalProperties"], f"{path}{{}}"))
    return found
