"""images.pullSecrets (Helm: dataplane.imagePullSecrets) reaches every tenant pod."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from render_support import example_spec, pod_templates, render
from swg_operator.api import OperatorSettings


def test_every_tenant_pod_pulls_with_the_platform_secrets() -> None:
    settings = OperatorSettings.model_validate(
        {"images": {"pullSecrets": ["registry-credentials", "mirror.example"]}}
    )
    name, spec = example_spec("full")
    templates = pod_templates(render(name, spec, settings=settings))
    assert templates
    for template in templates:
        assert template["spec"]["imagePullSecrets"] == [
            {"name": "registry-credentials"},
            {"name": "mirror.example"},
        ]


def test_without_pull_secrets_pods_have_none() -> None:
    name, spec = example_spec("minimal")
    templates = pod_templates(render(name, spec))
    assert templates
    for template in templates:
        assert "imagePullSecrets" not in template["spec"]


def test_a_pull_secret_that_is_no_object_name_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"images\.pullSecrets\.0"):
        OperatorSettings.model_validate({"images": {"pullSecrets": ["Bad Name"]}})
