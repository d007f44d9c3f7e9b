"""The TLS listener (spec.access.tls) as rendered: Squid's https_port with the certificate's
Secret mounted, the Service and NetworkPolicy ports, the probes, and what is refused."""

from __future__ import annotations

from typing import Any

import pytest

from render_support import find, minimal_spec, render
from swg_operator.api import OperatorSettings, SpecError, parse_spec
from swg_operator.render import RenderError
from swg_operator.render.access_tls import TLS_PORT_CONFLICT
from swg_operator.render.context import ACCESS_TLS_DIR

HOST = "proxy.example.com"
# The anti-virus pods reach the signature mirror through the proxy (freshclam source, cluster
# networks declared): the plain port stays for them.
MIRROR_SETTINGS = OperatorSettings(cluster_cidrs=("10.244.0.0/16",))


def _tls(tls: dict[str, Any], *, antivirus: bool = False, **overrides: Any) -> dict[str, Any]:
    return minimal_spec(
        access={"hostname": HOST, "tls": {"enabled": True, **tls}},
        antivirus={"enabled": antivirus},
        **overrides,
    )


def _squid_lines(spec: dict[str, Any], **kwargs: Any) -> list[str]:
    return render("t", spec, **kwargs).config_files["squid.conf"].splitlines()


def _starting(lines: list[str], word: str) -> list[str]:
    return [line for line in lines if line.startswith(word + " ")]


def _proxy_pod(spec: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    pod: dict[str, Any] = find(render("t", spec, **kwargs), "Deployment", "proxy")["spec"][
        "template"
    ]["spec"]
    return pod


def test_the_tls_listener_is_an_https_port_with_the_mounted_certificate() -> None:
    lines = _squid_lines(_tls({"port": 8443, "certificateSecret": {"name": "proxy-cert"}}))
    assert _starting(lines, "https_port") == [
        f"https_port 8443 tls-cert={ACCESS_TLS_DIR}/tls.crt tls-key={ACCESS_TLS_DIR}/tls.key "
        "tls-min-version=1.2 name=swg_tls_listener"
    ]
    assert len(_starting(lines, "http_port")) == 1  # plaintext: true keeps the plain port
    pod = _proxy_pod(_tls({"port": 8443, "certificateSecret": {"name": "proxy-cert"}}))
    volume = next(v for v in pod["volumes"] if v["name"] == "access-tls")
    assert volume["secret"] == {"secretName": "proxy-cert", "defaultMode": 0o440}
    squid = pod["containers"][0]
    assert {"name": "access-tls", "mountPath": ACCESS_TLS_DIR, "readOnly": True} in squid[
        "volumeMounts"
    ]
    assert [(p["name"], p["containerPort"]) for p in squid["ports"]] == [
        ("proxy", 3128),
        ("proxy-tls", 8443),
    ]


def test_without_a_secret_the_generated_certificate_is_mounted() -> None:
    volume = next(v for v in _proxy_pod(_tls({}))["volumes"] if v["name"] == "access-tls")
    assert volume["secret"]["secretName"] == "proxy-access-tls"


def test_without_the_tls_listener_nothing_changes() -> None:
    spec = minimal_spec(access={"hostname": HOST, "pac": {"enabled": True}})
    assert not _starting(_squid_lines(spec), "https_port")
    assert all(v["name"] != "access-tls" for v in _proxy_pod(spec)["volumes"])
    ports = find(render("t", spec), "Service", "proxy")["spec"]["ports"]
    assert [p["name"] for p in ports] == ["proxy"]


def test_service_and_network_policy_expose_the_tls_port_to_the_clients_only() -> None:
    manifests = render("t", _tls({"port": 8443}))
    ports = find(manifests, "Service", "proxy")["spec"]["ports"]
    assert [(p["name"], p["port"], p["targetPort"]) for p in ports] == [
        ("proxy", 3128, "proxy"),
        ("proxy-tls", 8443, "proxy-tls"),
    ]
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    assert ingress == [
        {
            "from": [{"ipBlock": {"cidr": "192.0.2.0/24"}}],
            "ports": [{"protocol": "TCP", "port": 3128}, {"protocol": "TCP", "port": 8443}],
        }
    ]


def test_plaintext_false_closes_the_plain_port_and_probes_the_tls_one() -> None:
    spec = _tls({"plaintext": False})
    lines = _squid_lines(spec)
    assert not _starting(lines, "http_port")
    assert len(_starting(lines, "https_port")) == 1
    manifests = render("t", spec)
    ports = find(manifests, "Service", "proxy")["spec"]["ports"]
    assert [p["name"] for p in ports] == ["proxy-tls"]
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    assert [rule["ports"] for rule in ingress] == [[{"protocol": "TCP", "port": 3129}]]
    squid = _proxy_pod(spec)["containers"][0]
    assert [p["name"] for p in squid["ports"]] == ["proxy-tls"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert squid[probe]["tcpSocket"] == {"port": "proxy-tls"}


def test_plaintext_false_keeps_the_plain_port_for_the_antivirus_mirror_only() -> None:
    spec = _tls({"plaintext": False}, antivirus=True)
    lines = _squid_lines(spec, settings=MIRROR_SETTINGS)
    assert len(_starting(lines, "http_port")) == 1
    # Clients are refused on the plain port before any other rule; the anti-virus pods are not.
    rules = _starting(lines, "http_access")
    refusal = "http_access deny !swg_tls_listener !swg_av_src swg_tag_forbidden"
    assert refusal in rules
    assert rules.index(refusal) < rules.index("http_access allow swg_clients swg_tag_default")
    manifests = render("t", spec, settings=MIRROR_SETTINGS)
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    clients = [r for r in ingress if "ipBlock" in r["from"][0]]
    assert [r["ports"] for r in clients] == [[{"protocol": "TCP", "port": 3129}]]
    pods = [r for r in ingress if "podSelector" in r["from"][0]]
    assert [r["ports"] for r in pods] == [[{"protocol": "TCP", "port": 3128}]]


def test_with_inspection_the_tls_listener_refuses_connect_tunnels() -> None:
    spec = _tls({}, options={"httpsInspection": {"enabled": True}})
    assert "http_access deny CONNECT swg_tls_listener swg_tag_forbidden" in _squid_lines(spec)
    without = _squid_lines(_tls({}))
    assert not [line for line in without if "CONNECT swg_tls_listener" in line]


def test_the_tls_port_must_differ_from_the_plain_port() -> None:
    with pytest.raises(RenderError) as raised:
        render("t", _tls({"port": 3128}))
    assert raised.value.reason == TLS_PORT_CONFLICT
    assert "spec.access.tls.port" in str(raised.value)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            _tls({"plaintext": False}, options={"httpsInspection": {"enabled": True}}),
            "access.tls.plaintext: false cannot go with options.httpsInspection.enabled",
        ),
        (minimal_spec(access={"tls": {"enabled": True}}), "access.hostname: required"),
        (minimal_spec(access={"tls": {"plaintext": False}}), "access.tls.plaintext: false"),
        (_tls({"port": 443}), "port"),
        (_tls({"certificateSecret": {"name": "a b"}}), "certificateSecret"),
    ],
)
def test_bad_tls_listener_input_is_refused_naming_the_field(
    spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(SpecError) as raised:
        parse_spec(spec)
    assert message in str(raised.value)
