"""A sans-I/O HTTP/1.1 request parser for the server side (it took over from h11 for speed).

Feed it what the socket delivers with `receive()` (b"" at end of input). `next_request()`
returns a `RequestHead` once a whole head is buffered; then `next_body()` returns the body
bytes (Content-Length or chunked framing) and `END_OF_BODY`; `start_next_cycle()` moves on to
the next (possibly pipelined) request. `NEED_DATA` means "receive more". Malformed input raises
`HttpProtocolError` with the status to answer (400, 431 or 501).

It accepts and refuses exactly what h11 0.16 did as a server, so clients see no change: the
same token, target and field-value grammar, obsolete line folding, bare-LF line ends,
Content-Length and Transfer-Encoding rules, and Host checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

CONTINUE_RESPONSE = b"HTTP/1.1 100 Continue\r\n\r\n"

_TOKEN = rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+"
_FIELD_VALUE = rb"(?:[^\x00\s]+(?:[ \t]+[^\x00\s]+)*)?"
_REQUEST_LINE = re.compile(rb"(%s) ([\x21-\x7e]+) HTTP/([0-9]\.[0-9])" % _TOKEN)
_HEADER_FIELD = re.compile(rb"(%s):[ \t]*(%s)[ \t]*" % (_TOKEN, _FIELD_VALUE))
_FIELD_NAME = re.compile(_TOKEN)
_FIELD_VALUE_RE = re.compile(_FIELD_VALUE)
_CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]{1,20})(?:;.*)?[ \t]*\r\n")
_DIGITS = re.compile(rb"[0-9]+")
_HEAD_END = re.compile(rb"\n\r?\n")
_MAX_LENGTH_DIGITS = 20
_FOLD_START = (0x20, 0x09)


class HttpProtocolError(Exception):
    """The client broke HTTP/1.1; `status` is the answer it deserves."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class _Sentinel(Enum):
    NEED_DATA = auto()
    END_OF_BODY = auto()
    CLOSED = auto()

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel.NEED_DATA
END_OF_BODY = _Sentinel.END_OF_BODY
CLOSED = _Sentinel.CLOSED  # end of input between requests: the client is done


@dataclass(slots=True)
class RequestHead:
    method: bytes
    target: bytes
    http_version: bytes  # b"1.1", b"1.0", ...
    headers: list[tuple[bytes, bytes]]  # lower-case names, in order, one Content-Length
    keep_alive: bool  # False for HTTP/1.0 and for Connection: close
    expects_continue: bool  # Expect: 100-continue (ignored in HTTP/1.0, RFC 9110)


class _State(Enum):
    HEAD = auto()
    BODY = auto()
    DONE = auto()
    ERROR = auto()


class RequestParser:
    """Requests from one connection; `max_head_bytes` bounds an incomplete head (-> 431)."""

    def __init__(self, max_head_bytes: int = 16 * 1024) -> None:
        self._max_head_bytes = max_head_bytes
        self._buffer = bytearray()
        self._eof = False
        self._state = _State.HEAD
        self._error: HttpProtocolError | None = None
        self._search_from = 0  # where the blank line that ends the head can start
        self._chunked = False
        self._remaining = 0  # Content-Length bytes, or bytes of the current chunk, to come
        self._footer = b""  # the CRLF after chunk data, as far as it is still to come
        self._in_trailer = False

    @property
    def eof(self) -> bool:
        return self._eof

    @property
    def has_buffered_data(self) -> bool:
        return bool(self._buffer)

    @property
    def request_complete(self) -> bool:
        """True once the current request's body has been received to its end."""
        return self._state is _State.DONE

    @property
    def failed(self) -> bool:
        return self._state is _State.ERROR

    def receive(self, data: bytes | bytearray) -> None:
        """Add received bytes; b"" means the client closed (or half-closed) its side."""
        if not data:
            self._eof = True
        elif self._eof:
            raise RuntimeError("received data after the end of input")
        else:
            self._buffer += data

    def start_next_cycle(self) -> None:
        if self._state is not _State.DONE:
            raise RuntimeError(f"start_next_cycle() in state {self._state.name}")
        self._state = _State.HEAD

    def next_request(self) -> RequestHead | _Sentinel:
        """The next request head, `NEED_DATA`, or `CLOSED` at end of input between requests."""
        if self._state is not _State.HEAD:
            raise RuntimeError(f"next_request() in state {self._state.name}")
        if not self._buffer:
            return CLOSED if self._eof else NEED_DATA
        try:
            return self._read_head()
        except HttpProtocolError as error:
            return self._fail(error)

    def next_body(self) -> bytes | _Sentinel:
        """Body bytes (never empty), `NEED_DATA`, or `END_OF_BODY` (again on later calls)."""
        if self._state is _State.DONE:
            return END_OF_BODY
        if self._state is _State.ERROR:
            assert self._error is not None
            raise self._error
        if self._state is not _State.BODY:
            raise RuntimeError("next_body() before a request head")
        try:
            return self._read_chunked() if self._chunked else self._read_sized()
        except HttpProtocolError as error:
            return self._fail(error)

    def _fail(self, error: HttpProtocolError) -> _Sentinel:
        self._state, self._error = _State.ERROR, error
        raise error

    # -- the head ------------------------------------------------------------------------

    def _read_head(self) -> RequestHead | _Sentinel:
        buffer = self._buffer
        if buffer[0] < 0x21:  # CR, LF, space or a control byte cannot start a request line
            raise HttpProtocolError("illegal request line")
        found = _HEAD_END.search(buffer, self._search_from)
        if found is None:
            self._search_from = max(0, len(buffer) - 2)
            return self._need_more("request head")
        head = bytes(buffer[: found.start()])
        del buffer[: found.end()]
        self._search_from = 0
        lines = head.split(b"\n")
        request_line = _strip_cr(lines[0])
        matched = _REQUEST_LINE.fullmatch(request_line)
        if matched is None:
            raise HttpProtocolError(f"illegal request line: {request_line!r}")
        method, target, version = matched.groups()
        headers = _header_fields(lines[1:])
        length, chunked = _body_framing(headers)
        _check_host(headers, version)
        self._start_body(length, chunked)
        return RequestHead(method, target, version, headers,
                           _keep_alive(headers, version), _expects_continue(headers, version))

    def _need_more(self, what: str) -> _Sentinel:
        if len(self._buffer) > self._max_head_bytes:
            raise HttpProtocolError(f"{what} larger than {self._max_head_bytes} bytes", 431)
        if self._eof:
            raise HttpProtocolError(f"client closed in the middle of the {what}")
        return NEED_DATA

    def _start_body(self, length: int, chunked: bool) -> None:
        self._chunked, self._remaining = chunked, length
        self._footer, self._in_trailer = b"", False
        self._state = _State.BODY if chunked or length else _State.DONE

    # -- the body ------------------------------------------------------------------------

    def _read_sized(self) -> bytes | _Sentinel:
        buffer = self._buffer
        if not buffer:
            if self._eof:
                raise HttpProtocolError(
                    f"client closed with {self._remaining} bytes of the body missing")
            return NEED_DATA
        if len(buffer) <= self._remaining:
            data = bytes(buffer)
            buffer.clear()
        else:
            data = bytes(buffer[: self._remaining])
            del buffer[: self._remaining]
        self._remaining -= len(data)
        if not self._remaining:
            self._state = _State.DONE
        return data

    def _read_chunked(self) -> bytes | _Sentinel:
        buffer = self._buffer
        while True:
            if self._in_trailer:
                return self._read_trailer()
            if self._footer:
                if not self._discard_footer():
                    return self._need_body()
            elif not self._remaining:
                end = buffer.find(b"\r\n")
                if end < 0:
                    return self._need_more("chunk header")
                line = bytes(buffer[: end + 2])
                matched = _CHUNK_HEADER.fullmatch(line)
                if matched is None:
                    raise HttpProtocolError(f"illegal chunk header: {line!r}")
                del buffer[: end + 2]
                self._remaining = int(matched[1], 16)
                self._in_trailer = not self._remaining
            elif not buffer:
                return self._need_body()
            else:
                data = bytes(buffer[: self._remaining])
                del buffer[: len(data)]
                self._remaining -= len(data)
                if not self._remaining:
                    self._footer = b"\r\n"
                return data

    def _discard_footer(self) -> bool:
        """Consume what is buffered of the CRLF after chunk data; True once it is all here."""
        size = min(len(self._footer), len(self._buffer))
        if bytes(self._buffer[:size]) != self._footer[:size]:
            raise HttpProtocolError(f"malformed chunk footer: {bytes(self._buffer[:size])!r}")
        del self._buffer[:size]
        self._footer = self._footer[size:]
        return not self._footer

    def _read_trailer(self) -> bytes | _Sentinel:
        buffer = self._buffer
        if buffer[:1] == b"\n" or buffer[:2] == b"\r\n":
            del buffer[: 1 if buffer[:1] == b"\n" else 2]
        else:
            found = _HEAD_END.search(buffer)
            if found is None:
                return self._need_more("chunked trailer")
            _header_fields(bytes(buffer[: found.start()]).split(b"\n"))
            del buffer[: found.end()]
        self._state = _State.DONE
        return END_OF_BODY

    def _need_body(self) -> _Sentinel:
        if self._eof:
            raise HttpProtocolError("client closed in the middle of a chunked body")
        return NEED_DATA


def valid_field_name(name: bytes) -> bool:
    return _FIELD_NAME.fullmatch(name) is not None


def valid_field_value(value: bytes) -> bool:
    return _FIELD_VALUE_RE.fullmatch(value) is not None


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _header_fields(lines: list[bytes]) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value) per field, with obsolete line folding undone."""
    unfolded: list[bytes] = []
    for raw in lines:
        line = _strip_cr(raw)
        if line and line[0] in _FOLD_START:
            if not unfolded:
                raise HttpProtocolError("continuation line at start of headers")
            unfolded[-1] += b" " + line.lstrip(b" \t")
        else:
            unfolded.append(line)
    fields = []
    for line in unfolded:
        matched = _HEADER_FIELD.fullmatch(line)
        if matched is None:
            raise HttpProtocolError(f"illegal header line: {line!r}")
        fields.append((matched[1].lower(), matched[2]))
    return fields


def _body_framing(headers: list[tuple[bytes, bytes]]) -> tuple[int, bool]:
    """(Content-Length, chunked); normalizes `headers` in place as h11 did."""
    length: bytes | None = None
    chunked = False
    index = 0
    while index < len(headers):
        name, value = headers[index]
        if name == b"content-length":
            lengths = {part.strip() for part in value.split(b",")}
            value = lengths.pop()
            if lengths or (length is not None and value != length):
                raise HttpProtocolError("conflicting Content-Length headers")
            if _DIGITS.fullmatch(value) is None or len(value) > _MAX_LENGTH_DIGITS:
                raise HttpProtocolError("bad Content-Length")
            if length is not None:
                del headers[index]
                continue
            length = value
            headers[index] = (name, value)
        elif name == b"transfer-encoding":
            if chunked:
                raise HttpProtocolError("multiple Transfer-Encoding headers", 501)
            if value.lower() != b"chunked":
                raise HttpProtocolError("Only Transfer-Encoding: chunked is supported", 501)
            chunked = True
            headers[index] = (name, b"chunked")
        index += 1
    return (0 if chunked or length is None else int(length)), chunked


def _check_host(headers: list[tuple[bytes, bytes]], version: bytes) -> None:
    hosts = sum(1 for name, _ in headers if name == b"host")
    if version == b"1.1" and hosts == 0:
        raise HttpProtocolError("Missing mandatory Host: header")
    if hosts > 1:
        raise HttpProtocolError("Found multiple Host: headers")


def _keep_alive(headers: list[tuple[bytes, bytes]], version: bytes) -> bool:
    if version < b"1.1":
        return False  # no keep-alive with HTTP/1.0 peers, as with h11
    for name, value in headers:
        if name == b"connection" and b"close" in (
                part.strip() for part in value.lower().split(b",")):
            return False
    return True


def _expects_continue(headers: list[tuple[bytes, bytes]], version: bytes) -> bool:
    if version < b"1.1":
        return False  # RFC 9110: a 100-continue expectation in HTTP/1.0 is ignored
    return any(name == b"expect" and value.lower() == b"100-continue" for name, value in headers)
