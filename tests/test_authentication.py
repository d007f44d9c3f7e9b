"""spec.authentication.ldap: the model's validation, the rendered Squid directives and helper
argument files, the proxy pod's Secret mount, and the bind Secret check of the reconcile.
Squid's behaviour with a real directory is in e2e/dataplane/test_authentication.py."""

from __future__ import annotations

import re
from typing import Any

import pytest

from fakes import make_available, watch_cache
from inspection_support import NS, condition, later, run, secret_reads, setup, tenant
from render_support import catalogue, dataplane_files, find, minimal_spec, render
from swg_operator.api import OperatorSettings, SpecError, parse_spec
from swg_operator.api.spec import SecureWebGatewaySpec
from swg_operator.reconcile.references import (
    LDAP_BIND_SECRET_INVALID,
    LDAP_BIND_SECRET_NOT_FOUND,
)
from swg_operator.render.squid_auth import args_text

LDAP: dict[str, Any] = {
    "url": "ldaps://ldap.example-corp.example:636",
    "baseDN": "ou=People,dc=example-corp,dc=example",
    "bindDN": "cn=SWG Proxy,ou=Service Accounts,dc=example-corp,dc=example",
    "bindSecret": {"name": "ldap-bind"},
}
GROUP_POLICY = {"name": "staff", "groups": ["staff"], "deny": {"domains": ["casino.test"]}}


def _spec(ldap: dict[str, Any] | None = None, **overrides: Any) -> SecureWebGatewaySpec:
    extra: dict[str, Any] = {"authentication": {"ldap": ldap}} if ldap is not None else {}
    return SecureWebGatewaySpec.model_validate(minimal_spec(**extra, **overrides))


def _error(ldap: dict[str, Any] | None = None, **overrides: Any) -> str:
    """The problems `parse_spec` reports, one a line, each naming its field."""
    extra: dict[str, Any] = {"authentication": {"ldap": ldap}} if ldap is not None else {}
    with pytest.raises(SpecError) as info:
        parse_spec(minimal_spec(**extra, **overrides))
    return "\n".join(info.value.problems)


def _files(spec: SecureWebGatewaySpec) -> dict[str, str]:
    return dataplane_files(spec, catalogue=catalogue(), settings=OperatorSettings())


# --- the model -------------------------------------------------------------------------------


def test_defaults() -> None:
    ldap = _spec(LDAP).authentication.ldap
    assert ldap is not None
    assert (ldap.user_filter, ldap.group_filter) == ("(uid=%s)", "(&(cn=%g)(member=%u))")
    assert ldap.group_base_dn is None
    assert _spec().authentication.ldap is None


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("url", "http://ldap.example", "url"),
        ("url", "ldap://127.0.0.1", "loopback"),
        ("url", "ldaps://localhost:636", "the pod itself"),
        ("url", "ldaps://169.254.169.254", "link-local"),
        ("url", "ldaps://ldap.example:70000", "port 70000"),
        ("baseDN", "People", "baseDN"),
        ("bindDN", "cn=proxy\ndc=example", "bindDN"),
        ("userFilter", "(uid=alice)", "must contain %s"),
        ("userFilter", "(uid=%d)", "userFilter"),
        ("userFilter", "(uid=%s)(", "userFilter"),
        ("userFilter", "((uid=%s)", "unbalanced"),
        ("userFilter", "(uid=%s\\2a)", "userFilter"),
        ("groupFilter", "(cn=staff)", "must contain %g"),
        ("groupFilter", "(&(cn=%g)(member=%s))", "groupFilter"),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: str, expected: str) -> None:
    message = _error({**LDAP, field: value})
    assert expected in message
    assert field in message


LINE_BREAKS = ("\n", "\r", "\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x00", "\t", "é")


@pytest.mark.parametrize("hostile", LINE_BREAKS, ids=repr)
@pytest.mark.parametrize(
    "field", ["url", "baseDN", "bindDN", "userFilter", "groupBaseDN", "groupFilter"]
)
def test_no_line_break_or_non_ascii_character_reaches_an_argument_file(
    field: str, hostile: str
) -> None:
    valid = {**LDAP, "groupBaseDN": "ou=Groups,dc=x", "userFilter": "(uid=%s)"}
    value = valid.get(field, "(&(cn=%g)(member=%u))")
    for spelled in (value[:4] + hostile + value[4:], value[:-1] + hostile + value[-1:]):
        message = _error({**valid, field: spelled})
        assert f"spec.authentication.ldap.{field}" in message


@pytest.mark.parametrize("hostile", [*LINE_BREAKS, " ", "#", '"', "'", "%"], ids=repr)
def test_no_hostile_character_in_a_group_name(hostile: str) -> None:
    policy = {**GROUP_POLICY, "groups": [f"sta{hostile}ff"]}
    message = _error(LDAP, urlFiltering={"policies": [policy]})
    assert "spec.urlFiltering.policies[0].groups[0]" in message


def test_group_policies_need_a_directory() -> None:
    message = _error(urlFiltering={"policies": [GROUP_POLICY]})
    assert "urlFiltering.policies[].groups" in message
    assert "authentication.ldap" in message
    assert _spec(LDAP, urlFiltering={"policies": [GROUP_POLICY]})


def test_a_policy_names_networks_groups_or_both() -> None:
    message = _error(LDAP, urlFiltering={"policies": [{"name": "nobody"}]})
    assert "urlFiltering.policies[nobody]: list sourceCIDRs, groups or both" in message
    duplicate = {**GROUP_POLICY, "groups": ["staff", "staff"]}
    assert "duplicate" in _error(LDAP, urlFiltering={"policies": [duplicate]})
    assert "groups" in _error(
        LDAP, urlFiltering={"policies": [{**GROUP_POLICY, "groups": ["a b"]}]}
    )


# --- the rendered configuration ----------------------------------------------------------------


def test_squid_asks_every_client_for_a_user_before_any_filtering_rule() -> None:
    files = _files(_spec(LDAP, urlFiltering={"policies": [GROUP_POLICY]}))
    conf = files["squid.conf"]
    assert "auth_param basic program /usr/local/bin/swg-ldap-helper auth " in conf
    assert "/etc/swg/conf/ldap-auth.args" in conf
    assert "acl swg_auth proxy_auth REQUIRED" in conf
    assert "acl swg_p0_grp external swg_ldap_group staff\n" in conf
    access = [line for line in conf.splitlines() if line.startswith("http_access")]
    auth = access.index("http_access deny !swg_auth")
    # The group after the policy's list: the directory is asked only about what the list names.
    # The rule comes twice: first with the block page's other language (render.block_page).
    deny = "http_access deny swg_p0_deny swg_p0_grp swg_p0_tag_deny"
    assert access[auth + 1 : auth + 3] == [f"{deny} swg_page_ja", deny]
    assert access[-2:] == ["http_access allow swg_clients swg_tag_default", "http_access deny all"]
    # Helpers start on demand: a directory outage must never stop Squid (it does when helpers
    # started at startup keep failing).
    assert "startup=0" in conf
    assert "children-startup=0" in conf


def test_the_pac_file_is_served_without_a_user() -> None:
    access = {"hostname": "proxy.example-corp.example", "pac": {"enabled": True}}
    conf = _files(_spec(LDAP, access=access))["squid.conf"]
    regex = r"^http://swg-0000001\.swg:3128/squid-internal-static/icons/proxy\.pac$"
    assert f"acl swg_pac_file url_regex {regex}\n" in conf
    access_lines = [line for line in conf.splitlines() if line.startswith("http_access")]
    pac = access_lines.index("http_access allow swg_pac_file")
    assert access_lines[pac + 1] == "http_access deny !swg_auth"
    assert "swg_pac_file" not in _files(_spec(LDAP))["squid.conf"]
    assert "swg_pac_file" not in _files(_spec(access=access))["squid.conf"]


@pytest.mark.parametrize("plaintext", [True, False], ids=["beside-plain", "alone"])
def test_the_pac_file_is_served_without_a_user_through_the_tls_listener_too(
    plaintext: bool,
) -> None:
    """Squid names an internal object by its first listening port, whichever listener the
    request came through: the plain one, or the TLS listener's when it is alone."""
    access = {
        "hostname": "proxy.example-corp.example",
        "tls": {"enabled": True, "port": 3129, "plaintext": plaintext},
        "pac": {"enabled": True},
    }
    conf = _files(_spec(LDAP, access=access))["squid.conf"]
    regex = r"^http://swg-0000001\.swg:(3128|3129)/squid-internal-static/icons/proxy\.pac$"
    assert f"acl swg_pac_file url_regex {regex}\n" in conf
    pattern = re.compile(regex)
    for port in (3128, 3129):
        assert pattern.match(f"http://swg-0000001.swg:{port}/squid-internal-static/icons/proxy.pac")
    assert not pattern.match("http://swg-0000001.swg:3130/squid-internal-static/icons/proxy.pac")
    assert not pattern.match("http://swg-0000001.swg:3129/squid-internal-static/icons/proxyXpac")


def test_helper_arguments_one_a_line_with_the_password_as_a_file() -> None:
    files = _files(_spec({**LDAP, "url": "ldap://ldap.example-corp.example"}))
    auth = files["ldap-auth.args"].splitlines()
    assert auth[auth.index("-b") + 1] == LDAP["baseDN"]
    assert auth[auth.index("-D") + 1] == LDAP["bindDN"]  # spaces kept in one argument
    assert auth[auth.index("-W") + 1] == "/etc/swg/ldap/password"
    assert auth[auth.index("-f") + 1] == "(uid=%s)"
    assert "-Z" in auth  # ldap:// always with StartTLS
    group = files["ldap-group.args"].splitlines()
    assert group[group.index("-b") + 1] == LDAP["baseDN"]  # groupBaseDN absent
    assert group[group.index("-F") + 1] == "(uid=%s)"
    assert group[group.index("-f") + 1] == "(&(cn=%g)(member=%u))"
    ldaps = _files(_spec(LDAP))["ldap-auth.args"].splitlines()
    assert "-Z" not in ldaps


def test_no_directory_no_authentication() -> None:
    files = _files(_spec())
    assert "auth_param" not in files["squid.conf"]
    assert not [name for name in files if name.startswith("ldap-")]


def test_args_text_refuses_a_line_break() -> None:
    with pytest.raises(ValueError, match="line break"):
        args_text(["-D", "cn=a\n-w"])


def test_the_proxy_mounts_the_password_key_only_and_no_object_holds_it() -> None:
    manifests = render("acme", minimal_spec(authentication={"ldap": LDAP}))
    pod = find(manifests, "Deployment", "proxy")["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"] if v["name"] == "ldap-bind")
    assert volume["secret"] == {
        "secretName": "ldap-bind",
        "defaultMode": 0o440,
        "items": [{"key": "password", "path": "password"}],
    }
    squid = next(c for c in pod["containers"] if c["name"] == "squid")
    mount = next(m for m in squid["volumeMounts"] if m["name"] == "ldap-bind")
    assert mount == {"name": "ldap-bind", "mountPath": "/etc/swg/ldap", "readOnly": True}
    assert not [o for o in manifests.objects if o["kind"] == "Secret"]


# --- the bind Secret check ---------------------------------------------------------------------


def test_a_missing_bind_secret_stalls_then_a_missing_key_then_fine() -> None:
    kube, ctx = setup(tenant(authentication={"ldap": LDAP}))
    run(kube, ctx)
    make_available(kube)
    status = run(kube, ctx)
    stalled = condition(status, "Stalled")
    assert stalled["reason"] == LDAP_BIND_SECRET_NOT_FOUND
    assert "spec.authentication.ldap.bindSecret.name" in stalled["message"]
    assert f"{NS}/ldap-bind" in stalled["message"]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "ldap-bind", "namespace": NS},
        "data": {"pass": "c2VjcmV0"},
    }
    kube.put(secret)
    status = run(kube, ctx)
    assert condition(status, "Stalled")["reason"] == LDAP_BIND_SECRET_INVALID
    assert "c2VjcmV0" not in str(status)
    kube.put({**secret, "data": {"password": "c2VjcmV0"}})
    status = run(kube, ctx)
    assert status["phase"] == "Ready"
    assert "c2VjcmV0" not in str(status)


def test_an_unchanged_tenant_with_a_sound_bind_secret_reads_it_no_more() -> None:
    """Secrets are not watched: a bind Secret found sound is remembered while the spec stays the
    same, and read again after the recheck interval (a Secret deleted by hand is seen then)."""
    kube, ctx = setup(tenant(authentication={"ldap": LDAP}))
    ctx.cache = watch_cache(kube, "swg-system")
    kube.put(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "ldap-bind", "namespace": NS},
            "data": {"password": "c2VjcmV0"},
        }
    )
    run(kube, ctx)
    make_available(kube)
    assert run(kube, ctx)["phase"] == "Ready"
    run(kube, ctx)  # once more: the once-per-process lookups are behind
    kube.reads.clear()
    kube.writes.clear()
    for _ in range(3):
        assert run(kube, ctx)["phase"] == "Ready"
    assert kube.reads == []
    assert kube.writes == []
    del kube.objects[("v1", "Secret", NS, "ldap-bind")]  # deleted by hand
    later(ctx)
    assert condition(run(kube, ctx), "Stalled")["reason"] == LDAP_BIND_SECRET_NOT_FOUND
    assert secret_reads(kube) == [("get", "Secret", NS)]
