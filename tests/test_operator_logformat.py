"""`swg-operator run --log-format`: kopf's JSON lines carry the tenant and generation."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from swg_operator.commands.logformat import TenantFields, configure_logging

TENANT_BODY = {"kind": "SecureWebGateway", "metadata": {"name": "acme", "generation": 7}}


@pytest.fixture
def json_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure_logging("json", verbose=False)
    stream = io.StringIO()
    for handler in root.handlers:
        if type(handler).__name__ == "_KopfStreamHandler":
            assert isinstance(handler, logging.StreamHandler)
            handler.setStream(stream)
    yield stream
    root.handlers[:] = saved_handlers
    root.setLevel(saved_level)


def test_json_lines_carry_the_tenant_and_generation_of_the_handled_object(
    json_lines: io.StringIO,
) -> None:
    from kopf._core.actions import execution

    class Cause:
        body: Mapping[str, Any] = TENANT_BODY

    token = execution.cause_var.set(Cause())  # type: ignore[arg-type]
    try:
        logging.getLogger("swg_operator.reconcile").info("Moved %s %s", "SecureWebGateway", "acme")
    finally:
        execution.cause_var.reset(token)
    logging.getLogger("swg_operator.run").info("Started")
    first, second = (json.loads(line) for line in json_lines.getvalue().splitlines())
    assert first["message"] == "Moved SecureWebGateway acme"
    assert (first["tenant"], first["generation"]) == ("acme", 7)
    assert first["severity"] == "info"
    assert "tenant" not in second
    assert second["message"] == "Started"


def test_kopf_object_records_name_the_tenant_from_their_reference() -> None:
    record = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handled", None, None)
    record.k8s_ref = {"kind": "SecureWebGateway", "name": "beta"}
    assert TenantFields(lambda: None).filter(record)
    assert record.tenant == "beta"
    other = logging.LogRecord("kopf.objects", logging.INFO, __file__, 1, "Handled", None, None)
    other.k8s_ref = {"kind": "ConfigMap", "name": "catalogue"}
    TenantFields(lambda: None).filter(other)
    assert not hasattr(other, "tenant")


def test_an_unknown_format_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="--log-format must be one of text, json"):
        configure_logging("xml", verbose=False)
