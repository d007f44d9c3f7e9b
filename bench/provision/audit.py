"""API requests per client, read from the API server's audit log.

`apiserver_request_total` counts every client together (kwok, the controllers, the harness); the
audit log names the user and the user agent of each request. The benchmark's API server logs
(level Metadata) only the operator's and the floor's ServiceAccounts, one record per request
(stage ResponseComplete; a watch also has ResponseStarted, which is what is counted for watches,
since a watch still open when the log is read has no ResponseComplete yet).
"""

from __future__ import annotations

import datetime
import json
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MUTATING = frozenset({"create", "update", "patch", "delete", "deletecollection"})


@dataclass(frozen=True, slots=True)
class Request:
    user: str
    verb: str
    resource: str  # "deployments", "securewebgateways/status", ...
    client: str  # "kopf" (kopf's own calls) or "adapter" (the operator's aiohttp adapter) ...
    code: int
    at: float  # epoch seconds the API server received it


def _client(user_agent: str) -> str:
    if user_agent.startswith("kopf/"):
        return "kopf"
    if "aiohttp" in user_agent:
        return "adapter"
    return user_agent.split("/")[0] or "unknown"


def _epoch(stamp: str) -> float:
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def parse_event(event: dict[str, Any]) -> Request | None:
    stage, verb = event.get("stage"), event.get("verb", "")
    counted = "ResponseStarted" if verb == "watch" else "ResponseComplete"
    if stage != counted and stage != "Panic":
        return None
    ref = event.get("objectRef") or {}
    resource = ref.get("resource") or event.get("requestURI", "").split("?")[0]
    if ref.get("subresource"):
        resource = f"{resource}/{ref['subresource']}"
    # Interned: a run at 10,000 tenants keeps millions of these, with a few dozen distinct
    # strings among them.
    return Request(
        user=sys.intern((event.get("user") or {}).get("username", "")),
        verb=sys.intern(verb),
        resource=sys.intern(str(resource)),
        client=sys.intern(_client(event.get("userAgent", ""))),
        code=int((event.get("responseStatus") or {}).get("code", 0)),
        at=_epoch(event["requestReceivedTimestamp"]),
    )


def read_requests(path: Path) -> list[Request]:
    """Every request recorded in the audit log at `path` (a missing log is no request)."""
    found: list[Request] = []
    if not path.exists():
        return found
    with path.open() as log:
        for line in log:
            line = line.strip()
            if not line:
                continue
            try:
                event = json.loads(line)
            except ValueError:  # the last line may be half written
                continue
            request = parse_event(event)
            if request is not None:
                found.append(request)
    return found


def window(
    requests: Iterable[Request], *, user: str, start: float, end: float | None = None
) -> Iterator[Request]:
    for r in requests:
        if r.user == user and r.at >= start and (end is None or r.at < end):
            yield r


def summary(requests: Iterable[Request], *, per: int = 1) -> dict[str, Any]:
    """Counts by verb, by verb and resource, by client and by status code, and the mutating
    total; each also divided by `per` (the number of tenants) where `per` > 1."""
    listed = list(requests)
    by_verb = Counter(r.verb for r in listed)
    by_resource = Counter(f"{r.verb} {r.resource}" for r in listed)
    by_client = Counter(f"{r.client} {r.verb}" for r in listed)
    codes = Counter(str(r.code) for r in listed)
    mutating = sum(n for verb, n in by_verb.items() if verb in MUTATING)
    result: dict[str, Any] = {
        "total": len(listed),
        "mutating": mutating,
        "byVerb": dict(sorted(by_verb.items())),
        "byVerbAndResource": dict(sorted(by_resource.items())),
        "byClientAndVerb": dict(sorted(by_client.items())),
        "byCode": dict(sorted(codes.items())),
    }
    if per > 1:
        result["perTenant"] = {
            "total": round(len(listed) / per, 2),
            "mutating": round(mutating / per, 2),
            "byVerb": {verb: round(n / per, 2) for verb, n in sorted(by_verb.items())},
            "byVerbAndResource": {key: round(n / per, 2) for key, n in sorted(by_resource.items())},
        }
    return result


def last_write(requests: Iterable[Request], *, user: str) -> float | None:
    """When `user` last made a mutating request (epoch seconds), None if never."""
    times = [r.at for r in requests if r.user == user and r.verb in MUTATING]
    return max(times) if times else None
