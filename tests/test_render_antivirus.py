"""Where clamd's signatures come from, as rendered: the freshclam sidecar, its config and its path
to the mirror (the default source), and the platform's signature ConfigMap copied into the tenant
namespace (the configMap source). The data-plane tier runs both
(e2e/dataplane/test_signatures.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from render_support import find, has, minimal_spec, objects_of, render
from swg_operator.api import OperatorSettings
from swg_operator.labels import CONFIG_DIGEST_ANNOTATION
from swg_operator.render import Lifecycle, RenderError, TenantManifests
from swg_operator.render.errors import SIGNATURES_UNAVAILABLE
from swg_operator.render.resources import container_resources
from swg_operator.render.signatures import ENTRYPOINT, mirror_ports
from swg_operator.sizing_plan import CLAMD, FRESHCLAM, SHIPPER, ClamavDatabase

PLATFORM_SIGNATURES = {
    "eicar.ndb": "Custom.Test.EICAR-NDB:0:*:58354f2150254041505b345c505a5835342850\n",
    "README.md": "how the platform team builds these files\n",
}
CONFIG_MAP_SETTINGS = OperatorSettings.model_validate(
    {"antivirus": {"signatureSource": "configMap"}}
)


def antivirus_pod(manifests: TenantManifests) -> dict[str, Any]:
    pod: dict[str, Any] = find(manifests, "Deployment", "antivirus")["spec"]["template"]["spec"]
    return pod


def container(pod: dict[str, Any], name: str) -> dict[str, Any]:
    return next(
        c for c in (*pod.get("initContainers", []), *pod["containers"]) if c["name"] == name
    )


def mirror_rules(manifests: TenantManifests) -> list[dict[str, Any]]:
    policy = find(manifests, "NetworkPolicy", "antivirus")
    return [rule for rule in policy["spec"]["egress"] if rule["ports"][0]["port"] != 5140]


def with_freshclam(**freshclam: Any) -> OperatorSettings:
    return OperatorSettings.model_validate({"antivirus": {"freshclam": freshclam}})


# ------------------------------------------------------------------------------ freshclam
def test_default_source_runs_freshclam_before_the_daemons() -> None:
    manifests = render("acme", minimal_spec())
    assert manifests.sizing.clamav_database is ClamavDatabase.FULL
    pod = antivirus_pod(manifests)
    assert [c["name"] for c in pod["initContainers"]] == [SHIPPER, FRESHCLAM]
    freshclam = container(pod, FRESHCLAM)
    plan = manifests.sizing.antivirus
    assert plan is not None
    assert freshclam["restartPolicy"] == "Always"
    assert freshclam["args"] == ["freshclam"]
    assert freshclam["image"] == container(pod, CLAMD)["image"]
    assert freshclam["resources"] == container_resources(plan.containers[FRESHCLAM])
    # The kubelet starts clamd and c-icap only once this probe has succeeded.
    probe = freshclam["startupProbe"]
    assert probe["exec"]["command"] == ["/usr/local/bin/swg-antivirus-entrypoint", "database-ready"]
    assert probe["periodSeconds"] * probe["failureThreshold"] >= 900
    assert "livenessProbe" not in freshclam
    assert "readinessProbe" not in freshclam
    mounts = {m["name"]: m["mountPath"] for m in freshclam["volumeMounts"]}
    assert mounts == {"config": "/etc/swg/conf", "state": "/var/lib/swg", "tmp": "/tmp"}
    # ... and clamd's entrypoint waits for the public database after a restart too.
    assert container(pod, CLAMD)["env"] == [{"name": "SWG_CLAMAV_REQUIRED", "value": "main daily"}]


def test_freshclam_conf_goes_to_the_antivirus_config_map() -> None:
    manifests = render("acme", minimal_spec())
    conf = manifests.config_files["freshclam.conf"]
    assert "freshclam.conf" in find(manifests, "ConfigMap", "antivirus-config")["data"]
    assert "freshclam.conf" not in find(manifests, "ConfigMap", "proxy-config")["data"]
    lines = [line for line in conf.splitlines() if line and not line.startswith("#")]
    assert "DatabaseDirectory /var/lib/swg/clamav/db" in lines
    assert "DatabaseMirror database.clamav.net" in lines
    assert not any(line.startswith("PrivateMirror") for line in lines)
    assert {"Checks 12", "TestDatabases no", "Bytecode no"} <= set(lines)
    assert "NotifyClamd /etc/swg/conf/clamd.conf" in lines
    clamd = manifests.config_files["clamd.conf"]
    assert "ConcurrentDatabaseReload yes" in clamd.splitlines()
    assert "Bytecode no" in clamd.splitlines()


def test_private_mirrors_replace_the_public_one() -> None:
    settings = with_freshclam(
        privateMirrors=["https://mirror.example.org", "https://mirror2.example.net:8443/clamav"],
        checksPerDay=24,
    )
    manifests = render("acme", minimal_spec(), settings=settings)
    lines = manifests.config_files["freshclam.conf"].splitlines()
    assert [line for line in lines if line.startswith(("PrivateMirror", "DatabaseMirror"))] == [
        "PrivateMirror https://mirror.example.org",
        "PrivateMirror https://mirror2.example.net:8443/clamav",
    ]
    assert "Checks 24" in lines
    # No mirror in the cluster (mirrorCIDRs, mirrorPods): through the tenant's proxy.
    assert "HTTPProxyServer proxy.swg-acme.svc.cluster.local" in lines
    (rule,) = mirror_rules(manifests)
    assert rule == {
        "to": [
            {
                "podSelector": {
                    "matchLabels": find(manifests, "Service", "proxy")["spec"]["selector"]
                }
            }
        ],
        "ports": [{"protocol": "TCP", "port": 3128}],
    }


def test_mirror_egress_defaults_to_the_tenant_proxy_never_the_internet() -> None:
    manifests = render("acme", minimal_spec())
    (rule,) = mirror_rules(manifests)
    assert rule["ports"] == [{"protocol": "TCP", "port": 3128}]
    assert rule["to"] == [
        {"podSelector": {"matchLabels": find(manifests, "Service", "proxy")["spec"]["selector"]}}
    ]
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    antivirus = find(manifests, "Service", "antivirus")["spec"]["selector"]
    assert {
        "from": [{"podSelector": {"matchLabels": antivirus}}],
        "ports": rule["ports"],
    } in ingress


def test_mirror_pods_and_networks_narrow_the_egress() -> None:
    settings = with_freshclam(
        privateMirrors=["http://clamav-mirror.swg-system.svc"],
        mirrorPods={"namespace": "swg-system", "podLabel": "app=clamav-mirror"},
        mirrorCidrs=["10.96.0.10/32"],
        mirrorPorts=[8080],
    )
    manifests = render("acme", minimal_spec(), settings=settings)
    # A mirror in the cluster is reached directly, not through the proxy.
    assert "HTTPProxy" not in manifests.config_files["freshclam.conf"]
    assert "swg_av_src" not in manifests.config_files["squid.conf"]
    ingress = find(manifests, "NetworkPolicy", "proxy-ingress-clients")["spec"]["ingress"]
    assert len(ingress) == 1  # the clients only
    (rule,) = mirror_rules(manifests)
    assert rule["to"] == [
        {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "swg-system"}},
            "podSelector": {"matchLabels": {"app": "clamav-mirror"}},
        },
        {"ipBlock": {"cidr": "10.96.0.10/32"}},
    ]
    assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]


@pytest.mark.parametrize("lifecycle", [Lifecycle.SUSPENDED, Lifecycle.CANCELLED])
def test_a_tenant_not_served_keeps_no_mirror_path(lifecycle: Lifecycle) -> None:
    assert mirror_rules(render("acme", minimal_spec(), lifecycle=lifecycle)) == []


def test_mirror_ports_follow_the_urls() -> None:
    assert mirror_ports(with_freshclam().antivirus.freshclam) == (443,)
    assert mirror_ports(
        with_freshclam(
            privateMirrors=["https://a.test", "http://b.test:8080/x"], mirrorCidrs=["198.18.0.0/15"]
        ).antivirus.freshclam
    ) == (443, 8080)


@pytest.mark.parametrize(
    "freshclam",
    [
        {"databaseMirror": "database.clamav.net\nPrivateMirror evil.test"},
        {"databaseMirror": "a b"},
        {"privateMirrors": ["http://mirror.test/x y"]},
        {"privateMirrors": ["ftp://mirror.test"]},
        {"privateMirrors": ['http://mirror.test/"']},
        {"checksPerDay": 0},
        {"mirrorPods": {"namespace": "swg-system", "podLabel": "app"}},
    ],
)
def test_settings_that_could_break_freshclam_conf_are_refused(freshclam: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        with_freshclam(**freshclam)


# ------------------------------------------------------------------------------ configMap
def test_config_map_source_copies_the_platform_signature_files() -> None:
    manifests = render(
        "acme",
        minimal_spec(),
        settings=CONFIG_MAP_SETTINGS,
        platform_signatures=PLATFORM_SIGNATURES,
    )
    assert manifests.sizing.clamav_database is ClamavDatabase.CUSTOM
    copy = find(manifests, "ConfigMap", "antivirus-platform-signatures")
    assert copy["metadata"]["namespace"] == "swg-acme"
    assert copy["data"] == {"eicar.ndb": PLATFORM_SIGNATURES["eicar.ndb"]}  # no README
    pod = antivirus_pod(manifests)
    (config,) = [v for v in pod["volumes"] if v["name"] == "config"]
    assert config["projected"]["sources"][-1] == {
        "configMap": {
            "name": "antivirus-platform-signatures",
            "optional": False,
            "items": [{"key": "eicar.ndb", "path": "platform-eicar.ndb"}],
        }
    }
    assert [c["name"] for c in pod["initContainers"]] == [SHIPPER]
    assert "env" not in container(pod, CLAMD)
    assert "freshclam.conf" not in manifests.config_files
    assert mirror_rules(manifests) == []
    # Applied before the Deployment that mounts it.
    kinds = [(o["kind"], o["metadata"]["name"]) for o in manifests.objects]
    assert kinds.index(("ConfigMap", "antivirus-platform-signatures")) < kinds.index(
        ("Deployment", "antivirus")
    )


def test_config_map_source_has_the_custom_database_memory_floor() -> None:
    freshclam = render("acme", minimal_spec())
    platform = render(
        "acme",
        minimal_spec(),
        settings=CONFIG_MAP_SETTINGS,
        platform_signatures=PLATFORM_SIGNATURES,
    )
    assert freshclam.sizing.antivirus is not None
    assert platform.sizing.antivirus is not None
    full_clamd = freshclam.sizing.antivirus.containers[CLAMD]
    custom_clamd = platform.sizing.antivirus.containers[CLAMD]
    assert custom_clamd.memory_request < full_clamd.memory_request
    assert FRESHCLAM not in platform.sizing.antivirus.containers
    assert platform.sizing.quota.requests_memory < freshclam.sizing.quota.requests_memory


def test_a_new_platform_signature_set_rolls_the_antivirus_pods() -> None:
    def digest(signatures: dict[str, str]) -> str:
        manifests = render(
            "acme", minimal_spec(), settings=CONFIG_MAP_SETTINGS, platform_signatures=signatures
        )
        deployment = find(manifests, "Deployment", "antivirus")
        return str(
            deployment["spec"]["template"]["metadata"]["annotations"][CONFIG_DIGEST_ANNOTATION]
        )

    first = digest(PLATFORM_SIGNATURES)
    assert digest(dict(PLATFORM_SIGNATURES)) == first
    assert digest({**PLATFORM_SIGNATURES, "eicar.ndb": "Other.Sig:0:*:00ff\n"}) != first
    assert digest({**PLATFORM_SIGNATURES, "README.md": "edited\n"}) == first


@pytest.mark.parametrize("platform", [None, {}, {"README.md": "no signature here\n"}])
def test_config_map_source_without_signature_files_is_a_render_error(
    platform: dict[str, str] | None,
) -> None:
    with pytest.raises(RenderError) as raised:
        render("acme", minimal_spec(), settings=CONFIG_MAP_SETTINGS, platform_signatures=platform)
    assert raised.value.reason == SIGNATURES_UNAVAILABLE
    (problem,) = raised.value.problems
    assert problem.startswith("spec.antivirus: ")
    assert "swg-system/swg-clamav-signatures" in problem


def test_without_signature_files_a_cancelled_or_scan_free_tenant_still_renders() -> None:
    cancelled = render(
        "acme", minimal_spec(), settings=CONFIG_MAP_SETTINGS, lifecycle=Lifecycle.CANCELLED
    )
    assert not has(cancelled, "ConfigMap", "antivirus-platform-signatures")
    no_scan = render(
        "acme", minimal_spec(antivirus={"enabled": False}), settings=CONFIG_MAP_SETTINGS
    )
    assert "antivirus" not in [d["metadata"]["name"] for d in objects_of(no_scan, "Deployment")]
    assert not has(no_scan, "ConfigMap", "antivirus-platform-signatures")


def test_freshclam_source_ignores_platform_signatures() -> None:
    manifests = render("acme", minimal_spec(), platform_signatures=PLATFORM_SIGNATURES)
    assert not has(manifests, "ConfigMap", "antivirus-platform-signatures")


def test_c_icap_is_ready_only_with_its_scan_engine() -> None:
    """A c-icap that answers on its port may have no scan engine (started while clamd was not
    answering) and then passes everything: its probes ask the entrypoint, which checks that
    the service announces an engine, not just that the port is open."""
    c_icap = container(antivirus_pod(render("acme", minimal_spec())), "c-icap")
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert c_icap[probe]["exec"]["command"] == [ENTRYPOINT, "c-icap-ready"], probe
