"""Running the two NetworkPolicy analysers over a set of manifests.

np-guard's netpol-analyzer (`netpolicy`) models addresses as IPv4 only: an IPv6 `ipBlock` is
read as the IPv4 range of its first 32 bits (`::/0` becomes `0.0.0.0/0`, `2001:db8::/32`
becomes `32.1.13.184/32`; np-guard/netpol-analyzer#47), which would report connections that do
not exist. It is therefore given the policies without their IPv6 `ipBlock` peers, and its result
is compared on IPv4 addresses only; a rule left without peers is dropped, since an empty peer
list would mean "everyone". Taking peers away from allow rules only removes connections, so
its IPv4 result stays exact. network-config-analyzer (`nca`) reads both families and is given
the manifests unchanged.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from devtools.security.connectivity import Edge, parse_edges
from devtools.security.tools import analyzer

ANALYSIS_TIMEOUT = 300.0
PEER_LISTS = (("ingress", "from"), ("egress", "to"))
# What decides connectivity; the rest (ConfigMaps, RBAC, CRDs...) is left out of the input.
ANALYSED_KINDS = frozenset(
    {"Namespace", "NetworkPolicy", "Pod", "Deployment", "StatefulSet", "DaemonSet", "Job"}
)


def _scaled_up(obj: dict[str, Any]) -> dict[str, Any]:
    """A workload scaled to zero (a suspended tenant's proxy) still has its policies judged:
    nca leaves a workload without replicas out, and the policies apply the moment it scales
    up."""
    if obj.get("kind") in ("Deployment", "StatefulSet") and obj["spec"].get("replicas") == 0:
        return {**obj, "spec": {**obj["spec"], "replicas": 1}}
    return obj


def write_analysed(objects: Iterable[dict[str, Any]], directory: Path) -> None:
    """The objects an analyser reads, as one YAML stream in `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    kept = [_scaled_up(o) for o in objects if o.get("kind") in ANALYSED_KINDS]
    (directory / "manifests.yaml").write_text(yaml.safe_dump_all(kept, sort_keys=False))


def _is_ipv6_block(peer: dict[str, Any]) -> bool:
    block = peer.get("ipBlock")
    return block is not None and ipaddress.ip_network(block["cidr"], strict=False).version == 6


def without_ipv6_ip_blocks(
    objects: Sequence[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[str]]:
    """The objects with every IPv6 `ipBlock` peer taken out of NetworkPolicy rules (rules left
    with no peer are dropped), and one line per removal."""
    out = []
    removed: list[str] = []
    for obj in objects:
        if obj.get("kind") != "NetworkPolicy":
            out.append(obj)
            continue
        policy = copy.deepcopy(obj)
        where = f"{policy['metadata'].get('namespace')}/{policy['metadata']['name']}"
        for direction, peers_key in PEER_LISTS:
            rules = policy["spec"].get(direction)
            if not rules:
                continue
            kept_rules = []
            for index, rule in enumerate(rules):
                peers = rule.get(peers_key)
                if not peers:  # no peer list: every peer, no address to take out
                    kept_rules.append(rule)
                    continue
                kept = [p for p in peers if not _is_ipv6_block(p)]
                for peer in peers:
                    if _is_ipv6_block(peer):
                        removed.append(f"{where} {direction}[{index}]: {peer['ipBlock']['cidr']}")
                if kept:
                    kept_rules.append({**rule, peers_key: kept})
                else:
                    removed.append(f"{where} {direction}[{index}]: rule dropped (IPv6 peers only)")
            policy["spec"][direction] = kept_rules
        out.append(policy)
    return out, removed


class AnalysisError(RuntimeError):
    """The analyser failed or said something other than its result."""


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        args, capture_output=True, text=True, check=False, timeout=ANALYSIS_TIMEOUT
    )
    if result.returncode != 0:
        raise AnalysisError(
            f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
        )
    return result


def netpolicy_edges(objects: Sequence[dict[str, Any]]) -> tuple[list[Edge], list[str]]:
    """netpol-analyzer's allowed connections over the IPv4 view of `objects` (see the module
    docstring), and the IPv6 peers it was not given."""
    ipv4_view, removed = without_ipv6_ip_blocks(objects)
    tool = analyzer("netpolicy")
    with tempfile.TemporaryDirectory(prefix="swg-netpolicy-") as tmp:
        write_analysed(ipv4_view, Path(tmp) / "in")
        # Not `--fail`: with it, v1.4.4 stops at a spurious "Error getting resourceInfos from
        # dir path: <nil>", prints nothing and exits 0. Any message on stderr is a failure.
        result = _run([str(tool.path), "list", "--dirpath", f"{tmp}/in", "-o", "txt"])
    if result.stderr.strip():
        raise AnalysisError(f"netpolicy reported:\n{result.stderr}")
    edges = parse_edges(result.stdout, dialect="netpolicy")
    if not edges:
        raise AnalysisError("netpolicy reported no connection at all")
    return edges, removed


def nca_edges(objects: Sequence[dict[str, Any]]) -> list[Edge]:
    """network-config-analyzer's allowed connections between workloads and addresses of both
    families."""
    tool = analyzer("nca")
    with tempfile.TemporaryDirectory(prefix="swg-nca-") as tmp:
        write_analysed(objects, Path(tmp) / "in")
        _run(
            [
                str(tool.path),
                "--connectivity",
                f"{tmp}/in",
                "--resource_list",
                f"{tmp}/in",
                "--output_format",
                "txt_no_fw_rules",
                "--output_endpoints",
                "deployments",
                "--print_ipv6",
                "--file_out",
                f"{tmp}/out.txt",
            ]
        )
        # nca prints notes and warnings (on the policies' style) to stdout; the edges go to
        # the file.
        edges = parse_edges((Path(tmp) / "out.txt").read_text(), dialect="nca")
    if not edges:
        raise AnalysisError("nca reported no connection at all")
    return edges


# --- checkov -----------------------------------------------------------------------------------

# No call home: no guideline/policy download from the vendor's platform, no version check on
# PyPI. Where the machine allows it (root, or user namespaces), checkov also runs in a network
# namespace of its own with no interface but loopback, so nothing can leave.
CHECKOV_ENV = {"BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"}


@dataclass(frozen=True)
class CheckovFinding:
    check_id: str
    check_name: str
    resource: str  # Kind.namespace.name ("default" for cluster-scoped objects)
    file: str

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.file}): {self.check_name}"


@dataclass(frozen=True)
class CheckovReport:
    passed: tuple[CheckovFinding, ...]
    failed: tuple[CheckovFinding, ...]
    skipped: tuple[CheckovFinding, ...]
    parsing_errors: tuple[str, ...]
    resource_count: int
    version: str

    @property
    def resources(self) -> set[str]:
        return {f.resource for f in (*self.passed, *self.failed, *self.skipped)}


def _offline_prefix() -> list[str]:
    unshare = shutil.which("unshare")
    if unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
    if probe.returncode == 0:
        return [unshare, "--net"]
    probe = subprocess.run([unshare, "-rn", "true"], capture_output=True, check=False)
    return [unshare, "-rn"] if probe.returncode == 0 else []


def run_checkov(directory: Path) -> CheckovReport:
    """checkov's Kubernetes checks over every YAML file in `directory`."""
    tool = analyzer("checkov")
    args = [
        *_offline_prefix(),
        str(tool.path),
        "--directory",
        str(directory),
        "--framework",
        "kubernetes",
        "--skip-download",
        "--compact",
        "--output",
        "json",
    ]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        check=False,
        timeout=ANALYSIS_TIMEOUT,
        env={**os.environ, **CHECKOV_ENV},
    )
    # Exit 1 means "some check failed"; anything else but 0 is checkov itself failing.
    if result.returncode not in (0, 1):
        raise AnalysisError(f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}")
    try:
        document = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise AnalysisError(f"checkov printed no JSON:\n{result.stdout[-2000:]}") from None
    if isinstance(document, list):  # one entry per framework
        raise AnalysisError(f"checkov ran {len(document)} frameworks, expected kubernetes only")

    def findings(key: str) -> tuple[CheckovFinding, ...]:
        return tuple(
            CheckovFinding(c["check_id"], c["check_name"], c["resource"], c["file_path"])
            for c in document.get("results", {}).get(key, [])
        )

    summary = document["summary"]
    return CheckovReport(
        passed=findings("passed_checks"),
        failed=findings("failed_checks"),
        skipped=findings("skipped_checks"),
        parsing_errors=tuple(document.get("results", {}).get("parsing_errors", [])),
        resource_count=summary["resource_count"],
        version=summary["checkov_version"],
    )
