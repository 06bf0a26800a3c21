"""The HTTP vocabulary shared by the connection layer and the apps it serves.

`HttpConnection` (gateway.server.http_connection) turns bytes into `HttpRequest`s and hands
them to an `HttpApp`; the app never sees the parser or sockets. Everything here is pure: data
types, the exceptions that cross the boundary, and small parsers for Host, targets and content
types.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Protocol
from urllib.parse import unquote

from gateway.server.http11 import split_authority

SERVER_NAME = "ipp-gateway/0.1"
IPP_CONTENT_TYPE = "application/ipp"
ALLOWED_METHODS = "GET, HEAD, OPTIONS, POST"


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
    scheme: str  # "ipp" ("ipps" once TLS exists)
    client: str  # peer address "ip:port", for logs
    http_version: str = "1.1"

    def header(self, name: str) -> str | None:
        """The value of header `name` (any case); repeated headers are joined with ", "."""
        wanted = name.lower()
        values = [value for key, value in self.headers if key == wanted]
        return ", ".join(values) if values else None


@dataclass
class HttpResponse:
    """A complete response from `HttpApp.handle_get`; Content-Length, Date, Server are added."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""


class HttpError(Exception):
    """Raised by an app to answer with an HTTP error and a text/plain body.

    Example: 400 for a POST whose body is not IPP. With `close=True` the connection closes
    after the response instead of staying alive.
    """

    def __init__(self, status: int, message: str, *, close: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.close = close


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


class HttpApp(Protocol):
    """What the HTTP layer serves. Exceptions other than `HttpError` count as bugs (500)."""

    async def handle_ipp(self, request: HttpRequest, body: RequestBody) -> bytes:
        """POST with Content-Type application/ipp: return the encoded IPP response."""
        ...

    async def handle_get(self, request: HttpRequest) -> HttpResponse:
        """GET and HEAD (the connection drops the body of a HEAD answer)."""
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


def format_address(address: object) -> str:
    """ "ip:port" (or "[v6]:port") for a socket address tuple, for logs."""
    if isinstance(address, tuple) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
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
