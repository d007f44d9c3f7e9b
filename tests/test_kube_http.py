"""The real adapter's handling of the API server's answers, against a small HTTP server on
127.0.0.1: a rotated token (401) is read again without disturbing the requests in flight, and
`Retry-After` and 410 reach the reconcile as a transient error."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import Any

import kopf
import pytest
from aiohttp import web

from swg_operator.kube import KubeApiError
from swg_operator.kube.http import DATE_REUSE_SECONDS, HttpKubeApi, retry_after
from swg_operator.kube.kinds import NAMESPACE
from swg_operator.reconcile.context import TransientError, guard

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def serve(handler: Handler) -> tuple[web.AppRunner, str]:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def test_a_401_reads_the_credentials_again_and_keeps_the_requests_in_flight() -> None:
    async def scenario() -> None:
        valid = {"token": "old"}
        release = asyncio.Event()
        arrived = asyncio.Event()

        async def handler(request: web.Request) -> web.StreamResponse:
            if request.headers.get("Authorization") != f"Bearer {valid['token']}":
                return web.json_response({"reason": "Unauthorized", "message": "no"}, status=401)
            name = request.path.rsplit("/", 1)[-1]
            if name == "slow":
                arrived.set()
                await release.wait()
            return web.json_response(namespace(name))

        runner, url = await serve(handler)
        logins: list[str] = []

        def relogin() -> kopf.ConnectionInfo:
            logins.append(valid["token"])
            return kopf.ConnectionInfo(server=url, token=valid["token"])

        kube = HttpKubeApi(kopf.ConnectionInfo(server=url, token="old"), relogin=relogin)
        try:
            slow = asyncio.create_task(kube.get(NAMESPACE, "slow"))
            await arrived.wait()
            valid["token"] = "new"  # the projected token rotated
            fast = await asyncio.gather(*(kube.get(NAMESPACE, f"ns-{n}") for n in range(3)))
            assert [ns["metadata"]["name"] for ns in fast if ns] == ["ns-0", "ns-1", "ns-2"]
            release.set()
            done = await slow  # still answered: the session was not closed under it
            assert done is not None
            assert done["metadata"]["name"] == "slow"
            assert logins == ["new"]  # read once, by the first request to hear the 401
        finally:
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_throttling_and_gone_are_transient_and_retry_after_is_kept() -> None:
    async def scenario() -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            if request.path.endswith("/busy"):
                body = {"reason": "TooManyRequests", "message": "slow down"}
                return web.json_response(body, status=429, headers={"Retry-After": "7"})
            return web.json_response({"reason": "Expired", "message": "too old"}, status=410)

        runner, url = await serve(handler)
        kube = HttpKubeApi(kopf.ConnectionInfo(server=url, token="t"))
        try:
            for name, after in (("busy", 7.0), ("gone", None)):
                with pytest.raises(TransientError) as caught:
                    await guard(kube.get(NAMESPACE, name))
                assert caught.value.retry_after == after
        finally:
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_retry_after_reads_seconds_only() -> None:
    assert retry_after("3") == 3.0
    assert retry_after("-1") == 0.0
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") is None
    assert retry_after(None) is None
    assert KubeApiError(410, "gone").transient


def test_the_server_clock_comes_from_an_answer_just_heard_else_from_a_request() -> None:
    """A notice or a purge check right after another request costs no GET of /version: the
    Date header just heard, plus the time elapsed since on the monotonic clock."""

    async def scenario() -> None:
        paths: list[str] = []
        dates = iter(["Sat, 05 Dec 2026 12:00:00 GMT", "Sat, 05 Dec 2026 12:00:30 GMT"])

        async def handler(request: web.Request) -> web.StreamResponse:
            paths.append(request.path)
            response = web.json_response(namespace("ns") if "namespaces" in request.path else {})
            response.headers["Date"] = next(dates)
            return response

        runner, url = await serve(handler)
        now = [100.0]
        kube = HttpKubeApi(kopf.ConnectionInfo(server=url), monotonic=lambda: now[0])
        try:
            await kube.get(NAMESPACE, "ns")
            now[0] += 4.5
            heard = await kube.server_time()
            assert heard == datetime.datetime(2026, 12, 5, 12, 0, 4, 500000, tzinfo=datetime.UTC)
            assert paths == ["/api/v1/namespaces/ns"]  # no request for the clock
            now[0] += DATE_REUSE_SECONDS  # too old now: asked again
            asked = await kube.server_time()
            assert asked == datetime.datetime(2026, 12, 5, 12, 0, 30, tzinfo=datetime.UTC)
            assert paths == ["/api/v1/namespaces/ns", "/version"]
        finally:
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_an_unreadable_date_header_is_an_api_error_not_a_crash() -> None:
    async def scenario() -> None:
        async def handler(request: web.Request) -> web.StreamResponse:
            response = web.json_response({})
            response.headers["Date"] = "yesterday"
            return response

        runner, url = await serve(handler)
        kube = HttpKubeApi(kopf.ConnectionInfo(server=url))
        try:
            with pytest.raises(KubeApiError, match="unreadable Date header 'yesterday'"):
                await kube.server_time()
        finally:
            await kube.close()
            await runner.cleanup()

    asyncio.run(scenario())


def test_an_applied_object_comes_back_without_its_managed_fields() -> None:
    """The answer to an apply is kept (the reconcile's status, the watch cache until the watch
    reports the write) while many others are made: without `managedFields`, which the
    operator never reads and which hold the field set of every manager of the object."""

    async def scenario() -> None:
        seen: list[dict[str, Any]] = []

        async def handler(request: web.Request) -> web.StreamResponse:
            sent = await request.json()
            seen.append(sent)
            managed = [{"manager": "swg-operator", "operation": "Apply", "fieldsV1": {"f:x": {}}}]
            meta = {**sent["metadata"], "resourceVersion": "5", "managedFields": managed}
            return web.json_response({**sent, "metadata": meta}, status=201)

        runner, url = await serve(handler)
        kube = HttpKubeApi(kopf.ConnectionInfo(server=url, token="t"))
        try:
            stored = await kube.apply(namespace("swg-acme"))
        finally:
            await kube.close()
            await runner.cleanup()
        assert seen == [namespace("swg-acme")]
        assert stored == {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": "swg-acme", "resourceVersion": "5"},
        }

    asyncio.run(scenario())
