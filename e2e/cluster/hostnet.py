"""The host side of the real node's pod network: bridge, packet filter guard, sysctls, cleanup.

Everything here is host-global (one bridge, one set of chains), so only one real node runs on a
machine at a time; `owner()` names the state directory that holds it.

Safety (non-negotiable): pods have no route off this machine. Before forwarding is enabled, chain
SWG-FORWARD (jumped to first from FORWARD) drops every forwarded packet except pod-to-pod traffic
on the bridge (Service IPs are translated to pod addresses before FORWARD), so traffic from the
pod and service ranges to anything outside them is dropped, and so is any forwarding between
other interfaces; chain SWG-OUTPUT (jumped to first from POSTROUTING) drops packets whose
original destination was a Service IP but that were translated to an address outside the pod
range. Nothing masquerades to the uplink. Every probe of the tests stays on this machine.

Both chains live in the `mangle` table: its FORWARD and POSTROUTING hooks run before `filter`'s,
so no ACCEPT of the NetworkPolicy enforcer or kube-proxy (which insert themselves first in
filter's chains) can skip the guard.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path

BRIDGE = "swg0"
POD_SUBNET = "10.250.0.0/24"
BRIDGE_IP = "10.250.0.1"
BRIDGE_PREFIX = 24
FORWARD_CHAIN = "SWG-FORWARD"
OUTPUT_CHAIN = "SWG-OUTPUT"
GUARD_TABLE = "mangle"
GUARD_JUMPS = (("FORWARD", FORWARD_CHAIN), ("POSTROUTING", OUTPUT_CHAIN))
COMMENT = "swg-operator real node: pods never leave this machine"
OWNER_FILE = Path("/run/swg-operator/real-node.json")
SYSCTLS = (
    "net/bridge/bridge-nf-call-iptables",
    "net/ipv4/ip_forward",  # last: only once the drop rules are in place
)
# kubelet sets these at start (its kernel defaults; protectKernelDefaults would make it refuse
# to start instead): recorded before it runs and restored by `down`.
KUBELET_SYSCTLS = (
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Chains the node's components add (kubelet, kube-proxy) or that we add ourselves.
OWN_CHAIN_PREFIXES = ("KUBE-", "SWG-", "CNI-")
IPSET_PREFIXES = ("KUBE-", "kube-router-", "inet6:KUBE-", "inet6:kube-router-")


class HostNetError(RuntimeError):
    """A host network step failed; the message carries the command and its output."""


def run(argv: Sequence[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, check=False, timeout=60)
    if check and result.returncode != 0:
        raise HostNetError(
            f"`{' '.join(argv)}` exited {result.returncode}: {result.stderr.strip()}"
        )
    return result


def guard_rules(pod_subnet: str, service_cidr: str) -> list[list[str]]:
    """The rules of SWG-FORWARD and SWG-OUTPUT, as `iptables -A` argument lists.

    Forwarding was off before the node enabled it, so the only forwarding allowed is from the
    pod bridge back to the pod bridge, between pod addresses. A Service IP still in the
    destination at FORWARD time was not translated by kube-proxy and would follow the default
    route: it is dropped like any other address outside the pod range.
    """
    return [
        [FORWARD_CHAIN, "!", "-i", BRIDGE, "-j", "DROP"],
        [FORWARD_CHAIN, "!", "-o", BRIDGE, "-j", "DROP"],
        [FORWARD_CHAIN, "-s", pod_subnet, "-d", pod_subnet, "-j", "RETURN"],
        [FORWARD_CHAIN, "-s", pod_subnet, "-j", "DROP"],
        [FORWARD_CHAIN, "-s", service_cidr, "-j", "DROP"],
        [FORWARD_CHAIN, "-j", "DROP"],
        # A Service whose endpoints point off the machine never carries host traffic there.
        [
            OUTPUT_CHAIN,
            "-m", "conntrack", "--ctorigdst", service_cidr,
            "!", "-d", pod_subnet,
            "-j", "DROP",
        ],
    ]  # fmt: skip


def _jump(parent: str, chain: str) -> list[str]:
    return [parent, "-m", "comment", "--comment", COMMENT, "-j", chain]


IPT = ("iptables", "-w", "-t", GUARD_TABLE)


def install_guard(pod_subnet: str, service_cidr: str) -> None:
    """(Re)write SWG-FORWARD and SWG-OUTPUT (mangle) and jump to them first from FORWARD and
    POSTROUTING."""
    for chain in (FORWARD_CHAIN, OUTPUT_CHAIN):
        run([*IPT, "-N", chain], check=False)
        run([*IPT, "-F", chain])
    for rule in guard_rules(pod_subnet, service_cidr):
        run([*IPT, "-A", *rule])
    ensure_guard_first()


def ensure_guard_first() -> None:
    """Make the jumps to the guard chains the first rules of mangle FORWARD and POSTROUTING."""
    for parent, chain in GUARD_JUMPS:
        rules = run([*IPT, "-S", parent]).stdout.splitlines()
        jumps = [r for r in rules if r.startswith("-A ") and r.endswith(f"-j {chain}")]
        first = next((r for r in rules if r.startswith("-A ")), None)
        if len(jumps) == 1 and first == jumps[0]:
            continue
        while run([*IPT, "-D", *_jump(parent, chain)], check=False).returncode == 0:
            pass
        run([*IPT, "-I", parent, "1", *_jump(parent, chain)[1:]])


def guard_in_place() -> bool:
    """True when both guard chains exist and are jumped to first (iptables -C and -S)."""
    for parent, chain in GUARD_JUMPS:
        if run([*IPT, "-C", *_jump(parent, chain)], check=False).returncode != 0:
            return False
        rules = run([*IPT, "-S", parent]).stdout.splitlines()
        first = next((r for r in rules if r.startswith("-A ")), "")
        if not first.endswith(f"-j {chain}"):
            return False
    return True


def bridge_exists() -> bool:
    return run(["ip", "link", "show", "dev", BRIDGE], check=False).returncode == 0


def create_bridge() -> None:
    """The pod bridge with its gateway address, up. The API server binds that address."""
    if not bridge_exists():
        run(["ip", "link", "add", "name", BRIDGE, "type", "bridge"])
    address = f"{BRIDGE_IP}/{BRIDGE_PREFIX}"
    shown = run(["ip", "-o", "-4", "addr", "show", "dev", BRIDGE]).stdout
    if address not in shown:
        run(["ip", "addr", "add", address, "dev", BRIDGE])
    run(["ip", "link", "set", "dev", BRIDGE, "up"])


def read_sysctl(name: str) -> str:
    return Path("/proc/sys", name).read_text().strip()


def write_sysctl(name: str, value: str) -> None:
    Path("/proc/sys", name).write_text(value + "\n")


def enable_forwarding(saved: dict[str, str]) -> None:
    """Record the sysctls' values in `saved` (first time only) and enable bridged filtering and
    IPv4 forwarding. The caller installs the guard first."""
    if not guard_in_place():
        raise HostNetError("refusing to enable forwarding: the SWG-FORWARD guard is not in place")
    for name in KUBELET_SYSCTLS:
        saved.setdefault(name, read_sysctl(name))
    for name in SYSCTLS:
        saved.setdefault(name, read_sysctl(name))
        write_sysctl(name, "1")


def restore_sysctls(saved: dict[str, str]) -> None:
    """Forwarding off first, then every other recorded value."""
    for name in sorted(saved, key=lambda n: n != "net/ipv4/ip_forward"):
        with contextlib.suppress(OSError):
            write_sysctl(name, saved[name])


# ---------------------------------------------------------------------- ownership


def owner() -> dict[str, object] | None:
    """The record of the real node holding the host's bridge and chains, if any."""
    try:
        data = json.loads(OWNER_FILE.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def write_owner(record: dict[str, object]) -> None:
    OWNER_FILE.parent.mkdir(parents=True, exist_ok=True)
    tmp = OWNER_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(OWNER_FILE)


def clear_owner() -> None:
    OWNER_FILE.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        OWNER_FILE.parent.rmdir()  # only when empty


# ---------------------------------------------------------------------- cleanup


def _own_chain(name: str) -> bool:
    return name.startswith(OWN_CHAIN_PREFIXES)


def remove_chains(tool: str) -> None:
    """Delete every rule jumping to our/kube chains and those chains, in every table."""
    for table in ("filter", "nat", "mangle", "raw"):
        listed = run([tool, "-w", "-t", table, "-S"], check=False)
        if listed.returncode != 0:
            continue
        lines = listed.stdout.splitlines()
        chains = [
            ln.split()[1] for ln in lines if ln.startswith("-N ") and _own_chain(ln.split()[1])
        ]
        for line in lines:
            parts = line.split()
            if not line.startswith("-A ") or _own_chain(parts[1]):
                continue
            if "-j" in parts and _own_chain(parts[parts.index("-j") + 1]):
                run([tool, "-w", "-t", table, "-D", *_unquote(parts[1:])], check=False)
        for chain in chains:
            run([tool, "-w", "-t", table, "-F", chain], check=False)
        for chain in chains:
            run([tool, "-w", "-t", table, "-X", chain], check=False)


def _unquote(parts: Iterable[str]) -> list[str]:
    """`iptables -S` quotes comments with spaces; rebuild the arguments for -D."""
    out: list[str] = []
    buf: list[str] | None = None
    for part in parts:
        if buf is not None:
            buf.append(part)
            if part.endswith('"'):
                out.append(" ".join(buf).strip('"'))
                buf = None
        elif part.startswith('"') and not (part.endswith('"') and len(part) > 1):
            buf = [part]
        else:
            out.append(part.strip('"'))
    return out


def remove_ipsets() -> None:
    """Destroy the ipsets kube-router made (after the rules using them are gone)."""
    listed = run(["ipset", "list", "-n"], check=False)
    for name in listed.stdout.split():
        if name.startswith(IPSET_PREFIXES):
            run(["ipset", "destroy", name], check=False)


def remaining_ipsets() -> list[str]:
    listed = run(["ipset", "list", "-n"], check=False)
    return [n for n in listed.stdout.split() if n.startswith(IPSET_PREFIXES)]


def delete_bridge() -> None:
    if bridge_exists():
        run(["ip", "link", "delete", "dev", BRIDGE], check=False)


def remaining_chains() -> list[str]:
    """Our/kube chains still present (for `down` to verify and for the tests)."""
    left: list[str] = []
    for tool in ("iptables", "ip6tables"):
        for table in ("filter", "nat", "mangle", "raw"):
            listed = run([tool, "-w", "-t", table, "-S"], check=False)
            left += [
                f"{tool} {table} {ln.split()[1]}"
                for ln in listed.stdout.splitlines()
                if ln.startswith("-N ") and _own_chain(ln.split()[1])
            ]
    return left
