"""Fixtures of more than one unit-test module: the real SMTP relay of the notices' outbox tests
(`devtools.smtp_relay`), with the login of `notices_support`, and the generated HTTPS-inspection
CA of the inspection tests (`inspection_support`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from devtools.processes import free_port
from devtools.smtp_relay import Received, RelayCertificate, SmtpRelay, relay_certificate

from inspection_support import generated_ca
from notices_support import PASSWORD, USER
from swg_operator.reconcile.secrets import GeneratedCa


@pytest.fixture(scope="session")
def relay_cert(tmp_path_factory: pytest.TempPathFactory) -> RelayCertificate:
    """The relay's self-signed certificate for 127.0.0.1, trusted by its client context alone."""
    return relay_certificate(tmp_path_factory.mktemp("relay-tls"))


@pytest.fixture
def relay_port() -> int:
    return free_port()


@pytest.fixture
def relay(relay_cert: RelayCertificate, relay_port: int) -> Iterator[Received]:
    """The relay running on `relay_port` for the test: STARTTLS and AUTH required."""
    with SmtpRelay(relay_cert, relay_port, user=USER, password=PASSWORD) as received:
        yield received


@pytest.fixture
def ca() -> GeneratedCa:
    """The tenant `acme`'s generated inspection CA, one for the whole run (an RSA 3072 key takes
    a moment); `inspection_support.new_ca()` makes another."""
    return generated_ca()
