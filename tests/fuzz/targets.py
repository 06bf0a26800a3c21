"""The fuzz targets: one function per parser, `target(data, chunk)`.

Each feeds `data` (at most MAX_INPUT bytes) to a parser in pieces of `chunk` bytes (0: all at
once) and asserts the parser's contract: it returns values or raises its module's documented
error, nothing else; what it buffers stays bounded by what it was given and its limits; the
result does not depend on where the input was cut. A target returns None when the contract
holds and raises (AssertionError or the parser's stray exception) when it does not: that is
the failure a fuzzing engine reports.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from drivers.errors import ConversionError, TransportError
from drivers.filters.packet_reader import PacketRasterReader
from drivers.filters.pwg_raster import PwgRasterReader
from drivers.filters.urf import UrfReader
from drivers.model.raster import Band, PageEnd, PageStart, RasterLimits, RasterPage, Row
from drivers.pjl import PjlReplyParser, status_from_message
from drivers.transports import lpd_protocol as lpd
from ippwire.enums import Status
from ippwire.errors import IppProtocolError
from ippwire.http11 import (
    CLOSED,
    END_OF_BODY,
    HttpProtocolError,
    RequestHead,
    RequestParser,
)
from ippwire.http_auth import TOKEN68, Credentials, parse_challenges, preferred
from ippwire.http_client import NEED_DATA as RESPONSE_NEED_DATA
from ippwire.http_client import (
    Body,
    End,
    Head,
    HttpResponseError,
    Interim,
    ResponseHead,
    ResponseParser,
)
from ippwire.model import Message
from ippwire.reader import (
    NEED_DATA,
    DocumentData,
    EndOfDocument,
    IppReader,
    Limits,
    RequestReceived,
    decode_message,
)
from ippwire.writer import encode_message
from tests.fuzz.mutate import MAX_INPUT

Target = Callable[[bytes, int], None]


def pieces(data: bytes, chunk: int) -> Iterator[bytes]:
    if chunk <= 0:
        yield data
        return
    for start in range(0, len(data), chunk):
        yield data[start : start + chunk]


class Incremental(Protocol):
    def feed(self, data: bytes) -> None: ...
    def end_of_input(self) -> None: ...


def fed(reader: Incremental, data: bytes, chunk: int) -> Iterator[bytes]:
    """Feed `data` to `reader` in pieces of `chunk`, then end its input; yields the piece
    just fed (b"" once the input ended) so that the caller drains the events in between."""
    for piece in pieces(data, chunk):
        if piece:
            reader.feed(piece)
            yield piece
    reader.end_of_input()
    yield b""


# -- IPP ------------------------------------------------------------------------------------

# Small enough that fuzzed inputs reach every limit; the defaults differ only in size.
IPP_LIMITS = Limits(max_attribute_bytes=8192, max_value_length=1024, max_depth=4,
                    max_attributes=64)


def _ipp_incremental(data: bytes, chunk: int) -> tuple[Message, bytes] | Status:
    reader = IppReader(IPP_LIMITS)
    message: Message | None = None
    document: list[bytes] = []
    try:
        for piece in fed(reader, data, chunk):
            while (event := reader.next_event()) is not NEED_DATA:
                if isinstance(event, RequestReceived):
                    assert message is None, "two RequestReceived events"
                    message = event.message
                elif isinstance(event, DocumentData):
                    assert message is not None and event.data, "document before attributes"
                    document.append(event.data)
                else:
                    assert isinstance(event, EndOfDocument) and not piece
                    break
            # Bounded: the attribute section limit, plus one fed piece of document.
            assert reader.buffered_bytes <= IPP_LIMITS.max_attribute_bytes + len(piece)
    except IppProtocolError as error:
        assert 0x0400 <= error.status <= 0x04FF, f"{error!r} is not a client error"
        assert message is None, "an error after RequestReceived"
        return error.status
    assert message is not None
    return message, b"".join(document)


def ipp_reader(data: bytes, chunk: int = 0) -> None:
    """IppReader: IppProtocolError with a 4xx status, or one message and the document bytes
    after it; the same either way for every chunking; a message decoded, encoded and decoded
    again is the same message."""
    data = data[:MAX_INPUT]
    result = _ipp_incremental(data, chunk)
    assert _ipp_incremental(data, 0) == result, "the result depends on the chunking"
    if isinstance(result, Status):
        return
    message, document = result
    assert data.endswith(document)
    encoded = encode_message(message)
    again, rest = decode_message(encoded + document, IPP_LIMITS)
    assert (again, rest) == (message, document), "decode(encode(message)) != message"
    assert encode_message(again) == encoded


# -- HTTP/1.1 -------------------------------------------------------------------------------

HTTP_MAX_HEAD = 2048
HTTP_STATUSES = frozenset({400, 431, 501})  # the statuses http11 documents


@dataclass
class _HttpRun:
    parser: RequestParser
    requests: list[tuple[RequestHead, bytes]] = field(default_factory=list)
    body: bytearray = field(default_factory=bytearray)
    in_body: bool = False

    def drain(self) -> bool:
        """Advance the parser as far as its input goes; False when it needs more."""
        parser = self.parser
        while True:
            if not self.in_body:
                head = parser.next_request()
                if head is CLOSED:
                    return True
                if not isinstance(head, RequestHead):
                    return False
                _check_head(head)
                self.requests.append((head, b""))
                self.in_body = True
            part = parser.next_body()
            if part is END_OF_BODY:
                self.requests[-1] = (self.requests[-1][0], bytes(self.body))
                self.body.clear()
                self.in_body = False
                parser.start_next_cycle()
            elif isinstance(part, bytes):
                assert part, "empty body piece"
                self.body += part
            else:
                return False


def _check_head(head: RequestHead) -> None:
    names = [name for name, _ in head.headers]
    assert all(name == name.lower() for name in names)
    assert names.count(b"content-length") <= 1
    assert sum(len(name) + len(value) for name, value in head.headers) <= HTTP_MAX_HEAD


def _http_parse(data: bytes, chunk: int) -> tuple[list[tuple[RequestHead, bytes]], int | None,
                                                 bool]:
    """The requests read (head, body), the error status if any, and whether input ran out
    in the middle of a request."""
    run = _HttpRun(RequestParser(max_head_bytes=HTTP_MAX_HEAD))
    try:
        for piece in [*pieces(data, chunk), b""]:
            run.parser.receive(piece)
            if run.drain():
                return run.requests, None, False
            # What it holds unparsed: at most one head (or chunk header, or trailer).
            assert run.parser.buffered_size <= HTTP_MAX_HEAD + len(piece)
    except HttpProtocolError as error:
        assert error.status in HTTP_STATUSES, f"status {error.status}: {error}"
        return run.requests, error.status, False
    return run.requests, None, True


def http_parser(data: bytes, chunk: int = 0) -> None:
    """RequestParser: heads and bodies, or HttpProtocolError with 400, 431 or 501; the same
    requests, bodies and outcome for every chunking."""
    data = data[:MAX_INPUT]
    result = _http_parse(data, chunk)
    whole = _http_parse(data, 0)
    assert result[1:] == whole[1:], f"outcome depends on chunking: {result[1:]} {whole[1:]}"
    assert result[0] == whole[0], "requests depend on the chunking"


# -- PWG raster and URF ---------------------------------------------------------------------

# Small pages so that a fuzzed input cannot make a target decode gigabytes (both readers
# stream, so that would be slow, not wrong); the default limits are tested on their own.
RASTER_LIMITS = RasterLimits(max_width=600, max_height=600, max_line_bytes=4096, max_dpi=4800,
                             band_rows=8)
RasterTrace = list[tuple[RasterPage, list[Row]]]


def _raster_events(reader: PacketRasterReader, data: bytes, chunk: int) -> RasterTrace | str:
    pages: RasterTrace = []
    rows_left = 0
    try:
        for _ in fed(reader, data, chunk):
            for event in reader.events():
                if isinstance(event, PageStart):
                    assert rows_left == 0, "PageStart inside a page"
                    page = event.page
                    assert 0 < page.width <= RASTER_LIMITS.max_width
                    assert 0 < page.height <= RASTER_LIMITS.max_height
                    pages.append((page, []))
                    rows_left = page.height
                elif isinstance(event, Band):
                    assert pages and 0 < len(event.rows) <= RASTER_LIMITS.band_rows
                    size = pages[-1][0].bytes_per_line
                    for line, count in event.rows:
                        assert len(line) == size and 0 < count <= rows_left
                        rows_left -= count
                    pages[-1][1].extend(event.rows)
                else:
                    assert isinstance(event, PageEnd) and rows_left == 0
            assert reader.buffered <= len(data)
    except ConversionError as error:
        return error.message
    assert rows_left == 0 and pages, "the document ended inside a page or had none"
    return pages


def _raster_target(make: Callable[[], PacketRasterReader]) -> Target:
    def target(data: bytes, chunk: int = 0) -> None:
        data = data[:MAX_INPUT]
        result = _raster_events(make(), data, chunk)
        whole = _raster_events(make(), data, 0)
        if isinstance(whole, str):  # where a truncation is noticed may depend on the chunking
            assert isinstance(result, str), f"chunked reading passed, whole failed: {whole}"
        else:
            assert result == whole, "decoded pages depend on the chunking"
    return target


pwg_raster = _raster_target(lambda: PwgRasterReader(RASTER_LIMITS))
pwg_raster.__doc__ = "PwgRasterReader: pages within the limits, or ConversionError."
urf = _raster_target(lambda: UrfReader(RASTER_LIMITS))
urf.__doc__ = "UrfReader: pages within the limits, or ConversionError."


# -- LPD ------------------------------------------------------------------------------------


def _lpd_dialogue(acks: bytes, data_first: bool, streamed: bool) -> None:
    control = lpd.ControlFile(7, "host", "user", "title")
    job = lpd.ReceiveJob("lp", control, lpd.Order.DATA_FIRST if data_first else
                         lpd.Order.CONTROL_FIRST, None if streamed else 10)
    replies = iter(acks)
    for _ in range(20):  # a dialogue is at most ten steps
        need = job.need()
        if need is lpd.Need.CLOSE:
            assert job.everything_sent
            return
        if need is lpd.Need.SEND:
            assert job.next_message()
            job.message_sent()
        elif need is lpd.Need.ACK:
            reply = next(replies, None)
            job.receive_ack(b"" if reply is None else bytes([reply]))
        else:
            job.data_sent(10 if not streamed else 3)
            job.data_done()
    raise AssertionError("the LPD dialogue did not end")


def lpd_protocol(data: bytes, chunk: int = 0) -> None:
    """The LPD client's parsing of server bytes: acknowledgments (TransportError or a full
    dialogue), send-queue-state replies (a QueueState with a bounded message), and control
    files built from hostile job fields (ASCII, within RFC 1179's limits)."""
    data = data[:MAX_INPUT]
    for data_first, streamed in ((False, False), (True, False), (False, True)):
        try:
            _lpd_dialogue(data, data_first, streamed)
        except TransportError as error:
            assert error.reason in ("offline", "spool-area-full", "other")
    text = data.decode("utf-8", "replace")
    state = lpd.parse_queue_state(text)
    assert 0 <= state.jobs <= text.count("\n") + 1 and len(state.message) <= 200
    fields = text.split("\n")
    host, user, title = [*fields, "", "", ""][:3]
    rendered = lpd.ControlFile(chunk % 1000, host, user, title, file_name=text[-200:],
                               copies=chunk % 5, banner=bool(chunk % 2)).render()
    lines = rendered.decode("ascii").split("\n")
    assert lines[-1] == "" and all(len(line) <= 132 for line in lines)


# -- PJL ------------------------------------------------------------------------------------

PJL_MAX_BLOCK = 64 * 1024


def pjl(data: bytes, chunk: int = 0) -> None:
    """PjlReplyParser: reply blocks, never more than one block's worth buffered; a status
    read from them, or None."""
    data = data[:MAX_INPUT]
    parser = PjlReplyParser()
    count = 0
    for piece in pieces(data, chunk):
        for message in parser.feed(piece):
            count += 1
            status = status_from_message(message)
            if status is not None:
                assert all(isinstance(reason, str) for reason in status.reasons)
        assert len(parser._buffer) <= PJL_MAX_BLOCK  # private, but the bound is the contract
    assert count <= data.count(b"\x0c")


# -- HTTP/1.1 responses (the client side) ---------------------------------------------------

RESPONSE_MAX_HEAD = 2048
RESPONSE_MAX_BODY = 4096  # small, so that fuzzed bodies reach it
RESPONSE_MAX_COUNT = 8  # responses read from one connection, as a client would pipeline them


@dataclass
class _Response:
    heads: list[ResponseHead] = field(default_factory=list)  # the interim heads, then the final
    final: bool = False
    body: bytearray = field(default_factory=bytearray)
    ended: bool = False


def _check_response_head(head: ResponseHead) -> None:
    # Any HTTP/1.x: a later minor version is read as 1.1 (RFC 9110 2.5).
    assert 100 <= head.status <= 999 and re.fullmatch(rb"HTTP/1\.[0-9]", head.version)
    assert all(name == name.lower() and name for name, _ in head.headers)
    assert sum(len(name) + len(value) for name, value in head.headers) <= RESPONSE_MAX_HEAD
    assert isinstance(head.keep_alive, bool)


def _drain_responses(parser: ResponseParser, responses: list[_Response]) -> bool:
    """Take the parser's events until it needs data; True when the client is done with the
    connection (a response ended that does not keep it open, or the last one it reads)."""
    # Bounded: every event but End consumes input, and End starts the next response or stops.
    for _ in range(2 * MAX_INPUT + 4 * RESPONSE_MAX_COUNT):
        event = parser.next_event()
        if event is RESPONSE_NEED_DATA:
            return False
        current = responses[-1]
        assert not current.ended
        if isinstance(event, Interim | Head):
            assert not current.final, "a head after the final head"
            assert (event.head.status < 200) is isinstance(event, Interim)
            _check_response_head(event.head)
            current.heads.append(event.head)
            current.final = isinstance(event, Head)
        elif isinstance(event, Body):
            assert current.final and event.data, "a body before the head, or an empty one"
            current.body += event.data
            assert len(current.body) <= RESPONSE_MAX_BODY, "a body over the limit"
        else:
            assert isinstance(event, End) and current.final, f"{event!r} before the head"
            current.ended = True
            if not current.heads[-1].keep_alive or len(responses) == RESPONSE_MAX_COUNT:
                return True
            parser.start_next()
            responses.append(_Response())
    raise AssertionError("the parser hands out events without consuming its input")


def _read_responses(data: bytes, chunk: int, head_request: bool = False
                    ) -> tuple[list[_Response], str | None]:
    """The responses a client reads from a connection that delivers `data` in pieces of
    `chunk` then closes, and the HttpResponseError that ended them if any."""
    parser = ResponseParser(head_request=head_request, max_head_bytes=RESPONSE_MAX_HEAD,
                            max_body_bytes=RESPONSE_MAX_BODY)
    responses = [_Response()]
    try:
        for piece in [*(piece for piece in pieces(data, chunk) if piece), b""]:
            parser.receive(piece)
            if _drain_responses(parser, responses):
                return responses, None
    except HttpResponseError as error:
        for _ in range(2):  # the error sticks: no event after it, ever
            try:
                event = parser.next_event()
            except HttpResponseError as again:
                assert again is error, "a different error after the first"
            else:
                raise AssertionError(f"{event!r} after {error!r}")
        return responses, str(error)
    raise AssertionError("NEED_DATA after the server closed: the client would wait forever")


def http_response(data: bytes, chunk: int = 0) -> None:
    """ResponseParser: Interim, Head, Body and End events or HttpResponseError, never another
    exception; each response's body within the body limit; once it raised, it raises the
    same error at every call; the same responses and outcome for every chunking (where an
    error cuts a body short, one reading's body is a prefix of the other's). The answer to a
    HEAD request keeps the same contract."""
    data = data[:MAX_INPUT]
    responses, error = _read_responses(data, chunk)
    whole, whole_error = _read_responses(data, 0)
    assert error == whole_error, f"outcome depends on the chunking: {error} / {whole_error}"
    assert len(responses) == len(whole), "the number of responses depends on the chunking"
    for ours, theirs in zip(responses, whole, strict=True):
        assert (ours.heads, ours.final, ours.ended) == (theirs.heads, theirs.final,
                                                        theirs.ended), "heads depend on it"
        if ours.ended:
            assert ours.body == theirs.body, "a body depends on the chunking"
        else:
            short, long = sorted((bytes(ours.body), bytes(theirs.body)), key=len)
            assert long.startswith(short), "a cut-short body depends on the chunking"
    _read_responses(data, chunk, head_request=True)


# -- HTTP authentication (the client side) --------------------------------------------------

# A quote and a backslash to escape, and not ASCII: what the Digest fields must quote right.
AUTH_USER = 'J\u00fcrgen "lp"\\'
AUTH_PASSWORD = 'p\u00e4ss:"w\\rd'
AUTH_CNONCE = "0a4f113b"
AUTH_REQUESTS = (("POST", "/ipp/print"), ("POST", "/printers/hp%20laser?x=1"), ("GET", "/"))


def http_auth(data: bytes, chunk: int = 0) -> None:
    """parse_challenges over WWW-Authenticate values (`data` as latin-1, one value a line, as
    ResponseHead.header_values gives them): never raises; lower-case schemes and parameter
    names. The challenge `preferred` picks, Credentials.authorization answers with one line
    that reads back to the user, realm, nonce, target and opaque it answers."""
    data = data[:MAX_INPUT]
    challenges = parse_challenges(data.decode("latin-1").split("\n"))
    for challenge in challenges:
        assert challenge.scheme and challenge.scheme == challenge.scheme.lower()
        assert all(name == name.lower() for name in challenge.params)
    best = preferred(challenges)
    if best is None:
        assert all(challenge.scheme != "basic" for challenge in challenges)
        return
    assert any(best is challenge for challenge in challenges)
    method, target = AUTH_REQUESTS[chunk % len(AUTH_REQUESTS)]
    credentials = Credentials(AUTH_USER, AUTH_PASSWORD, cnonce=lambda: AUTH_CNONCE)
    value = credentials.authorization(best, method, target)
    assert isinstance(value, str)
    assert "\r" not in value and "\n" not in value, f"a line break in {value!r}"
    (answer,) = parse_challenges([value])
    assert answer.scheme == best.scheme
    if best.scheme == "basic":
        pair = base64.b64decode(answer.params[TOKEN68], validate=True)
        assert pair == f"{AUTH_USER}:{AUTH_PASSWORD}".encode()
        return
    expected = {"username": AUTH_USER, "realm": best.params.get("realm", ""),
                "nonce": best.params["nonce"], "uri": target}
    if "opaque" in best.params:
        expected["opaque"] = best.params["opaque"]
    assert {name: answer.params.get(name) for name in expected} == expected, value


@dataclass(frozen=True)
class FuzzTarget:
    name: str
    run: Target
    module: str  # the parser under test, for coverage instrumentation


TARGETS: dict[str, FuzzTarget] = {target.name: target for target in (
    FuzzTarget("ipp", ipp_reader, "ippwire.reader"),
    FuzzTarget("http", http_parser, "ippwire.http11"),
    FuzzTarget("pwg", pwg_raster, "drivers.filters.pwg_raster"),
    FuzzTarget("urf", urf, "drivers.filters.urf"),
    FuzzTarget("lpd", lpd_protocol, "drivers.transports.lpd_protocol"),
    FuzzTarget("pjl", pjl, "drivers.pjl"),
    FuzzTarget("http-response", http_response, "ippwire.http_client"),
    FuzzTarget("http-auth", http_auth, "ippwire.http_auth"),
)}
