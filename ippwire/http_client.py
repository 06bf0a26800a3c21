"""The client side of HTTP/1.1, sans-I/O: request heads out, response events in.

It is what the `ipp://` transport of `drivers` speaks to old IPP printers and print servers,
in the manner of h11's client side but only as much of it as an IPP client needs:

- `encode_request()` writes a request head; the body follows as it is, or in `encode_chunk()`
  pieces ended by `LAST_CHUNK`.
- `ResponseParser` takes what the socket delivers (`receive()`, b"" when the server closed) and
  hands out `Interim` (1xx: 100 Continue), `Head`, `Body`..., `End`, or `NEED_DATA`.
  Content-Length, chunked (trailers read and ignored) and close-delimited bodies are framed;
  204, 304 and the answer to HEAD have none. After `End` on a keep-alive connection,
  `start_next()` parses the next response.

Bad bytes from the server raise `HttpResponseError` (and keep raising it); nothing else comes
out of the parser whatever the server sends. The parser is lenient where old devices are
known to stray and a misreading cannot hurt: bare LF line ends, obsolete line folding, a status
line without a reason phrase, whitespace around a chunk size. It is strict about framing: a
Content-Length that is not one number, a chunk size that is not hex, a close in the middle of a
head or of a counted body are errors, so a truncated answer is never taken for a whole one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum, auto

LAST_CHUNK = b"0\r\n\r\n"

_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_TOKEN_STR = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_STATUS_LINE = re.compile(rb"(HTTP/1\.[0-9]) ([0-9]{3})(?:[ \t](.*))?")
_HEAD_END = re.compile(rb"\n\r?\n")
_LINE_END = re.compile(rb"\r?\n")
_CHUNK_SIZE = re.compile(rb"[ \t]*([0-9A-Fa-f]{1,16})[ \t]*(?:;[^\r\n]*)?")
_DIGITS = re.compile(rb"[0-9]{1,20}")
# Request target and Host: visible ASCII only, so no value can end the line early.
_VISIBLE = re.compile(r"[\x21-\x7e]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FRAMING_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "expect"})


class HttpResponseError(Exception):
    """The server sent bytes that are not an HTTP/1.1 response we can frame."""


@dataclass(frozen=True)
class ResponseHead:
    status: int
    reason: str
    version: bytes  # b"HTTP/1.1"
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-cased, in order

    def header(self, name: str) -> str | None:
        """The first value of a header (latin-1), or None."""
        key = name.lower().encode("ascii")
        for field, value in self.headers:
            if field == key:
                return value.decode("latin-1")
        return None

    def header_values(self, name: str) -> list[str]:
        """Every value of a header, in order (WWW-Authenticate may come several times)."""
        key = name.lower().encode("ascii")
        return [value.decode("latin-1") for field, value in self.headers if field == key]

    @property
    def keep_alive(self) -> bool:
        """Whether the connection can carry another request after this response.

        False when either side of the version rule says close, and when the body can only
        end with the connection (no Content-Length, not chunked) or its framing is doubtful
        (both Transfer-Encoding and Content-Length: RFC 9112 6.3 says close afterwards)."""
        tokens = {t.strip().lower() for v in self.header_values("connection")
                  for t in v.split(",")}
        if "close" in tokens:
            return False
        if self.version == b"HTTP/1.0" and "keep-alive" not in tokens:
            return False
        if 100 <= self.status < 200 or self.status in (204, 304):
            return True
        encoding = self.header("transfer-encoding")
        if encoding is not None:
            return self.header("content-length") is None and _ends_chunked(self)
        return self.header("content-length") is not None


@dataclass(frozen=True)
class Interim:
    head: ResponseHead  # a 1xx response: 100 Continue, 102 Processing, 103 Early Hints


@dataclass(frozen=True)
class Head:
    head: ResponseHead  # the final response head


@dataclass(frozen=True)
class Body:
    data: bytes


@dataclass(frozen=True)
class End:
    pass


class NeedData:
    def __repr__(self) -> str:
        return "NEED_DATA"


NEED_DATA = NeedData()

Event = Interim | Head | Body | End | NeedData


def encode_request(method: str, target: str, host: str,
                   headers: Sequence[tuple[str, str]] = (), *,
                   content_length: int | None = None, chunked: bool = False,
                   expect_continue: bool = False) -> bytes:
    """A request head, ending with the blank line.

    `host` is the Host value (host[:port], an IPv6 address in brackets). The framing headers
    are this function's to write: Host, Content-Length, Transfer-Encoding and Expect in
    `headers` raise ValueError, as does any name or value that would let a value break out of
    its line. Values are sent as UTF-8 (a Digest username may not be ASCII)."""
    if not _TOKEN_STR.fullmatch(method):
        raise ValueError(f"bad HTTP method {method!r}")
    if not _VISIBLE.fullmatch(target):
        raise ValueError(f"bad request target {target!r}")
    if not _VISIBLE.fullmatch(host):
        raise ValueError(f"bad Host {host!r}")
    if chunked and content_length is not None:
        raise ValueError("a body is either chunked or has a Content-Length, not both")
    if content_length is not None and content_length < 0:
        raise ValueError(f"negative Content-Length {content_length}")
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}"]
    lines += (_header_line(name, value) for name, value in headers)
    if content_length is not None:
        lines.append(f"Content-Length: {content_length}")
    if chunked:
        lines.append("Transfer-Encoding: chunked")
    if expect_continue:
        lines.append("Expect: 100-continue")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8")


def _header_line(name: str, value: str) -> str:
    if not _TOKEN_STR.fullmatch(name):
        raise ValueError(f"bad header name {name!r}")
    if name.lower() in _FRAMING_HEADERS:
        raise ValueError(f"{name} is set by encode_request's arguments")
    if _BAD_VALUE.search(value):
        raise ValueError(f"bad value for header {name}")
    return f"{name}: {value.strip()}"


def encode_chunk(data: bytes | bytearray | memoryview) -> bytes:
    """One chunk of a chunked body; empty data gives b"" (an empty chunk would end the body:
    that is `LAST_CHUNK`'s job)."""
    size = data.nbytes if isinstance(data, memoryview) else len(data)
    if size == 0:
        return b""
    return b"".join((b"%X\r\n" % size, data, b"\r\n"))


class _State(Enum):
    HEAD = auto()
    LENGTH = auto()  # a Content-Length body
    CHUNK_SIZE = auto()
    CHUNK_DATA = auto()
    CHUNK_END = auto()  # the CRLF after a chunk's data
    TRAILER = auto()
    UNTIL_CLOSE = auto()
    DONE = auto()
    ERROR = auto()


class ResponseParser:
    """The responses on one client connection, one at a time.

    `max_head_bytes` bounds a response head (interim heads each), a chunk-size line and a
    trailer; `max_body_bytes` bounds one response's body however it is framed.
    `head_request=True` says the request was HEAD, so the response has no body whatever its
    headers say; `start_next(head_request=...)` can change it for the next response."""

    def __init__(self, *, head_request: bool = False, max_head_bytes: int = 64 * 1024,
                 max_body_bytes: int = 16 << 20) -> None:
        self._head_request = head_request
        self._max_head = max_head_bytes
        self._max_body = max_body_bytes
        self._buffer = bytearray()
        self._eof = False
        self._state = _State.HEAD
        self._error: HttpResponseError | None = None
        self._remaining = 0  # bytes of the Content-Length body or of the current chunk
        self._body_seen = 0
        self._final: ResponseHead | None = None
        self._search_from = 0  # where the blank line ending a head can start: no rescans

    @property
    def response(self) -> ResponseHead | None:
        """The final head of the response being parsed, once it has arrived."""
        return self._final

    def receive(self, data: bytes) -> None:
        """Bytes from the server; b"" when it closed its side."""
        if self._eof:
            if data:
                raise RuntimeError("receive() after the end of input")
            return
        if data:
            self._buffer += data
        else:
            self._eof = True

    def start_next(self, *, head_request: bool | None = None) -> None:
        """After `End` of a keep-alive response: parse the next response on the connection
        (bytes already received for it are kept)."""
        if self._state is not _State.DONE:
            raise RuntimeError("start_next() before the response ended")
        if head_request is not None:
            self._head_request = head_request
        self._state = _State.HEAD
        self._final = None
        self._body_seen = 0
        self._remaining = 0

    def next_event(self) -> Event:
        if self._error is not None:
            raise self._error
        try:
            return self._next()
        except HttpResponseError as error:
            self._state, self._error = _State.ERROR, error
            raise

    def _next(self) -> Event:
        state = self._state
        if state is _State.HEAD:
            return self._read_head()
        if state is _State.LENGTH:
            return self._read_length()
        if state is _State.UNTIL_CLOSE:
            return self._read_until_close()
        if state is _State.DONE:
            return End()
        return self._read_chunked()

    def _read_head(self) -> Event:
        if self._search_from == 0:
            # Some servers end a body with a stray CRLF; RFC 9112 2.2 lets it be skipped.
            stray = len(self._buffer) - len(self._buffer.lstrip(b"\r\n"))
            del self._buffer[:stray]
        match = _HEAD_END.search(self._buffer, self._search_from)
        if match is None:
            self._search_from = max(0, len(self._buffer) - 2)
            if len(self._buffer) > self._max_head:
                raise HttpResponseError(f"response head longer than {self._max_head} bytes")
            if self._eof:
                if self._buffer:
                    raise HttpResponseError("the server closed in the middle of a response head")
                raise HttpResponseError("the server closed the connection without a response")
            return NEED_DATA
        end = match.end()
        if end > self._max_head:
            raise HttpResponseError(f"response head longer than {self._max_head} bytes")
        raw = bytes(self._buffer[:match.start()]).removesuffix(b"\r")
        del self._buffer[:end]
        self._search_from = 0
        head = _parse_head(raw)
        if 100 <= head.status < 200:
            if head.status == 101:
                raise HttpResponseError("101 Switching Protocols to a request that asked no "
                                        "upgrade")
            return Interim(head)
        self._final = head
        self._start_body(head)
        return Head(head)

    def _start_body(self, head: ResponseHead) -> None:
        if self._head_request or head.status in (204, 304):
            self._state, self._remaining = _State.LENGTH, 0
            return
        encoding = head.header_values("transfer-encoding")
        if encoding:
            # RFC 9112 6.3: Transfer-Encoding overrides Content-Length; unless chunked is the
            # last coding, the body runs to the close.
            self._state = _State.CHUNK_SIZE if _ends_chunked(head) else _State.UNTIL_CLOSE
            return
        lengths = head.header_values("content-length")
        if lengths:
            length = _content_length(lengths)
            if length > self._max_body:
                raise HttpResponseError(f"response body of {length} bytes is over the limit of "
                                        f"{self._max_body}")
            self._state, self._remaining = _State.LENGTH, length
            return
        self._state = _State.UNTIL_CLOSE

    def _read_length(self) -> Event:
        if self._remaining == 0:
            self._state = _State.DONE
            return End()
        if not self._buffer:
            if self._eof:
                raise HttpResponseError(f"the server closed with {self._remaining} bytes of the "
                                        "body still to come")
            return NEED_DATA
        data = self._take(self._remaining)
        self._remaining -= len(data)
        return Body(data)

    def _read_until_close(self) -> Event:
        if self._buffer:
            data = self._take(len(self._buffer))
            self._count(len(data))
            return Body(data)
        if self._eof:
            self._state = _State.DONE
            return End()
        return NEED_DATA

    def _read_chunked(self) -> Event:
        # Bounded: each pass either returns or consumes a chunk-size line, a chunk end or a
        # trailer line, and each of those is at least one byte of the buffer.
        while True:
            state = self._state
            if state is _State.CHUNK_DATA:
                if not self._buffer:
                    return self._need("a chunk")
                data = self._take(self._remaining)
                self._remaining -= len(data)
                if self._remaining == 0:
                    self._state = _State.CHUNK_END
                return Body(data)
            line = self._line(state)
            if line is None:
                return NEED_DATA
            if self._chunk_line(state, line):
                self._state = _State.DONE
                return End()

    def _chunk_line(self, state: _State, line: bytes) -> bool:
        """Take one line of chunked framing; True when it was the blank line that ends it."""
        if state is _State.CHUNK_SIZE:
            match = _CHUNK_SIZE.fullmatch(line)
            if match is None:
                raise HttpResponseError(f"bad chunk size line {line[:40]!r}")
            size = int(match.group(1), 16)
            if size == 0:
                self._state = _State.TRAILER
            else:
                self._count(size)
                self._state, self._remaining = _State.CHUNK_DATA, size
        elif state is _State.CHUNK_END:
            if line:
                raise HttpResponseError("chunk data longer than its size")
            self._state = _State.CHUNK_SIZE
        elif line:  # a trailer field: read and ignored; many short ones count as body
            self._count(len(line))
        else:
            return True
        return False

    def _line(self, state: _State) -> bytes | None:
        """The next line without its end, or None when it has not all arrived."""
        match = _LINE_END.search(self._buffer)
        if match is None:
            limit = 2 if state is _State.CHUNK_END else self._max_head
            # A CR at the end may be the first half of the line end, not part of the line:
            # counting it would refuse a line split there that is accepted when whole.
            if len(self._buffer) - self._buffer.endswith(b"\r") > limit:
                if state is _State.CHUNK_END:
                    raise HttpResponseError("chunk data longer than its size")
                raise HttpResponseError("chunk size or trailer line too long")
            self._need("a chunked body")
            return None
        if match.start() > self._max_head:
            raise HttpResponseError("chunk size or trailer line too long")
        line = bytes(self._buffer[:match.start()])
        del self._buffer[:match.end()]
        return line

    def _need(self, what: str) -> NeedData:
        if self._eof:
            raise HttpResponseError(f"the server closed in the middle of {what}")
        return NEED_DATA

    def _take(self, limit: int) -> bytes:
        data = bytes(self._buffer[:limit])
        del self._buffer[:len(data)]
        return data

    def _count(self, size: int) -> None:
        self._body_seen += size
        if self._body_seen > self._max_body:
            raise HttpResponseError(f"response body over the limit of {self._max_body} bytes")


def _ends_chunked(head: ResponseHead) -> bool:
    codings = [c.strip().lower() for v in head.header_values("transfer-encoding")
               for c in v.split(",") if c.strip()]
    return bool(codings) and codings[-1] == "chunked"


def _content_length(values: list[str]) -> int:
    # RFC 9110 8.6: a list of one repeated value is that value; anything else is an error.
    seen: set[bytes] = set()
    for value in values:
        raw = value.encode("latin-1")
        for part in raw.split(b","):
            part = part.strip(b" \t")
            if not _DIGITS.fullmatch(part):
                raise HttpResponseError(f"bad Content-Length {raw[:40]!r}")
            seen.add(part.lstrip(b"0") or b"0")
    if len(seen) != 1:
        raise HttpResponseError("conflicting Content-Length values")
    return int(seen.pop())


def _parse_head(raw: bytes) -> ResponseHead:
    lines = _LINE_END.split(raw)
    match = _STATUS_LINE.fullmatch(lines[0])
    if match is None:
        raise HttpResponseError(f"bad status line {lines[0][:80]!r}")
    version, status, reason = match.group(1), int(match.group(2)), match.group(3) or b""
    if status < 100:
        raise HttpResponseError(f"bad status code {status}")
    headers: list[tuple[bytes, bytes]] = []
    for line in lines[1:]:
        if line[:1] in (b" ", b"\t"):
            # Obsolete line folding continues the previous value; before any field it is
            # dropped, as RFC 9112 2.2 allows.
            if headers:
                name, value = headers[-1]
                headers[-1] = (name, (value + b" " + line.strip(b" \t")).strip(b" "))
            continue
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name):
            raise HttpResponseError(f"bad header line {line[:80]!r}")
        headers.append((name.lower(), value.strip(b" \t")))
    return ResponseHead(status, reason.strip(b" \t").decode("latin-1"), version, tuple(headers))
