"""The log store's HTTP side (aiohttp): two listeners on two ports.

* `http` (downloads; the port the Kubernetes API server's service proxy reaches):
  `GET /v1/logs?type=access&from=YYYY-MM-DD&to=YYYY-MM-DD[&format=ndjson|tar]`,
  `GET /v1/days?type=access`, `GET /healthz`.
* `metrics` (the platform's Prometheus, admitted from the monitoring namespace the operator's
  settings name): `GET /metrics` (swg_logstore.metrics), `GET /healthz`. Nothing else is
  served there, so scraping never reaches the logs.
* `ingest` (records from the shippers in the proxy and anti-virus pods only; NetworkPolicy
  admits nothing else): `POST /v1/ingest`, `GET /healthz`.

Separate ports keep the two audiences apart: a customer admin's `services/proxy` right is for
GET on the `http` port; shippers never need downloads. File work runs in threads so a large
download does not stall ingestion.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Final

from aiohttp import web
from aiohttp.typedefs import Handler
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from swg_logstore.batch import Batch, BatchError
from swg_logstore.export import DaySnapshot, ndjson_chunks, tar_chunks
from swg_logstore.formats import LogType
from swg_logstore.logs import REQUEST_ID_HEADER, new_request_id
from swg_logstore.metrics import DataPlaneMetrics
from swg_logstore.store import LogStore

Clock = Callable[[], datetime]
MAX_BATCH_BYTES: Final = 32 * 1024 * 1024
HOP_BYTES: Final = 512 * 1024  # bytes read per worker-thread hop while streaming
STORE_KEY: Final = web.AppKey("store", LogStore)
CLOCK_KEY: Final[web.AppKey[Clock]] = web.AppKey("clock")
METRICS_KEY: Final = web.AppKey("metrics", DataPlaneMetrics)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _take(chunks: Iterator[bytes]) -> bytes:
    """Up to HOP_BYTES of the next chunks (b"" at the end)."""
    out: list[bytes] = []
    size = 0
    for chunk in chunks:
        out.append(chunk)
        size += len(chunk)
        if size >= HOP_BYTES:
            break
    return b"".join(out)


def _log_type(request: web.Request) -> LogType:
    value = request.query.get("type", "")
    try:
        return LogType(value)
    except ValueError:
        choices = ", ".join(t.value for t in LogType)
        raise web.HTTPBadRequest(text=f"type: expected one of {choices}") from None


def _day(request: web.Request, name: str, default: date) -> date:
    value = request.query.get(name)
    if value is None:
        return default
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise web.HTTPBadRequest(text=f"{name}: expected a date YYYY-MM-DD") from None


# --- request ids and the access log -----------------------------------------------------------

log = logging.getLogger(__name__)
REQUEST_ID_KEY: Final = web.RequestKey("request_id", str)


def _log_answer(request: web.Request, status: int, started: float) -> None:
    if status < 400 and request.path != "/v1/logs":
        return
    log.log(
        logging.WARNING if status >= 500 else logging.INFO,
        "Log store answered %s %s with %d",
        request.method,
        request.path,
        status,
        extra={
            "request_id": request[REQUEST_ID_KEY],
            "method": request.method,
            "path": request.path,
            "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000),
        },
    )


@web.middleware
async def request_log(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Give every exchange a request id (the caller's `X-Request-Id`, or a new one), answer with
    it, and log downloads and failures with it (successful ingests are too many to log)."""
    request_id = request.headers.get(REQUEST_ID_HEADER) or new_request_id()
    request[REQUEST_ID_KEY] = request_id
    started = time.monotonic()
    try:
        response = await handler(request)
    except web.HTTPException as err:
        err.headers[REQUEST_ID_HEADER] = request_id
        _log_answer(request, err.status, started)
        raise
    except Exception as err:
        log.warning(
            "Log store failed %s %s: %s",
            request.method,
            request.path,
            err,
            extra={"request_id": request_id, "method": request.method, "path": request.path},
        )
        raise
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
    _log_answer(request, response.status, started)
    return response


# --- handlers ---------------------------------------------------------------------------------


async def healthz(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    return web.json_response({"status": "ok", "tenant": store.config.tenant})


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[METRICS_KEY].registry
    body = await asyncio.to_thread(generate_latest, registry)  # walks the log volume
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


def attach_metrics(store: LogStore) -> DataPlaneMetrics:
    """The store's registry, fed with every record the store keeps from now on."""
    figures = DataPlaneMetrics(
        store.config.tenant, store.root, counters=lambda: asdict(store.counters)
    )
    store.observer = figures.observe
    return figures


async def list_days(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    log_type = _log_type(request)
    days = await asyncio.to_thread(store.day_sizes, log_type)
    return web.json_response({"type": log_type.value, "days": days})


async def download(request: web.Request) -> web.StreamResponse:
    store = request.app[STORE_KEY]
    log_type = _log_type(request)
    today = store.today(request.app[CLOCK_KEY]())
    last = _day(request, "to", today)
    first = _day(request, "from", last)
    if first > last:
        raise web.HTTPBadRequest(text="from: must not be after to")
    form = request.query.get("format", "ndjson")
    if form not in ("ndjson", "tar"):
        raise web.HTTPBadRequest(text="format: expected ndjson or tar")
    snapshots: list[DaySnapshot] = await asyncio.to_thread(store.snapshot, log_type, first, last)
    try:
        stem = f"{store.config.tenant}-{log_type.value}-{first.isoformat()}-{last.isoformat()}"
        response = web.StreamResponse(
            headers={
                "Content-Type": "application/x-ndjson" if form == "ndjson" else "application/x-tar",
                "Content-Disposition": f'attachment; filename="{stem}.{form}"',
                "X-SWG-Days": str(len(snapshots)),
                "X-SWG-Stored-Bytes": str(sum(p.size for s in snapshots for p in s.parts)),
                "X-SWG-Time-Zone": store.config.time_zone,
                "Cache-Control": "no-store",
                REQUEST_ID_HEADER: request[REQUEST_ID_KEY],
            }
        )
        if form == "ndjson":
            response.enable_compression()  # gzip when the client accepts it
        await response.prepare(request)
        chunks = ndjson_chunks(snapshots) if form == "ndjson" else tar_chunks(snapshots)
        while data := await asyncio.to_thread(_take, chunks):
            await response.write(data)
        await response.write_eof()
        return response
    finally:
        for snap in snapshots:
            snap.close()


async def ingest(request: web.Request) -> web.Response:
    store = request.app[STORE_KEY]
    if request.content_length is not None and request.content_length > MAX_BATCH_BYTES:
        return _error(413, f"batch larger than {MAX_BATCH_BYTES} bytes")
    try:
        body = json.loads(await request.read())
        batch = Batch.from_json(body)
    except (ValueError, BatchError) as err:
        return _error(400, str(err))
    try:
        result = await asyncio.to_thread(store.ingest, batch, now=request.app[CLOCK_KEY]())
    except OSError as err:
        log.error(
            "Log store failed to write a batch: %s",
            err,
            extra={"request_id": request[REQUEST_ID_KEY], "stream": batch.stream},
        )
        return _error(503, "the log store could not write the batch; retry")
    return web.json_response(asdict(result))


# --- applications -----------------------------------------------------------------------------


def download_app(store: LogStore, *, clock: Clock = utcnow) -> web.Application:
    app = web.Application(middlewares=[request_log])
    app[STORE_KEY] = store
    app[CLOCK_KEY] = clock
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/v1/days", list_days)
    app.router.add_get("/v1/logs", download)
    return app


def metrics_app(store: LogStore, figures: DataPlaneMetrics) -> web.Application:
    app = web.Application()
    app[STORE_KEY] = store
    app[METRICS_KEY] = figures
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/metrics", metrics)
    return app


def ingest_app(store: LogStore, *, clock: Clock = utcnow) -> web.Application:
    app = web.Application(client_max_size=MAX_BATCH_BYTES, middlewares=[request_log])
    app[STORE_KEY] = store
    app[CLOCK_KEY] = clock
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/v1/ingest", ingest)
    return app


async def maintain_forever(store: LogStore, *, clock: Clock, interval: float) -> None:
    while True:
        try:
            await asyncio.to_thread(store.maintain, now=clock())
        except OSError as err:
            log.error("Log store maintenance failed: %s", err)
        await asyncio.sleep(interval)


async def serve(
    store: LogStore,
    *,
    host: str,
    http_port: int,
    ingest_port: int,
    metrics_port: int | None = None,
    clock: Clock = utcnow,
    maintenance_interval: float = 60.0,
) -> None:
    """Run the listeners and the maintenance loop until SIGTERM or SIGINT."""
    figures = attach_metrics(store)
    runners = [web.AppRunner(download_app(store, clock=clock), access_log=None)]
    runners.append(web.AppRunner(ingest_app(store, clock=clock), access_log=None))
    ports = [http_port, ingest_port]
    if metrics_port is not None:
        runners.append(web.AppRunner(metrics_app(store, figures), access_log=None))
        ports.append(metrics_port)
    for runner, port in zip(runners, ports, strict=True):
        await runner.setup()
        await web.TCPSite(runner, host, port, shutdown_timeout=5).start()
    log.info(
        "Log store listened on %s:%d (http) and %s:%d (ingest)", host, http_port, host, ingest_port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    maintenance = asyncio.create_task(
        maintain_forever(store, clock=clock, interval=maintenance_interval)
    )
    try:
        await stop.wait()
    finally:
        maintenance.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await maintenance
        for runner in runners:
            await runner.cleanup()
