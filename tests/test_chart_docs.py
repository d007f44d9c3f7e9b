"""charts/*/README.md's values table is what helm-docs generates from values.yaml's `# --`
comments and README.md.gotmpl (`make chart-docs` regenerates it)."""

from __future__ import annotations

import subprocess

from chart_support import CHART, go_tool


def test_the_values_table_is_generated_from_the_values_comments() -> None:
    generated = subprocess.run(
        [
            str(go_tool("helm-docs", "helm-docs")),
            "--chart-search-root",
            str(CHART),
            "--template-files",
            "README.md.gotmpl",
            "--sort-values-order",
            "file",
            "--dry-run",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    committed = (CHART / "README.md").read_text()
    assert '| logFormat | string | `"text"` |' in committed
    assert generated == committed, "charts/swg-operator/README.md is stale: run `make chart-docs`"
