"""Connectivity as the analysers report it, in one canonical form both can be compared in.

Both np-guard's `netpolicy list` and network-config-analyzer's `txt_no_fw_rules` print one
allowed connection per line, `SOURCE => DESTINATION : CONNECTIONS`, where a peer is a workload
(`namespace/name[Kind]`) or an address range (`a.b.c.d-e.f.g.h`, one address, IPv6 ranges for
nca). `parse_edges` reads either dialect; anything it does not recognise is an error, never
skipped, so a format change cannot turn into "no edges, test passes".

`Connectivity` is the canonical form: edges between workloads as a set, and edges between a
workload and addresses grouped by (workload, direction, connections) with the address ranges
merged, so two analysers that split the address space differently still compare equal.
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

PROTOCOLS: Final = ("TCP", "UDP", "SCTP")
MAX_PORT: Final = 65535

Direction = Literal["egress", "ingress"]


class AnalyzerOutputError(ValueError):
    """A line of analyser output this module does not understand."""


# --- address sets ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class IpRange:
    version: int
    first: int
    last: int

    def __str__(self) -> str:
        """As CIDRs, e.g. `10.0.0.0/8,11.0.0.0/16`."""
        address = ipaddress.IPv4Address if self.version == 4 else ipaddress.IPv6Address
        first, last = address(self.first), address(self.last)
        nets = ipaddress.summarize_address_range(first, last)
        return ",".join(str(n) for n in nets)


@dataclass(frozen=True)
class IpSet:
    """A set of addresses as sorted, merged, non-adjacent ranges."""

    ranges: tuple[IpRange, ...] = ()

    @staticmethod
    def of(ranges: Iterable[IpRange]) -> IpSet:
        merged: list[IpRange] = []
        for r in sorted(ranges):
            if merged and merged[-1].version == r.version and r.first <= merged[-1].last + 1:
                last = merged[-1]
                merged[-1] = IpRange(r.version, last.first, max(last.last, r.last))
            else:
                merged.append(r)
        return IpSet(tuple(merged))

    @staticmethod
    def cidrs(*cidrs: str) -> IpSet:
        ranges = []
        for cidr in cidrs:
            net = ipaddress.ip_network(cidr, strict=True)
            ranges.append(
                IpRange(net.version, int(net.network_address), int(net.broadcast_address))
            )
        return IpSet.of(ranges)

    def __or__(self, other: IpSet) -> IpSet:
        return IpSet.of((*self.ranges, *other.ranges))

    def __sub__(self, other: IpSet) -> IpSet:
        out: list[IpRange] = []
        for r in self.ranges:
            pieces = [r]
            for hole in other.ranges:
                if hole.version != r.version:
                    continue
                next_pieces = []
                for p in pieces:
                    if hole.last < p.first or hole.first > p.last:
                        next_pieces.append(p)
                        continue
                    if p.first < hole.first:
                        next_pieces.append(IpRange(p.version, p.first, hole.first - 1))
                    if hole.last < p.last:
                        next_pieces.append(IpRange(p.version, hole.last + 1, p.last))
                pieces = next_pieces
            out += pieces
        return IpSet.of(out)

    def __and__(self, other: IpSet) -> IpSet:
        return self - (self - other)

    def __contains__(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(r.version == ip.version and r.first <= int(ip) <= r.last for r in self.ranges)

    def __bool__(self) -> bool:
        return bool(self.ranges)

    def family(self, version: int) -> IpSet:
        return IpSet(tuple(r for r in self.ranges if r.version == version))

    def __str__(self) -> str:
        return " ".join(str(r) for r in self.ranges) or "(none)"


EVERY_IPV4: Final = IpSet.cidrs("0.0.0.0/0")
EVERY_IPV6: Final = IpSet.cidrs("::/0")


# --- connections -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Conns:
    """Allowed protocols and destination ports: protocol -> merged (first, last) port ranges."""

    ports: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]

    @staticmethod
    def of(items: Iterable[tuple[str, int, int]]) -> Conns:
        by_protocol: dict[str, list[tuple[int, int]]] = defaultdict(list)
        for protocol, first, last in items:
            if protocol not in PROTOCOLS or not 1 <= first <= last <= MAX_PORT:
                raise AnalyzerOutputError(f"bad connection {protocol} {first}-{last}")
            by_protocol[protocol].append((first, last))
        merged: dict[str, tuple[tuple[int, int], ...]] = {}
        for protocol, ranges in by_protocol.items():
            out: list[tuple[int, int]] = []
            for first, last in sorted(ranges):
                if out and first <= out[-1][1] + 1:
                    out[-1] = (out[-1][0], max(out[-1][1], last))
                else:
                    out.append((first, last))
            merged[protocol] = tuple(out)
        return Conns(tuple(sorted(merged.items())))

    @staticmethod
    def tcp(*ports: int) -> Conns:
        return Conns.of(("TCP", p, p) for p in ports)

    @staticmethod
    def all_ports(*protocols: str) -> Conns:
        return Conns.of((p, 1, MAX_PORT) for p in protocols)

    def items(self) -> list[tuple[str, int, int]]:
        return [(p, a, b) for p, ranges in self.ports for a, b in ranges]

    def __or__(self, other: Conns) -> Conns:
        return Conns.of((*self.items(), *other.items()))

    def __str__(self) -> str:
        parts = []
        for protocol, ranges in self.ports:
            shown = ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)
            parts.append(f"{protocol} {shown}")
        return "; ".join(parts)


ALL_CONNECTIONS: Final = Conns.all_ports(*PROTOCOLS)
DNS: Final = Conns.of([("TCP", 53, 53), ("UDP", 53, 53)])


def _port_ranges(text: str) -> list[tuple[int, int]]:
    out = []
    for part in text.split(","):
        part = part.strip()
        match = re.fullmatch(r"([0-9]+)(?:-([0-9]+))?", part)
        if match is None:
            raise AnalyzerOutputError(f"bad port list {text!r}")
        first = int(match[1])
        out.append((first, int(match[2] or first)))
    return out


def parse_netpolicy_conns(text: str) -> Conns:
    """`All Connections`, `TCP 5140,8080`, `TCP 1-65535,UDP 53` (netpolicy)."""
    text = text.strip()
    if text.lower() == "all connections":
        return ALL_CONNECTIONS
    items: list[tuple[str, int, int]] = []
    # "TCP 53,UDP 53": split before each protocol name.
    for chunk in re.split(r"[,;]\s*(?=(?:TCP|UDP|SCTP)\b)", text):
        match = re.fullmatch(r"(TCP|UDP|SCTP)\s+([0-9,\-\s]+)", chunk.strip())
        if match is None:
            raise AnalyzerOutputError(f"netpolicy connections {text!r}")
        items += [(match[1], a, b) for a, b in _port_ranges(match[2])]
    return Conns.of(items)


def parse_nca_conns(text: str) -> Conns:
    """`All connections`, `{protocols:TCP}`, `{protocols:TCP, UDP,dst_ports:53}` (nca);
    several cubes are separated by `;`."""
    text = text.strip()
    if text.lower() == "all connections":
        return ALL_CONNECTIONS
    items: list[tuple[str, int, int]] = []
    for cube in re.findall(r"\{([^{}]*)\}", text):
        match = re.fullmatch(
            r"protocols:(?P<protocols>[A-Z, ]+?)(?:,dst_ports:(?P<ports>[0-9,\-]+))?", cube
        )
        if match is None:
            raise AnalyzerOutputError(f"nca connections {text!r}")
        protocols = [p.strip() for p in match["protocols"].split(",")]
        ports = _port_ranges(match["ports"]) if match["ports"] else [(1, MAX_PORT)]
        items += [(p, a, b) for p in protocols for a, b in ports]
    if not items or re.sub(r"\{[^{}]*\}|[;\s]", "", text):
        raise AnalyzerOutputError(f"nca connections {text!r}")
    return Conns.of(items)


# --- peers and edges ---------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Workload:
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


Peer = Workload | IpRange

_WORKLOAD = re.compile(
    r"(?P<ns>[a-z0-9][-a-z0-9.]*)/(?P<name>[a-z0-9][-a-z0-9.]*)\[(?P<kind>\w+)\]"
)


def parse_peer(text: str) -> Peer:
    text = text.strip()
    match = _WORKLOAD.fullmatch(text)
    if match:
        return Workload(match["ns"], match["name"])
    first_text, _, last_text = text.partition("-")
    try:
        first = ipaddress.ip_address(first_text)
        last = ipaddress.ip_address(last_text or first_text)
    except ValueError:
        raise AnalyzerOutputError(f"peer {text!r}") from None
    if first.version != last.version or int(first) > int(last):
        raise AnalyzerOutputError(f"peer {text!r}")
    return IpRange(first.version, int(first), int(last))


@dataclass(frozen=True)
class Edge:
    src: Peer
    dst: Peer
    conns: Conns

    def __str__(self) -> str:
        return f"{self.src} => {self.dst} : {self.conns}"


def parse_edges(output: str, *, dialect: Literal["netpolicy", "nca"]) -> list[Edge]:
    """Every `SRC => DST : CONNS` line; other non-empty lines are an error."""
    parse_conns = parse_netpolicy_conns if dialect == "netpolicy" else parse_nca_conns
    edges = []
    for line in output.splitlines():
        if not line.strip():
            continue
        match = re.fullmatch(r"(?P<src>\S+) => (?P<dst>\S+) : (?P<conns>.+)", line.strip())
        if match is None:
            raise AnalyzerOutputError(f"{dialect} output line {line!r}")
        edges.append(
            Edge(parse_peer(match["src"]), parse_peer(match["dst"]), parse_conns(match["conns"]))
        )
    return edges


# --- the canonical form ------------------------------------------------------------------------


@dataclass(frozen=True)
class Connectivity:
    """Workload-to-workload edges, and address sets per (workload, direction, connections)."""

    pods: frozenset[tuple[Workload, Workload, Conns]] = frozenset()
    addresses: Mapping[tuple[Workload, Direction, Conns], IpSet] = field(default_factory=dict)

    @staticmethod
    def of_edges(edges: Iterable[Edge], *, keep: Iterable[Workload] | None = None) -> Connectivity:
        """The canonical form of `edges`; with `keep`, only edges with at least one end among
        those workloads (edges between workloads nobody asked about are dropped)."""
        wanted = None if keep is None else set(keep)
        builder = ExpectedConnectivity()
        for edge in edges:
            ends = [p for p in (edge.src, edge.dst) if isinstance(p, Workload)]
            if wanted is not None and not any(p in wanted for p in ends):
                continue
            if isinstance(edge.src, Workload) and isinstance(edge.dst, Workload):
                if edge.src != edge.dst:
                    builder.pod(edge.src, edge.dst, edge.conns)
            elif isinstance(edge.src, Workload) and isinstance(edge.dst, IpRange):
                builder.addresses(edge.src, "egress", edge.conns, IpSet.of([edge.dst]))
            elif isinstance(edge.dst, Workload) and isinstance(edge.src, IpRange):
                builder.addresses(edge.dst, "ingress", edge.conns, IpSet.of([edge.src]))
            else:
                raise AnalyzerOutputError(f"edge between two address ranges: {edge}")
        return builder.build()

    def without_addresses(self, addresses: IpSet) -> Connectivity:
        """The same with `addresses` taken out of every address set."""
        kept = {k: v - addresses for k, v in self.addresses.items()}
        return Connectivity(self.pods, {k: v for k, v in kept.items() if v})

    def family(self, version: int) -> Connectivity:
        """Only the addresses of one IP family (workload edges unchanged)."""
        kept = {k: v.family(version) for k, v in self.addresses.items()}
        return Connectivity(self.pods, {k: v for k, v in kept.items() if v})

    def differences(self, expected: Connectivity) -> list[str]:
        """Human-readable lines: every edge found but not expected (`extra`) and every edge
        expected but not found (`missing`). Empty when they are the same."""
        lines = []
        for src, dst, conns in sorted(self.pods - expected.pods, key=str):
            lines.append(f"extra: {src} => {dst} : {conns}")
        for src, dst, conns in sorted(expected.pods - self.pods, key=str):
            lines.append(f"missing: {src} => {dst} : {conns}")
        for key in sorted(set(self.addresses) | set(expected.addresses), key=str):
            workload, direction, conns = key
            found = self.addresses.get(key, IpSet())
            wanted = expected.addresses.get(key, IpSet())
            arrow = "=>" if direction == "egress" else "<="
            if extra := found - wanted:
                lines.append(f"extra: {workload} {arrow} {extra} : {conns}")
            if missing := wanted - found:
                lines.append(f"missing: {workload} {arrow} {missing} : {conns}")
        return lines

    def reachable_from(self, workload: Workload) -> IpSet:
        """Every address `workload` may connect to, whatever the connections."""
        out = IpSet()
        for (w, direction, _), addresses in self.addresses.items():
            if w == workload and direction == "egress":
                out |= addresses
        return out

    def reaching(self, workload: Workload) -> IpSet:
        """Every address that may connect to `workload`."""
        out = IpSet()
        for (w, direction, _), addresses in self.addresses.items():
            if w == workload and direction == "ingress":
                out |= addresses
        return out


class ExpectedConnectivity:
    """Builder of the canonical form: connections to the same peer are united, as the
    analysers print one line per peer pair (and per address range) with every connection."""

    def __init__(self) -> None:
        self._pods: dict[tuple[Workload, Workload], Conns] = {}
        self._addresses: dict[tuple[Workload, Direction], list[tuple[IpSet, Conns]]] = defaultdict(
            list
        )

    def pod(self, src: Workload, dst: Workload, conns: Conns) -> None:
        key = (src, dst)
        self._pods[key] = self._pods[key] | conns if key in self._pods else conns

    def addresses(
        self, workload: Workload, direction: Direction, conns: Conns, addresses: IpSet
    ) -> None:
        if addresses:
            self._addresses[(workload, direction)].append((addresses, conns))

    def build(self) -> Connectivity:
        pods = frozenset((src, dst, conns) for (src, dst), conns in self._pods.items())
        grouped: dict[tuple[Workload, Direction, Conns], IpSet] = {}
        for (workload, direction), entries in self._addresses.items():
            for atom, conns in _atoms(entries):
                key = (workload, direction, conns)
                grouped[key] = grouped.get(key, IpSet()) | atom
        return Connectivity(pods, dict(sorted(grouped.items(), key=lambda kv: str(kv[0]))))


def _atoms(entries: list[tuple[IpSet, Conns]]) -> list[tuple[IpSet, Conns]]:
    """Split overlapping (addresses, connections) entries into disjoint ranges, each with the
    union of the connections of every entry that covers it."""
    bounds: set[tuple[int, int]] = set()
    for addresses, _ in entries:
        for r in addresses.ranges:
            bounds |= {(r.version, r.first), (r.version, r.last + 1)}
    ordered = sorted(bounds)
    out = []
    for (version, first), (next_version, next_first) in itertools.pairwise(ordered):
        if version != next_version:
            continue
        atom = IpSet.of([IpRange(version, first, next_first - 1)])
        covering = [conns for addresses, conns in entries if atom & addresses]
        if covering:
            union = covering[0]
            for conns in covering[1:]:
                union |= conns
            out.append((atom, union))
    return out
