"""serve_http on real loopback sockets, with h11 as the client."""

from __future__ import annotations

import socket
import struct
from collections.abc import AsyncIterator

import h11
import pytest
import trio

from gateway.server.http import HttpRequest, HttpResponse, RequestBody
from gateway.server.listener import serve_http

GUARD = 20  # seconds


class CountingApp:
    """Answers POSTs with the body length and GETs with the Host it saw."""

    async def handle_ipp(self, request: HttpRequest, body: RequestBody) -> bytes:
        total = 0
        while chunk := await body.receive_some():
            total += len(chunk)
        return b"length=%d" % total

    async def handle_get(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/bug":
            raise RuntimeError("deliberate bug")
        return HttpResponse(200, [("content-type", "text/plain")], request.host.encode())


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
