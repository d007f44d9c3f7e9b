"""Proxy authentication against the customer's LDAP directory (spec.authentication.ldap): the
Squid directives and the helpers' argument files.

Squid runs its own helpers through the proxy image's `swg-ldap-helper` (images/proxy), which
reads their arguments from a file of the configuration directory, one argument a line, so that
no directory value (DNs and filters hold spaces, commas, parentheses and `%`) ever meets
squid.conf's or a shell's word splitting. The bind password is not among them: the helpers read
it from the bind Secret's file (`-W`), mounted at LDAP_SECRET_DIR.

The directory's certificate is checked against one file of CA certificates, which
`swg-ldap-helper` gives the helpers as libldap's `LDAPTLS_CACERT` (with `LDAPTLS_REQCERT=demand`):
the `ca.crt` of the spec's `caSecret`, mounted at LDAP_CA_DIR, named after the argument file on
the helper's command line; without `caSecret`, the image's CA bundle.

Fail closed: a helper that cannot reach the directory answers BH (broken), which Squid never
takes for a yes: the credentials are not accepted (407), and a group ACL is left undecided, so
a deny rule that needs it refuses the request (407) and an allow rule that needs it does not
apply (e2e/dataplane/test_authentication.py shows both). The helpers start on demand: Squid
stops for good when helpers it started at startup keep failing, which an outage of the
directory would otherwise cause.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from swg_operator.api.authentication import BIND_PASSWORD_KEY, LDAP_CA_KEY, LdapDirectory
from swg_operator.render.context import CONF_DIR, LDAP_CA_DIR, LDAP_SECRET_DIR

LDAP_HELPER: Final = "/usr/local/bin/swg-ldap-helper"
AUTH_ARGS: Final = "ldap-auth.args"
GROUP_ARGS: Final = "ldap-group.args"
GROUP_HELPER: Final = "swg_ldap_group"  # Squid's external_acl_type name
# Seconds a user's checked password, and a group answer, are kept before the directory is
# asked again; an unreachable directory refuses everyone once they run out.
CREDENTIALS_TTL_SECONDS: Final = 300
GROUP_TTL_SECONDS: Final = 300
NEGATIVE_GROUP_TTL_SECONDS: Final = 60
HELPER_CHILDREN: Final = 10
CONNECT_TIMEOUT_SECONDS: Final = 5
SEARCH_TIME_LIMIT_SECONDS: Final = 10


@dataclass(frozen=True)
class SquidAuth:
    """What squid.conf says about users; None in SquidConfig: no authentication."""

    realm: str
    helper: str
    auth_args: str  # path of the basic_ldap_auth argument file
    group_args: str  # path of the ext_ldap_group_acl argument file
    group_helper: str
    # url_regex of the PAC file as Squid sees a request for it (spec.access.pac); empty: none.
    # Browsers fetch it before they know of the proxy's authentication: served without a user.
    pac_url_regex: str = ""
    # The directory's CA certificates (spec.authentication.ldap.caSecret) as the pod mounts
    # them; empty: the image's CA bundle.
    ca_file: str = ""
    credentials_ttl: int = CREDENTIALS_TTL_SECONDS
    group_ttl: int = GROUP_TTL_SECONDS
    negative_group_ttl: int = NEGATIVE_GROUP_TTL_SECONDS
    children: int = HELPER_CHILDREN


def password_file() -> str:
    return f"{LDAP_SECRET_DIR}/{BIND_PASSWORD_KEY}"


def ca_file(ldap: LdapDirectory) -> str:
    """The file of CA certificates the helpers check the directory against, when the spec
    names a CA Secret ("" : the image's bundle)."""
    return f"{LDAP_CA_DIR}/{LDAP_CA_KEY}" if ldap.ca_secret is not None else ""


def _connection_args(ldap: LdapDirectory) -> list[str]:
    args = ["-H", ldap.url, "-v", "3"]
    if ldap.url.startswith("ldap://"):
        args.append("-Z")  # StartTLS, required: the helper gives up rather than go on in clear
    args += ["-D", ldap.bind_dn, "-W", password_file()]
    # No referrals (they could send the bind password elsewhere); bounded waits.
    args += ["-R", "-c", str(CONNECT_TIMEOUT_SECONDS), "-t", str(SEARCH_TIME_LIMIT_SECONDS)]
    return args


def auth_helper_args(ldap: LdapDirectory) -> list[str]:
    """basic_ldap_auth: find the user with userFilter under baseDN, bind as them."""
    return ["-b", ldap.base_dn, "-s", "sub", "-f", ldap.user_filter, *_connection_args(ldap)]


def group_helper_args(ldap: LdapDirectory) -> list[str]:
    """ext_ldap_group_acl: find the user's DN (userFilter under baseDN), then a group matching
    groupFilter under groupBaseDN. The spec's %g is the helper's own group placeholder; its %u
    is the user's DN once -F finds it."""
    return [
        "-b", ldap.group_base_dn or ldap.base_dn, "-s", "sub", "-f", ldap.group_filter,
        "-B", ldap.base_dn, "-F", ldap.user_filter,
        *_connection_args(ldap),
    ]  # fmt: skip


def args_text(args: list[str]) -> str:
    """One argument a line (the API patterns admit no line break in any value)."""
    for arg in args:
        if "\n" in arg or "\r" in arg or "\0" in arg:
            raise ValueError("a helper argument holds a line break")
    return "".join(f"{arg}\n" for arg in args)


def pac_url_regex(
    *, visible_hostname: str, proxy_port: int, path: str, tls_port: int | None = None
) -> str:
    """Squid turns the origin-form GET of an internal object into
    http://<visible_hostname>:<port><path>, whichever listener it came through, `<port>` being
    its first listening port: the plain one, or the TLS listener's when it is alone
    (`tls_port`). That URL, anchored, as a url_regex."""
    ports = str(proxy_port) if tls_port is None else f"({proxy_port}|{tls_port})"
    return f"^{_escape(f'http://{visible_hostname}:')}{ports}{_escape(path)}$"


def _escape(text: str) -> str:
    """`text` as a POSIX extended regex matching itself."""
    return re.sub(r"([.\\^$|?*+()\[\]{}])", r"\\\1", text)


def squid_auth(ldap: LdapDirectory | None, *, realm: str, pac_url: str = "") -> SquidAuth | None:
    """`pac_url`: `pac_url_regex` when spec.access.pac is on."""
    if ldap is None:
        return None
    return SquidAuth(
        realm=realm,
        pac_url_regex=pac_url,
        helper=LDAP_HELPER,
        auth_args=f"{CONF_DIR}/{AUTH_ARGS}",
        group_args=f"{CONF_DIR}/{GROUP_ARGS}",
        group_helper=GROUP_HELPER,
        ca_file=ca_file(ldap),
    )


def auth_files(ldap: LdapDirectory | None) -> dict[str, str]:
    """The helpers' argument files (none without a directory)."""
    if ldap is None:
        return {}
    return {
        AUTH_ARGS: args_text(auth_helper_args(ldap)),
        GROUP_ARGS: args_text(group_helper_args(ldap)),
    }
