"""WebSocket routes on the HTTP port, through trio-websocket's server-side API.

`websocket_route(session)` is a router handler (gateway.server.router). It checks the
handshake request itself, so that a bad one gets a plain HTTP refusal from our own layer,
then answers `Upgrade(run)` without a protocol: the connection replays the request head into
the stream, trio-websocket's `wrap_server_stream` reads it and `accept()` sends the 101. The
session then runs with the accepted `WebSocketConnection`; when it returns, the WebSocket is
closed (close frame, bounded wait) and the connection with it. A peer that goes away shows as
`trio_websocket.ConnectionClosed` in the session, which ends it quietly.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, wrap_server_stream

from gateway.server.http import (
    Handler,
    HttpError,
    HttpRequest,
    RequestBody,
    Upgrade,
    upgrade_offered,
)

logger = logging.getLogger("gateway.server.websocket")

Session = Callable[[WebSocketConnection, HttpRequest], Awaitable[None]]

_VERSION = "13"  # RFC 6455, the only one there is
_UPGRADE_REQUIRED = (("Upgrade", "websocket"), ("Connection", "Upgrade"),
                     ("Sec-WebSocket-Version", _VERSION))


@dataclass(frozen=True)
class WebSocketLimits:
    handshake_timeout: float = 30.0  # for trio-websocket to read the replayed request
    close_timeout: float = 5.0  # for the peer to answer our close frame
    max_message_size: int = 64 * 1024  # a bigger message from the client closes it (1009)
    message_queue_size: int = 4  # received messages buffered before the reader waits


def websocket_route(session: Session, limits: WebSocketLimits | None = None) -> Handler:
    """A GET handler that upgrades to WebSocket and runs `session(ws, request)`.

    A GET without the upgrade offer gets 426 (with `Upgrade: websocket`); an offer with a
    version other than 13 gets 426 with `Sec-WebSocket-Version: 13` (RFC 6455 4.4); a
    missing or malformed Sec-WebSocket-Key gets 400.
    """
    bounds = limits or WebSocketLimits()

    async def handler(request: HttpRequest, body: RequestBody) -> Upgrade:
        check_handshake(request)

        async def run(stream: trio.abc.Stream) -> None:
            await _serve(stream, session, request, bounds)

        return Upgrade(run)

    return handler


def check_handshake(request: HttpRequest) -> None:
    """Raise `HttpError` unless `request` is a WebSocket opening handshake we can accept."""
    if request.method != "GET" or not upgrade_offered(request, "websocket"):
        raise HttpError(426, "This resource is a WebSocket", headers=_UPGRADE_REQUIRED)
    if request.header("sec-websocket-version") != _VERSION:
        raise HttpError(426, f"WebSocket version {_VERSION} only", headers=_UPGRADE_REQUIRED)
    key = request.header("sec-websocket-key") or ""
    try:
        valid = len(base64.b64decode(key, validate=True)) == 16
    except binascii.Error:
        valid = False
    if not valid:
        raise HttpError(400, "Missing or malformed Sec-WebSocket-Key")


async def _serve(stream: trio.abc.Stream, session: Session, request: HttpRequest,
                 limits: WebSocketLimits) -> None:
    async with trio.open_nursery() as nursery:
        with trio.move_on_after(limits.handshake_timeout) as handshake:
            proposal = await wrap_server_stream(
                nursery, stream, message_queue_size=limits.message_queue_size,
                max_message_size=limits.max_message_size)
        if handshake.cancelled_caught:
            logger.debug("%s: WebSocket handshake timed out", request.client)
            nursery.cancel_scope.cancel()
            return
        try:
            ws = await proposal.accept()
        except ConnectionClosed:
            logger.debug("%s: WebSocket peer left during the handshake", request.client)
            nursery.cancel_scope.cancel()
            return
        logger.debug("%s: WebSocket %s open", request.client, request.path)
        try:
            await session(ws, request)
        except ConnectionClosed as exc:
            logger.debug("%s: WebSocket %s closed by the peer: %s", request.client,
                         request.path, exc.reason)
        finally:
            with trio.move_on_after(limits.close_timeout):
                await ws.aclose()
            nursery.cancel_scope.cancel()  # the reader task, if the peer never answered
