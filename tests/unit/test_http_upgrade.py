"""Connections taken over by a handler (`Upgrade`) through HttpConnection, on the wire: a 101
with the bytes read ahead handed on, the request head replayed for a library that does its
own handshake, WebSocket through trio-websocket, and upgrades that nobody takes."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing
from trio_websocket import WebSocketConnection, wrap_client_stream

from gateway.ratelimit import LogRateLimiter
from gateway.server import http_connection
from gateway.server.http import (
    HttpRequest,
    HttpResponse,
    HttpResult,
    RequestBody,
    Upgrade,
    upgrade_offered,
)
from gateway.server.http_connection import HttpConnection
from gateway.server.router import Router
from gateway.server.websocket import websocket_route
from tests.support.http_harness import GUARD, LOCAL, RawClient, get, post, served

WS_HANDSHAKE = ("Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


@pytest.fixture(autouse=True)
def fresh_log_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_connection, "CLIENT_LOG_LIMITER", LogRateLimiter())


class UpgradeApp(Router):
    def __init__(self) -> None:
        super().__init__()
        self.taken: list[str] = []
        self.add("/echo", self.echo, methods=("GET", "POST"))
        self.add("/raw", self.raw, methods=("GET", "POST"))
        self.add("/bug", self.bug)
        self.add("/ws", websocket_route(self.session))

    async def echo(self, request: HttpRequest, body: RequestBody) -> HttpResult:
        """Switches to "echo/1" (answers in upper case) when offered, else plain HTTP."""
        if not upgrade_offered(request, "echo/1"):
            return HttpResponse(200, [], b"plain echo\n")

        async def run(stream: trio.abc.Stream) -> None:
            self.taken.append("echo")
            while data := await stream.receive_some():
                await stream.send_all(data.upper())
                if b"." in data:
                    return

        return Upgrade(run, protocol="echo/1", headers=[("X-Mode", "upper")])

    async def raw(self, request: HttpRequest, body: RequestBody) -> HttpResult:
        """Takes over without a 101 and sends back the request it is replayed."""

        async def run(stream: trio.abc.Stream) -> None:
            self.taken.append("raw")
            seen = b""
            while b"\r\n\r\n" not in seen:
                seen += await stream.receive_some()
            await stream.send_all(seen)

        return Upgrade(run)

    async def bug(self, request: HttpRequest, body: RequestBody) -> HttpResult:
        async def run(stream: trio.abc.Stream) -> None:
            raise RuntimeError("deliberate takeover bug")

        return Upgrade(run, protocol="echo/1")

    async def session(self, ws: WebSocketConnection, request: HttpRequest) -> None:
        await ws.send_message(f"hello {request.path}")
        await ws.send_message((await ws.get_message()).upper())


async def read_to_close(client: RawClient) -> bytes:
    try:
        while True:
            await client._fill()
    except EOFError:
        return bytes(client.buffer)


async def test_101_then_the_bytes_read_ahead_reach_the_new_protocol() -> None:
    app = UpgradeApp()
    offer = "Connection: keep-alive, Upgrade\r\nUpgrade: echo/1\r\n"
    async with served(app) as client:
        await client.send(get("/echo", extra=offer) + b"sent early, ")  # read with the head
        switching = await client.reply()
        await client.send(b"then late.")
        echoed = await read_to_close(client)
    assert switching.status == 101
    assert (switching.headers["connection"], switching.headers["upgrade"]) == (
        "Upgrade", "echo/1")
    assert switching.headers["x-mode"] == "upper"
    assert echoed == b"SENT EARLY, THEN LATE."
    assert app.taken == ["echo"]


async def test_the_body_is_read_before_the_101() -> None:
    app = UpgradeApp()
    offer = "Connection: Upgrade\r\nUpgrade: echo/1\r\n"
    async with served(app) as client:
        await client.send(post("/echo", b"IPP-ish body", extra=offer) + b"after.")
        assert (await client.reply()).status == 101
        assert await read_to_close(client) == b"AFTER."


async def test_without_a_protocol_the_request_head_is_replayed() -> None:
    app = UpgradeApp()
    async with served(app) as client:
        await client.send(b"GET /raw?x=1 HTTP/1.1\r\nHost: gw.local:631\r\n"
                          b"X-Folded: a\r\n b\r\n\r\n")
        replayed = await read_to_close(client)
    assert replayed == b"GET /raw?x=1 HTTP/1.1\r\nhost: gw.local:631\r\nx-folded: a b\r\n\r\n"


async def test_a_replayed_upgrade_with_a_body_is_refused() -> None:
    app = UpgradeApp()
    async with served(app) as client:
        await client.send(post("/raw", b"body"))
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (400, "close")
        assert await client.closed_by_server()
    assert app.taken == []


async def test_an_upgrade_no_route_takes_is_answered_as_plain_http() -> None:
    app = UpgradeApp()
    async with served(app) as client:
        await client.send(get("/nowhere", extra=WS_HANDSHAKE))
        not_found = await client.reply()
        await client.send(get("/echo", extra="Connection: Upgrade\r\nUpgrade: h2c\r\n"))
        ignored = await client.reply()
        await client.send(get("*", method="OPTIONS", extra="Connection: Upgrade\r\n"
                                                          "Upgrade: TLS/1.2, HTTP/1.1\r\n"))
        options = await client.reply()
        await client.send(get("/echo"))
        after = await client.reply()
    assert (not_found.status, "upgrade" in not_found.headers) == (404, False)
    assert (ignored.status, ignored.body) == (200, b"plain echo\n")
    assert "connection" not in ignored.headers
    assert options.status == 200
    assert after.body == b"plain echo\n"  # still HTTP/1.1 on the same connection
    assert app.taken == []


async def test_an_upgrade_in_http_10_is_ignored() -> None:
    app = UpgradeApp()
    async with served(app) as client:
        await client.send(b"GET /echo HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: echo/1\r\n\r\n")
        reply = await client.reply()
    assert (reply.status, reply.body) == (200, b"plain echo\n")


async def test_an_app_that_upgrades_http_10_gets_500_not_a_switch(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = UpgradeApp()
    async with served(app) as client:
        await client.send(b"GET /raw HTTP/1.0\r\n\r\n")
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (500, "close")
        assert await client.closed_by_server()
    assert app.taken == []
    assert any("upgraded an HTTP/1.0" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(("extra", "status", "header"), [
    ("", 426, ("upgrade", "websocket")),
    (WS_HANDSHAKE.replace("Version: 13", "Version: 8"), 426, ("sec-websocket-version", "13")),
    (WS_HANDSHAKE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"), 400, None),
    (WS_HANDSHAKE.replace("Upgrade: websocket", "Upgrade: h2c"), 426, ("upgrade", "websocket")),
])
async def test_a_websocket_route_refuses_what_is_not_a_handshake(
    extra: str, status: int, header: tuple[str, str] | None,
) -> None:
    async with served(UpgradeApp()) as client:
        await client.send(get("/ws", extra=extra))
        reply = await client.reply()
        await client.send(get("/echo"))
        assert (await client.reply()).status == 200  # refused, and still HTTP
    assert reply.status == status
    if header is not None:
        assert reply.headers[header[0]] == header[1]


async def test_websocket_through_trio_websocket() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_stream, UpgradeApp(), local=LOCAL, client="test:1")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            ws = await wrap_client_stream(nursery, client_stream, "gw.local:631",  # type: ignore[arg-type]
                                          "/ws?token=1")
            assert await ws.get_message() == "hello /ws"
            await ws.send_message("ping")
            assert await ws.get_message() == "PING"
            await ws.aclose()


async def test_a_failing_takeover_is_logged_and_closed(caplog: pytest.LogCaptureFixture) -> None:
    async with served(UpgradeApp()) as client:
        await client.send(get("/bug"))
        assert (await client.reply()).status == 101
        assert await client.closed_by_server()
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "upgraded connection failed" in record.getMessage()
    assert record.exc_info is not None and "deliberate takeover bug" in str(record.exc_info[1])
