"""TCP listeners that hand every accepted connection to its own `HttpConnection` task.

IPP and IPPS share each port. With TLS on, the first bytes a client sends decide: a TLS
record (a ClientHello starts with 0x16, which no HTTP method does) is answered with a
handshake and HTTP over it, scheme "ipps"; anything else is plain HTTP, scheme "ipp", and the
bytes read are the start of its first request. RFC 2817's `Upgrade: TLS/1.2` on a plain
connection ends up here too (`TlsServer.upgrade`, which the router answers with).
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable

import trio

from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server.http import (
    DEFAULT_LIMITS,
    HttpApp,
    HttpLimits,
    HttpRequest,
    Takeover,
    format_address,
    replayed_head,
)
from gateway.server.http_connection import HttpConnection, log_client_failure
from gateway.server.streams import ReplayStream

logger = logging.getLogger("gateway.server.listener")

_ANY_HOST = ("", "*")
_TLS_HANDSHAKE_RECORD = 0x16


class TlsServer:
    """HTTP over TLS for the listeners: `context` gives the SSLContext to handshake with now
    (a certificate renewal changes it), `app` is what the listeners serve (set by
    `serve_listeners`, so that an upgraded connection follows a reload as a plain one does)."""

    def __init__(self, context: Callable[[], ssl.SSLContext],
                 limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.context = context
        self.limits = limits
        self.app: HttpApp | None = None

    async def serve(self, stream: trio.abc.Stream, *, local: tuple[str, int], client: str,
                    replay: bytes = b"", request_head: bytes = b"") -> None:
        """Handshake on `stream` (whose first bytes, already read, are `replay`), then serve
        HTTP on it with scheme "ipps"; `request_head` is a request to answer first (the one
        that asked for the upgrade). A failed or slow handshake is one log line."""
        if self.app is None:
            raise RuntimeError("TlsServer.serve before serve_listeners gave it an app")
        transport = ReplayStream(replay, stream) if replay else stream
        tls = trio.SSLStream(transport, self.context(), server_side=True, https_compatible=True)
        with trio.move_on_after(self.limits.read_timeout) as scope:
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                _log_handshake_failure(client, _handshake_reason(exc))
                return
        if scope.cancelled_caught:
            _log_handshake_failure(client, f"no handshake within {self.limits.read_timeout:g} s")
            return
        connection = HttpConnection(tls, self.app, limits=self.limits, local=local,
                                    client=client, scheme="ipps", initial_data=request_head)
        await connection.serve()

    def upgrade(self, request: HttpRequest) -> Takeover:
        """The takeover for an RFC 2817 upgrade of `request`: after the 101, the handshake,
        then the answer to `request` itself over TLS (as cupsd does, and the CUPS client
        waits for), then HTTP on the connection as on any TLS one."""
        head = replayed_head(request)

        async def run(stream: trio.abc.Stream) -> None:
            await self.serve(stream, local=(request.host, request.port), client=request.client,
                             request_head=head)

        return run


def _handshake_reason(exc: trio.BrokenResourceError) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return cause.reason or cause.strerror or str(cause)
    if cause is not None:
        return str(cause) or type(cause).__name__
    return "connection closed"


def _log_handshake_failure(client: str, reason: str) -> None:
    CLIENT_LOG_LIMITER.log(logger, logging.INFO, client_key(client),
                           "%s: TLS handshake failed: %s", client, reason)


async def serve_http(
    app: HttpApp,
    listen: list[tuple[str, int]],
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    tls: TlsServer | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` over HTTP (and HTTPS with `tls`) on every (host, port) in `listen` until
    cancelled.

    A host may be "" (every address, IPv4 and IPv6), "0.0.0.0", "::", a name such as
    "localhost" (each address it resolves to) or an IPv6 literal with or without brackets.
    Port 0 picks a free port, the same one for all addresses of that host. Reports the
    actually bound (host, port) pairs through `task_status.started`.
    """
    listeners: list[trio.SocketListener] = []
    try:
        for host, port in listen:
            listeners.extend(await _open_listeners(host, port))
    except OSError:
        await close_listeners(listeners)
        raise
    await serve_listeners(app, listeners, limits=limits, tls=tls, task_status=task_status)


async def close_listeners(listeners: list[trio.SocketListener]) -> None:
    for listener in listeners:
        await trio.aclose_forcefully(listener)


async def _open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    bind_host = None if host in _ANY_HOST else host.removeprefix("[").removesuffix("]")
    listeners = await trio.open_tcp_listeners(port, host=bind_host)
    if port != 0 or len(listeners) < 2:
        return listeners
    # Port 0 draws a separate port for each address (IPv4, IPv6): reopen them all on one.
    shared_port = _bound_address(listeners[0])[1]
    for listener in listeners:
        await trio.aclose_forcefully(listener)
    return await trio.open_tcp_listeners(shared_port, host=bind_host)


def _bound_address(listener: trio.SocketListener) -> tuple[str, int]:
    address = listener.socket.getsockname()
    return str(address[0]), int(address[1])


async def _serve_connection(stream: trio.SocketStream, app: HttpApp, limits: HttpLimits,
                            tls: TlsServer | None) -> None:
    """Serve one accepted connection; whatever happens to it, the listener carries on."""
    client = "?"
    try:
        try:
            local = stream.socket.getsockname()
            client = format_address(stream.socket.getpeername())
        except OSError as exc:  # reset before we got to it
            logger.debug("connection lost before serving: %s", exc)
            return
        address = (str(local[0]), int(local[1]))
        first = b""
        if tls is not None:
            first = await _first_bytes(stream, limits)
            if not first:
                return  # closed, or silent for read_timeout: nothing to answer
            if first[0] == _TLS_HANDSHAKE_RECORD:
                await tls.serve(stream, local=address, client=client, replay=first)
                return
        connection = HttpConnection(stream, app, limits=limits, local=address, client=client,
                                    initial_data=first)
        await connection.serve()
    except Exception:
        log_client_failure(logger, client, "%s: connection failed", client)
    finally:
        await trio.aclose_forcefully(stream)


async def _first_bytes(stream: trio.SocketStream, limits: HttpLimits) -> bytes:
    """What the client sends first (b"" if it closes or stays silent for read_timeout)."""
    with trio.move_on_after(limits.read_timeout):
        try:
            return bytes(await stream.receive_some(limits.receive_size))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.debug("connection lost before its first bytes: %s", exc)
    return b""


async def serve_listeners(
    app: HttpApp,
    listeners: list[trio.SocketListener],
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    tls: TlsServer | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on listeners bound earlier (by gateway.startup, before privileges were
    dropped) until cancelled, over TLS too when `tls` is given (the same ports); reports
    their (host, port) pairs through `task_status`."""
    bound = [_bound_address(listener) for listener in listeners]
    for address in bound:
        logger.info("listening on %s (%s)", format_address(address),
                    "ipp and ipps" if tls is not None else "ipp")
    if tls is not None:
        tls.app = app

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, app, limits, tls)

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            task_status.started(bound)
    finally:
        await close_listeners(listeners)
