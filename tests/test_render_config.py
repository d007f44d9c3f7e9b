"""Where a tenant's config files go: to the ConfigMaps of the workload that reads them, split
under the size budget, with a digest that rolls the pods when they change."""

from __future__ import annotations

import pytest

from render_support import (
    minimal_tenant,
    render_example,
)
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.naming import Component
from swg_operator.render.configmaps import (
    CONFIG_MAP_BUDGET_BYTES,
    ConfigTooLargeError,
    config_digest,
    workload_config,
)
from swg_operator.render.workloads import (
    proxy_deployment,
)


@pytest.mark.parametrize("example", ["minimal", "full"])
def test_config_files_go_to_the_workload_that_reads_them(example: str) -> None:
    manifests = render_example(example)
    by_component = manifests.config_by_component
    assert "squid.conf" in by_component[Component.PROXY]
    assert "c-icap.conf" in by_component[Component.ANTIVIRUS]
    for component, files in by_component.items():
        carried: dict[str, str] = {}
        for config_map in manifests.objects:
            if config_map["kind"] == "ConfigMap" and config_map["metadata"]["name"].startswith(
                f"{component.value}-config"
            ):
                carried.update(config_map["data"])
        assert carried == dict(files), component


def test_a_config_change_rolls_the_pods() -> None:
    tenant = minimal_tenant()

    def digest_of(text: str) -> str:
        config = workload_config(tenant, Component.PROXY, {"squid.conf": text})
        template = proxy_deployment(tenant, config)["spec"]["template"]
        return str(template["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION])

    assert digest_of("http_port 3128\n") == digest_of("http_port 3128\n")
    assert digest_of("http_port 3128\n") != digest_of("http_port 3129\n")
    assert config_digest({"a": "1"}, references=["secret/x"]) != config_digest({"a": "1"})


def test_large_lists_are_split_over_several_config_maps() -> None:
    tenant = minimal_tenant()
    chunk = "x" * (CONFIG_MAP_BUDGET_BYTES // 3)
    files = {"squid.conf": "http_port 3128\n", "a.list": chunk, "b.list": chunk, "c.list": chunk}
    config = workload_config(tenant, Component.PROXY, files)
    assert config.names == ("proxy-config", "proxy-config-2")
    merged: dict[str, str] = {}
    for config_map in config.config_maps:
        merged.update(config_map["data"])
    assert merged == files
    volume = next(
        v
        for v in proxy_deployment(tenant, config)["spec"]["template"]["spec"]["volumes"]
        if v["name"] == "config"
    )
    assert [s["configMap"]["name"] for s in volume["projected"]["sources"]] == list(config.names)

    with pytest.raises(ConfigTooLargeError):
        workload_config(tenant, Component.PROXY, {"huge.list": "x" * (CONFIG_MAP_BUDGET_BYTES + 1)})
