"""Transient errors of one operator run, from three sources that do not depend on how the
operator is built: its log, the API server's audit log and its own request counter.

A clean run has none: no request left without an answer (a timeout, a dropped or refused
connection, a request that waited too long for one of the client's connections), no 429 and no
5xx. Conflicts (409) and kopf's retries are reported beside them, as context.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bench.provision.audit import Request

# One category per log line, the first that matches.
LOG_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "noAnswer",
        re.compile(
            r"NoAnswer|TimeoutError|ServerTimeoutError|ServerDisconnected|ClientConnectorError"
            r"|ClientOSError|ConnectionResetError|ConnectionRefusedError|connection pool"
            r"|CancelledError",
            re.I,
        ),
    ),
    # A status code, not the milliseconds of a log line's time stamp ("21:46:21,429").
    ("throttled", re.compile(r"(?<![\d,.:])429\b|TooManyRequests|Too Many Requests")),
    (
        "serverError",
        re.compile(r"\b50[0-4] [A-Z]|InternalError|ServiceUnavailable|ServerTimeout"),
    ),
)
CONTEXT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("conflict", re.compile(r"\b409 [A-Z]|Conflict\b")),
    ("kopfTemporaryFailure", re.compile(r"failed temporarily")),
)
TRANSIENT_CODES = frozenset({429, 500, 502, 503, 504})


def scan_log(lines: Iterable[str]) -> dict[str, int]:
    """Lines of the operator's log per category of `LOG_PATTERNS` and `CONTEXT_PATTERNS`."""
    counts = dict.fromkeys([name for name, _ in LOG_PATTERNS + CONTEXT_PATTERNS], 0)
    for line in lines:
        for name, pattern in LOG_PATTERNS:
            if pattern.search(line):
                counts[name] += 1
                break
        for name, pattern in CONTEXT_PATTERNS:
            if pattern.search(line):
                counts[name] += 1
    return counts


def adapter_errors(metrics: Mapping[str, float]) -> int:
    """Requests the operator counted as unanswered (code 0), throttled or failed by the server
    in `swg_operator_api_requests_total` (0 if it does not export that counter)."""
    total = 0.0
    for key, value in metrics.items():
        if not key.startswith("swg_operator_api_requests_total"):
            continue
        code = re.search(r'code="(\d+)"', key)
        if code and (code.group(1) == "0" or int(code.group(1)) in TRANSIENT_CODES):
            total += value
    return int(total)


def transient_errors(
    log_text: str, requests: Iterable[Request], metrics: Mapping[str, float]
) -> dict[str, Any]:
    """The operator's transient errors: lines of its log (`log_text`, this run's), the audit
    log's 429/5xx answers to it (`requests`, the operator's own) and its request counter
    (`metrics`, at the end)."""
    in_log = scan_log(log_text.splitlines())
    audited = sum(1 for r in requests if r.code in TRANSIENT_CODES)
    counted = adapter_errors(metrics)
    logged = sum(in_log[name] for name, _ in LOG_PATTERNS)
    return {
        "logLines": logged,
        "log": in_log,
        "auditTransientAnswers": audited,
        "adapterCounter": counted,
        "clean": logged == 0 and audited == 0 and counted == 0,
    }
