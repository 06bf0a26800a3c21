"""HttpConnection over in-memory streams: a fake app that reports what it got, and a client
written by hand (raw bytes out, a tiny response parser in), so that tests check the bytes on
the wire rather than trusting h11 on both ends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import trio
import trio.testing

from gateway.server.http import (
    DEFAULT_LIMITS,
    HttpApp,
    HttpError,
    HttpLimits,
    HttpRequest,
    HttpResponse,
    RequestAborted,
    RequestBody,
)
from gateway.server.http_connection import HttpConnection
from gateway.server.router import Router, ipp_post

LOCAL = ("192.0.2.7", 8631)
GUARD = 100  # seconds (virtual under the autojump clock); real tests take milliseconds


class FakeApp(Router):
    """Echoes what arrived; a few paths misbehave on purpose. Every path takes IPP (POST)
    and GET."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[HttpRequest] = []
        self.aborts: list[RequestAborted] = []
        self.add("/", ipp_post(self.handle_ipp), methods=("POST",), prefix=True)
        self.add("/", self.handle_get, prefix=True)

    async def handle_ipp(self, request: HttpRequest, body: RequestBody) -> bytes:
        self.requests.append(request)
        if request.path == "/reject":
            return b"rejected unread"
        if request.path == "/bug":
            raise RuntimeError("deliberate bug")
        if request.path == "/forbidden":
            raise HttpError(403, "not for you")
        if request.path == "/partial":
            return b"read %d" % len(await body.receive_some(10))
        max_bytes = 7 if request.path == "/small-reads" else 65536
        total = 0
        try:
            while chunk := await body.receive_some(max_bytes):
                assert len(chunk) <= max_bytes
                total += len(chunk)
        except RequestAborted as exc:
            self.aborts.append(exc)
            raise
        return b"length=%d" % total

    async def handle_get(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        self.requests.append(request)
        if request.path == "/bug":
            raise RuntimeError("deliberate bug")
        if request.path == "/bad-header":
            return HttpResponse(200, [("X-Split", "a\r\nInjected: yes")], b"never sent")
        text = f"hello {request.host} {request.port} {request.path}"
        return HttpResponse(200, [("content-type", "text/plain")], text.encode())


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


class RawClient:
    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def send(self, data: bytes) -> None:
        await self.stream.send_all(data)

    async def _fill(self) -> None:
        data = await self.stream.receive_some(65536)
        if not data:
            raise EOFError("server closed the connection")
        self.buffer += data

    async def reply(self, *, head: bool = False) -> Reply:
        while b"\r\n\r\n" not in self.buffer:
            await self._fill()
        head_bytes, _, rest = bytes(self.buffer).partition(b"\r\n\r\n")
        status_line, *lines = head_bytes.decode("latin-1").split("\r\n")
        assert status_line.startswith("HTTP/1.1 ")
        status = int(status_line.split(" ")[1])
        headers: dict[str, str] = {}
        for line in lines:
            name, _, value = line.partition(":")
            assert name.lower() not in headers, f"duplicate header {name}"
            headers[name.lower()] = value.strip()
        length = 0 if head or status < 200 else int(headers["content-length"])
        self.buffer = bytearray(rest)
        while len(self.buffer) < length:
            await self._fill()
        body = bytes(self.buffer[:length])
        del self.buffer[:length]
        return Reply(status, headers, body)

    async def closed_by_server(self) -> bool:
        """True if the server closed with nothing more to say."""
        if self.buffer:
            return False
        try:
            await self._fill()
        except EOFError:
            return True
        return False


@asynccontextmanager
async def served(
    app: HttpApp, limits: HttpLimits = DEFAULT_LIMITS, *, lockstep: bool = False
) -> AsyncIterator[RawClient]:
    pair = trio.testing.lockstep_stream_pair if lockstep else trio.testing.memory_stream_pair
    client_stream, server_stream = pair()
    connection = HttpConnection(server_stream, app, limits=limits, local=LOCAL, client="test:1")
    with trio.fail_after(GUARD):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve)
            yield RawClient(client_stream)
            await client_stream.aclose()


def post(
    path: str, body: bytes, *, extra: str = "", content_type: str = "application/ipp"
) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: gw.local:631\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n{extra}\r\n"
    )
    return head.encode() + body


def get(path: str, *, method: str = "GET", extra: str = "") -> bytes:
    return f"{method} {path} HTTP/1.1\r\nHost: gw.local:631\r\n{extra}\r\n".encode()
