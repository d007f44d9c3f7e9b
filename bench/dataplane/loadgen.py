"""wrk inside a stack's namespace, with a Lua script that prints the figures as JSON.

For a proxied case wrk connects to Squid and sends the absolute URL in the request line (what a
browser configured with a proxy sends); for the direct case it asks the origin itself.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

from e2e.dataplane.netns import NetNamespace

_MARK = "@@swg-bench@@"

# wrk calls done() once with the merged statistics of every thread.
_LUA = """\
wrk.method = "GET"
wrk.path = "{path}"
wrk.headers["Host"] = "{host}"
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d}},' ..
    '"latency_us":{{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%.1f}}}}\\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
"""


@dataclass(frozen=True)
class WrkParams:
    threads: int = 2
    connections: int = 32
    duration_s: int = 10
    timeout_s: int = 10


@dataclass(frozen=True)
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]
    latency_ms: dict[str, float]

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    def as_json(self) -> dict[str, object]:
        return asdict(self) | {"rps": round(self.rps, 1)}


def wrk_version() -> str:
    proc = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False)
    return (proc.stdout + proc.stderr).strip().splitlines()[0]


def lua_script(directory: Path, *, name: str, host: str, path: str) -> Path:
    script = directory / f"{name}.lua"
    script.write_text(_LUA.format(path=path, host=host, mark=_MARK))
    return script


class Wrk:
    """A started wrk process; :meth:`result` waits for it."""

    def __init__(
        self, netns: NetNamespace, *, target: str, script: Path, params: WrkParams
    ) -> None:
        argv = [
            "wrk",
            f"-t{params.threads}",
            f"-c{params.connections}",
            f"-d{params.duration_s}s",
            f"--timeout={params.timeout_s}s",
            "-s",
            str(script),
            target,
        ]
        self.params = params
        self.process = subprocess.Popen(
            netns.argv(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.process.pid

    def result(self) -> WrkResult:
        bound = self.params.duration_s + self.params.timeout_s + 30
        stdout, stderr = self.process.communicate(timeout=bound)
        for line in stdout.splitlines():
            if line.startswith(_MARK):
                data = json.loads(line.removeprefix(_MARK))
                latency = {k: round(v / 1000, 3) for k, v in data["latency_us"].items()}
                return WrkResult(
                    requests=data["requests"],
                    duration_s=data["duration_us"] / 1e6,
                    bytes=data["bytes"],
                    errors=data["errors"],
                    latency_ms=latency,
                )
        raise RuntimeError(f"wrk printed no figures (exit {self.process.returncode}): {stderr}")
