"""The gateway's HTTP app on a real loopback port with a WebSocket route added (issue 10,
item 2): a trio-websocket client on the port that answers IPP receives a bus event caused by
an IPP job on that same port; upgrades no route takes are refused cleanly; the path table
answers 404 and 405 on the wire."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    WebSocketConnection,
    open_websocket_url,
    wrap_client_stream,
)

from gateway.config import Config
from gateway.core.bus import EventBus, Subscription
from gateway.core.events import Event
from gateway.core.system import System
from gateway.server.http import HttpRequest
from gateway.server.ipp_endpoint import IppApp
from gateway.server.listener import serve_http
from gateway.server.websocket import websocket_route
from tests.support.ipp_client import print_job, printer_state, raw_exchange

GUARD = 30  # seconds


def event_json(event: Event) -> str:
    return json.dumps({"kind": event.kind, **dataclasses.asdict(event)}, default=str)


class EventsRoute:
    """A test route: "subscribed", then every bus event as one JSON text message, until the
    client closes (a message from it also ends the session)."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus
        self.ended = trio.Event()
        self.handler = websocket_route(self.session)

    async def session(self, ws: WebSocketConnection, request: HttpRequest) -> None:
        try:
            with self.bus.subscribe() as subscription:
                await ws.send_message(json.dumps({"kind": "subscribed"}))
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self.forward, ws, subscription)
                    with contextlib.suppress(ConnectionClosed):
                        await ws.get_message()
                    nursery.cancel_scope.cancel()
        finally:
            self.ended.set()

    async def forward(self, ws: WebSocketConnection, subscription: Subscription) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for event in subscription:
                await ws.send_message(event_json(event))


@dataclasses.dataclass
class Served:
    port: int
    system: System
    events: EventsRoute


@pytest.fixture
async def gateway(tmp_path: Path, nursery: trio.Nursery) -> AsyncIterator[Served]:
    """The gateway's own app (IPP, pages) plus /test-events, served on 127.0.0.1:0."""
    system = System(Config(spool=tmp_path / "spool"))
    await nursery.start(system.run)
    app = IppApp(system)
    events = EventsRoute(system.bus)
    app.router.add("/test-events", events.handler)
    [(_, port)] = await nursery.start(serve_http, app, [("127.0.0.1", 0)])
    yield Served(port, system, events)
    nursery.cancel_scope.cancel()


async def test_a_websocket_on_the_ipp_port_receives_a_bus_event(gateway: Served) -> None:
    port, system = gateway.port, gateway.system
    others = system.bus.subscriber_count  # the System's own (IPP notifications)
    with trio.fail_after(GUARD):
        async with open_websocket_url(f"ws://127.0.0.1:{port}/test-events") as ws:
            assert json.loads(await ws.get_message()) == {"kind": "subscribed"}
            assert system.bus.subscriber_count == others + 1
            # IPP on the same port, while the WebSocket is open.
            assert await trio.to_thread.run_sync(printer_state, port) == 3  # idle
            job_id = await trio.to_thread.run_sync(print_job, port, b"%!PS\nshowpage\n")
            while (event := json.loads(await ws.get_message()))["kind"] != "job-created":
                pass
    assert event["job"]["id"] == job_id
    assert event["job"]["printer"] == "default"
    with trio.fail_after(GUARD):
        await gateway.events.ended.wait()  # the session ends with the client's close
    assert system.bus.subscriber_count == others


async def rejection(port: int, path: str) -> int:
    """The status a trio-websocket client is refused with (on a stream of ours: the library
    leaves its own unclosed when refused)."""
    status = 0
    async with await trio.open_tcp_stream("127.0.0.1", port) as stream:
        try:
            async with trio.open_nursery() as nursery:
                await wrap_client_stream(nursery, stream, f"127.0.0.1:{port}", path)
        except* ConnectionRejected as group:
            [rejected] = group.exceptions
            assert isinstance(rejected, ConnectionRejected)
            status = rejected.status_code
    return status


async def test_a_websocket_to_a_path_without_a_route_is_refused(gateway: Served) -> None:
    with trio.fail_after(GUARD):
        assert await rejection(gateway.port, "/no-such-route") == 404
        # A route that does not upgrade answers the request as if there were no offer.
        assert await rejection(gateway.port, "/") == 200


def keep_alive_exchange(port: int, requests: list[bytes]) -> list[bytes]:
    """Send each request on one connection, and read each answer (a head, and a body of its
    Content-Length unless the request is a HEAD) before the next."""
    answers = []
    with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as sock:
        buffer = b""
        for data in requests:
            sock.sendall(data)
            while b"\r\n\r\n" not in buffer:
                buffer += sock.recv(65536)
            head, _, buffer = buffer.partition(b"\r\n\r\n")
            length = 0
            for line in [] if data.startswith(b"HEAD ") else head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.lower() == b"content-length":
                    length = int(value)
            while len(buffer) < length:
                buffer += sock.recv(65536)
            answers.append(head + b"\r\n\r\n" + buffer[:length])
            buffer = buffer[length:]
    return answers


async def test_upgrades_nobody_takes_leave_the_connection_in_http(gateway: Served) -> None:
    port = gateway.port
    ws_offer = (b"Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")
    requests = [
        b"GET /no-such-route HTTP/1.1\r\nHost: gw\r\n" + ws_offer + b"\r\n",
        b"OPTIONS * HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n",
        b"GET /test-events HTTP/1.1\r\nHost: gw\r\n\r\n",  # a WebSocket route, without the offer
        b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n",
    ]
    with trio.fail_after(GUARD):
        answers = await trio.to_thread.run_sync(keep_alive_exchange, port, requests)
    statuses = [answer.split(b" ", 2)[1] for answer in answers]
    assert statuses == [b"404", b"200", b"426", b"200"]
    assert b"\r\nAllow: GET, HEAD, OPTIONS, POST\r\n" in answers[1]
    assert b"\r\nUpgrade: websocket\r\n" in answers[2]
    assert b"<h1>ipp-gateway</h1>" in answers[3]
    assert not any(b"101" in status for status in statuses)


async def test_the_path_table_on_the_wire(gateway: Served) -> None:
    port = gateway.port
    close = b"Host: gw\r\nConnection: close\r\n"
    requests = [
        b"GET /icon.png HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"HEAD /ipp/print/default HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /ipp/print/nobody HTTP/1.1\r\n" + close + b"\r\n",
        b"DELETE /ipp/print HTTP/1.1\r\n" + close + b"\r\n",
        b"POST / HTTP/1.1\r\n" + close + b"Content-Type: application/ipp\r\n\r\n",
        b"POST /ipp/print HTTP/1.1\r\n" + close + b"Content-Type: text/plain\r\n\r\n",
    ]
    with trio.fail_after(GUARD):
        answers = await trio.to_thread.run_sync(keep_alive_exchange, port, requests[:2])
        refusals = [await trio.to_thread.run_sync(raw_exchange, port, data)
                    for data in requests[2:]]
    icon, head = answers
    assert icon.startswith(b"HTTP/1.1 200 ") and b"\r\nContent-Type: image/png\r\n" in icon
    assert icon.partition(b"\r\n\r\n")[2].startswith(b"\x89PNG")
    assert head.startswith(b"HTTP/1.1 200 ") and head.endswith(b"\r\n\r\n")
    assert [answer.split(b" ", 2)[1] for answer in refusals] == [b"404", b"405", b"405", b"400"]
    assert b"\r\nAllow: GET, HEAD, OPTIONS, POST\r\n" in refusals[1]
    assert b"\r\nAllow: GET, HEAD, OPTIONS\r\n" in refusals[2]
