"""One HTTP/1.1 connection on Trio over the sans-I/O `RequestParser` (ippwire.http11);
the types live in gateway.server.http, the handler API in gateway.server.router.

One task per connection serves its requests one after another (persistent connections and
pipelining), streams request bodies to the app and streamed
response bodies to the client, hands the connection over when the app answers `Upgrade`,
and turns every failure into a status code or a quiet close. Only app bugs leave a traceback.
Every line a client can cause at INFO or above passes `CLIENT_LOG_LIMITER`, one bucket per
client address, so no client can fill the disk with them.

Slow clients (slowloris) get deadlines, not just a timeout per read: a connection may wait
`keepalive_timeout` for the first byte of its next request, then the whole head must arrive
within `header_timeout` of that byte (-> 408). A body must keep coming: a read that brings
nothing for `read_timeout` ends it (-> 408), but a large document that flows is never cut.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Sequence,
)
from enum import Enum, auto

import trio

from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server.http import (
    DEFAULT_LIMITS,
    SERVER_NAME,
    BodyTimeout,
    ClientDisconnected,
    HttpApp,
    HttpError,
    HttpLimits,
    HttpRequest,
    HttpResponse,
    HttpResult,
    MalformedBody,
    RequestAborted,
    Upgrade,
    http_date,
    reason_phrase,
    split_host_header,
    target_path,
)
from gateway.server.streams import ReplayStream
from ippwire.http11 import (
    CLOSED,
    CONTINUE_RESPONSE,
    DEFAULT_MAX_FIELDS,
    END_OF_BODY,
    NEED_DATA,
    HttpProtocolError,
    RequestHead,
    RequestParser,
    encode_head,
    valid_field_name,
    valid_field_value,
)

logger = logging.getLogger("gateway.server.http")

_SERVER = SERVER_NAME.encode("ascii")
_HEADERS_WE_SET = frozenset({"content-length", "transfer-encoding", "date", "server"})
_TEXT_PLAIN = ("Content-Type", "text/plain; charset=utf-8")
_BODYLESS_STATUSES = (204, 304)
_CONNECTION_CLOSE = b"Connection: close\r\n"
_CHUNKED = b"Transfer-Encoding: chunked\r\n"
_LAST_CHUNK = b"0\r\n\r\n"
_SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"


@dataclasses.dataclass(frozen=True)
class ConnectionLimits(HttpLimits):
    """`HttpLimits` with the deadlines against slow clients and the header field count
    (the `[limits]` of gateway.config); a plain `HttpLimits` gets these defaults."""

    keepalive_timeout: float = 30.0  # idle time allowed before a request's first byte
    header_timeout: float = 10.0  # from a request's first byte to the end of its head
    max_header_fields: int = DEFAULT_MAX_FIELDS  # header lines per head; more -> 431


def connection_limits(limits: HttpLimits) -> ConnectionLimits:
    if isinstance(limits, ConnectionLimits):
        return limits
    return ConnectionLimits(**dataclasses.asdict(limits))


class _InvalidResponse(ValueError):
    """The app's response cannot be sent as it is (bad status or header)."""


class _ClientGone(Exception):
    """The peer reset or closed the connection, or stopped reading: close quietly."""


class _Streamed(Enum):
    """How sending a streamed body ended."""

    COMPLETE = auto()
    BROKEN = auto()  # the app's iterable failed or broke its length: close, body truncated
    CLIENT_GONE = auto()


def _text(status: int, message: str, *, close: bool = False,
          headers: Sequence[tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, [_TEXT_PLAIN, *headers], (message + "\n").encode("utf-8"),
                        close=close)


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
        self._limits = connection_limits(limits)
        self._local = local
        self._client = client
        self._scheme = scheme
        self._parser = RequestParser(limits.max_header_bytes, self._limits.max_header_fields)
        if initial_data:
            self._parser.receive(initial_data)
        self._eof = False
        self._linger = False
        self._served = 0
        # Per request. The 100 stays owed until the app waits for body bytes that are not
        # there yet: CUPS sends the IPP header at once and only then waits for the 100.
        self._head_request = False
        self._http11 = True
        self._keep_alive = True
        self._continue_pending = False
        self._responded = False
        self._aborted: RequestAborted | None = None
        self._client_left = False  # seen by the watcher while a streamed body went out

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
        self._http11 = head.http_version == b"1.1"
        self._keep_alive = head.keep_alive
        self._continue_pending = head.expects_continue
        reply = await self._answer(head)
        if reply is None:
            return False
        if isinstance(reply, Upgrade):
            await self._take_over(head, reply)
            return False
        keep_alive = not reply.close and await self._drain_body()
        if isinstance(reply.body, bytes):
            keep_alive = await self._send(reply, close=not keep_alive)
        else:
            keep_alive = await self._send_streamed(reply, reply.body, close=not keep_alive)
        self._served += 1
        if logger.isEnabledFor(logging.DEBUG):
            method, target = head.method.decode(), head.target.decode("latin-1")
            logger.debug("%s: %s %s -> %d", self._client, method, target, reply.status)
        return keep_alive

    # -- reading requests --------------------------------------------------------------------

    async def _next_request(self) -> RequestHead | None:
        """The next request head, or None when the connection should close (after any reply).

        Until its first byte the connection is idle (`keepalive_timeout`); from then on the
        head has `header_timeout` in all, however the bytes trickle in."""
        parser = self._parser
        started: float | None = None
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
            now = trio.current_time()
            if started is None and parser.has_buffered_data:
                started = now
            if started is None:
                deadline = now + self._limits.keepalive_timeout
            else:
                deadline = min(started + self._limits.header_timeout,
                               now + self._limits.read_timeout)
            if await self._receive_until(deadline):
                continue
            if started is not None:
                CLIENT_LOG_LIMITER.log(
                    logger, logging.INFO, client_key(self._client),
                    "%s: request head not complete within %g s, closing", self._client,
                    min(self._limits.header_timeout, self._limits.read_timeout))
                await self._send(_text(408, "Request timed out"), close=True)
            else:
                logger.debug("%s: idle connection timed out", self._client)
            return None

    async def _reject_bad_http(self, exc: HttpProtocolError) -> None:
        if self._eof:
            logger.debug("%s: closed in the middle of a request head", self._client)
            return
        status = exc.status
        CLIENT_LOG_LIMITER.log(logger, logging.INFO, client_key(self._client),
                               "%s: bad HTTP request (%s), answering %d", self._client, exc, status)
        message = "Request header fields too large" if status == 431 else f"Bad request: {exc}"
        await self._send(_text(status, message), close=True)

    async def _receive(self, timeout: float) -> bool:  # noqa: ASYNC109 - a timeout is False
        """Feed one read into the parser; False when nothing arrived within `timeout` seconds."""
        return await self._receive_until(trio.current_time() + timeout)

    async def _receive_until(self, deadline: float) -> bool:
        """Feed one read into the parser; False when nothing arrived by `deadline`."""
        with trio.move_on_at(deadline):
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

    async def _answer(self, head: RequestHead) -> HttpResult | None:
        """The app's answer to one request, or None to close without one."""
        body = _Body(self._next_body_chunk)
        try:
            request = self._make_request(head)
            reply = await self._app.handle(request, body)
            if not isinstance(reply, HttpResponse | Upgrade):
                raise TypeError(f"the app answered {type(reply).__name__}, not a response")
        except HttpError as exc:
            reply = _text(exc.status, exc.message, close=exc.close, headers=exc.headers)
        except Exception:
            if self._aborted is None:
                method, target = head.method.decode(), head.target.decode("latin-1")
                log_client_failure(logger, self._client, "%s: %s %s failed in the app",
                                   self._client, method, target)
                return _text(500, "Internal server error", close=True)
            reply = None
        finally:
            body.detached = True
        if self._aborted is not None:
            logger.debug("%s: request aborted: %r", self._client, self._aborted)
            if self._aborted.status is None:
                return None
            return _text(self._aborted.status, str(self._aborted), close=True)
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

    async def _send(self, reply: HttpResponse, *, close: bool) -> bool:
        """Send a response with a bytes body (none for HEAD), unless one was already sent;
        True if the connection stays open for another request."""
        if self._responded:
            return False
        close = close or reply.close or not self._keep_alive
        try:
            data = self._encode_response(reply, close)
        except _InvalidResponse:
            log_client_failure(logger, self._client, "%s: the app's response is invalid",
                               self._client)
            reply, close = _text(500, "Internal server error"), True
            data = self._encode_response(reply, close)
        self._mark_responded(close)
        await self._send_bytes(data)
        return not close

    def _mark_responded(self, close: bool) -> None:
        self._continue_pending = False
        self._responded = True
        if close and not self._eof and not self._parser.request_complete:
            self._linger = True

    def _encode_response(self, reply: HttpResponse, close: bool) -> bytes:
        """Status line, Date, Server, Content-Length, the reply's headers, Connection, body."""
        body = reply.body
        assert isinstance(body, bytes)
        bodyless = reply.status in _BODYLESS_STATUSES
        framing = b"" if bodyless else b"Content-Length: %d\r\n" % len(body)
        parts = self._encode_head(reply, framing, close)
        if body and not self._head_request and not bodyless:
            parts.append(body)
        return b"".join(parts)

    def _encode_head(self, reply: HttpResponse, framing: bytes, close: bool) -> list[bytes]:
        """The response head as parts to join: status line, Date, Server, `framing` (the
        Content-Length or Transfer-Encoding line, if any), the reply's headers, Connection."""
        status = reply.status
        if not 200 <= status < 1000:
            raise _InvalidResponse(f"status {status} is not a final status code")
        parts = [b"HTTP/1.1 %d %s\r\nDate: %s\r\nServer: %s\r\n%s"
                 % (status, reason_phrase(status), http_date(), _SERVER, framing)]
        for name, value in reply.headers:
            lowered = name.lower()
            if lowered in _HEADERS_WE_SET or (close and lowered == "connection"):
                continue
            parts.append(_header_line(name, value))
        if close:
            parts.append(_CONNECTION_CLOSE)
        parts.append(b"\r\n")
        return parts

    # -- streamed bodies -----------------------------------------------------------------------

    async def _send_streamed(self, reply: HttpResponse, body: AsyncIterable[bytes], *,
                             close: bool) -> bool:
        """Send a response whose body is an async iterable: with Content-Length when the
        reply gives `length`, else chunked (HTTP/1.1) or up to the close (HTTP/1.0). True if
        the connection stays open for another request."""
        close = close or reply.close or not self._keep_alive
        try:
            chunks = aiter(body)
            framing, chunked = self._framing(reply)
            if framing == b"" and reply.status not in _BODYLESS_STATUSES:
                close = True  # HTTP/1.0 and no length: the body ends with the connection
            head = b"".join(self._encode_head(reply, framing, close))
        except (_InvalidResponse, TypeError):
            log_client_failure(logger, self._client, "%s: the app's streamed response is "
                               "invalid", self._client)
            await _close_iterable(body)
            return await self._send(_text(500, "Internal server error"), close=True)
        try:
            self._mark_responded(close)
            await self._send_bytes(head)
            if self._head_request or reply.status in _BODYLESS_STATUSES:
                return not close
            ended = await self._stream_body(chunks, chunked, reply.length)
        finally:
            await _close_iterable(chunks)
        if ended is _Streamed.CLIENT_GONE:
            raise _ClientGone("client left during a streamed response")
        return ended is _Streamed.COMPLETE and not close

    def _framing(self, reply: HttpResponse) -> tuple[bytes, bool]:
        """(the framing header line, whether the body is chunked) of a streamed reply."""
        if reply.status in _BODYLESS_STATUSES:
            return b"", False
        if reply.length is not None:
            if reply.length < 0:
                raise _InvalidResponse(f"negative length {reply.length}")
            return b"Content-Length: %d\r\n" % reply.length, False
        if self._http11:
            return _CHUNKED, True
        return b"", False

    async def _stream_body(self, chunks: AsyncIterator[bytes], chunked: bool,
                           length: int | None) -> _Streamed:
        """Send what `chunks` yields while watching the client; how it ended."""
        self._client_left = False
        ended = _Streamed.CLIENT_GONE  # unless the pump ends before the watcher stops it
        async with trio.open_nursery() as nursery:
            if not self._eof:  # a client that half-closed before is waiting: let it be
                nursery.start_soon(self._watch_client, nursery.cancel_scope)
            ended = await self._pump(chunks, chunked, length)
            nursery.cancel_scope.cancel()
        return ended

    async def _pump(self, chunks: AsyncIterator[bytes], chunked: bool,
                    length: int | None) -> _Streamed:
        sent = 0
        while not isinstance(chunk := await self._next_app_chunk(chunks), _Streamed):
            if not chunk:
                continue  # an empty chunk would end a chunked body
            sent += len(chunk)
            if length is not None and sent > length:
                logger.error("%s: the app's streamed body is longer than its length %d",
                             self._client, length)
                return _Streamed.BROKEN
            try:
                await self._send_bytes(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked
                                       else chunk)
            except _ClientGone as exc:
                logger.debug("%s: %s", self._client, exc)
                return _Streamed.CLIENT_GONE
        if chunk is _Streamed.BROKEN:
            return chunk
        if length is not None and sent != length:
            logger.error("%s: the app's streamed body ended at %d of its length %d",
                         self._client, sent, length)
            return _Streamed.BROKEN
        try:
            if chunked:
                await self._send_bytes(_LAST_CHUNK)
        except _ClientGone:
            return _Streamed.CLIENT_GONE
        return _Streamed.COMPLETE

    async def _next_app_chunk(self, chunks: AsyncIterator[bytes]) -> bytes | _Streamed:
        """The next bytes of a streamed body, COMPLETE at its end, or BROKEN."""
        try:
            chunk: object = await anext(chunks)
        except StopAsyncIteration:
            return _Streamed.COMPLETE
        except Exception:
            log_client_failure(logger, self._client, "%s: the app's streamed body failed",
                               self._client)
            return _Streamed.BROKEN
        if isinstance(chunk, bytes):
            return chunk
        if isinstance(chunk, bytearray | memoryview):
            return bytes(chunk)
        logger.error("%s: the app's streamed body yielded %s, not bytes", self._client,
                     type(chunk).__name__)
        return _Streamed.BROKEN

    async def _watch_client(self, pump: trio.CancelScope) -> None:
        """Read while a body streams, so that a client that leaves (a reset, or the end of
        its input) stops the stream at once rather than at the next write, which for an
        event stream may be long. Pipelined requests are kept for later, up to a head's
        worth; then it just waits."""
        limit = self._limits.max_header_bytes
        while self._parser.buffered_size <= limit:
            try:
                data = await self._stream.receive_some(self._limits.receive_size)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            self._parser.receive(data)
            if not data:
                self._eof = self._client_left = True
                pump.cancel()
                return
        await trio.sleep_forever()

    # -- upgrades ------------------------------------------------------------------------------

    async def _take_over(self, head: RequestHead, upgrade: Upgrade) -> None:
        """Hand the connection to `upgrade.run`, after a 101 when it names a protocol, with
        the bytes read ahead (and the request head, when it names none) replayed first."""
        if not self._http11:
            logger.error("%s: the app upgraded an HTTP/%s request", self._client,
                         head.http_version.decode())
            await self._send(_text(500, "Internal server error"), close=True)
            return
        if upgrade.protocol is None:
            if not self._parser.request_complete:
                await self._send(_text(400, "An upgrade request must not have a body"),
                                 close=True)
                return
            replay = encode_head(head) + self._parser.take_buffered()
        else:
            if not await self._drain_body():
                await self._send(_text(400, "Request body not received"), close=True)
                return
            try:
                switching = _switching_head(upgrade)
            except _InvalidResponse:
                log_client_failure(logger, self._client, "%s: the app's upgrade is invalid",
                                   self._client)
                await self._send(_text(500, "Internal server error"), close=True)
                return
            self._mark_responded(False)
            await self._send_bytes(switching)
            replay = self._parser.take_buffered()
        self._responded = True
        logger.debug("%s: connection taken over (%s)", self._client,
                     upgrade.protocol or "handshake replayed")
        stream = ReplayStream(replay, self._stream) if replay else self._stream
        try:
            await upgrade.run(stream)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.debug("%s: upgraded connection dropped: %s", self._client, exc)
        except Exception:
            log_client_failure(logger, self._client, "%s: the upgraded connection failed",
                               self._client)

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


async def _close_iterable(body: object) -> None:
    """Close a streamed body the connection is done with, so that a generator's `finally`
    runs now, not whenever the garbage collector gets to it."""
    if isinstance(body, AsyncGenerator):
        await body.aclose()


def _switching_head(upgrade: Upgrade) -> bytes:
    parts = [_SWITCHING, _header_line("Upgrade", upgrade.protocol or "")]
    for name, value in upgrade.headers:
        if name.lower() not in ("connection", "upgrade", *_HEADERS_WE_SET):
            parts.append(_header_line(name, value))
    parts.append(b"\r\n")
    return b"".join(parts)


def _header_line(name: str, value: str) -> bytes:
    try:
        raw_name, raw_value = name.encode("ascii"), value.encode("latin-1")
    except UnicodeEncodeError as exc:
        raise _InvalidResponse(f"header {name!r} cannot be encoded: {exc}") from None
    if not valid_field_name(raw_name) or not valid_field_value(raw_value):
        raise _InvalidResponse(f"illegal header {name!r}: {value!r}")
    return b"%s: %s\r\n" % (raw_name, raw_value)
