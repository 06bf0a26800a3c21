"""The HTTP vocabulary shared by the connection layer and the apps it serves.

`HttpConnection` (gateway.server.http_connection) turns bytes into `HttpRequest`s and hands
them to an `HttpApp`, in practice a `Router` (gateway.server.router, where the handler API is
written down); the app never sees the parser. Everything here is pure: data types, the
exceptions that cross the boundary, and small parsers for Host, targets, content types and
Upgrade offers. Only an `Upgrade`'s takeover function meets a stream (a trio one, named here
for the type checker alone).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterable, Awaitable, Callable, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import TYPE_CHECKING, Protocol, TypeAlias
from urllib.parse import unquote

from gateway.authority import authority
from ippwire.http11 import split_authority

if TYPE_CHECKING:
    import trio

SERVER_NAME = "ipp-gateway/0.1"
IPP_CONTENT_TYPE = "application/ipp"


@dataclass(frozen=True)
class HttpLimits:
    """Bounds that keep one slow or hostile client from holding resources forever."""

    read_timeout: float = 30.0  # per read in a request, per write, and for a new connection
    keepalive_timeout: float = 60.0  # idle time allowed between requests on one connection
    max_header_bytes: int = 16 * 1024  # a request head or chunked trailer larger -> 431
    max_drain_bytes: int = 1024 * 1024  # body left unread by the app that we discard to keep alive
    receive_size: int = 64 * 1024  # bytes asked for per socket read
    linger_timeout: float = 1.0  # seconds to swallow input after an error, so the reply survives


DEFAULT_LIMITS = HttpLimits()


@dataclass(frozen=True)
class HttpRequest:
    """One parsed request head; the body comes separately as a `RequestBody`."""

    method: str  # "POST", "GET", "HEAD", "OPTIONS", ...
    target: str  # as sent, path with query, e.g. "/ipp/print"
    path: str  # target without query, percent-decoded
    headers: list[tuple[str, str]]  # lower-cased names, in order
    host: str  # from Host (no port; IPv6 without brackets, zone id as sent), else local address
    port: int  # from Host, else the local port
    scheme: str  # "ipp", or "ipps" over TLS
    client: str  # peer address "ip:port", for logs
    http_version: str = "1.1"

    def header(self, name: str) -> str | None:
        """The value of header `name` (any case); repeated headers are joined with ", "."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key == wanted]
        return ", ".join(values) if values else None


@dataclass(slots=True)
class HttpResponse:
    """A handler's answer; the connection adds Date, Server and the body's framing.

    `body` is bytes (sent with Content-Length) or an async iterable of bytes, streamed as it
    comes: with Content-Length when `length` is given (the iterable must yield exactly that
    many bytes), else chunked (close-delimited to an HTTP/1.0 client). A HEAD request, 204
    and 304 send no body: a streamed one is then closed unread. `close=True` closes the
    connection after the response.
    """

    status: int
    headers: Sequence[tuple[str, str]]
    body: bytes | AsyncIterable[bytes] = b""
    length: int | None = None  # of a streamed body, when known in advance
    close: bool = False


# What `Upgrade.run` is given: the connection's stream, replaying first what was read of it
# and not consumed (see `Upgrade`).
Takeover: TypeAlias = "Callable[[trio.abc.Stream], Awaitable[None]]"


@dataclass(frozen=True, slots=True)
class Upgrade:
    """A handler's answer that takes the connection over: HTTP ends on it after this.

    With `protocol` set (e.g. "TLS/1.2", RFC 2817), the connection reads the rest of the
    request body, sends "101 Switching Protocols" with `Connection: Upgrade`, `Upgrade:
    protocol` and `headers`, then calls `run(stream)`; the stream first yields the bytes the
    client sent after the request, if any. With `protocol` None nothing is sent and `run`'s
    stream replays the request head itself (in canonical form) and what followed: for
    libraries that do the handshake themselves, such as trio-websocket's
    `wrap_server_stream`. The request must then have no body.

    `run` owns the stream until it returns; the connection closes it afterwards. It runs
    outside the request (an app switch does not wait for it) and has no timeouts but its own.
    """

    run: Takeover
    protocol: str | None = None
    headers: Sequence[tuple[str, str]] = ()


HttpResult: TypeAlias = HttpResponse | Upgrade


class HttpError(Exception):
    """Raised by an app to answer with an HTTP error and a text/plain body.

    Example: 400 for a POST whose body is not IPP; 401 with `WWW-Authenticate` in `headers`.
    With `close=True` the connection closes after the response instead of staying alive.
    """

    def __init__(self, status: int, message: str, *, close: bool = False,
                 headers: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close
        self.headers = headers


class RequestAborted(Exception):
    """The request body cannot be read to its end; raised by `RequestBody.receive_some`.

    Apps must NOT swallow it: clean up (``finally``, or ``except RequestAborted: ...; raise``)
    and let it propagate. The connection layer then answers `status` (if not None) and closes.
    Even a swallowed abort closes the connection, but the app's own response is then dropped.
    """

    status: int | None = None


class BodyTimeout(RequestAborted):
    """The client sent no body bytes for `HttpLimits.read_timeout` seconds (-> 408, close)."""

    status = 408


class ClientDisconnected(RequestAborted):
    """The client closed or reset the connection before the body ended (nothing is sent)."""

    status = None


class MalformedBody(RequestAborted):
    """The body framing is broken, e.g. a bad chunk size line (-> 400, close)."""

    status = 400


class RequestBody(Protocol):
    """The request body, chunked or not; `receive_some` returns b"" at the end.

    It raises `RequestAborted` (`BodyTimeout`, `ClientDisconnected`, `MalformedBody`), which
    the app must let propagate. With `Expect: 100-continue` the first read that has to wait
    for the client sends `100 Continue`: an app that rejects a request before reading its
    body never invites the document.
    """

    async def receive_some(self, max_bytes: int = 65536) -> bytes: ...


# One route's handler (see gateway.server.router): the request and its body in, an answer out.
Handler: TypeAlias = "Callable[[HttpRequest, RequestBody], Awaitable[HttpResult]]"


class HttpApp(Protocol):
    """What the HTTP layer serves: a `Router`, or something that delegates to one (the
    reload switch). Exceptions other than `HttpError` count as bugs (500)."""

    async def handle(self, request: HttpRequest, body: RequestBody) -> HttpResult:
        """Answer one request (every method, every path, OPTIONS included)."""
        ...


def split_host_header(value: str | None, local: tuple[str, int]) -> tuple[str, int]:
    """(host, port) from a Host header value; `local` fills what the header leaves out.

    Takes what RFC 3986 allows and nothing else (see `split_authority`): "name",
    "name:port", "1.2.3.4:port", "[v6]" and "[v6]:port", ASCII only. Raises ValueError when
    malformed. The parser has already refused such a request; this keeps the check in one place
    for callers with a header of their own.
    """
    if not value or not value.strip():
        return local
    text = value.strip()
    if not text.isascii():
        raise ValueError(f"Host {value!r} is not ASCII")
    host, port = split_authority(text.encode("ascii"))
    return host, local[1] if port is None else port


def target_path(target: str) -> str:
    """The percent-decoded path of a request target (origin, absolute or asterisk form).

    Total: whatever the string, it returns (the parser has refused malformed targets, but a
    str from elsewhere must not raise here, as `urlsplit` does on "http://[::1/").
    """
    target = target.partition("#")[0]
    if target.startswith("/"):
        return unquote(target.partition("?")[0])
    _, sep, rest = target.partition("://")
    if sep:
        start = min((index for index in (rest.find("/"), rest.find("?")) if index >= 0),
                    default=len(rest))
        return unquote(rest[start:].partition("?")[0]) or "/"
    return target  # "*" (OPTIONS) or something odd the app may still want to see


def is_ipp_content_type(value: str | None) -> bool:
    """True for "application/ipp", in any case, with or without parameters."""
    if value is None:
        return False
    return value.partition(";")[0].strip().lower() == IPP_CONTENT_TYPE


def upgrade_offered(request: HttpRequest, protocol: str) -> bool:
    """True if `request` asks to switch to `protocol` (a token such as "websocket", or
    "TLS/1.2"; any case): listed in Upgrade, with the "upgrade" Connection option, in
    HTTP/1.1 (RFC 9110 7.8: an Upgrade in HTTP/1.0 is ignored)."""
    if request.http_version != "1.1":
        return False
    offered = request.header("upgrade")
    connection = request.header("connection")
    if offered is None or connection is None:
        return False
    wanted = protocol.lower()
    return (any(part.strip().lower() == "upgrade" for part in connection.split(","))
            and any(part.strip().lower() == wanted for part in offered.split(",")))


# What a 101 to an RFC 2817 upgrade names: TLS, then the protocol spoken inside it.
TLS_UPGRADE_PROTOCOL = "TLS/1.2, HTTP/1.1"


def tls_upgrade_offered(request: HttpRequest) -> bool:
    """True if `request` offers an RFC 2817 switch to TLS that we can take: an HTTP/1.1
    request without a body (a body sent before the switch would be in clear text, and the
    request is answered after it) naming `TLS/1.x` (or plain `TLS`) in Upgrade, with the
    "upgrade" Connection option. As cupsd, any TLS version offered is taken: the handshake
    negotiates the version, and refuses one below 1.2. The CUPS client sends
    `Upgrade: TLS/1.2,TLS/1.1,TLS/1.0` with `Connection: upgrade` on `OPTIONS *`."""
    if request.http_version != "1.1":
        return False
    offered, connection = request.header("upgrade"), request.header("connection")
    if offered is None or connection is None:
        return False
    if not any(part.strip().lower() == "upgrade" for part in connection.split(",")):
        return False
    if request.header("transfer-encoding") is not None or (
            request.header("content-length") or "0").strip() != "0":
        return False
    return any(token == "tls" or token.startswith("tls/")
               for token in (part.strip().lower() for part in offered.split(",")))


def replayed_head(request: HttpRequest) -> bytes:
    """The head of `request` as it would have come over TLS: the same method, target and
    headers, without the Upgrade offer (and the "upgrade" Connection option)."""
    lines = [f"{request.method} {request.target} HTTP/{request.http_version}\r\n"]
    for name, value in request.headers:
        if name == "upgrade":
            continue
        if name == "connection":
            value = ", ".join(part.strip() for part in value.split(",")
                              if part.strip() and part.strip().lower() != "upgrade")
            if not value:
                continue
        lines.append(f"{name}: {value}\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def format_address(address: object) -> str:
    """ "ip:port" (or "[v6]:port") for a socket address tuple, for logs."""
    if isinstance(address, tuple) and len(address) >= 2:
        return authority(str(address[0]), address[1])
    return str(address)


_date_cache: tuple[int, bytes] = (0, b"")


def http_date() -> bytes:
    """The current time as an HTTP Date value, formatted at most once a second."""
    global _date_cache
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache = (now, formatdate(now, usegmt=True).encode("ascii"))
    return _date_cache[1]


_REASONS: dict[int, bytes] = {status.value: status.phrase.encode() for status in HTTPStatus}


def reason_phrase(status: int) -> bytes:
    """The standard reason phrase for `status`, or b"" for an unknown code."""
    return _REASONS.get(status, b"")
