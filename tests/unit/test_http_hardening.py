"""Issue 9, item 10, the HTTP half: each hostile-input class rebuilt against HttpConnection
(smuggling, oversized heads, Host and target grammar, log flooding), and Hypothesis properties:
the parser raises nothing but HttpProtocolError, the connection answers nothing in 5xx."""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st
from trio_websocket import WebSocketConnection

from gateway.ratelimit import LogRateLimiter
from gateway.server import http_connection, listener
from gateway.server.http import (
    DEFAULT_LIMITS,
    HttpLimits,
    HttpRequest,
    HttpResponse,
    RequestBody,
    split_host_header,
    target_path,
)
from gateway.server.http_connection import HttpConnection
from gateway.server.router import Router, ipp_post
from gateway.server.websocket import websocket_route
from ippwire.http11 import (
    CLOSED,
    END_OF_BODY,
    NEED_DATA,
    HttpProtocolError,
    RequestHead,
    RequestParser,
)
from tests.support.hostile_http import BAD_HOSTS, BAD_TARGETS, SMUGGLING
from tests.support.http_harness import LOCAL, FakeApp, RawClient, get, served


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeClock]:
    """A fresh client-log limiter (3 lines at once, then one per 10 s) on a fake clock."""
    fake = FakeClock()
    limiter = LogRateLimiter(burst=3, interval=10.0, clock=fake)
    monkeypatch.setattr(http_connection, "CLIENT_LOG_LIMITER", limiter)
    yield fake


# -- the classes, one by one -------------------------------------------------------------------


@pytest.mark.parametrize("data", SMUGGLING)
async def test_content_length_with_transfer_encoding_is_refused_and_closed(data: bytes) -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(data)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (400, "close")
        assert b"Transfer-Encoding" in reply.body
        assert await client.closed_by_server()  # the smuggled GET is never answered
    assert app.requests == []


async def test_a_60_kb_head_in_one_read_gets_431() -> None:
    app = FakeApp()
    head = get("/", extra="X-Big: %s\r\n" % ("a" * 60_000))
    assert len(head) < DEFAULT_LIMITS.receive_size  # one read brings the whole head
    async with served(app) as client:
        await client.send(head)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (431, "close")
        assert await client.closed_by_server()
    assert app.requests == []


async def test_a_large_chunked_trailer_in_one_read_gets_400_and_close() -> None:
    app = FakeApp()
    request = (b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nContent-Type: application/ipp\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Big: %s\r\n\r\n"
               % (b"a" * 60_000))
    async with served(app) as client:
        await client.send(request)
        reply = await client.reply()  # the app was reading: a bad body is a 400
        assert (reply.status, reply.headers["connection"]) == (400, "close")
        assert b"larger than 16384" in reply.body
    assert [type(exc).__name__ for exc in app.aborts] == ["MalformedBody"]


@pytest.mark.parametrize("host", BAD_HOSTS)
async def test_bad_host_gets_400_before_the_app(host: bytes,
                                                caplog: pytest.LogCaptureFixture) -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(b"POST /ipp/print HTTP/1.1\r\nHost: %s\r\n"
                          b"Content-Type: application/ipp\r\nContent-Length: 1\r\n\r\nx" % host)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (400, "close")
        assert b"Host" in reply.body
        assert await client.closed_by_server()
    assert app.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize("target", BAD_TARGETS)
async def test_bad_target_gets_400_not_a_traceback(target: bytes,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % target)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (400, "close")
    assert app.requests == []
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("target", "path"), [
    ("http://gw:631/ipp/print?x", "/ipp/print"),
    ("IPPS://[::1]:631/ipp/print/a%20b", "/ipp/print/a b"),
    ("https://gw", "/"),
])
async def test_absolute_form_targets_are_served(target: str, path: str) -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(get(target))
        assert (await client.reply()).status == 200
    assert [request.path for request in app.requests] == [path]


@given(st.text())
def test_target_path_is_total(target: str) -> None:
    assert isinstance(target_path(target), str)


@given(st.text(max_size=40) | st.sampled_from(["[::1", "[::1]:99", "a:b:c", "[v1.x]", "é:1"]))
def test_split_host_header_gives_an_ascii_host_or_value_error(value: str) -> None:
    try:
        host, port = split_host_header(value, LOCAL)
    except ValueError:
        return
    assert host.isascii() and 0 < port < 65536


# -- rate-limited log lines --------------------------------------------------------------------


async def bad_request(client_address: str, data: bytes = b"NOT HTTP\r\n\r\n",
                      app: FakeApp | None = None) -> int:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_stream, app or FakeApp(), local=LOCAL,
                                client=client_address)
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            await client_stream.send_all(data)
            reply = await RawClient(client_stream).reply()
            await client_stream.aclose()
    return reply.status


def client_lines(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == name and r.levelno >= logging.INFO]


async def test_bad_http_lines_are_rate_limited_per_client(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.server.http")
    for port in range(20):  # a new connection each time: the limit is per address
        assert await bad_request(f"198.51.100.7:{port}") == 400
    assert len(client_lines(caplog, "gateway.server.http")) == 3
    assert await bad_request("[2001:db8::1]:5") == 400  # another client has its own budget
    assert len(client_lines(caplog, "gateway.server.http")) == 4
    clock.now += 10
    caplog.clear()
    assert await bad_request("198.51.100.7:99") == 400
    [line] = client_lines(caplog, "gateway.server.http")
    assert line.getMessage().endswith("(17 similar lines from 198.51.100.7 suppressed)")


async def test_app_tracebacks_are_rate_limited_per_client(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    bug = b"GET /bug HTTP/1.1\r\nHost: h\r\n\r\n"
    for port in range(10):
        assert await bad_request(f"198.51.100.8:{port}", bug) == 500
    tracebacks = client_lines(caplog, "gateway.server.http")
    assert len(tracebacks) == 3 and all(r.exc_info for r in tracebacks)


async def test_connection_failures_are_rate_limited(
        clock: FakeClock, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken:
        def __init__(self, *args: object, **kwargs: object) -> None:
            pass

        async def serve(self) -> None:
            raise RuntimeError("deliberate")

    monkeypatch.setattr(listener, "HttpConnection", Broken)
    for _ in range(10):
        ours, theirs = trio.socket.socketpair()
        with theirs:
            await listener._serve_connection(trio.SocketStream(ours), FakeApp(), DEFAULT_LIMITS,
                                             None, ("127.0.0.1", 631), "192.0.2.7:5000")
    failures = client_lines(caplog, "gateway.server.listener")
    assert len(failures) == 3
    assert all("connection failed" in r.getMessage() and r.exc_info for r in failures)


# -- properties ----------------------------------------------------------------------------

# Requests built from the pieces that matter, most of them well-formed up to one hostile part
# (sampled_from repeats the plain choices to weigh them), pipelined, then binary noise; and
# raw binary besides.
METHODS = st.sampled_from([b"GET", b"GET", b"POST", b"POST", b"HEAD", b"OPTIONS", b"PUT"])
TARGETS = st.builds(
    bytes.__add__, st.sampled_from([b"/", b"/", b"http://", b"ipp://[", b"ipps://h:", b"*", b"",
                                    b"/ws", b"/stream"]),
    st.lists(st.sampled_from([
        b"/", b"ipp", b"h", b"[", b"]", b"::1", b"%", b"%41", b"%zz", b"?", b"#", b"*", b"@",
        b":", b"631", b"\\", b"|", b"ftp://", b"\xc3\xa9"]), max_size=5).map(b"".join))
VERSIONS = st.sampled_from([b"HTTP/1.1"] * 4 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 "])
FIELDS = st.lists(st.sampled_from([b"Host: h"] * 6 + [
    b"Host: [::1", b"Host: \xc3\xa9", b"Host: h:0", b"Host: [v1.x]:1", b"Host:", b"Host: fe80::1",
    b"Content-Length: 3", b"Content-Length: 3", b"Content-Length: 99999999999999999999",
    b"Content-Length: 3, 4", b"Transfer-Encoding: chunked", b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip", b"Content-Type: application/ipp", b"Content-Type: application/ipp",
    b"Expect: 100-continue", b"Connection: close", b" folded", b"X: \x00", b"X-Big: " + b"a" * 250,
    b"Upgrade: websocket", b"Upgrade: TLS/1.2", b"Connection: Upgrade", b"Connection: upgrade",
    b"Sec-WebSocket-Version: 13", b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
]), max_size=6, unique=True)
BODIES = st.lists(st.sampled_from([
    b"abc", b"5\r\nhello\r\n", b"0\r\n\r\n", b"0\r\nX: y\r\n\r\n", b"zz\r\n", b"3;e\r\n",
    b"\r\n"]), max_size=3).map(b"".join)
REQUESTS = st.builds(
    lambda method, target, version, fields, body: b"%s %s %s\r\n%s\r\n%s" % (
        method, target, version, b"".join(field + b"\r\n" for field in fields), body),
    METHODS, TARGETS, VERSIONS, FIELDS, BODIES)
HTTPISH = st.builds(lambda requests, noise: b"".join(requests) + noise,
                    st.lists(REQUESTS, min_size=1, max_size=3), st.binary(max_size=12))


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({0, len(data), *(cut % (len(data) + 1) for cut in cuts)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def drive(pieces: list[bytes]) -> None:
    """Run the parser over `pieces` then end of input, as the connection would."""
    parser = RequestParser(max_head_bytes=200)
    feed = deque(pieces)
    in_body = False
    for _ in range(10 * len(pieces) + 100):
        event = parser.next_body() if in_body else parser.next_request()
        if isinstance(event, RequestHead):
            in_body = True
        elif event is END_OF_BODY:
            parser.start_next_cycle()
            in_body = False
        elif event is CLOSED:
            return
        elif event is NEED_DATA:
            assert not parser.eof, "waits for data after the end of input"
            parser.receive(feed.popleft() if feed else b"")
    raise AssertionError("the parser went round in circles")


@settings(max_examples=500, deadline=None)
@given(data=HTTPISH | st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_parser_raises_only_http_protocol_error(data: bytes, cuts: list[int]) -> None:
    with contextlib.suppress(HttpProtocolError):
        drive(split(data, cuts))


class EchoApp(Router):
    """IPP and GET on every path; a streamed body and a WebSocket on two of them."""

    def __init__(self) -> None:
        super().__init__()
        self.add("/", ipp_post(self.handle_ipp), methods=("POST",), prefix=True)
        self.add("/", self.handle_get, prefix=True)
        self.add("/stream", self.stream)
        self.add("/ws", websocket_route(self.session))

    async def handle_ipp(self, request: HttpRequest, body: RequestBody) -> bytes:
        while await body.receive_some(7):
            pass
        return b"ok\n"

    async def handle_get(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", "text/plain")], b"ok\n")

    async def stream(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for piece in (b"o", b"", b"k\n"):
                yield piece

        return HttpResponse(200, [("Content-Type", "text/plain")], chunks())

    async def session(self, ws: WebSocketConnection, request: HttpRequest) -> None:
        await ws.send_message("ok")


async def exchange(pieces: list[bytes], receive_size: int) -> bytes:
    client, server = trio.testing.memory_stream_pair()
    limits = HttpLimits(max_header_bytes=200, receive_size=receive_size, max_drain_bytes=50)
    connection = HttpConnection(server, EchoApp(), limits=limits, local=LOCAL,
                                client="192.0.2.99:1")
    received = bytearray()

    async def send() -> None:
        try:
            for piece in pieces:
                await client.send_all(piece)
                await trio.sleep(0.01)
            await client.send_eof()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass

    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.serve)
        nursery.start_soon(send)
        while data := await client.receive_some():
            received += data
    return bytes(received)


@settings(max_examples=400, deadline=None)
@given(data=HTTPISH | st.binary(max_size=300), cuts=st.lists(st.integers(0, 400), max_size=6),
       receive_size=st.integers(1, 64))
def test_connection_answers_no_5xx_whatever_the_bytes(data: bytes, cuts: list[int],
                                                      receive_size: int) -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)
    received = trio.run(exchange, split(data, cuts), receive_size, clock=clock)
    # Every status line starts the output or follows a head's or a body's final "\n" (the
    # bodies here all end in one, and client bytes are echoed only as escaped reprs). 501 is
    # RFC 9112's answer to a transfer coding we do not implement; 500 would be a bug.
    statuses = {int(s) for s in re.findall(rb"(?:\A|\n)HTTP/1\.1 (\d{3}) ", received)}
    assert statuses <= set(range(100, 500)) | {501}, received
    assert b"Internal server error" not in received
