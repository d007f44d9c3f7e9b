"""A stand-in for a customer's LDAP directory: a real OpenLDAP ``slapd`` (the host's Debian
package, not the proxy image's rootfs) in a stack's network namespace, listening on loopback
there with StartTLS (``ldap://``) and LDAPS, its certificate signed by the stack's test CA (the
only CA in the proxy's bundle, as a public or the customer's CA would be).

The directory refuses every operation on an unencrypted connection (``security ssf=128``), so a
helper that forgot TLS would get nothing. It holds a service account the proxy binds as and
users: ``alice`` in group ``research``, ``bob`` and ``erin`` in ``restricted``, ``carol``,
``dave`` and ``frank`` in none.

`write_directory` and `slapd_argv` take paths alone: the node tier's directory
(`e2e.node.directory`) is the same slapd with the same entries, on the test origin's address.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from e2e.dataplane import listener
from e2e.dataplane.daemons import DaemonSpec, tcp_open
from e2e.dataplane.stack import DEFAULT_TEST_NAMES, DataplaneStack

if TYPE_CHECKING:
    from e2e.dataplane.conftest import StartDataplane

LDAP_HOST: Final = "ldap.test"
LDAP_ADDRESS: Final = "127.0.0.1"
LDAP_PORT: Final = 3389  # StartTLS
LDAPS_PORT: Final = 3636
SUFFIX: Final = "dc=swg,dc=test"
PEOPLE: Final = f"ou=people,{SUFFIX}"
GROUPS: Final = f"ou=groups,{SUFFIX}"
BIND_DN: Final = f"cn=proxy,ou=services,{SUFFIX}"
BIND_PASSWORD: Final = "bind secret with spaces"
# login -> (password, groups)
USERS: Final = {
    "alice": ("alice-pw", ("research",)),
    "bob": ("bob-pw", ("restricted",)),
    "carol": ("carol-pw", ()),
    "dave": ("dave-pw", ()),  # never used before the directory is stopped
    "erin": ("erin-pw", ("restricted",)),  # her group never asked before it is stopped
    "frank": ("frank-pw", ()),  # first seen while the directory shows an untrusted certificate
}
NAME: Final = "slapd"
POD: Final = "ldap"

_SCHEMAS = ("core", "cosine", "inetorgperson")


def _ldif() -> str:
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: swg\no: swg test\n",
        f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        f"dn: ou=services,{SUFFIX}\nobjectClass: organizationalUnit\nou: services\n",
        f"dn: {BIND_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: proxy\n"
        f"sn: proxy\nuserPassword: {BIND_PASSWORD}\n",
    ]
    for login, (password, _) in USERS.items():
        entries.append(
            f"dn: uid={login},{PEOPLE}\nobjectClass: inetOrgPerson\nuid: {login}\ncn: {login}\n"
            f"sn: {login}\nuserPassword: {password}\n"
        )
    for group in sorted({g for _, groups in USERS.values() for g in groups}):
        members = [login for login, (_, groups) in USERS.items() if group in groups]
        entries.append(
            f"dn: cn={group},{GROUPS}\nobjectClass: groupOfNames\ncn: {group}\n"
            + "".join(f"member: uid={m},{PEOPLE}\n" for m in members)
        )
    return "\n".join(entries)


def write_directory(root: Path, cert: Path, key: Path) -> Path:
    """slapd's configuration and database under ``root``, serving ``cert`` and ``key`` (TLS
    only: ``security ssf=128``); returns the slapd.conf."""
    if shutil.which("slapd") is None or not Path("/usr/sbin/slapadd").exists():
        raise RuntimeError("slapd is missing: run `make deps` (Debian packages slapd ldap-utils)")
    (root / "db").mkdir(parents=True, exist_ok=True)
    schemas = "".join(f"include /etc/ldap/schema/{name}.schema\n" for name in _SCHEMAS)
    conf = root / "slapd.conf"
    conf.write_text(
        f"{schemas}"
        "modulepath /usr/lib/ldap\nmoduleload back_mdb\n"
        f"pidfile {root}/slapd.pid\n"
        f"TLSCertificateFile {cert}\n"
        f"TLSCertificateKeyFile {key}\n"
        "security ssf=128\n"
        "database mdb\n"
        f'suffix "{SUFFIX}"\n'
        f"directory {root}/db\n"
        "maxsize 16777216\n"
        "access to attrs=userPassword by anonymous auth by * none\n"
        f'access to * by dn.exact="{BIND_DN}" read by self read by * none\n'
    )
    ldif = root / "data.ldif"
    ldif.write_text(_ldif())
    subprocess.run(
        ["/usr/sbin/slapadd", "-q", "-f", str(conf), "-l", str(ldif)],
        check=True,
        capture_output=True,
    )
    return conf


def slapd_argv(conf: Path, urls: str) -> tuple[str, ...]:
    """slapd in the foreground with ``conf``, listening on ``urls`` (space-separated)."""
    return (shutil.which("slapd") or "slapd", "-d", "0", "-f", str(conf), "-h", urls)


def prepare_directory(stack: DataplaneStack) -> Path:
    """slapd's configuration and database in the stack's work directory; the bind password in
    the stack's bind Secret directory (as the Secret's ``password`` key is mounted)."""
    conf = write_directory(stack.workdir / "directory", stack.pki.origin_cert, stack.pki.origin_key)
    password = stack.ldap_secret / "password"
    password.write_text(BIND_PASSWORD + "\n")  # as `kubectl create secret --from-file` may
    password.chmod(0o644)
    return conf


def untrusted_conf(stack: DataplaneStack, conf: Path) -> Path:
    """``conf`` with a self-signed certificate for the directory's name (no CA of the proxy's
    bundle signed it)."""
    root = conf.parent
    cert, key = root / "untrusted.crt", root / "untrusted.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={LDAP_HOST}", "-addext", f"subjectAltName=DNS:{LDAP_HOST}",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return conf_with_certificate(stack, conf, cert, key, name="untrusted")


def conf_with_certificate(
    stack: DataplaneStack, conf: Path, cert: Path, key: Path, *, name: str
) -> Path:
    """``conf`` (as `prepare_directory` wrote it) serving ``cert`` and ``key`` instead."""
    text = conf.read_text()
    text = text.replace(str(stack.pki.origin_cert), str(cert))
    text = text.replace(str(stack.pki.origin_key), str(key))
    other = conf.parent / f"slapd-{name}.conf"
    other.write_text(text)
    return other


def start_directory(stack: DataplaneStack, conf: Path) -> None:
    urls = f"ldap://{LDAP_ADDRESS}:{LDAP_PORT}/ ldaps://{LDAP_ADDRESS}:{LDAPS_PORT}/"
    stack.start_extra_daemon(
        DaemonSpec(NAME, POD, slapd_argv(conf, urls), host=True),
        lambda: tcp_open((LDAP_ADDRESS, LDAP_PORT)) and tcp_open((LDAP_ADDRESS, LDAPS_PORT)),
    )


def stop_directory(stack: DataplaneStack) -> None:
    if NAME in stack.daemons:
        stack.stop_daemon(NAME, timeout=10)


def known_user(login: str) -> str:
    """``login:password`` of a user of the directory (curl's --proxy-user)."""
    return f"{login}:{USERS[login][0]}"


def start_with_directory(
    start_dataplane: StartDataplane,
    config: Path,
    label: str,
    *,
    directory: Callable[[DataplaneStack], Path] = prepare_directory,
) -> DataplaneStack:
    """A stack of Squid alone for the rendered ``config``, whose LDAP helpers ask the directory
    started in its namespace from the slapd.conf ``directory`` prepares (and the Secrets' files
    it writes)."""
    stack = start_dataplane(
        config,
        label=label,
        names=DEFAULT_TEST_NAMES,
        extra_hosts={LDAP_HOST: LDAP_ADDRESS},
        daemons=("squid",),
    )
    start_directory(stack, directory(stack))
    # Squid again, now that the Secrets' files are there (a pod starts with them mounted).
    stack.stop_daemon("squid", timeout=10)
    stack.start_daemon("squid")
    return stack


def logged(stack: DataplaneStack, url: str, **options: Any) -> tuple[int, dict[str, object]]:
    """One request, its status and its access log entry."""
    response, entry = listener.logged(stack, lambda: stack.request(url, **options), url)
    return response.status, entry
