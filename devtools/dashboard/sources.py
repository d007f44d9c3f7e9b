"""What the dashboard rendering scrapes: real log stores fed by the real shipper, and the real
operator reconciling tenants on a local control plane (kwok nodes), all on 127.0.0.1.

The data plane's log lines are written by this module, not by Squid and c-icap: each is one of
the lines captured from the real daemons (tests/logformat_samples.py) with its time, request
id, URL, sizes and duration changed. `python -m swg_logstore ship` tails them and ships them to
`python -m swg_logstore serve`, whose /metrics is scraped, so every figure on the data-plane
panels is the log store's own count of what it stored.
"""

from __future__ import annotations

import json
import random
import runpy
import shutil
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from devtools.processes import Proc, free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "tests" / "logformat_samples.py"
CATEGORIES = ("gambling", "adult", "social-networks", "phishing")


def _samples() -> dict[str, Any]:
    return runpy.run_path(str(SAMPLES))


@dataclass
class TenantTraffic:
    """One tenant's log store and shipper, and the raw logs this module writes for them."""

    name: str
    work: Path
    rate: int  # requests per tick at the busiest
    blocks: float  # share of requests blocked by category
    sandbox: bool = False
    http_port: int = field(default_factory=free_port)
    ingest_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    procs: list[Proc] = field(default_factory=list)
    seq: int = 0

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    def log(self, kind: str) -> Path:
        return self.work / "raw" / f"{kind}.log"

    def start(self) -> None:
        (self.work / "raw").mkdir(parents=True, exist_ok=True)
        for kind in ("squid-access", "cicap-antivirus", "squid-sandbox"):
            self.log(kind).touch()
        store = Proc(
            [sys.executable, "-m", "swg_logstore", "serve", "--root", str(self.work / "store"),
             "--tenant", self.name, "--service-code", f"SWG-{self.name.upper()}",
             "--host", "127.0.0.1", "--http-port", str(self.http_port),
             "--ingest-port", str(self.ingest_port), "--metrics-port", str(self.metrics_port)],
            self.work / "store.log",
        )  # fmt: skip
        store.start()
        self.procs.append(store)
        wait_http(f"http://127.0.0.1:{self.http_port}/healthz")
        shipper = Proc(
            [sys.executable, "-m", "swg_logstore", "ship", "--tenant", self.name,
             "--store", f"http://127.0.0.1:{self.ingest_port}",
             "--state-dir", str(self.work / "shipper"),
             *(f"--source={k}={self.log(k)}"
               for k in ("squid-access", "cicap-antivirus", "squid-sandbox"))],
            self.work / "shipper.log",
        )  # fmt: skip
        shipper.start()
        self.procs.append(shipper)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.kill()

    def emit(self, load: float, rng: random.Random, samples: dict[str, Any]) -> None:
        """One tick of traffic: `load` (0..1) of this tenant's busiest rate."""
        access, antivirus, sandbox = [], [], []
        for _ in range(max(1, round(self.rate * load))):
            self.seq += 1
            now = time.time()
            rid = f"{now:.3f}-10.0.0.{self.seq % 200 + 1}-{self.seq}"
            roll = rng.random()
            if roll < self.blocks:
                line = json.loads(samples["SQUID_CATEGORY_BLOCK"])
                line["category"] = rng.choice(CATEGORIES)
                line["url"] = f"http://www.{line['category']}-{rng.randrange(40)}.test/"
            elif roll < self.blocks + 0.02:  # EICAR: c-icap's detection and Squid's answer
                line = json.loads(samples["SQUID_EICAR"])
                fields = samples["CICAP_EICAR"].split("\t")
                fields[0], fields[1] = str(int(now)), rid
                antivirus.append("\t".join(fields))
            elif roll < self.blocks + 0.025:  # the scanner failed: Squid's ICAP error
                line = json.loads(samples["SQUID_CLEAN"])
                line["err"], line["status"] = "ERR_ICAP_FAILURE", "500"
            else:
                line = json.loads(samples["SQUID_CLEAN"])
                line["url"] = f"http://site-{rng.randrange(500)}.test/page"
                line["out"] = str(rng.randrange(300, 60_000))
            line["t"] = line["start"] = f"{now:.3f}"
            line["rid"] = rid
            if line.get("icap") not in (None, "-"):
                line["icap"] = rid
            line["ms"] = str(
                int(rng.lognormvariate(3.0, 0.9)) if line["decision"] != "block" else 0
            )
            access.append(json.dumps(line, separators=(",", ":")))
            if self.sandbox and line["decision"] == "allow":
                box = json.loads(samples["SQUID_SANDBOX"])
                box["t"], box["icap"] = f"{now:.3f}", rid
                box["icapStatus"] = "500" if rng.random() < 0.03 else "204"
                sandbox.append(json.dumps(box, separators=(",", ":")))
        for kind, lines in (("squid-access", access), ("cicap-antivirus", antivirus),
                            ("squid-sandbox", sandbox)):  # fmt: skip
            if lines:
                with self.log(kind).open("a") as out:
                    out.write("\n".join(lines) + "\n")


class OperatorRun:
    """The operator (`swg-operator run`) on a control plane of its own with kwok nodes, as the
    cluster tier runs it; tenants applied, one cancelled (its purge then pending)."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.plane: Any = None
        self.process: Any = None

    def start(self, tenants: list[str]) -> None:
        from e2e.cluster import ControlPlane
        from e2e.operator_process import OperatorProcess, install_prerequisites, tenant_manifest

        self.plane = ControlPlane(self.state_dir)
        self.plane.start()
        install_prerequisites(self.plane)
        self.process = OperatorProcess(self.plane, log_path=self.state_dir / "operator.log")
        self.process.start()
        for name in tenants:
            self.plane.apply(tenant_manifest(name))

    def cancel(self, name: str) -> None:
        self.plane.kubectl("delete", "swg", name, "--wait=false")

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.process.port}/metrics"

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
        if self.plane is not None:
            self.plane.stop()
        shutil.rmtree(self.state_dir, ignore_errors=True)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())
