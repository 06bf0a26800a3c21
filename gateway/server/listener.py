"""TCP listeners that hand every accepted connection to its own `HttpConnection` task."""

from __future__ import annotations

import logging

import trio

from gateway.server.http import DEFAULT_LIMITS, HttpApp, HttpLimits, format_address
from gateway.server.http_connection import HttpConnection, log_client_failure

logger = logging.getLogger("gateway.server.listener")

_ANY_HOST = ("", "*")


async def serve_http(
    app: HttpApp,
    listen: list[tuple[str, int]],
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` over HTTP on every (host, port) in `listen` until cancelled.

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
    await serve_listeners(app, listeners, limits=limits, task_status=task_status)


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


async def _serve_connection(stream: trio.SocketStream, app: HttpApp, limits: HttpLimits) -> None:
    """Serve one accepted connection; whatever happens to it, the listener carries on."""
    client = "?"
    try:
        try:
            local = stream.socket.getsockname()
            client = format_address(stream.socket.getpeername())
        except OSError as exc:  # reset before we got to it
            logger.debug("connection lost before serving: %s", exc)
            return
        # TLS goes here: read the first bytes (with limits.read_timeout); a TLS handshake
        # record (16 03 xx) means wrapping the stream in trio.SSLStream(server_side=True) over
        # a gateway.server.streams.ReplayStream of those bytes, with scheme "ipps"; anything
        # else is plain HTTP and the bytes are handed on as HttpConnection(initial_data=...).
        # RFC 2817's "Upgrade: TLS/1.2" is a route's business instead: it answers
        # Upgrade(run, protocol="TLS/1.2, HTTP/1.1") and `run` does the same wrapping.
        connection = HttpConnection(
            stream, app, limits=limits, local=(str(local[0]), int(local[1])), client=client
        )
        await connection.serve()
    except Exception:
        log_client_failure(logger, client, "%s: connection failed", client)
    finally:
        await trio.aclose_forcefully(stream)


async def serve_listeners(
    app: HttpApp,
    listeners: list[trio.SocketListener],
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on listeners bound earlier (by gateway.startup, before privileges were
    dropped) until cancelled; reports their (host, port) pairs through `task_status`."""
    bound = [_bound_address(listener) for listener in listeners]
    for address in bound:
        logger.info("listening on %s", format_address(address))

    async def handler(stream: trio.SocketStream) -> None:
        await _serve_connection(stream, app, limits)

    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, handler, listeners)
            task_status.started(bound)
    finally:
        await close_listeners(listeners)
