"""A real Kubernetes control plane on 127.0.0.1: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (which plays every kubelet), with three fake Nodes in two regions.

State directory layout (`--dir`, default .local):

    kubeconfig                  admin kubeconfig (client certificate in system:masters)
    logs/<component>.log        one log per daemon, truncated on each fresh start
    control-plane/state.json    ports and pids (with start times) of the running daemons
    control-plane/pki/          CA, certificates, ServiceAccount signing key pair
    control-plane/etcd/         etcd data (a fresh cluster on every start)
    control-plane/*.kubeconfig  one per component identity
"""

from __future__ import annotations

import contextlib
import json
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from devtools.binaries import Binaries

from e2e.cluster import hostnet, processes
from e2e.cluster.client import Cluster, wait_until
from e2e.cluster.config import (
    COMPONENTS,
    LOG_TAIL_LINES,
    SERVICE_CIDR,
    SERVICE_IP,
    ComponentFlags,
    Ports,
    Tuning,
    write_private,
)
from e2e.cluster.nodes import NODES, KwokNode
from e2e.cluster.pki import KeyPair, Pki, make_pki
from e2e.cluster.realnode import RealNode


class ControlPlaneError(RuntimeError):
    """The control plane failed to start or stop; the message names the component and its log."""


def _no_proxy_opener(context: ssl.SSLContext | None) -> urllib.request.OpenerDirector:
    handlers: list[urllib.request.BaseHandler] = [urllib.request.ProxyHandler({})]
    if context is not None:
        handlers.append(urllib.request.HTTPSHandler(context=context))
    return urllib.request.build_opener(*handlers)


def http_get(
    url: str, *, ca: Path | None = None, client: KeyPair | None = None, timeout: float = 3.0
) -> tuple[int, str] | None:
    """GET `url` (TLS verified against `ca`, optional client certificate); None if unreachable."""
    context = None
    if url.startswith("https:"):
        context = ssl.create_default_context(cafile=str(ca) if ca else None)
        if client is not None:
            context.load_cert_chain(str(client.cert), str(client.key))
    try:
        with _no_proxy_opener(context).open(url, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(errors="replace")
    except (urllib.error.URLError, OSError):
        return None


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class ControlPlane(Cluster, ComponentFlags):
    """The local control plane living in `state_dir`.

    >>> cp = ControlPlane(Path(".local/e2e-cluster"))
    >>> cp.start()          # returns False when it was already running and healthy
    >>> cp.kubectl("get", "nodes")
    >>> cp.stop()           # every daemon gone, verified

    `up` and `down` from different processes work too: pids live in the state file.

    With `real_node=True` a real worker node (`e2e.cluster.realnode`) joins the kwok nodes: the
    API server then listens on the pod bridge's gateway address instead of 127.0.0.1 (pods reach
    it through the `kubernetes` Service) and the kubeconfig names that address. `stop` also
    stops a real node found in the state dir, whoever started it.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        binaries: Binaries | None = None,
        nodes: Sequence[KwokNode] = NODES,
        start_timeout: float = 180.0,
        real_node: bool = False,
        tuning: Tuning | None = None,
    ) -> None:
        self.state_dir = state_dir.resolve()
        self.tuning = tuning or Tuning()
        self.binaries = binaries or Binaries.from_cache()
        self.nodes = tuple(nodes)
        self.start_timeout = start_timeout
        self.work_dir = self.state_dir / "control-plane"
        self.logs_dir = self.state_dir / "logs"
        self.pki_dir = self.work_dir / "pki"
        self.state_file = self.work_dir / "state.json"
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._records: list[processes.ProcessRecord] = []
        self._ports: Ports | None = None
        self._api_address: str | None = None
        self.node: RealNode | None = self._real_node() if real_node else None
        super().__init__(
            self.state_dir / "kubeconfig",
            kubectl=self.binaries.kubectl,
            helm=self.binaries.helm,
            local=True,
            kubectl_cache=self.work_dir / "kubectl-cache",
        )

    def _real_node(self) -> RealNode:
        return RealNode(
            self.state_dir,
            kubernetes_version=self.binaries.kubernetes_version,
            service_cidr=SERVICE_CIDR,
        )

    # ------------------------------------------------------------------ state file

    def _save_state(self) -> None:
        assert self._ports is not None
        state = {
            "ports": self._ports.__dict__,
            "api_address": self.api_address,
            "real_node": self.node is not None,
            "processes": [r.to_json() for r in self._records],
            "kubernetes_version": self.binaries.kubernetes_version,
        }
        write_private(self.state_file, json.dumps(state, indent=2) + "\n")

    def _load_state(self) -> tuple[Ports | None, list[processes.ProcessRecord]]:
        try:
            state = json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return None, []
        return Ports(**state["ports"]), [
            processes.ProcessRecord.from_json(p) for p in state["processes"]
        ]

    @property
    def ports(self) -> Ports:
        if self._ports is None:
            self._ports, self._records = self._load_state()
        if self._ports is None:
            raise ControlPlaneError(f"no control plane state in {self.state_file}")
        return self._ports

    @property
    def api_address(self) -> str:
        """Where the API server listens: 127.0.0.1, or the pod bridge's gateway with a real node."""
        if self._api_address is None:
            try:
                saved = json.loads(self.state_file.read_text()).get("api_address")
            except (FileNotFoundError, json.JSONDecodeError):
                saved = None
            self._api_address = str(saved) if saved else "127.0.0.1"
        return self._api_address

    @property
    def server(self) -> str:
        """The API server URL, https://127.0.0.1:<port> (https://<bridge gateway>:<port> with a
        real node)."""
        return f"https://{self.api_address}:{self.ports.apiserver}"

    def _pki(self) -> Pki:
        d = self.pki_dir

        def pair(name: str) -> KeyPair:
            return KeyPair(d / f"{name}.crt", d / f"{name}.key")

        return Pki(
            ca=pair("ca"),
            apiserver=pair("apiserver"),
            admin=pair("admin"),
            controller_manager=pair("controller-manager"),
            controller_manager_serving=pair("controller-manager-serving"),
            scheduler=pair("scheduler"),
            scheduler_serving=pair("scheduler-serving"),
            kwok=pair("kwok"),
            service_account_key=d / "sa.key",
            service_account_pub=d / "sa.pub",
        )

    # ------------------------------------------------------------------ health

    def _apiserver_ready(self) -> bool:
        pki = self._pki()
        got = http_get(f"{self.server}/readyz", ca=pki.ca.cert, client=pki.admin)
        return got == (200, "ok")

    def records(self) -> list[processes.ProcessRecord]:
        """The daemons recorded in the state file (running or not)."""
        _, records = self._load_state()
        return records

    def status(self) -> dict[str, str]:
        """Each component's state, plus the API server's /readyz answer."""
        records = self.records()
        report = processes.describe(COMPONENTS, records, self.logs_dir)
        if records:
            report["readyz"] = "ok" if self._apiserver_ready() else "not ready"
        node = self.node or (self._real_node() if (self.state_dir / "node").exists() else None)
        if node is not None:
            report.update({f"node/{k}": v for k, v in node.status().items()})
        return report

    def is_healthy(self) -> bool:
        """Every daemon alive and /readyz answering ok."""
        records = self.records()
        names = {r.name for r in records}
        if names != set(COMPONENTS) or not all(processes.is_alive(r) for r in records):
            return False
        self._ports, self._records = self._load_state()
        self._api_address = None
        if self.node is not None and not (
            self.api_address == hostnet.BRIDGE_IP and self.node.is_healthy()
        ):
            return False
        return self._apiserver_ready()

    def listening(self) -> dict[str, list[str]]:
        """Addresses each running daemon listens on (for the loopback-only check)."""
        return {
            r.name: processes.listening_addresses(r.pid)
            for r in self.records()
            if processes.is_alive(r)
        }

    # ------------------------------------------------------------------ start

    def start(self) -> bool:
        """Start everything and wait until usable; False if it was already running and healthy.

        Usable means: /readyz ok, controller manager and scheduler healthy, every kwok Node Ready
        and the `default` ServiceAccount present in the `default` namespace.
        """
        if self.is_healthy():
            return False
        self.binaries.require()
        self.stop()
        if self.work_dir.exists():
            shutil.rmtree(self.work_dir)
        self.work_dir.mkdir(parents=True)
        self.work_dir.chmod(0o700)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        self._ports = Ports.allocate()
        self._api_address = hostnet.BRIDGE_IP if self.node is not None else "127.0.0.1"
        self._records = []
        self._save_state()
        try:
            if self.node is not None:
                self.node.prepare_host()
            self._start_all()
            if self.node is not None:
                self.node.start(self, server=self.server, ca=self._pki().ca, pki_dir=self.pki_dir)
        except BaseException:
            self.stop()
            raise
        return True

    def _start_all(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        ports = self.ports
        pki = make_pki(
            self.pki_dir,
            service_ip=SERVICE_IP,
            apiserver_ips=(hostnet.BRIDGE_IP,) if self.node is not None else (),
        )
        self._write_kubeconfigs(pki)

        self._launch("etcd", self._etcd_args(ports))
        self._wait(
            "etcd /health",
            lambda: (
                (got := http_get(f"http://127.0.0.1:{ports.etcd_client}/health"))
                and got[0] == 200
                and '"health":"true"' in got[1]
            ),
            deadline,
        )
        self._launch("kube-apiserver", self._apiserver_args(ports, pki))
        self._wait("kube-apiserver /readyz", self._apiserver_ready, deadline)
        self._launch("kube-controller-manager", self._controller_manager_args(ports, pki))
        self._launch("kube-scheduler", self._scheduler_args(ports, pki))
        self._launch("kwok", self._kwok_args())

        self.apply(*(node.manifest() for node in self.nodes), field_manager="swg-cluster")
        self.apply(self._default_storage_class(), field_manager="swg-cluster")

        for name, port in (
            ("kube-controller-manager", ports.controller_manager),
            ("kube-scheduler", ports.scheduler),
        ):
            url = f"https://127.0.0.1:{port}/healthz"
            self._wait(
                f"{name} /healthz",
                lambda u=url: http_get(u, ca=pki.ca.cert) == (200, "ok"),
                deadline,
            )
        self._wait("kwok Nodes Ready", self._nodes_ready, deadline)
        self._wait(
            "ServiceAccount default/default",
            lambda: (
                self.kubectl(
                    "get", "serviceaccount", "default", "-n", "default", check=False
                ).returncode
                == 0
            ),
            deadline,
        )

    def _wait(self, what: str, probe: Any, deadline: float) -> None:
        def checked() -> object:
            self._assert_alive()
            return probe()

        try:
            wait_until(checked, timeout=max(deadline - time.monotonic(), 0.0), what=what)
        except TimeoutError as err:
            raise ControlPlaneError(f"{err}\n{self._log_tails()}") from None

    def _assert_alive(self) -> None:
        for record in self._records:
            proc = self._children.get(record.pid)
            if proc is not None and proc.poll() is not None:
                log = self.logs_dir / f"{record.name}.log"
                raise ControlPlaneError(
                    f"{record.name} exited with code {proc.returncode}; last lines of {log}:\n"
                    + _tail(log)
                )

    def _log_tails(self) -> str:
        return "\n".join(
            f"--- {r.name} ({self.logs_dir / r.name}.log)\n{_tail(self.logs_dir / f'{r.name}.log')}"
            for r in self._records
        )

    def _launch(self, name: str, args: list[str]) -> None:
        binary = {
            "etcd": self.binaries.etcd,
            "kube-apiserver": self.binaries.kube_apiserver,
            "kube-controller-manager": self.binaries.kube_controller_manager,
            "kube-scheduler": self.binaries.kube_scheduler,
            "kwok": self.binaries.kwok,
        }[name]
        log = self.logs_dir / f"{name}.log"
        log.write_text("")
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(self.work_dir)}
        proc, record = processes.spawn(name, [str(binary), *args], log_path=log, env=env)
        self._children[proc.pid] = proc
        self._records.append(record)
        self._save_state()

    def _nodes_ready(self) -> bool:
        listed = self.kubectl_json("get", "nodes")["items"]
        ready = {
            n["metadata"]["name"]
            for n in listed
            if any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in n.get("status", {}).get("conditions", [])
            )
        }
        return {n.name for n in self.nodes} <= ready

    # ------------------------------------------------------------------ stop

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every daemon of this state dir (recorded or stray) and its real node if there is
        one; raise if any survives."""
        node = self.node or (self._real_node() if (self.state_dir / "node").exists() else None)
        if node is not None:
            node.stop(timeout=timeout)
        records = self.records()
        marker = f"{self.work_dir}/"
        known = {r.pid for r in records}
        strays = [r for r in processes.find_strays(marker, COMPONENTS) if r.pid not in known]
        # Reverse start order: the API server's clients first, etcd last.
        ordered = sorted([*records, *strays], key=lambda r: -COMPONENTS.index(r.name))
        survivors = processes.stop(ordered, timeout=timeout, children=self._children)
        survivors += processes.find_strays(marker, COMPONENTS)
        self._children.clear()
        self._records = []
        if survivors:
            names = ", ".join(f"{r.name} (pid {r.pid})" for r in survivors)
            raise ControlPlaneError(f"still running after SIGKILL: {names}")
        with contextlib.suppress(FileNotFoundError):
            if self.state_file.exists():
                state = json.loads(self.state_file.read_text())
                state["processes"] = []
                write_private(self.state_file, json.dumps(state, indent=2) + "\n")

    def __enter__(self) -> ControlPlane:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
