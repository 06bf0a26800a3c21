"""HttpConnection over in-memory streams, with a fake app that reports what it got.

The client side is written by hand (raw bytes out, a tiny response parser in; both in
tests/support/http_harness.py), so these tests check the bytes on the wire rather than
trusting h11 on both ends.
"""

from __future__ import annotations

import contextlib
import logging
import re

import pytest
import trio
import trio.testing

from gateway.ratelimit import LogRateLimiter
from gateway.server import http_connection
from gateway.server.http import (
    HttpLimits,
    split_host_header,
    target_path,
)
from gateway.server.http_connection import ConnectionLimits, HttpConnection
from tests.support.http_harness import GUARD, LOCAL, FakeApp, RawClient, get, post, served


@pytest.fixture(autouse=True)
def fresh_log_limiter(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test starts with the whole budget of client log lines (they share "test:1")."""
    monkeypatch.setattr(http_connection, "CLIENT_LOG_LIMITER", LogRateLimiter())


async def test_keep_alive_serves_two_requests_on_one_connection() -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(post("/ipp/print", b"x" * 100))
        first = await client.reply()
        await client.send(post("/ipp/print", b"y" * 5))
        second = await client.reply()
    assert (first.status, first.body) == (200, b"length=100")
    assert first.headers["content-type"] == "application/ipp"
    assert first.headers["server"] == "ipp-gateway/0.1"
    assert first.headers["date"].endswith(" GMT")
    assert "connection" not in first.headers
    assert (second.status, second.body) == (200, b"length=5")
    assert len(app.requests) == 2


async def test_http_10_closes_after_the_response() -> None:
    async with served(FakeApp()) as client:
        await client.send(b"GET / HTTP/1.0\r\n\r\n")
        reply = await client.reply()
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()


async def test_pipelined_requests_are_answered_in_order() -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(
            post("/a", b"1")
            + get("/b")
            + post("/c", b"333")
            + get("/d", extra="Connection: close\r\n")
        )
        replies = [await client.reply() for _ in range(4)]
        assert await client.closed_by_server()
    assert [r.body for r in replies] == [
        b"length=1",
        b"hello gw.local 631 /b",
        b"length=3",
        b"hello gw.local 631 /d",
    ]
    assert [r.path for r in app.requests] == ["/a", "/b", "/c", "/d"]


async def test_chunked_body_reaches_the_app_whole() -> None:
    chunks = b"5\r\nhello\r\n1a\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n"
    head = b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nContent-Type: application/ipp\r\n"
    async with served(FakeApp()) as client:
        await client.send(head + b"Transfer-Encoding: chunked\r\n\r\n")
        await client.send(chunks[:9])
        await client.send(chunks[9:])
        reply = await client.reply()
    assert (reply.status, reply.body) == (200, b"length=31")


async def test_small_reads_split_large_chunks() -> None:
    async with served(FakeApp()) as client:
        await client.send(post("/small-reads", bytes(1000)))
        assert (await client.reply()).body == b"length=1000"


async def test_100_continue_is_sent_only_when_the_app_waits_for_the_body() -> None:
    ipp_header, document = b"H" * 9, b"D" * 50
    extra = "Expect: 100-continue\r\n"
    head = post("/ipp/print", ipp_header + document, extra=extra)[: -len(document)]
    async with served(FakeApp()) as client:
        await client.send(head)  # head and IPP header in one go, as CUPS does
        interim = await client.reply()
        assert interim.status == 100
        await client.send(document)
        final = await client.reply()
    assert (final.status, final.body) == (200, b"length=59")


async def test_early_reject_sends_no_100_and_closes() -> None:
    extra = "Expect: 100-continue\r\n"
    head = post("/reject", b"D" * 5000, extra=extra)[:-5000]
    async with served(FakeApp()) as client:
        await client.send(head)
        reply = await client.reply()
        assert (reply.status, reply.body) == (200, b"rejected unread")
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()


async def test_early_reject_keeps_alive_when_the_body_came_anyway() -> None:
    extra = "Expect: 100-continue\r\n"
    async with served(FakeApp()) as client:
        await client.send(post("/reject", b"D" * 500, extra=extra))
        reply = await client.reply()
        await client.send(get("/next"))
        assert (await client.reply()).status == 200
    assert (reply.status, "connection" in reply.headers) == (200, False)


async def test_options_with_tls_upgrade_offer_keeps_plain_http() -> None:
    upgrade = "Connection: Upgrade\r\nUpgrade: TLS/1.2, TLS/1.1\r\n"
    async with served(FakeApp()) as client:
        await client.send(get("*", method="OPTIONS", extra=upgrade))
        options = await client.reply()
        await client.send(get("/after"))
        after = await client.reply()
    assert (options.status, after.body) == (200, b"hello gw.local 631 /after")


async def test_unread_body_is_drained_to_keep_the_connection() -> None:
    async with served(FakeApp()) as client:
        await client.send(post("/partial", b"p" * 200_000))
        first = await client.reply()
        await client.send(get("/next"))
        second = await client.reply()
    assert (first.body, "connection" in first.headers) == (b"read 10", False)
    assert second.body == b"hello gw.local 631 /next"


async def test_too_much_unread_body_closes_instead_of_draining() -> None:
    limits = HttpLimits(max_drain_bytes=1000, receive_size=4096)
    async with served(FakeApp(), limits) as client:
        await client.send(post("/partial", b"p" * 50_000))
        reply = await client.reply()
        assert reply.body == b"read 10"
        assert reply.headers["connection"] == "close"
        assert await client.closed_by_server()


async def test_silent_client_mid_head_gets_408(autojump_clock: trio.testing.MockClock) -> None:
    async with served(FakeApp()) as client:
        start = trio.current_time()
        await client.send(b"POST /ipp/print HTTP/1.1\r\nHost: h\r\n")
        reply = await client.reply()
        assert reply.status == 408
        # The head's deadline (header_timeout, 10 s), not the read timeout (30 s).
        assert trio.current_time() - start == pytest.approx(10)
        assert await client.closed_by_server()


async def test_silent_client_mid_body_gets_408(autojump_clock: trio.testing.MockClock) -> None:
    app = FakeApp()
    async with served(app, HttpLimits(read_timeout=5)) as client:
        await client.send(post("/ipp/print", b"x" * 100)[:-60])
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (408, "close")
        assert await client.closed_by_server()
    assert [type(exc).__name__ for exc in app.aborts] == ["BodyTimeout"]


async def test_idle_keep_alive_connection_closes_quietly(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with served(FakeApp(), HttpLimits(keepalive_timeout=45)) as client:
        await client.send(get("/"))
        await client.reply()
        start = trio.current_time()
        assert await client.closed_by_server()
        assert trio.current_time() - start == pytest.approx(45)


async def test_trickled_head_is_cut_at_the_head_deadline(
        autojump_clock: trio.testing.MockClock) -> None:
    """Slowloris: every byte comes well within the read timeout, but the head as a whole
    must end within header_timeout of its first byte."""
    limits = ConnectionLimits(read_timeout=30, header_timeout=4)
    app = FakeApp()
    head = get("/")

    async def trickle(client: RawClient) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            for byte in range(len(head) - 1):  # never the last: the head stays incomplete
                await client.send(head[byte : byte + 1])
                await trio.sleep(1)

    async with served(app, limits) as client:
        start = trio.current_time()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trickle, client)
            reply = await client.reply()
            assert reply.status == 408
            assert trio.current_time() - start == pytest.approx(4)
            nursery.cancel_scope.cancel()
    assert app.requests == []


async def test_a_body_that_keeps_flowing_is_never_cut(
        autojump_clock: trio.testing.MockClock) -> None:
    """One byte every 3 s for 60 s: far past header_timeout and read_timeout in all, but
    never a stall of read_timeout."""
    limits = ConnectionLimits(read_timeout=5, header_timeout=2)
    app = FakeApp()
    body = b"x" * 20
    async with served(app, limits) as client:
        message = post("/ipp/print", body)
        await client.send(message[: -len(body)])
        for byte in range(len(body)):
            await trio.sleep(3)
            await client.send(body[byte : byte + 1])
        reply = await client.reply()
        assert (reply.status, reply.body) == (200, b"length=20")
    assert app.aborts == []


async def test_new_silent_connection_waits_the_idle_timeout_then_closes_quietly(
        autojump_clock: trio.testing.MockClock) -> None:
    async with served(FakeApp(), ConnectionLimits(keepalive_timeout=20, header_timeout=2)
                      ) as client:
        start = trio.current_time()
        assert await client.closed_by_server()  # no 408: it never began a request
        assert trio.current_time() - start == pytest.approx(20)


async def test_too_many_header_fields_get_431() -> None:
    fields = "".join(f"X-F{i}: v\r\n" for i in range(12))
    async with served(FakeApp(), ConnectionLimits(max_header_fields=10)) as client:
        await client.send(get("/", extra=fields))
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (431, "close")
        assert await client.closed_by_server()
    async with served(FakeApp(), ConnectionLimits(max_header_fields=20)) as client:
        await client.send(get("/", extra=fields))
        assert (await client.reply()).status == 200


async def test_oversized_head_gets_431() -> None:
    async with served(FakeApp(), HttpLimits(max_header_bytes=4096)) as client:
        await client.send(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 6000)
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (431, "close")
        assert await client.closed_by_server()


async def test_garbage_gets_400_and_close() -> None:
    async with served(FakeApp()) as client:
        await client.send(b"NOT HTTP AT ALL\r\n\r\n")
        reply = await client.reply()
        assert reply.status == 400
        assert await client.closed_by_server()


async def test_post_without_ipp_content_type_gets_400() -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(post("/ipp/print", b"{}", content_type="application/json"))
        reply = await client.reply()
        await client.send(post("/ipp/print", b"ok", content_type="Application/IPP; charset=x"))
        accepted = await client.reply()
    assert reply.status == 400
    assert reply.headers["content-type"].startswith("text/plain")
    assert b"application/ipp" in reply.body
    assert accepted.body == b"length=2"
    assert len(app.requests) == 1


async def test_unknown_method_gets_405_with_allow() -> None:
    async with served(FakeApp()) as client:
        await client.send(get("/ipp/print", method="DELETE"))
        reply = await client.reply()
    assert reply.status == 405
    assert reply.headers["allow"] == "GET, HEAD, OPTIONS, POST"


async def test_options_lists_the_methods() -> None:
    async with served(FakeApp()) as client:
        await client.send(get("*", method="OPTIONS"))
        reply = await client.reply()
    assert (reply.status, reply.headers["allow"], reply.body) == (
        200,
        "GET, HEAD, OPTIONS, POST",
        b"",
    )
    assert reply.headers["content-length"] == "0"


async def test_head_sends_the_get_headers_without_a_body() -> None:
    async with served(FakeApp()) as client:
        await client.send(get("/page", method="HEAD"))
        head = await client.reply(head=True)
        await client.send(get("/page"))
        full = await client.reply()  # would misparse if HEAD had leaked a body
    assert head.status == 200
    assert head.headers["content-length"] == str(len(full.body))
    assert full.body == b"hello gw.local 631 /page"


async def test_bad_request_after_head_still_has_a_body() -> None:
    async with served(FakeApp()) as client:
        await client.send(get("/page", method="HEAD") + b"BAD\r\n\r\n")
        await client.reply(head=True)
        reply = await client.reply()
        assert reply.status == 400 and reply.body.startswith(b"Bad request")
        assert await client.closed_by_server()


async def test_app_bug_gets_500_logged_with_traceback(caplog: pytest.LogCaptureFixture) -> None:
    async with served(FakeApp()) as client:
        await client.send(post("/bug", b"x"))
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (500, "close")
        assert await client.closed_by_server()
    [record] = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.name == "gateway.server.http"
    assert record.exc_info is not None and "deliberate bug" in str(record.exc_info[1])


async def test_http_error_from_the_app_becomes_its_status() -> None:
    async with served(FakeApp()) as client:
        await client.send(post("/forbidden", b""))
        reply = await client.reply()
        await client.send(get("/still-alive"))
        assert (await client.reply()).status == 200
    assert (reply.status, reply.body) == (403, b"not for you\n")


async def test_client_disconnect_mid_body_is_quiet(caplog: pytest.LogCaptureFixture) -> None:
    app = FakeApp()
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_stream, app, local=LOCAL)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            await client_stream.send_all(post("/ipp/print", b"x" * 1000)[:-900])
            await trio.testing.wait_all_tasks_blocked()
            await client_stream.aclose()
    assert [type(exc).__name__ for exc in app.aborts] == ["ClientDisconnected"]
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


async def test_malformed_chunk_gets_400() -> None:
    head = b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nContent-Type: application/ipp\r\n"
    async with served(FakeApp()) as client:
        await client.send(head + b"Transfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n")
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (400, "close")


async def test_request_fields_from_host_and_target() -> None:
    app = FakeApp()
    async with served(app) as client:
        await client.send(b"GET /ipp/print%20x?a=1 HTTP/1.1\r\nHost: [::1]:8632\r\n\r\n")
        await client.reply()
        await client.send(b"GET / HTTP/1.0\r\n\r\n")
        await client.reply()
    with_host, without_host = app.requests
    assert (with_host.host, with_host.port, with_host.path) == ("::1", 8632, "/ipp/print x")
    assert with_host.target == "/ipp/print%20x?a=1"
    assert with_host.header("HOST") == "[::1]:8632"
    assert (with_host.scheme, with_host.client) == ("ipp", "test:1")
    assert (without_host.host, without_host.port, without_host.http_version) == (*LOCAL, "1.0")


async def test_bad_host_header_gets_400() -> None:
    async with served(FakeApp()) as client:
        await client.send(b"GET / HTTP/1.1\r\nHost: gw:99999\r\n\r\n")
        assert (await client.reply()).status == 400


async def test_works_over_a_lockstep_stream() -> None:
    async with served(FakeApp(), lockstep=True) as client:
        await client.send(post("/ipp/print", b"abc", extra="Expect: 100-continue\r\n"))
        reply = await client.reply()
    assert reply.body == b"length=3"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("192.168.1.5", ("192.168.1.5", 8631)),
        ("192.168.1.5:631", ("192.168.1.5", 631)),
        ("gw.local:80", ("gw.local", 80)),
        ("gw.local", ("gw.local", 8631)),
        ("gw.local:", ("gw.local", 8631)),
        ("[::1]:8631", ("::1", 8631)),
        ("[fe80::1%25eth0]", ("fe80::1%25eth0", 8631)),
        (" gw.local:631 ", ("gw.local", 631)),
        (None, ("10.0.0.1", 8631)),
        ("", ("10.0.0.1", 8631)),
    ],
)
def test_split_host_header(value: str | None, expected: tuple[str, int]) -> None:
    assert split_host_header(value, ("10.0.0.1", 8631)) == expected


@pytest.mark.parametrize("value", ["[::1", "[::1]x", ":631", "gw:port", "gw:0", "gw:65536",
                                   "fe80::2", "[fe80::1%eth0]", "gé", "g w", "u@gw"])
def test_split_host_header_rejects(value: str) -> None:
    with pytest.raises(ValueError):
        split_host_header(value, ("10.0.0.1", 8631))


def test_target_path_forms() -> None:
    assert target_path("/a%2Fb?x=%20") == "/a/b"
    assert target_path("http://gw:631/ipp/print?q") == "/ipp/print"
    assert target_path("*") == "*"
    assert target_path("http://[::1/x?y") == "/x"  # urlsplit would raise; this never does


async def test_ipp_reply_bytes_on_the_wire() -> None:
    client_stream, server_stream = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_stream, FakeApp(), local=LOCAL)
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            await client_stream.send_all(post("/ipp/print", b"abc", extra="Connection: close\r\n"))
            received = b""
            while chunk := await client_stream.receive_some():
                received += chunk
    expected = (rb"HTTP/1\.1 200 OK\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT\r\n"
                rb"Server: ipp-gateway/0\.1\r\nContent-Length: 8\r\n"
                rb"Content-Type: application/ipp\r\nConnection: close\r\n\r\nlength=3")
    assert re.fullmatch(expected, received), received


async def test_interim_100_continue_bytes() -> None:
    async with served(FakeApp(), lockstep=True) as client:
        await client.send(post("/ipp/print", b"", extra="Expect: 100-continue\r\n")[:-2])
        await client.send(b"\r\n")
        assert (await client.reply()).status == 200  # empty body: nothing to invite
        await client.send(post("/ipp/print", b"xy", extra="Expect: 100-continue\r\n")[:-2])
        while len(client.buffer) < 25:
            await client._fill()
        assert bytes(client.buffer) == b"HTTP/1.1 100 Continue\r\n\r\n"
        client.buffer.clear()
        await client.send(b"xy")
        assert (await client.reply()).body == b"length=2"


async def test_invalid_app_header_becomes_500_and_close(caplog: pytest.LogCaptureFixture) -> None:
    async with served(FakeApp()) as client:
        await client.send(get("/bad-header"))
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (500, "close")
        assert "injected" not in reply.headers
        assert await client.closed_by_server()
    assert any("invalid" in r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR)


async def test_unsupported_transfer_encoding_gets_501() -> None:
    async with served(FakeApp()) as client:
        await client.send(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n")
        reply = await client.reply()
        assert (reply.status, reply.headers["connection"]) == (501, "close")
        assert await client.closed_by_server()
