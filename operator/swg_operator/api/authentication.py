"""`spec.authentication`: users and groups at the proxy, from the customer's LDAP directory.

Squid's own helpers do the work (`render.squid_auth`): `basic_ldap_auth` checks each user's
name and password against the directory (HTTP Basic proxy authentication), and
`ext_ldap_group_acl` tells whether a user is in a group named by a URL filtering policy
(`urlFiltering.policies[].groups`). The connection is always encrypted: `ldaps://`, or
`ldap://` with StartTLS required; the directory's certificate must be signed by the CA of
`caSecret` when the spec names one (the customer's private CA: then that CA only), else by a CA
of the proxy image's bundle. The bind password stays in the customer's Secret: the proxy pod
mounts it as a file and the helpers read it from there (`-W`); the operator only names the
Secret.

Every value here reaches the helpers as one line of an argument file (never a shell, never
squid.conf). The patterns admit printable ASCII only, as in every config file of the project (a
DN with other characters is written with the LDAP escapes of RFC 4514, e.g. `\\C3\\BC`), and
the filters only the placeholders the helpers expand (`%s` in userFilter, `%u` and `%g` in
groupFilter; no other `%`, and no backslash, which the group helper would take as an escape).
"""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AfterValidator, Field, StringConstraints

from swg_operator.api.base import CamelModel
from swg_operator.api.types import DnsLabel, host_address

# The key of the bind Secret that holds the password (the whole value; a trailing newline is
# dropped by the helpers).
BIND_PASSWORD_KEY: Final = "password"  # noqa: S105 - a key name, not a password
# The key of the directory's CA Secret that holds its PEM certificate(s).
LDAP_CA_KEY: Final = "ca.crt"

LDAP_URL_PATTERN = r"^ldaps?://[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?(:[0-9]{1,5})?$"
# attribute=value pairs: starts with an attribute name and '=', then printable ASCII (as every
# config file of the project: no line break of any kind, no control character).
DN_PATTERN = r"^[A-Za-z][A-Za-z0-9-]*=[ -~]*$"
# Printable ASCII but '%' and backslash ([ -$&-\[\]-~]), or the helpers' placeholders.
USER_FILTER_PATTERN = r"^\((?:[ -$&-\[\]-~]|%s)*\)$"
GROUP_FILTER_PATTERN = r"^\((?:[ -$&-\[\]-~]|%[ug])*\)$"
# A group name as policies list it: Squid passes it to the group helper as one word.
GROUP_NAME_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,62}[A-Za-z0-9])?$"
# basic_ldap_auth passes userFilter to printf with this many copies of the login name.
MAX_USER_PLACEHOLDERS: Final = 16


def _directory_host(url: str) -> str:
    """Refuse a directory on the pod itself or link-local (cloud metadata): the helpers would
    send the bind password and the users' passwords to whatever listens there."""
    host, _, port = url.split("://", 1)[1].partition(":")
    if host in {"localhost", "localhost.localdomain"} or host.endswith(".localhost"):
        raise ValueError(f"{host!r} is the pod itself; name the customer's directory server")
    address = host_address(host)
    if address is not None and (
        address.is_loopback or address.is_link_local or address.is_unspecified
    ):
        raise ValueError(
            f"{host!r} is a loopback, link-local or unspecified address; "
            "name the customer's directory server"
        )
    if port and not 1 <= int(port) <= 65535:
        raise ValueError(f"port {port} is not between 1 and 65535")
    return url


def _balanced(text: str) -> str:
    depth = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            raise ValueError(f"{text!r}: a ')' closes nothing")
    if depth:
        raise ValueError(f"{text!r}: unbalanced parentheses")
    return text


def _user_placeholders(text: str) -> str:
    count = text.count("%s")
    if not 1 <= count <= MAX_USER_PLACEHOLDERS:
        raise ValueError(
            f"{text!r}: must contain %s (the login name) 1 to {MAX_USER_PLACEHOLDERS} times"
        )
    return text


def _group_placeholder(text: str) -> str:
    if "%g" not in text:
        raise ValueError(f"{text!r}: must contain %g (the group name)")
    return text


LdapUrl = Annotated[
    str,
    StringConstraints(pattern=LDAP_URL_PATTERN, max_length=512),
    AfterValidator(_directory_host),
]
DistinguishedName = Annotated[str, StringConstraints(pattern=DN_PATTERN, max_length=1024)]
UserFilter = Annotated[
    str,
    StringConstraints(pattern=USER_FILTER_PATTERN, max_length=1024),
    AfterValidator(_balanced),
    AfterValidator(_user_placeholders),
]
GroupFilter = Annotated[
    str,
    StringConstraints(pattern=GROUP_FILTER_PATTERN, max_length=1024),
    AfterValidator(_balanced),
    AfterValidator(_group_placeholder),
]
GroupName = Annotated[str, StringConstraints(pattern=GROUP_NAME_PATTERN, max_length=64)]


class BindSecretRef(CamelModel):
    """The Secret in the tenant namespace with the bind password under the key `password`."""

    name: DnsLabel
    """Name of the Secret (in the tenant namespace)."""


class LdapCaSecretRef(CamelModel):
    """The Secret in the tenant namespace with the directory's CA certificate(s), PEM, under the
    key `ca.crt`."""

    name: DnsLabel
    """Name of the Secret (in the tenant namespace)."""


class LdapDirectory(CamelModel):
    """The customer's LDAP directory (OpenLDAP, Active Directory, ...)."""

    url: LdapUrl = Field(
        description="ldaps://host[:port] (TLS from the start), or ldap://host[:port] with "
        "StartTLS required; never unencrypted. The server certificate must name the host and "
        "be signed by the CA of caSecret when set, else by a CA of the proxy image's bundle."
    )
    base_dn: DistinguishedName = Field(
        alias="baseDN",
        description="Where users are searched (subtree), e.g. ou=people,dc=example,dc=com.",
    )
    bind_dn: DistinguishedName = Field(
        alias="bindDN",
        description="The service account the proxy binds as to search for users and groups.",
    )
    bind_secret: BindSecretRef = Field(
        description="Secret in the tenant namespace with the bind password under the key "
        "`password`; mounted into the proxy pods as a file, never copied elsewhere."
    )
    ca_secret: LdapCaSecretRef | None = Field(
        default=None,
        description="Secret in the tenant namespace with the CA certificate(s) that signed the "
        "directory's certificate, PEM, under the key `ca.crt` (a private CA of the customer). "
        "When set, the helpers trust these certificates only, not the proxy image's bundle; "
        "mounted into the proxy pods read-only.",
    )
    user_filter: UserFilter = Field(
        default="(uid=%s)",
        description="LDAP filter finding a user by login name: %s is the name the user "
        "typed (escaped). Active Directory: (sAMAccountName=%s).",
    )
    group_base_dn: DistinguishedName | None = Field(
        default=None,
        alias="groupBaseDN",
        description="Where groups are searched (subtree); baseDN when absent.",
    )
    group_filter: GroupFilter = Field(
        default="(&(cn=%g)(member=%u))",
        description="LDAP filter matching a group the user is a member of: %g is the group "
        "name a policy lists, %u the user's DN.",
    )


class Authentication(CamelModel):
    """Who the users are: with a directory, every client request must carry a user name and
    password the directory accepts (407 otherwise), and the logs name the user."""

    ldap: LdapDirectory | None = None
    """The customer's LDAP directory; no authentication when absent."""
