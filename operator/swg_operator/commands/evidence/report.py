"""The evidence as JSON, YAML, Markdown or text for people. Pure."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from swg_operator.commands.evidence.model import Check, Result

FORMATS = ("text", "json", "yaml", "markdown")


def overall(checks: Sequence[Check]) -> Result:
    results = {c.result for c in checks}
    if Result.FAIL in results:
        return Result.FAIL
    return Result.UNKNOWN if Result.UNKNOWN in results else Result.PASS


def document(header: Mapping[str, Any], checks: Sequence[Check], time: str) -> dict[str, Any]:
    return {
        **header,
        "time": time,
        "result": str(overall(checks)),
        "checks": [{**asdict(c), "result": str(c.result)} for c in checks],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(doc: Mapping[str, Any], form: str) -> str:
    if form == "json":
        return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if form == "yaml":
        import yaml

        return str(yaml.safe_dump(dict(doc), sort_keys=False, allow_unicode=True))
    checks = doc["checks"]
    if form == "markdown":
        lines = [
            f"# Evidence for tenant {doc['tenant']}",
            "",
            f"Namespace `{doc['namespace']}`, phase {doc.get('phase') or 'unknown'}, read from "
            f"the {doc['source']} at {doc['time']}. Result: **{doc['result']}**.",
            "",
            "| Control | Field | Checked | Result | Detail |",
            "| --- | --- | --- | --- | --- |",
        ]
        lines += [
            "| "
            + " | ".join(
                _cell(str(c[k])) for k in ("control", "field", "checked", "result", "detail")
            )
            + " |"
            for c in checks
        ]
        return "\n".join(lines) + "\n"
    width = max(len(c["field"]) for c in checks)
    lines = [
        f"Tenant:     {doc['tenant']} (namespace {doc['namespace']}, phase "
        f"{doc.get('phase') or 'unknown'})",
        f"Read from:  the {doc['source']}, {doc['time']}",
        f"Result:     {doc['result']}",
        "",
    ]
    for c in checks:
        lines.append(f"{c['result'].upper():<7} {c['field']:<{width}}  {c['control']}")
        lines.append(f"{'':<7} {'':<{width}}  {c['detail']}")
    return "\n".join(lines) + "\n"
