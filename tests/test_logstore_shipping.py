"""Shipping with real processes: a writer appending Squid and c-icap lines the way they do
(one write per record, O_APPEND), the shipper and the log store as separate processes, both
killed with SIGKILL again and again while records flow (each kill waits until the pair stored
more since the last one). Then: every record stored, none twice. Bounded: a few thousand records
on 127.0.0.1, well under a minute."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from devtools.processes import Proc, free_port, wait_for, wait_http

from logformat_samples import CICAP_CLEAN, SQUID_CLEAN

RECORDS = 3000
WRITER = r"""
import os, sys, time
access, av, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
squid, cicap = sys.stdin.read().split("\n", 1)
fa = os.open(access, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
fv = os.open(av, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
for n in range(count):
    rid = f"1795708981.145-127.0.0.1-{n}"
    os.write(fa, (squid.replace("1795708981.145-127.0.0.1-54", rid)
                  .replace("hello.txt", f"file-{n}") + "\n").encode())
    os.write(fv, (cicap.replace("1795708981.145-127.0.0.1-54", rid) + "\n").encode())
    if n % 20 == 0:
        time.sleep(0.02)
"""


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for proc in started:
        proc.kill()


def _download(http_port: int, log_type: str) -> list[dict[str, object]]:
    url = f"http://127.0.0.1:{http_port}/v1/logs?type={log_type}&from=2026-11-26&to=2026-11-26"
    with urllib.request.urlopen(url, timeout=30) as response:
        return [json.loads(line) for line in response.read().splitlines()]


def test_kill_store_and_shipper_while_records_flow(tmp_path: Path, procs: list[Proc]) -> None:
    http_port, ingest_port = free_port(), free_port()
    access, av = tmp_path / "pod" / "access.jsonl", tmp_path / "pod" / "av.log"
    access.parent.mkdir()
    python = [sys.executable, "-m", "swg_logstore"]
    store = Proc(
        [
            *python, "serve", "--root", str(tmp_path / "store"), "--tenant", "acme",
            "--service-code", "SWG-1", "--retention-days", "90", "--host", "127.0.0.1",
            "--http-port", str(http_port), "--ingest-port", str(ingest_port),
        ],
        tmp_path / "store.log",
    )  # fmt: skip
    shipper = Proc(
        [
            *python, "ship", "--store", f"http://127.0.0.1:{ingest_port}",
            "--source", f"squid-access={access}", "--source", f"cicap-antivirus={av}",
            "--state-dir", str(tmp_path / "pod" / "shipper"), "--batch-bytes", "8192",
            "--poll-interval", "0.02", "--linger", "0.5",
        ],
        tmp_path / "shipper.log",
    )  # fmt: skip
    procs += [store, shipper]
    store.start()
    wait_http(f"http://127.0.0.1:{http_port}/healthz")
    shipper.start()
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(access), str(av), str(RECORDS)],
        stdin=subprocess.PIPE,
    )
    assert writer.stdin is not None
    writer.stdin.write(f"{SQUID_CLEAN}\n{CICAP_CLEAN}".encode())
    writer.stdin.close()

    state_file = tmp_path / "pod" / "shipper" / "squid-access.json"

    def stored_offset() -> int:
        """How far the store has acknowledged the access log (the shipper's saved offset)."""
        try:
            return int(json.loads(state_file.read_text())["offset"])
        except (FileNotFoundError, ValueError, KeyError):
            return 0

    def all_stored() -> bool:
        return writer.poll() is not None and stored_offset() == access.stat().st_size

    kills = Counter[str]()
    shipper_starts = 1
    turn = 0
    while writer.poll() is None or turn < 6:
        reached = stored_offset()
        wait_for(
            lambda: stored_offset() > reached or all_stored(),  # noqa: B023 (called at once)
            "the shipper and the store to store more records",
        )
        victim = (store, shipper)[turn % 2]
        victim.restart()
        kills[victim.argv[3]] += 1
        shipper_starts += victim is shipper
        turn += 1
    assert writer.wait(timeout=60) == 0
    wait_http(f"http://127.0.0.1:{http_port}/healthz")

    # Drain: SIGTERM makes the shipper finish what is written, then exit by itself. It handles
    # SIGTERM once it has logged that it started.
    assert shipper.process is not None
    wait_for(
        lambda: (tmp_path / "shipper.log").read_text().count("Shipper started") == shipper_starts,
        "the restarted shipper to start",
    )
    shipper.process.send_signal(signal.SIGTERM)
    assert shipper.process.wait(timeout=60) == 0

    access_records = _download(http_port, "access")
    av_records = _download(http_port, "antivirus")
    for records in (access_records, av_records):
        ids = Counter(str(r["id"]) for r in records)
        assert len(ids) == RECORDS, f"lost {RECORDS - len(ids)}"
        assert max(ids.values()) == 1, f"stored twice: {[i for i, c in ids.items() if c > 1][:5]}"
    assert {r["url"] for r in access_records} == {
        f"http://clean.test/files/file-{n}" for n in range(RECORDS)
    }
    assert {r["requestId"] for r in access_records} == {r["requestId"] for r in av_records}
    assert "malformed" not in (tmp_path / "shipper.log").read_text()
    assert kills["serve"] >= 3
    assert kills["ship"] >= 3

    # Shipped bytes were given back to the filesystem (where it can punch holes).
    state = json.loads((tmp_path / "pod" / "shipper" / "squid-access.json").read_text())
    assert state["offset"] == access.stat().st_size
    if state["punched"]:
        assert os.stat(access).st_blocks * 512 < access.stat().st_size // 2
