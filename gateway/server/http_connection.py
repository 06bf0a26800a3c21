"""One HTTP/1.1 connection on Trio over the sans-I/O `RequestParser` (gateway.server.http11);
the types live in gateway.server.http.

One task per connection serves its requests one after another (persistent connections and
pipelining), reads with a timeout per read, streams POST application/ipp bodies to the app,
and turns every failure into a status code or a quiet close. Only app bugs leave a traceback.
Every line a client can cause at INFO or above passes `CLIENT_LOG_LIMITER`, one bucket per
client address, so no client can fill the disk with them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import trio

from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server.http import (
    ALLOWED_METHODS,
    DEFAULT_LIMITS,
    IPP_CONTENT_TYPE,
    SERVER_NAME,
    BodyTimeout,
    ClientDisconnected,
    HttpApp,
    HttpError,
    HttpLimits,
    HttpRequest,
    MalformedBody,
    RequestAborted,
    http_date,
    is_ipp_content_type,
    reason_phrase,
    split_host_header,
    target_path,
)
from gateway.server.http11 import (
    CLOSED,
    CONTINUE_RESPONSE,
    END_OF_BODY,
    NEED_DATA,
    HttpProtocolError,
    RequestHead,
    RequestParser,
    valid_field_name,
    valid_field_value,
)

logger = logging.getLogger("gateway.server.http")

_SERVER = SERVER_NAME.encode("ascii")
_HEADERS_WE_SET = frozenset({"content-length", "transfer-encoding", "date", "server"})
_TEXT_PLAIN = ("Content-Type", "text/plain; charset=utf-8")
_BODYLESS_STATUSES = (204, 304)
_CONNECTION_CLOSE = b"Connection: close\r\n"


class _InvalidResponse(ValueError):
    """The app's response cannot be sent as it is (bad status or header)."""


class _ClientGone(Exception):
    """The peer reset or closed the connection, or stopped reading: close quietly."""


@dataclass
class _Reply:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    close: bool = False

    @classmethod
    def text(cls, status: int, message: str, *, close: bool = False) -> _Reply:
        return cls(status, [_TEXT_PLAIN], (message + "\n").encode("utf-8"), close)


class _Body:
    """The `RequestBody` of one request: the parser's body bytes, at most `max_bytes` at once."""

    def __init__(self, next_chunk: Callable[[], Awaitable[bytes]]) -> None:
        self._next_chunk = next_chunk
        self._chunk = b""
        self._offset = 0
        self._ended = False
        self.detached = False

    async def receive_some(self, max_bytes: int = 65536) -> bytes:
        """Up to `max_bytes` body bytes, b"" at the end; raises `RequestAborted` (let it go)."""
        if self.detached:
            raise RuntimeError("request body read after the request was answered")
        if max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")
        if not self._chunk:
            if self._ended:
                return b""
            self._chunk, self._offset = await self._next_chunk(), 0
            if not self._chunk:
                self._ended = True
                return b""
        if self._offset == 0 and len(self._chunk) <= max_bytes:
            whole, self._chunk = self._chunk, b""
            return whole
        end = self._offset + max_bytes
        piece = self._chunk[self._offset : end]
        if end >= len(self._chunk):
            self._chunk, self._offset = b"", 0
        else:
            self._offset = end
        return piece


class HttpConnection:
    """Serves the HTTP/1.1 requests of one accepted stream to an `HttpApp` until it closes.

    `local` is the address the client connected to (the fallback for a missing Host header),
    `client` the peer as "ip:port" for logs, and `initial_data` bytes already read from the
    stream (by the listener's TLS sniffing) that belong to the first request.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        app: HttpApp,
        *,
        limits: HttpLimits = DEFAULT_LIMITS,
        local: tuple[str, int] = ("localhost", 631),
        client: str = "-",
        scheme: str = "ipp",
        initial_data: bytes = b"",
    ) -> None:
        self._stream = stream
        self._app = app
        self._limits = limits
        self._local = local
        self._client = client
        self._scheme = scheme
        self._parser = RequestParser(limits.max_header_bytes)
        if initial_data:
            self._parser.receive(initial_data)
        self._eof = False
        self._linger = False
        self._served = 0
        # Per request. The 100 stays owed until the app waits for body bytes that are not
        # there yet: CUPS sends the IPP header at once and only then waits for the 100.
        self._head_request = False
        self._keep_alive = True
        self._continue_pending = False
        self._responded = False
        self._aborted: RequestAborted | None = None

    async def serve(self) -> None:
        """Serve requests until the client or a limit ends the connection, then close it."""
        try:
            while await self._serve_one():
                self._parser.start_next_cycle()
        except _ClientGone as exc:
            logger.debug("%s: connection dropped: %s", self._client, exc)
        finally:
            await self._close()

    async def _serve_one(self) -> bool:
        """One request/response cycle; True when the connection may carry another."""
        self._head_request, self._keep_alive = False, True
        self._continue_pending, self._responded, self._aborted = False, False, None
        head = await self._next_request()
        if head is None:
            return False
        self._head_request = head.method == b"HEAD"
        self._keep_alive = head.keep_alive
        self._continue_pending = head.expects_continue
        reply = await self._answer(head)
        if reply is None:
            return False
        keep_alive = not reply.close and await self._drain_body()
        keep_alive = await self._send(reply, close=not keep_alive)
        self._served += 1
        if logger.isEnabledFor(logging.DEBUG):
            method, target = head.method.decode(), head.target.decode("latin-1")
            logger.debug("%s: %s %s -> %d", self._client, method, target, reply.status)
        return keep_alive

    # -- reading requests --------------------------------------------------------------------

    async def _next_request(self) -> RequestHead | None:
        """The next request head, or None when the connection should close (after any reply)."""
        parser = self._parser
        while True:
            try:
                head = parser.next_request()
            except HttpProtocolError as exc:
                await self._reject_bad_http(exc)
                return None
            if isinstance(head, RequestHead):
                return head
            if head is CLOSED:
                return None  # the client is done with us
            started = parser.has_buffered_data
            if await self._receive(self._head_timeout(started)):
                continue
            if started:
                logger.debug("%s: request head timed out", self._client)
                await self._send(_Reply.text(408, "Request timed out"), close=True)
            else:
                logger.debug("%s: idle connection timed out", self._client)
            return None

    def _head_timeout(self, started: bool) -> float:
        if started or not self._served:
            return self._limits.read_timeout
        return self._limits.keepalive_timeout

    async def _reject_bad_http(self, exc: HttpProtocolError) -> None:
        if self._eof:
            logger.debug("%s: closed in the middle of a request head", self._client)
            return
        status = exc.status
        CLIENT_LOG_LIMITER.log(logger, logging.INFO, client_key(self._client),
                               "%s: bad HTTP request (%s), answering %d", self._client, exc, status)
        message = "Request header fields too large" if status == 431 else f"Bad request: {exc}"
        await self._send(_Reply.text(status, message), close=True)

    async def _receive(self, timeout: float) -> bool:  # noqa: ASYNC109 - a timeout is False
        """Feed one read into the parser; False when nothing arrived within `timeout` seconds."""
        with trio.move_on_after(timeout):
            try:
                data = await self._stream.receive_some(self._limits.receive_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _ClientGone(f"receive failed: {exc!r}") from exc
            self._eof = not data
            self._parser.receive(data)
            return True
        return False

    # -- the request body, as the app sees it -----------------------------------------------

    async def _next_body_chunk(self) -> bytes:
        """The next body bytes for the app, b"" at the end; raises `RequestAborted`."""
        if self._aborted is not None:
            raise self._aborted
        while True:
            try:
                data = self._parser.next_body()
            except HttpProtocolError as exc:
                if self._eof:
                    raise self._abort(ClientDisconnected("client closed mid-body")) from exc
                raise self._abort(MalformedBody(f"bad request body: {exc}")) from exc
            if data is NEED_DATA:
                await self._wait_for_body()
            elif data is END_OF_BODY:
                return b""
            else:
                assert isinstance(data, bytes)
                return data

    async def _wait_for_body(self) -> None:
        """Ask for the body with 100 Continue if still owed, then read once more."""
        try:
            if self._continue_pending:
                self._continue_pending = False
                await self._send_bytes(CONTINUE_RESPONSE)
            received = await self._receive(self._limits.read_timeout)
        except _ClientGone as exc:
            raise self._abort(ClientDisconnected(str(exc))) from exc
        if not received:
            seconds = self._limits.read_timeout
            raise self._abort(BodyTimeout(f"no request body data for {seconds:g} s"))

    def _abort(self, aborted: RequestAborted) -> RequestAborted:
        self._aborted = aborted
        return aborted

    async def _drain_body(self) -> bool:
        """Discard what the app left of the body; True if the connection can stay alive."""
        parser = self._parser
        if parser.request_complete:
            return True
        if parser.failed or self._aborted is not None:
            return False
        budget = self._limits.max_drain_bytes
        with trio.move_on_after(self._limits.read_timeout):
            while True:
                try:
                    data = parser.next_body()
                except HttpProtocolError:
                    return False
                if data is END_OF_BODY:
                    return True
                if data is NEED_DATA:
                    if self._continue_pending:
                        return False  # never invited the rest: closing beats waiting for it
                    await self._receive(math.inf)
                else:
                    assert isinstance(data, bytes)
                    budget -= len(data)
                    if budget < 0:
                        return False
        return False

    # -- answering -----------------------------------------------------------------------------

    async def _answer(self, head: RequestHead) -> _Reply | None:
        """The reply to one request, or None to close without one."""
        body = _Body(self._next_body_chunk)
        try:
            request = self._make_request(head)
            reply: _Reply | None = await self._dispatch(request, body)
        except HttpError as exc:
            reply = _Reply.text(exc.status, exc.message, close=exc.close)
        except Exception:
            if self._aborted is None:
                method, target = head.method.decode(), head.target.decode("latin-1")
                log_client_failure(logger, self._client, "%s: %s %s failed in the app",
                                   self._client, method, target)
                return _Reply.text(500, "Internal server error", close=True)
            reply = None
        finally:
            body.detached = True
        if self._aborted is not None:
            logger.debug("%s: request aborted: %r", self._client, self._aborted)
            if self._aborted.status is None:
                return None
            return _Reply.text(self._aborted.status, str(self._aborted), close=True)
        return reply

    async def _dispatch(self, request: HttpRequest, body: _Body) -> _Reply:
        method = request.method
        if method == "POST":
            if not is_ipp_content_type(request.header("content-type")):
                return _Reply.text(400, "POST requests must have Content-Type: application/ipp")
            ipp_response = await self._app.handle_ipp(request, body)
            return _Reply(200, [("Content-Type", IPP_CONTENT_TYPE)], ipp_response)
        if method in ("GET", "HEAD"):
            response = await self._app.handle_get(request)
            return _Reply(response.status, response.headers, response.body)
        if method == "OPTIONS":
            return _Reply(200, [("Allow", ALLOWED_METHODS)])
        reply = _Reply.text(405, f"Method {method} is not allowed")
        reply.headers.append(("Allow", ALLOWED_METHODS))
        return reply

    def _make_request(self, head: RequestHead) -> HttpRequest:
        headers = [(name.decode("ascii"), value.decode("latin-1")) for name, value in head.headers]
        target = head.target.decode("latin-1")
        host_header = next((value for name, value in headers if name == "host"), None)
        try:
            host, port = split_host_header(host_header, self._local)
        except ValueError as exc:
            raise HttpError(400, f"Invalid Host header: {exc}", close=True) from exc
        return HttpRequest(
            method=head.method.decode("ascii"),
            target=target,
            path=target_path(target),
            headers=headers,
            host=host,
            port=port,
            scheme=self._scheme,
            client=self._client,
            http_version=head.http_version.decode("ascii"),
        )

    async def _send(self, reply: _Reply, *, close: bool) -> bool:
        """Send a complete response (no body for HEAD), unless one was already sent; True if
        the connection stays open for another request."""
        if self._responded:
            return False
        close = close or reply.close or not self._keep_alive
        try:
            data = self._encode_response(reply, close)
        except _InvalidResponse:
            log_client_failure(logger, self._client, "%s: the app's response is invalid",
                               self._client)
            reply, close = _Reply.text(500, "Internal server error"), True
            data = self._encode_response(reply, close)
        self._continue_pending = False
        self._responded = True
        if close and not self._eof and not self._parser.request_complete:
            self._linger = True
        await self._send_bytes(data)
        return not close

    def _encode_response(self, reply: _Reply, close: bool) -> bytes:
        """Status line, Date, Server, Content-Length, the reply's headers, Connection, body."""
        status = reply.status
        if not 200 <= status < 1000:
            raise _InvalidResponse(f"status {status} is not a final status code")
        bodyless = status in _BODYLESS_STATUSES
        parts = [b"HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\n"
                 % (status, reason_phrase(status), http_date(), _SERVER)]
        if not bodyless:
            parts.append(b"Content-Length: %d\r\n" % len(reply.body))
        for name, value in reply.headers:
            lowered = name.lower()
            if lowered in _HEADERS_WE_SET or (close and lowered == "connection"):
                continue
            parts.append(_header_line(name, value))
        if close:
            parts.append(_CONNECTION_CLOSE)
        parts.append(b"\r\n")
        if reply.body and not self._head_request and not bodyless:
            parts.append(reply.body)
        return b"".join(parts)

    async def _send_bytes(self, data: bytes) -> None:
        with trio.move_on_after(self._limits.read_timeout) as scope:
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _ClientGone(f"send failed: {exc!r}") from exc
        if scope.cancelled_caught:
            raise _ClientGone("client stopped reading")

    # -- closing -------------------------------------------------------------------------------

    async def _close(self) -> None:
        try:
            if self._linger:
                with trio.move_on_after(self._limits.linger_timeout):
                    await self._discard_input()
        finally:
            await trio.aclose_forcefully(self._stream)

    async def _discard_input(self) -> None:
        """Half-close, then swallow what the client still sends, so that closing with unread
        input does not reset the connection and destroy the reply before the client reads it."""
        try:
            if isinstance(self._stream, trio.abc.HalfCloseableStream):
                await self._stream.send_eof()
            budget = self._limits.max_drain_bytes
            while budget > 0:
                data = await self._stream.receive_some(self._limits.receive_size)
                if not data:
                    return
                budget -= len(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return


def log_client_failure(log: logging.Logger, client: str, message: str, *args: object) -> None:
    """`log.exception(message, *args)` through `CLIENT_LOG_LIMITER`: a request that trips a
    bug can be repeated at will, and each traceback is many lines."""
    CLIENT_LOG_LIMITER.log(log, logging.ERROR, client_key(client), message, *args,
                           exc_info=True)


def _header_line(name: str, value: str) -> bytes:
    try:
        raw_name, raw_value = name.encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise _InvalidResponse(f"header {name!r} cannot be encoded: {exc}") from None
    if not valid_field_name(raw_name) or not valid_field_value(raw_value):
        raise _InvalidResponse(f"illegal header {name!r}: {value!r}")
    return b"%s: %s\r\n" % (raw_name, raw_value)
