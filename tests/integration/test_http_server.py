"""serve_http on real loopback sockets, with h11 as the client; and a real gateway process
refusing hostile HTTP (issue 9, item 10) without a 500, a traceback or a job."""

from __future__ import annotations

import re
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import h11
import pytest
import trio

from gateway.server.http import HttpRequest, HttpResponse, RequestBody
from gateway.server.listener import serve_http
from gateway.server.router import Router, ipp_post
from ippwire.enums import Operation, Status, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers.gateway_proc import GatewayProcess, start_gateway
from tests.support.ipp_client import post, printer_uri, raw_exchange

GUARD = 20  # seconds


class CountingApp(Router):
    """Answers IPP POSTs with the body length, GETs with the Host it saw, and streams."""

    def __init__(self) -> None:
        super().__init__()
        self.add("/ipp/print", ipp_post(self.handle_ipp), methods=("POST",))
        self.add("/", self.handle_get, prefix=True)
        self.add("/stream", self.stream)

    async def handle_ipp(self, request: HttpRequest, body: RequestBody) -> bytes:
        total = 0
        while chunk := await body.receive_some():
            total += len(chunk)
        return b"length=%d" % total

    async def handle_get(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        if request.path == "/bug":
            raise RuntimeError("deliberate bug")
        return HttpResponse(200, [("content-type", "text/plain")], request.host.encode())

    async def stream(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        """1000 pieces of 1000 bytes; with ?sized, announced by Content-Length."""

        async def pieces() -> AsyncIterator[bytes]:
            for index in range(1000):
                yield bytes([index % 256]) * 1000

        sized = request.target.endswith("?sized")
        return HttpResponse(200, [("content-type", "application/octet-stream")], pieces(),
                            length=1_000_000 if sized else None)


class Client:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.conn = h11.Connection(h11.CLIENT)

    async def exchange(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        headers = [("host", "127.0.0.1"), ("content-length", str(len(body)))]
        if method == "POST":
            headers.append(("content-type", "application/ipp"))
        data = self.conn.send(h11.Request(method=method, target=path, headers=headers))
        data += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
        await self.stream.send_all(data)
        status, received = 0, bytearray()
        while True:
            event = self.conn.next_event()
            if event is h11.NEED_DATA:
                self.conn.receive_data(await self.stream.receive_some(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                received += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
        if self.conn.our_state is h11.DONE and self.conn.their_state is h11.DONE:
            self.conn.start_next_cycle()
        return status, bytes(received)


@pytest.fixture
async def server_port(nursery: trio.Nursery) -> AsyncIterator[int]:
    bound = await nursery.start(serve_http, CountingApp(), [("127.0.0.1", 0)])
    [(host, port)] = bound
    assert host == "127.0.0.1" and port > 0
    yield port
    nursery.cancel_scope.cancel()


async def test_fifty_sequential_requests_share_one_connection(server_port: int) -> None:
    with trio.fail_after(GUARD):
        async with await trio.open_tcp_stream("127.0.0.1", server_port) as stream:
            client = Client(stream)
            for size in range(50):
                assert await client.exchange("POST", "/ipp/print", b"x" * size) == (
                    200,
                    b"length=%d" % size,
                )


async def test_twenty_concurrent_connections(server_port: int) -> None:
    results: list[tuple[int, bytes]] = []

    async def one_connection(index: int) -> None:
        async with await trio.open_tcp_stream("127.0.0.1", server_port) as stream:
            client = Client(stream)
            for _ in range(5):
                results.append(await client.exchange("POST", "/ipp/print", bytes(index * 1000)))

    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            for index in range(20):
                nursery.start_soon(one_connection, index)
    assert sorted(results) == sorted(
        (200, b"length=%d" % (i * 1000)) for i in range(20) for _ in range(5)
    )


async def test_streamed_bodies_pass_h11_chunked_and_sized(server_port: int) -> None:
    expected = b"".join(bytes([index % 256]) * 1000 for index in range(1000))
    with trio.fail_after(GUARD):
        async with await trio.open_tcp_stream("127.0.0.1", server_port) as stream:
            client = Client(stream)
            assert await client.exchange("GET", "/stream") == (200, expected)
            assert await client.exchange("GET", "/stream?sized") == (200, expected)
            assert await client.exchange("POST", "/ipp/print", b"after") == (200, b"length=5")


async def test_broken_connections_do_not_stop_the_listener(server_port: int) -> None:
    with trio.fail_after(GUARD):
        reset = socket.socket()  # a client that resets at once
        reset.connect(("127.0.0.1", server_port))
        reset.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        reset.close()
        async with await trio.open_tcp_stream("127.0.0.1", server_port) as stream:
            assert (await Client(stream).exchange("GET", "/bug"))[0] == 500
        async with await trio.open_tcp_stream("127.0.0.1", server_port) as stream:
            assert await Client(stream).exchange("GET", "/") == (200, b"127.0.0.1")


async def test_localhost_port_zero_binds_one_port_for_all_addresses(
    nursery: trio.Nursery,
) -> None:
    with trio.fail_after(GUARD):
        bound = await nursery.start(serve_http, CountingApp(), [("localhost", 0)])
        assert {port for _, port in bound} == {bound[0][1]}
        for host, port in bound:
            async with await trio.open_tcp_stream(host, port) as stream:
                assert await Client(stream).exchange("GET", "/") == (200, b"127.0.0.1")
        nursery.cancel_scope.cancel()


# -- a real gateway against hostile HTTP -------------------------------------------------------


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    process = start_gateway(tmp_path_factory.mktemp("hostile-http"))
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def no_trace(gateway: GatewayProcess) -> Iterator[GatewayProcess]:
    yield gateway
    assert gateway.alive(), "the gateway died"
    assert "Traceback" not in gateway.log.read_text()
    assert gateway.output_files() == [], "a refused request printed"


def print_job_request(port: int, compression: str = "none") -> bytes:
    attrs = {"document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream"),
             "compression": (ValueTag.KEYWORD, compression)}
    return encode_message(request(Operation.PRINT_JOB, printer_uri=printer_uri(port),
                                  attrs=attrs))


def statuses(reply: bytes) -> list[int]:
    return [int(code) for code in re.findall(rb"HTTP/1\.1 (\d{3}) ", reply)]


def test_non_ascii_host_on_print_job_is_400_and_prints_nothing(no_trace: GatewayProcess) -> None:
    body = print_job_request(no_trace.port) + b"hello"
    head = (b"POST /ipp/print HTTP/1.1\r\nHost: pr\xc3\xa9nter:%d\r\n"
            b"Content-Type: application/ipp\r\nContent-Length: %d\r\n\r\n"
            % (no_trace.port, len(body)))
    assert statuses(raw_exchange(no_trace.port, head + body)) == [400]


def test_smuggled_request_is_never_served(no_trace: GatewayProcess) -> None:
    ipp_body = encode_message(request(Operation.GET_PRINTER_ATTRIBUTES,
                                      printer_uri=printer_uri(no_trace.port)))
    smuggled = b"GET /icon.png HTTP/1.1\r\nHost: h\r\n\r\n"
    chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(ipp_body), ipp_body)
    data = (b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nContent-Type: application/ipp\r\n"
            b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n%s%s"
            % (len(chunked) + len(smuggled), chunked, smuggled))
    # Chunked framing would answer the IPP request, then serve the smuggled GET: [200, 200].
    assert statuses(raw_exchange(no_trace.port, data)) == [400]


@pytest.mark.parametrize(("data", "status"), [
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n" % (b"a" * 60_000), 431),
    (b"GET http://[::1/ HTTP/1.1\r\nHost: h\r\n\r\n", 400),
    (b"GET * HTTP/1.1\r\nHost: h\r\n\r\n", 400),
])
def test_malformed_heads_get_4xx(no_trace: GatewayProcess, data: bytes, status: int) -> None:
    assert statuses(raw_exchange(no_trace.port, data)) == [status]


def test_gzip_bomb_is_refused_by_its_ratio(no_trace: GatewayProcess) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(1 << 20)
    bomb = b"".join(packer.compress(zeros) for _ in range(200)) + packer.flush()
    status, body = post(no_trace.port, print_job_request(no_trace.port, "gzip") + bomb)
    assert status == 200
    response, _ = decode_message(body)
    assert response.code == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    message = response.operation_attributes.get("status-message")
    assert message is not None and "200:1" in str(message.value)
    assert not list(Path(no_trace.spool).glob("jobs/*.doc"))
