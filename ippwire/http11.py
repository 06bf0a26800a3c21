"""A sans-I/O HTTP/1.1 request parser for the server side (it took over from h11 for speed).

Feed it what the socket delivers with `receive()` (b"" at end of input). `next_request()`
returns a `RequestHead` once a whole head is buffered; then `next_body()` returns the body
bytes (Content-Length or chunked framing) and `END_OF_BODY`; `start_next_cycle()` moves on to
the next (possibly pipelined) request. `NEED_DATA` means "receive more". Malformed input raises
`HttpProtocolError` with the status to answer (400, 431 or 501); no other exception comes
out of it, whatever the bytes (a Hypothesis property in tests/unit/test_http_hardening.py).

It took h11 0.16's grammar as a server: tokens, field values, obsolete line folding, bare-LF
line ends, Content-Length rules, one Host. It is deliberately stricter than h11 where h11's
leniency lets a request be smuggled or hostile bytes reach the app:

- Content-Length together with Transfer-Encoding, or Transfer-Encoding in HTTP/1.0, is
  refused with 400 and the connection closes (RFC 9112 6.1): which framing the next hop
  believes is exactly what request smuggling exploits.
- `max_head_bytes` bounds a head however it arrives (h11 bounds only an incomplete one), and
  so a chunk header line and a chunked trailer (-> 431).
- Host must be an RFC 3986 authority: IP-literal in brackets, IPv4 or reg-name, optional port
  (h11 takes any field value, non-ASCII bytes included) -> 400.
- The target must be origin-form, absolute-form with an http, https, ipp or ipps URI whose
  authority is valid, or "*" for OPTIONS (h11 takes any visible bytes) -> 400.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import Enum, auto
from functools import lru_cache

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
_HEX2 = rb"%[0-9A-Fa-f]{2}"
_UNRESERVED = rb"A-Za-z0-9\-._~"
_SUB_DELIMS = rb"!$&'()*+,;="
_REG_NAME = re.compile(rb"(?:[%s%s]|%s)+" % (_UNRESERVED, _SUB_DELIMS, _HEX2))
_ZONE_ID = re.compile(rb"(?:[%s]|%s)+" % (_UNRESERVED, _HEX2))  # RFC 6874, after "%25"
_IPV6_TEXT = re.compile(rb"[0-9A-Fa-f:.]+")
_PORT = re.compile(rb"[0-9]{1,5}")
_MAX_HOST = 255  # DNS names stop at 253; nothing longer is a host we could be called by
# The request line admits only visible ASCII; of that, a path may not hold '"', "#", "<", ">",
# "?" or a "%" that starts no escape. RFC 3986's other exclusions, [ ] \ ^ ` { | }, are let
# through: browsers send them unescaped, and no parser of ours gives them a meaning.
_PATH = rb'/(?:[^"#<>%%?]|%s)*' % _HEX2
_QUERY = rb'(?:\?(?:[^"#<>%%]|%s)*)?' % _HEX2
_ORIGIN_FORM = re.compile(_PATH + _QUERY)
_ABSOLUTE_FORM = re.compile(rb"(?i:https?|ipps?)://([^/?#]*)((?:%s)?%s)" % (_PATH, _QUERY))
_MAX_LENGTH_DIGITS = 20
_FOLD_START = (0x20, 0x09)
# Header lines per head: a real client sends about ten; Apache's LimitRequestFields is 100.
DEFAULT_MAX_FIELDS = 100


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
    """Requests from one connection; `max_head_bytes` bounds a request head, a chunk header
    line and a chunked trailer, whether they arrive whole or in pieces, and `max_fields` the
    header lines of a head or trailer (-> 431)."""

    def __init__(self, max_head_bytes: int = 16 * 1024,
                 max_fields: int = DEFAULT_MAX_FIELDS) -> None:
        self._max_head_bytes = max_head_bytes
        self._max_fields = max_fields
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
    def buffered_size(self) -> int:
        return len(self._buffer)

    def take_buffered(self) -> bytes:
        """Hand over the bytes received and not yet parsed, for a connection that leaves
        HTTP (an upgrade); the parser takes no further input after this."""
        data = bytes(self._buffer)
        self._buffer.clear()
        self._state, self._error = _State.ERROR, HttpProtocolError("the connection left HTTP")
        return data

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
        self._check_size(found.end(), "request head")
        head = bytes(buffer[: found.start()])
        del buffer[: found.end()]
        self._search_from = 0
        lines = head.split(b"\n")
        request_line = _strip_cr(lines[0])
        matched = _REQUEST_LINE.fullmatch(request_line)
        if matched is None:
            raise HttpProtocolError(f"illegal request line: {request_line!r}")
        method, target, version = matched.groups()
        _check_target(method, target)
        headers = _header_fields(lines[1:], self._max_fields)
        length, chunked = _body_framing(headers, version)
        _check_host(headers, version)
        self._start_body(length, chunked)
        return RequestHead(method, target, version, headers,
                           _keep_alive(headers, version), _expects_continue(headers, version))

    def _check_size(self, size: int, what: str) -> None:
        if size > self._max_head_bytes:
            raise HttpProtocolError(f"{what} larger than {self._max_head_bytes} bytes", 431)

    def _need_more(self, what: str) -> _Sentinel:
        self._check_size(len(self._buffer), what)
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
                self._check_size(end + 2, "chunk header")
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
            self._check_size(found.end(), "chunked trailer")
            _header_fields(bytes(buffer[: found.start()]).split(b"\n"), self._max_fields)
            del buffer[: found.end()]
        self._state = _State.DONE
        return END_OF_BODY

    def _need_body(self) -> _Sentinel:
        if self._eof:
            raise HttpProtocolError("client closed in the middle of a chunked body")
        return NEED_DATA


def encode_head(head: RequestHead) -> bytes:
    """`head` as bytes in canonical form (CRLF line ends, folding undone, lower-case names),
    for a library that parses the request again, such as a WebSocket handshake."""
    lines = [b"%s %s HTTP/%s\r\n" % (head.method, head.target, head.http_version)]
    lines.extend(b"%s: %s\r\n" % field for field in head.headers)
    lines.append(b"\r\n")
    return b"".join(lines)


def valid_field_name(name: bytes) -> bool:
    return _FIELD_NAME.fullmatch(name) is not None


def valid_field_value(value: bytes) -> bool:
    return _FIELD_VALUE_RE.fullmatch(value) is not None


def _strip_cr(line: bytes) -> bytes:
    return line[:-1] if line.endswith(b"\r") else line


def _header_fields(lines: list[bytes], max_fields: int) -> list[tuple[bytes, bytes]]:
    """(lower-case name, value) per field, with obsolete line folding undone; more than
    `max_fields` lines -> 431."""
    if len(lines) > max_fields:
        raise HttpProtocolError(f"more than {max_fields} header fields", 431)
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


def _body_framing(headers: list[tuple[bytes, bytes]], version: bytes) -> tuple[int, bool]:
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
    if chunked and (length is not None or version < b"1.1"):
        # RFC 9112 6.1: the framing is ambiguous (a proxy in front may have used the other
        # header), so what follows this body could be a smuggled request: refuse and close.
        raise HttpProtocolError("Transfer-Encoding with Content-Length or in HTTP/1.0")
    return (0 if chunked or length is None else int(length)), chunked


def _check_host(headers: list[tuple[bytes, bytes]], version: bytes) -> None:
    hosts = [value for name, value in headers if name == b"host"]
    if version == b"1.1" and not hosts:
        raise HttpProtocolError("Missing mandatory Host: header")
    if len(hosts) > 1:
        raise HttpProtocolError("Found multiple Host: headers")
    if hosts and hosts[0]:  # empty is allowed: a target URI without authority (RFC 9110 7.2)
        try:
            split_authority(hosts[0])
        except ValueError as exc:
            raise HttpProtocolError(f"invalid Host header: {exc}") from None


def _check_target(method: bytes, target: bytes) -> None:
    """Origin-form, absolute-form (http, https, ipp, ipps) or "*" for OPTIONS (RFC 9112 3.2);
    CONNECT's authority-form is for proxies, which we are not."""
    if _ORIGIN_FORM.fullmatch(target) or (target == b"*" and method == b"OPTIONS"):
        return
    matched = _ABSOLUTE_FORM.fullmatch(target)
    if matched is None:
        raise HttpProtocolError(f"illegal request target: {target!r}")
    try:
        split_authority(matched[1])
    except ValueError as exc:
        raise HttpProtocolError(f"illegal request target {target!r}: {exc}") from None


@lru_cache(maxsize=256)  # every request's Host, checked twice: the same few values
def split_authority(value: bytes) -> tuple[str, int | None]:
    """(host, port or None) of an RFC 3986 authority without userinfo, as in Host or an
    absolute URI; IPv6 comes without its brackets. Raises ValueError when malformed.

    Only what RFC 3986 (with RFC 6874 zone ids) allows: "[IPv6]" or "[IPv6%25zone]",
    IPv4 or a reg-name (unreserved, sub-delims, %XX), then ":port" (1 to 65535 in at most
    five digits, or empty). A bare IPv6 address is not an authority. IPvFuture ("[v1.x]") is
    refused too: nobody sends it, and the URIs we build from the host could not carry it.
    """
    if value.startswith(b"["):
        end = value.find(b"]")
        if end < 0:
            raise ValueError(f"unclosed '[' in {value!r}")
        host = _ipv6_literal(value[1:end])
        rest = value[end + 1 :]
        if rest and not rest.startswith(b":"):
            raise ValueError(f"junk after the IPv6 literal in {value!r}")
        port_text = rest[1:]
    else:
        name, _, port_text = value.partition(b":")
        if _REG_NAME.fullmatch(name) is None:
            raise ValueError(f"bad host name in {value!r}")
        host = name.decode("ascii")
    if len(host) > _MAX_HOST:
        raise ValueError(f"host longer than {_MAX_HOST} characters")
    if not port_text:
        return host, None
    if b":" in port_text:
        raise ValueError(f"an IPv6 address needs brackets: {value!r}")
    if _PORT.fullmatch(port_text) is None or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port in {value!r}")
    return host, int(port_text)


def _ipv6_literal(text: bytes) -> str:
    address, percent, zone = text.partition(b"%25")
    if _IPV6_TEXT.fullmatch(address) is None or (percent and _ZONE_ID.fullmatch(zone) is None):
        raise ValueError(f"bad IPv6 literal {text!r}")
    try:
        ipaddress.IPv6Address(address.decode("ascii"))
    except ValueError:
        raise ValueError(f"bad IPv6 address {address.decode('ascii')!r}") from None
    return text.decode("ascii")


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
