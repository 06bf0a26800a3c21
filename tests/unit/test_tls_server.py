"""HTTP over TLS in process, over memory streams: the listener's `TlsServer`, the router's
RFC 2817 upgrade, handshake failures as one log line."""

from __future__ import annotations

import ipaddress
import logging
import ssl
import warnings
from datetime import UTC, datetime
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.certificates import CertificateStore
from gateway.server.http import (
    TLS_UPGRADE_PROTOCOL,
    HttpLimits,
    HttpRequest,
    HttpResponse,
    RequestBody,
    Upgrade,
    replayed_head,
    tls_upgrade_offered,
)
from gateway.server.http_connection import HttpConnection
from gateway.server.listener import TlsServer
from gateway.server.router import Router
from gateway.tls import Identity, ServerTls

IDENTITY = Identity(("localhost",), (ipaddress.ip_address("127.0.0.1"),))
CUPS_OFFER = [("host", "localhost:631"), ("connection", "upgrade"),
              ("upgrade", "TLS/1.2,TLS/1.1,TLS/1.0")]


@pytest.fixture
def server_tls(tmp_path: Path) -> ServerTls:
    store = CertificateStore(tmp_path / "tls")
    return ServerTls(store.ensure(IDENTITY, datetime.now(UTC)), store)


def client_context(server_tls: ServerTls) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(server_tls.credentials.certificate))


async def serve_then_close(tls: TlsServer, stream: trio.abc.Stream, client: str) -> None:
    """As the listener does: serve, then close the connection."""
    try:
        await tls.serve(stream, local=("127.0.0.1", 631), client=client)
    finally:
        await trio.aclose_forcefully(stream)


def make_app(tls: TlsServer | None) -> Router:
    router = Router(tls_upgrade=None if tls is None else tls.upgrade)

    async def scheme(request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", "text/plain")], request.scheme.encode())

    router.add("/scheme", scheme)
    if tls is not None:
        tls.app = router
    return router


def request(method: str = "OPTIONS", headers: list[tuple[str, str]] | None = None,
            scheme: str = "ipp", version: str = "1.1") -> HttpRequest:
    return HttpRequest(method=method, target="*", path="*",
                       headers=CUPS_OFFER if headers is None else headers, host="localhost",
                       port=631, scheme=scheme, client="127.0.0.1:5000", http_version=version)


async def read_response(stream: trio.abc.Stream) -> bytes:
    """One response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive_some()
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        body += await stream.receive_some()
    return head + b"\r\n\r\n" + body


async def test_tls_connection_is_served_with_scheme_ipps(server_tls: ServerTls) -> None:
    tls = TlsServer(lambda: server_tls.context)
    make_app(tls)
    client_raw, server_raw = trio.testing.memory_stream_pair()
    client = trio.SSLStream(client_raw, client_context(server_tls), server_hostname="localhost")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_then_close, tls, server_raw, "127.0.0.1:5000")
        await client.send_all(b"GET /scheme HTTP/1.1\r\nHost: localhost\r\n\r\n")
        response = await read_response(client)
        assert response.startswith(b"HTTP/1.1 200 ")
        assert response.endswith(b"\r\n\r\nipps")
        assert client.version() in ("TLSv1.2", "TLSv1.3")
        await client.aclose()


async def test_tls_below_1_2_is_refused_with_one_log_line(
        server_tls: ServerTls, caplog: pytest.LogCaptureFixture) -> None:
    tls = TlsServer(lambda: server_tls.context)
    make_app(tls)
    old = client_context(server_tls)
    old.set_ciphers("DEFAULT@SECLEVEL=0")
    with warnings.catch_warnings():  # the client's old versions are what this test is about
        warnings.simplefilter("ignore", DeprecationWarning)
        old.minimum_version = ssl.TLSVersion.TLSv1
        old.maximum_version = ssl.TLSVersion.TLSv1_1
    client_raw, server_raw = trio.testing.memory_stream_pair()
    client = trio.SSLStream(client_raw, old, server_hostname="localhost")
    caplog.set_level(logging.INFO, "gateway.server.listener")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(serve_then_close, tls, server_raw, "127.0.0.1:5001")
        with pytest.raises(trio.BrokenResourceError):
            await client.do_handshake()
        await client_raw.aclose()
    lines = [r for r in caplog.records if "TLS handshake failed" in r.getMessage()]
    assert [r.getMessage() for r in lines] == [
        "127.0.0.1:5001: TLS handshake failed: UNSUPPORTED_PROTOCOL"]
    assert not lines[0].exc_info


async def test_silent_handshake_times_out_with_one_log_line(
        server_tls: ServerTls, caplog: pytest.LogCaptureFixture,
        autojump_clock: trio.testing.MockClock) -> None:
    tls = TlsServer(lambda: server_tls.context, HttpLimits(read_timeout=5))
    make_app(tls)
    client_raw, server_raw = trio.testing.memory_stream_pair()
    caplog.set_level(logging.INFO, "gateway.server.listener")
    # The start of a ClientHello record (as the listener sniffed it), then nothing.
    await tls.serve(server_raw, local=("127.0.0.1", 631), client="127.0.0.1:5002",
                    replay=b"\x16\x03\x01")
    assert [r.getMessage() for r in caplog.records] == [
        "127.0.0.1:5002: TLS handshake failed: no handshake within 5 s"]
    await client_raw.aclose()


def test_tls_upgrade_offer_as_cups_sends_it() -> None:
    assert tls_upgrade_offered(request())
    assert tls_upgrade_offered(request(headers=[("connection", "Upgrade"),
                                                ("upgrade", "TLS/1.2")]))
    assert not tls_upgrade_offered(request(version="1.0"))
    assert not tls_upgrade_offered(request(headers=[("upgrade", "TLS/1.2")]))
    assert not tls_upgrade_offered(request(headers=[("connection", "upgrade"),
                                                    ("upgrade", "websocket")]))
    assert not tls_upgrade_offered(request(method="POST", headers=[
        *CUPS_OFFER, ("content-length", "12")]))


def test_replayed_head_drops_the_offer() -> None:
    head = replayed_head(request(headers=[("host", "h:631"), ("connection", "Upgrade, close"),
                                          ("upgrade", "TLS/1.2")]))
    assert head == b"OPTIONS * HTTP/1.1\r\nhost: h:631\r\nconnection: close\r\n\r\n"


async def test_router_upgrades_only_plain_requests_that_offer_tls() -> None:
    async def run(stream: trio.abc.Stream) -> None:
        raise AssertionError("not run here")

    router = Router(tls_upgrade=lambda request: run)
    answer = await router.handle(request(), trio.testing.MemoryReceiveStream())  # type: ignore[arg-type]
    assert isinstance(answer, Upgrade)
    assert answer.protocol == TLS_UPGRADE_PROTOCOL and answer.run is run
    over_tls = await router.handle(request(scheme="ipps"), None)  # type: ignore[arg-type]
    assert isinstance(over_tls, HttpResponse) and over_tls.status == 200
    without = await Router().handle(request(), None)  # type: ignore[arg-type]
    assert isinstance(without, HttpResponse) and without.status == 200


async def test_cups_style_upgrade_answers_options_over_tls(server_tls: ServerTls) -> None:
    """101, the handshake, then the OPTIONS answer over TLS (the CUPS client waits for it),
    then HTTP with scheme ipps on the same connection."""
    tls = TlsServer(lambda: server_tls.context)
    app = make_app(tls)
    client_raw, server_raw = trio.testing.memory_stream_pair()
    connection = HttpConnection(server_raw, app, local=("127.0.0.1", 631),
                                client="127.0.0.1:5003")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(connection.serve)
        await client_raw.send_all(b"OPTIONS * HTTP/1.1\r\nHost: localhost:631\r\n"
                                  b"Connection: upgrade\r\nUpgrade: TLS/1.2,TLS/1.1,TLS/1.0"
                                  b"\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += await client_raw.receive_some(1)
        assert head.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
        assert b"Upgrade: TLS/1.2, HTTP/1.1\r\n" in head
        client = trio.SSLStream(client_raw, client_context(server_tls),
                                server_hostname="localhost")
        options = await read_response(client)
        assert options.startswith(b"HTTP/1.1 200 ")
        assert b"Allow: " in options
        await client.send_all(b"GET /scheme HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert (await read_response(client)).endswith(b"\r\n\r\nipps")
        await client.aclose()
