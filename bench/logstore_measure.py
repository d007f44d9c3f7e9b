"""Measure what a day of tenant logs costs on the log volume: bytes per stored record and the
gzip ratio of a closed day, from realistic generated traffic run through the real parsers.

    python -m bench.logstore_measure [--requests 200000] [--seed 1] [--inspect-share 0.4]
    python -m bench.logstore_measure --throughput [--requests 100000]

The traffic: clients in one /16, a Zipf-like choice among a few thousand destination hosts,
URLs with the shapes seen on the web (pages, assets with content hashes, API calls with ids),
Squid's query stripping, 60 % of HTTPS as CONNECT tunnels unless inspected, a few percent
blocked by category or list, and an anti-virus scan for every response Squid adapts. Each raw
line is what the Squid and c-icap logformats of `formats` write; the stored record is what the
log store writes (`records.finalise` + `encode`). The figures feed data/capacity.yaml
(accessLogLineBytes, antivirusLogLineBytes, compressionRatioPercent).

`--throughput` writes that traffic's raw lines to files, runs a real shipper and log store
(processes on 127.0.0.1) until everything is stored, and reports the CPU seconds and peak memory
of each: lines per CPU-second for logStoreLinesPerSecondPerCore and the shipper's sizing.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from swg_logstore.formats import LogType, SourceKind
from swg_logstore.records import encode, finalise, parse_line

DAY_START = 1795651200  # 2026-11-26T00:00:00Z
TLDS = ("com", "net", "org", "jp", "co.jp", "io", "de", "cloud")
_WORDS_TEXT = (
    "news sports weather mail cloud shop store api cdn static img video docs portal login "
    "auth account search maps drive calendar office support help blog forum wiki media assets "
    "data update download files share app apps mobile web www secure pay bank travel hotel"
)
WORDS = _WORDS_TEXT.split()
CONTENT_TYPES = (
    "text/html; charset=utf-8",
    "application/json",
    "image/png",
    "image/jpeg",
    "application/javascript",
    "text/css",
    "image/webp",
    "application/octet-stream",
    "font/woff2",
    "-",
)


def _host(rng: random.Random) -> str:
    parts = [rng.choice(WORDS)]
    if rng.random() < 0.6:
        parts.append(
            rng.choice(WORDS) + rng.choice(("", "-" + rng.choice(WORDS), str(rng.randint(1, 99))))
        )
    return ".".join(
        [*parts, rng.choice(WORDS) + rng.choice(("", "corp", "net", "hub")), rng.choice(TLDS)]
    )


def _path(rng: random.Random) -> str:
    shape = rng.random()
    if shape < 0.35:  # an asset with a content hash
        name = "".join(rng.choices("0123456789abcdef", k=rng.choice((8, 16, 20))))
        ext = rng.choice(("js", "css", "png", "jpg", "woff2", "svg", "webp"))
        return f"/{rng.choice(WORDS)}/{rng.choice(WORDS)}/{rng.choice(WORDS)}.{name}.{ext}"
    if shape < 0.65:  # an API call with ids; Squid keeps the "?" and strips the query
        ident = rng.randint(1, 10**9)
        tail = rng.choice(("", "?", f"/{rng.choice(WORDS)}", f"/{rng.choice(WORDS)}?"))
        return f"/api/v{rng.randint(1, 3)}/{rng.choice(WORDS)}/{ident}{tail}"
    depth = rng.randint(1, 4)  # a page
    slug = "-".join(rng.choices(WORDS, k=rng.randint(1, 5)))
    dirs = "/".join(rng.choice(WORDS) for _ in range(depth))
    return f"/{dirs}/{slug}" + rng.choice(("", ".html", "/", "?"))


@dataclass
class Traffic:
    rng: random.Random
    hosts: list[str]
    weights: list[float]
    users: list[str]
    inspect_share: float
    xaction: int = 0

    @staticmethod
    def make(seed: int, *, inspect_share: float) -> Traffic:
        rng = random.Random(seed)  # noqa: S311 - test data, not security
        hosts = sorted({_host(rng) for _ in range(4000)})
        weights = [1.0 / (rank + 1) ** 0.9 for rank in range(len(hosts))]
        users = [
            "".join(rng.choices(string.ascii_lowercase, k=rng.randint(4, 10))) for _ in range(300)
        ]
        return Traffic(rng, hosts, weights, users, inspect_share)

    def lines(self, second: float) -> tuple[str, str | None]:
        """One Squid access line and, when the response was scanned, one c-icap line."""
        rng = self.rng
        self.xaction += 1
        start_ms = int(second * 1000)
        duration = max(0, int(rng.lognormvariate(4.0, 1.3)))
        end_ms = start_ms + duration
        pod = f"10.244.{rng.randint(0, 3)}.{rng.randint(2, 250)}"
        rid = f"{start_ms // 1000}.{start_ms % 1000:03d}-{pod}-{self.xaction}"
        host = rng.choices(self.hosts, self.weights)[0]
        client = f"10.20.{rng.randint(0, 15)}.{rng.randint(1, 254)}"
        user = rng.choice(self.users) if rng.random() < 0.3 else "-"
        https = rng.random() < 0.85
        tunnel = https and rng.random() > self.inspect_share
        blocked = rng.random() < 0.03
        listed = not blocked and rng.random() < 0.02
        if tunnel:
            method, url, ctype = "CONNECT", f"{host}:443", "-"
        else:
            method = rng.choices(("GET", "POST", "HEAD", "PUT"), (85, 12, 2, 1))[0]
            url = f"{'https' if https else 'http'}://{host}{_path(rng)}"
            ctype = rng.choice(CONTENT_TYPES)
        if blocked:
            decision, matched, category, status, squid = (
                "block",
                "category",
                rng.choice(("gambling", "malware", "adult", "phishing")),
                403,
                "TCP_DENIED",
            )
        else:
            decision = "allow"
            matched = "allow-domain" if listed else "default"
            category, squid = "-", "TCP_MISS"
            status = (
                200
                if tunnel
                else rng.choices((200, 204, 301, 302, 304, 404, 500), (80, 3, 3, 5, 4, 4, 1))[0]
            )
        scanned = not tunnel and not blocked and method != "HEAD"
        size_out = 0 if blocked else int(rng.lognormvariate(8.5, 2.0))
        raw = {
            "v": 1,
            "t": f"{end_ms // 1000}.{end_ms % 1000:03d}",
            "start": f"{start_ms // 1000}.{start_ms % 1000:03d}",
            "rid": rid,
            "icap": rid if scanned else "-",
            "client": client,
            "user": user,
            "method": method,
            "url": url,
            "status": str(status),
            "out": str(size_out),
            "in": str(rng.randint(80, 900)),
            "ms": str(duration),
            "squid": squid,
            "hier": "HIER_NONE" if blocked else "HIER_DIRECT",
            "ctype": ctype,
            "decision": decision,
            "category": category,
            "list": matched,
            "policy": "tenant",
            "err": "ERR_BLOCKED_CATEGORY" if blocked else "-",
            "av": "-",
            "sni": host if https else "-",
            "bump": ("splice" if tunnel else "bump") if https else "-",
        }
        squid_line = json.dumps(raw, separators=(",", ":"))
        if not scanned:
            return squid_line, None
        direction = "REQMOD" if method in ("POST", "PUT") and rng.random() < 0.5 else "RESPMOD"
        icap_status = "204" if rng.random() < 0.7 else "200"
        cicap_line = "\t".join(
            (
                str(end_ms // 1000),
                rid,
                client,
                "-",
                direction,
                icap_status,
                "passed",
                "-",
                str(size_out),
                "0",
                url,
            )
        )
        return squid_line, cicap_line


@dataclass
class Tally:
    records: int = 0
    raw: bytearray = field(default_factory=bytearray)


def measure(requests: int, *, seed: int, inspect_share: float) -> dict[str, object]:
    traffic = Traffic.make(seed, inspect_share=inspect_share)
    tallies: dict[LogType, Tally] = {t: Tally() for t in LogType if t is not LogType.SANDBOX}
    for n in range(requests):
        squid_line, cicap_line = traffic.lines(DAY_START + n * 86_000 / requests)
        produced = parse_line(SourceKind.SQUID_ACCESS, squid_line)
        if cicap_line is not None:
            produced += parse_line(SourceKind.CICAP_ANTIVIRUS, cicap_line)
        for record in produced:
            line = encode(finalise(record, tenant="customer-a", service_code="SWG-0001234"))
            tally = tallies[LogType(str(record["type"]))]
            tally.records += 1
            tally.raw += line
    out: dict[str, object] = {"requests": requests, "seed": seed, "inspectShare": inspect_share}
    total_raw = total_gz = 0
    for log_type, tally in tallies.items():
        compressed = len(gzip.compress(bytes(tally.raw), compresslevel=6, mtime=0))
        total_raw += len(tally.raw)
        total_gz += compressed
        out[log_type.value] = {
            "records": tally.records,
            "bytesPerRecord": round(len(tally.raw) / tally.records, 1) if tally.records else 0,
            "bytesPerRequest": round(len(tally.raw) / requests, 1),
            "gzipPercent": round(100 * compressed / len(tally.raw), 1) if tally.raw else 0,
        }
    out["allTypes"] = {
        "bytesPerRequest": round(total_raw / requests, 1),
        "gzipPercent": round(100 * total_gz / total_raw, 1),
    }
    return out


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def throughput(requests: int, *, seed: int, inspect_share: float) -> dict[str, object]:
    """Ship `requests` transactions' raw lines through a real shipper and store (Linux)."""
    traffic = Traffic.make(seed, inspect_share=inspect_share)
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="swg-logstore-measure-") as tmp:
        work = Path(tmp)
        access, av = work / "access.jsonl", work / "av.log"
        lines = 0
        with access.open("w") as squid_out, av.open("w") as cicap_out:
            for n in range(requests):
                squid_line, cicap_line = traffic.lines(now - 600 + n * 0.001)
                squid_out.write(squid_line + "\n")
                lines += 1
                if cicap_line is not None:
                    cicap_out.write(cicap_line + "\n")
                    lines += 1
        sizes = {"squid-access": access.stat().st_size, "cicap-antivirus": av.stat().st_size}
        http_port, ingest_port = _free_port(), _free_port()
        python = [sys.executable, "-m", "swg_logstore"]
        serve = [*python, "serve", "--root", str(work / "store"), "--tenant", "t"]
        serve += ["--service-code", "S", "--host", "127.0.0.1", "--http-port", str(http_port)]
        serve += ["--ingest-port", str(ingest_port)]
        store = subprocess.Popen(serve, stderr=subprocess.DEVNULL)
        shipper: subprocess.Popen[bytes] | None = None
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            started = time.monotonic()
            ship = [*python, "ship", "--store", f"http://127.0.0.1:{ingest_port}"]
            ship += ["--source", f"squid-access={access}", "--source", f"cicap-antivirus={av}"]
            ship += ["--state-dir", str(work / "shipper")]
            shipper = subprocess.Popen(ship, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 600
            while time.monotonic() < deadline:
                try:
                    done = all(
                        json.loads((work / "shipper" / f"{kind}.json").read_text())["offset"]
                        == size
                        for kind, size in sizes.items()
                    )
                except (OSError, ValueError, KeyError):
                    done = False
                if done:
                    break
                time.sleep(0.05)
            wall = time.monotonic() - started
            store_cpu, shipper_cpu = _cpu_seconds(store.pid), _cpu_seconds(shipper.pid)
            return {
                "requests": requests,
                "rawLines": lines,
                "wallSeconds": round(wall, 2),
                "storeCpuSeconds": store_cpu,
                "shipperCpuSeconds": shipper_cpu,
                "storeLinesPerCpuSecond": round(lines / store_cpu),
                "shipperLinesPerCpuSecond": round(lines / shipper_cpu),
                "storePeakRssKiB": _peak_rss_kib(store.pid),
                "shipperPeakRssKiB": _peak_rss_kib(shipper.pid),
            }
        finally:
            for proc in (shipper, store):
                if proc is not None:
                    proc.kill()
                    proc.wait()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.logstore_measure")
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--inspect-share", type=float, default=0.4, help="share of HTTPS inspected")
    parser.add_argument(
        "--throughput", action="store_true", help="run a real shipper and store and time them"
    )
    args = parser.parse_args(argv)
    if args.throughput:
        result = throughput(args.requests, seed=args.seed, inspect_share=args.inspect_share)
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    json.dump(
        measure(args.requests, seed=args.seed, inspect_share=args.inspect_share),
        sys.stdout,
        indent=2,
    )
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
