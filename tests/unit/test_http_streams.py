"""Streamed response bodies and error headers through HttpConnection, checked on the wire:
chunked and Content-Length framing, HEAD, HTTP/1.0, a client that leaves or stops reading,
an app whose stream fails; and that a reload switch does not wait for a stream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
import trio
import trio.testing

from gateway.ratelimit import LogRateLimiter
from gateway.server import http_connection
from gateway.server.http import (
    HttpError,
    HttpLimits,
    HttpRequest,
    HttpResponse,
    RequestBody,
)
from gateway.server.http_connection import HttpConnection
from gateway.server.router import Router
from gateway.server.switch import SwitchableApp
from tests.support.http_harness import GUARD, LOCAL, RawClient, get, served


@pytest.fixture(autouse=True)
def fresh_log_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_connection, "CLIENT_LOG_LIMITER", LogRateLimiter())


class StreamApp(Router):
    """Streams on a few paths; records what became of each generator."""

    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []
        self.closed: list[str] = []
        self.release = trio.Event()
        self.add("/chunks", self.chunks)
        self.add("/sized", self.sized)
        self.add("/empty", self.empty)
        self.add("/forever", self.forever)
        self.add("/fails", self.fails)
        self.add("/short", self.short)
        self.add("/not-bytes", self.not_bytes)
        self.add("/plain", self.plain)
        self.add("/auth", self.auth)

    async def _pieces(self, name: str, pieces: list[object], *, wait: bool = False,
                      fail: bool = False) -> AsyncIterator[bytes]:
        self.started.append(name)
        try:
            for piece in pieces:
                yield piece  # type: ignore[misc]
            if wait:
                await self.release.wait()
            if fail:
                raise RuntimeError("deliberate stream bug")
        finally:
            self.closed.append(name)

    async def chunks(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", "text/plain")],
                            self._pieces("chunks", [b"hello ", b"", bytearray(b"streamed "),
                                                    b"world"]))

    async def sized(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", "text/plain")],
                            self._pieces("sized", [b"12345", b"67890"]), length=10)

    async def empty(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [], self._pieces("empty", []))

    async def forever(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [], self._pieces("forever", [b"first"], wait=True))

    async def fails(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [], self._pieces("fails", [b"partial"], fail=True))

    async def short(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [], self._pieces("short", [b"abc"]), length=10)

    async def not_bytes(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [], self._pieces("not-bytes", ["text"]))

    async def plain(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", "text/plain")], b"plain\n")

    async def auth(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        raise HttpError(401, "who are you?", headers=[
            ("WWW-Authenticate", 'Basic realm="ipp-gateway"'), ("Retry-After", "5")])


async def read_chunked(client: RawClient) -> list[bytes]:
    """The chunks of a chunked body, up to and including the last (empty) one."""
    chunks = []
    while True:
        while b"\r\n" not in client.buffer:
            await client._fill()
        size_line, _, rest = bytes(client.buffer).partition(b"\r\n")
        size = int(size_line, 16)
        client.buffer = bytearray(rest)
        while len(client.buffer) < size + 2:
            await client._fill()
        assert client.buffer[size:size + 2] == b"\r\n"
        chunks.append(bytes(client.buffer[:size]))
        del client.buffer[:size + 2]
        if not size:
            return chunks


async def read_to_close(client: RawClient) -> bytes:
    try:
        while True:
            await client._fill()
    except EOFError:
        return bytes(client.buffer)


async def test_unknown_length_goes_chunked_and_keeps_the_connection() -> None:
    app = StreamApp()
    async with served(app) as client:
        await client.send(get("/chunks"))
        reply = await client.reply(head=True)
        chunks = await read_chunked(client)
        await client.send(get("/plain"))
        after = await client.reply()
    assert reply.status == 200 and reply.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in reply.headers and "connection" not in reply.headers
    assert chunks == [b"hello ", b"streamed ", b"world", b""]  # the empty piece is skipped
    assert after.body == b"plain\n"
    assert app.closed == ["chunks"]


async def test_known_length_goes_with_content_length() -> None:
    app = StreamApp()
    async with served(app) as client:
        await client.send(get("/sized"))
        reply = await client.reply()
        await client.send(get("/empty"))
        empty = await client.reply(head=True)
        assert await read_chunked(client) == [b""]
    assert (reply.headers["content-length"], reply.body) == ("10", b"1234567890")
    assert "transfer-encoding" not in reply.headers
    assert empty.status == 200


async def test_head_sends_the_framing_and_never_runs_the_stream() -> None:
    app = StreamApp()
    async with served(app) as client:
        await client.send(get("/chunks", method="HEAD") + get("/sized", method="HEAD"))
        chunked = await client.reply(head=True)
        sized = await client.reply(head=True)
        await client.send(get("/plain"))
        after = await client.reply()  # would misparse had a HEAD leaked a body
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert sized.headers["content-length"] == "10"
    assert after.body == b"plain\n"
    assert app.started == []  # the generators were closed before their first line


async def test_http_10_gets_the_body_up_to_the_close() -> None:
    app = StreamApp()
    async with served(app) as client:
        await client.send(b"GET /chunks HTTP/1.0\r\n\r\n")
        reply = await client.reply(head=True)
        body = await read_to_close(client)
    assert reply.headers["connection"] == "close"
    assert "transfer-encoding" not in reply.headers and "content-length" not in reply.headers
    assert body == b"hello streamed world"


async def test_a_client_that_leaves_ends_a_waiting_stream() -> None:
    app = StreamApp()
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_stream, app, local=LOCAL, client="test:1")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            client = RawClient(client_stream)
            await client.send(get("/forever"))
            await client.reply(head=True)
            while b"first" not in client.buffer:
                await client._fill()
            await trio.testing.wait_all_tasks_blocked()
            assert app.closed == []  # waiting for an event that never comes
            await client_stream.aclose()
    assert app.closed == ["forever"]  # the nursery ended: the connection task is done too
    assert not app.release.is_set()


async def test_a_client_that_stops_reading_times_the_stream_out(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Endless(Router):
        def __init__(self) -> None:
            super().__init__()
            self.closed = trio.Event()
            self.add("/endless", self.endless)

        async def endless(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
            async def chunks() -> AsyncIterator[bytes]:
                try:
                    while True:
                        yield b"x" * 65536
                finally:
                    self.closed.set()

            return HttpResponse(200, [], chunks())

    app = Endless()
    client_stream, server_stream = trio.testing.lockstep_stream_pair()
    connection = HttpConnection(server_stream, app, limits=HttpLimits(read_timeout=7),
                                local=LOCAL, client="test:1")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            client = RawClient(client_stream)
            await client.send(get("/endless"))
            await client.reply(head=True)
            await client._fill()  # the start of the first chunk; then never read again
            start = trio.current_time()
            await app.closed.wait()
            assert trio.current_time() - start == pytest.approx(7)
            nursery.cancel_scope.cancel()


async def test_a_failing_stream_truncates_the_body_and_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    app = StreamApp()
    async with served(app) as client:
        await client.send(get("/fails"))
        reply = await client.reply(head=True)
        body = await read_to_close(client)
    assert reply.headers["transfer-encoding"] == "chunked"
    assert body == b"7\r\npartial\r\n"  # no last chunk: the client knows it is cut short
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.exc_info is not None and "deliberate stream bug" in str(record.exc_info[1])
    assert app.closed == ["fails"]


@pytest.mark.parametrize(("path", "logged"), [("/short", "ended at 3 of its length 10"),
                                              ("/not-bytes", "yielded str")])
async def test_a_stream_that_breaks_its_promise_closes(
    path: str, logged: str, caplog: pytest.LogCaptureFixture,
) -> None:
    app = StreamApp()
    async with served(app) as client:
        await client.send(get(path) + get("/plain"))
        await client.reply(head=True)
        body = await read_to_close(client)  # the pipelined /plain is never answered
    assert b"plain" not in body
    assert any(logged in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_http_error_headers_go_out_with_the_error() -> None:
    async with served(StreamApp()) as client:
        await client.send(get("/auth"))
        reply = await client.reply()
        await client.send(get("/plain", method="DELETE"))
        not_allowed = await client.reply()
    assert (reply.status, reply.body) == (401, b"who are you?\n")
    assert reply.headers["www-authenticate"] == 'Basic realm="ipp-gateway"'
    assert reply.headers["retry-after"] == "5"
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    assert (not_allowed.status, not_allowed.headers["allow"]) == (405, "GET, HEAD, OPTIONS")


async def test_router_404_on_the_wire() -> None:
    async with served(StreamApp()) as client:
        await client.send(get("/nothing-here"))
        reply = await client.reply()
        await client.send(get("/plain"))
        assert (await client.reply()).status == 200
    assert (reply.status, reply.body) == (404, b"Not found\n")


async def test_a_reload_does_not_wait_for_a_stream() -> None:
    app = StreamApp()
    switch = SwitchableApp(app)
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_stream, switch, local=LOCAL, client="test:1")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            client = RawClient(client_stream)
            await client.send(get("/forever"))
            await client.reply(head=True)
            await trio.testing.wait_all_tasks_blocked()
            assert app.started == ["forever"] and switch.in_flight == 0
            async with switch.closed(drain_timeout=0) as drained:
                assert drained
            app.release.set()
            assert await read_chunked(client) == [b"first", b""]
            await client_stream.aclose()
