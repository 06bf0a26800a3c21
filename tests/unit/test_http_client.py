"""ippwire.http_client: request heads, chunks, and the response parser over byte tables."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ippwire.http_client import (
    LAST_CHUNK,
    NEED_DATA,
    Body,
    End,
    Head,
    HttpResponseError,
    Interim,
    ResponseHead,
    ResponseParser,
    encode_chunk,
    encode_request,
)

# An event reduced to what must not depend on how the bytes were split: bodies are compared
# joined, so ("body", ...) appears once per run of Body events.
Summary = tuple[object, ...]


def summarise(events: list[object]) -> list[Summary]:
    out: list[Summary] = []
    for event in events:
        if isinstance(event, Body):
            if out and out[-1][0] == "body":
                out[-1] = ("body", out[-1][1] + event.data)  # type: ignore[operator]
            else:
                out.append(("body", event.data))
        elif isinstance(event, (Interim, Head)):
            kind = "interim" if isinstance(event, Interim) else "head"
            out.append((kind, event.head.status, event.head.reason, event.head.headers))
        else:
            assert isinstance(event, End)
            out.append(("end",))
    return out


def parser_for(limits: dict[str, int], head_request: bool = False) -> ResponseParser:
    return ResponseParser(head_request=head_request,
                          max_head_bytes=limits.get("max_head_bytes", 64 * 1024),
                          max_body_bytes=limits.get("max_body_bytes", 16 << 20))


def run(pieces: list[bytes], limits: dict[str, int] | None = None, *, close: bool = True,
        head_request: bool = False, responses: int = 1) -> list[Summary]:
    """Every event of `responses` responses fed as `pieces` (then a close, if `close`)."""
    parser = parser_for(limits or {}, head_request)
    queue = [piece for piece in pieces if piece] + ([b""] if close else [])
    events: list[object] = []
    done = 0
    for _ in range(10_000):
        event = parser.next_event()
        if event is NEED_DATA:
            if not queue:
                break
            parser.receive(queue.pop(0))
            continue
        events.append(event)
        if isinstance(event, End):
            done += 1
            if done == responses:
                break
            parser.start_next()
    return summarise(events)


def head(status: int, reason: str, *headers: tuple[bytes, bytes]) -> Summary:
    return ("head", status, reason, tuple(headers))


CASES: list[tuple[str, bytes, list[Summary], dict[str, int]]] = [
    ("content-length",
     b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\nContent-Length: 5\r\n\r\nhello",
     [head(200, "OK", (b"content-type", b"application/ipp"), (b"content-length", b"5")),
      ("body", b"hello"), ("end",)], {}),
    ("chunked with extensions and trailers",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
     b"5;name=value\r\nhello\r\n 1 \r\n \r\n6\r\nworld!\r\n0\r\nX-Trailer: 1\r\n\r\n",
     [head(200, "OK", (b"transfer-encoding", b"chunked")), ("body", b"hello world!"),
      ("end",)], {}),
    ("close-delimited (HTTP/1.0)",
     b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nrest of the stream",
     [head(200, "OK", (b"server", b"old")), ("body", b"rest of the stream"), ("end",)], {}),
    ("100 Continue, then 401 with two challenges",
     b"HTTP/1.1 100 Continue\r\n\r\n"
     b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Negotiate\r\n"
     b"WWW-Authenticate: Basic realm=\"CUPS\"\r\nContent-Length: 3\r\n\r\nno!",
     [("interim", 100, "Continue", ()),
      head(401, "Unauthorized", (b"www-authenticate", b"Negotiate"),
           (b"www-authenticate", b'Basic realm="CUPS"'), (b"content-length", b"3")),
      ("body", b"no!"), ("end",)], {}),
    ("several interim heads",
     b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 102 Processing\r\n\r\n"
     b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
     [("interim", 100, "Continue", ()), ("interim", 102, "Processing", ()),
      head(200, "OK", (b"content-length", b"0")), ("end",)], {}),
    ("204 has no body",
     b"HTTP/1.1 204 No Content\r\n\r\n",
     [head(204, "No Content"), ("end",)], {}),
    ("304 has no body whatever its length says",
     b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
     [head(304, "Not Modified", (b"content-length", b"10")), ("end",)], {}),
    ("bare LF, folding, no reason phrase",
     b"HTTP/1.1 200\nX-Folded: one\n two\nContent-Length: 2\n\nok",
     [head(200, "", (b"x-folded", b"one two"), (b"content-length", b"2")),
      ("body", b"ok"), ("end",)], {}),
    ("Transfer-Encoding without chunked runs to the close",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\nContent-Length: 2\r\n\r\nabcdef",
     [head(200, "OK", (b"transfer-encoding", b"gzip"), (b"content-length", b"2")),
      ("body", b"abcdef"), ("end",)], {}),
    ("a repeated equal Content-Length",
     b"HTTP/1.1 200 OK\r\nContent-Length: 3, 03\r\nContent-Length: 3\r\n\r\nabc",
     [head(200, "OK", (b"content-length", b"3, 03"), (b"content-length", b"3")),
      ("body", b"abc"), ("end",)], {}),
    ("body exactly at the limit",
     b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n0\r\n\r\n",
     [head(200, "OK", (b"transfer-encoding", b"chunked")), ("body", b"abcd"), ("end",)],
     {"max_body_bytes": 4}),
]


@pytest.mark.parametrize(("name", "data", "expected", "limits"), CASES,
                         ids=[case[0] for case in CASES])
def test_framing_whole_and_split_at_every_byte(name: str, data: bytes,
                                               expected: list[Summary],
                                               limits: dict[str, int]) -> None:
    assert run([data], limits) == expected
    for cut in range(1, len(data)):
        assert run([data[:cut], data[cut:]], limits) == expected, f"split at {cut}"
    assert run([bytes([b]) for b in data], limits) == expected


def test_head_request_has_no_body_and_the_next_response_follows() -> None:
    data = (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi")
    parser = ResponseParser(head_request=True)
    parser.receive(data)
    assert isinstance(parser.next_event(), Head)
    assert isinstance(parser.next_event(), End)
    assert isinstance(parser.next_event(), End)  # asking again changes nothing
    parser.start_next(head_request=False)
    assert isinstance(parser.next_event(), Head)
    assert parser.next_event() == Body(b"hi")
    assert isinstance(parser.next_event(), End)


def test_pipelined_keep_alive_responses() -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\r\n"  # a stray CRLF after it
    second = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n"
    expected = [head(200, "OK", (b"content-length", b"1")), ("body", b"a"), ("end",),
                head(200, "OK", (b"transfer-encoding", b"chunked")), ("body", b"b"), ("end",)]
    both = first + second
    for cut in range(len(both) + 1):
        assert run([both[:cut], both[cut:]], close=False, responses=2) == expected


def test_start_next_needs_the_end_and_receive_needs_an_open_connection() -> None:
    parser = ResponseParser()
    parser.receive(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\na")
    assert isinstance(parser.next_event(), Head)
    with pytest.raises(RuntimeError):
        parser.start_next()
    parser.receive(b"")
    with pytest.raises(RuntimeError):
        parser.receive(b"more")


ERRORS: list[tuple[str, list[bytes], str, dict[str, int]]] = [
    ("not HTTP", [b"SSH-2.0-OpenSSH\r\n\r\n"], "bad status line", {}),
    ("HTTP/2 status line", [b"HTTP/2 200 OK\r\n\r\n"], "bad status line", {}),
    ("status under 100", [b"HTTP/1.1 099 Odd\r\n\r\n"], "bad status code", {}),
    ("header line without a colon", [b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n"],
     "bad header line", {}),
    ("space before the colon", [b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n"], "bad header line", {}),
    ("Content-Length not a number",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 12abc\r\n\r\n"], "bad Content-Length", {}),
    ("negative Content-Length",
     [b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"], "bad Content-Length", {}),
    ("conflicting Content-Length",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"],
     "conflicting", {}),
    ("Content-Length over the limit",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n"], "over the limit",
     {"max_body_bytes": 10}),
    ("chunked body over the limit",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n5\r\nghijk\r\n"],
     "over the limit", {"max_body_bytes": 10}),
    ("close-delimited body over the limit",
     [b"HTTP/1.0 200 OK\r\n\r\n", b"x" * 11], "over the limit", {"max_body_bytes": 10}),
    ("head over the limit", [b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100], "longer than",
     {"max_head_bytes": 64}),
    ("whole head over the limit", [b"HTTP/1.1 200 OK\r\nX: " + b"a" * 100 + b"\r\n\r\n"],
     "longer than", {"max_head_bytes": 64}),
    ("nothing before the close", [], "without a response", {}),
    ("close in the middle of a head", [b"HTTP/1.1 200 OK\r\nContent-Le"],
     "middle of a response head", {}),
    ("close in the middle of a counted body",
     [b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"], "still to come", {}),
    ("close in the middle of a chunk",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"], "middle of a chunk",
     {}),
    ("close before the last chunk",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n"],
     "middle of a chunked body", {}),
    ("close in the trailer",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: 1\r\n"],
     "middle of a chunked body", {}),
    ("chunk size not hex",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"], "bad chunk size", {}),
    ("chunk data longer than its size",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"],
     "longer than its size", {}),
    ("chunk size line too long",
     [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;" + b"x" * 100],
     "too long", {"max_head_bytes": 64}),
    ("101 without an upgrade", [b"HTTP/1.1 101 Switching Protocols\r\n\r\n"], "101", {}),
]


@pytest.mark.parametrize(("name", "pieces", "message", "limits"), ERRORS,
                         ids=[case[0] for case in ERRORS])
def test_malformed_responses_raise_and_keep_raising(name: str, pieces: list[bytes],
                                                    message: str,
                                                    limits: dict[str, int]) -> None:
    with pytest.raises(HttpResponseError, match=message):
        run(pieces, limits)
    parser = parser_for(limits)
    for piece in [*pieces, b""]:
        parser.receive(piece)
    with pytest.raises(HttpResponseError) as first:
        for _ in range(100):
            parser.next_event()
    with pytest.raises(HttpResponseError) as again:
        parser.next_event()
    assert again.value is first.value


@settings(max_examples=200, deadline=None)
@given(case=st.sampled_from(CASES), cuts=st.lists(st.integers(min_value=0, max_value=400),
                                                  max_size=12))
def test_any_split_gives_the_same_events(case: tuple[str, bytes, list[Summary],
                                                     dict[str, int]],
                                         cuts: list[int]) -> None:
    _, data, expected, limits = case
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    assert run(pieces, limits) == expected


@given(data=st.binary(max_size=300), head_request=st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_bytes_give_events_or_http_response_error(data: bytes, head_request: bool) -> None:
    prefix = b"HTTP/1.1 200 OK\r\n"
    for feed in (data, prefix + data):
        with contextlib.suppress(HttpResponseError):
            run([feed], {"max_head_bytes": 128, "max_body_bytes": 64},
                head_request=head_request)


@pytest.mark.parametrize(("raw", "keep_alive"), [
    (b"HTTP/1.1 200 OK\r\nContent-Length: 0", True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", True),
    (b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0", False),
    (b"HTTP/1.1 200 OK\r\nConnection: Upgrade, Close\r\nContent-Length: 0", False),
    (b"HTTP/1.1 200 OK", False),  # the body runs to the close
    (b"HTTP/1.1 204 No Content", True),
    (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3", False),
    (b"HTTP/1.0 200 OK\r\nContent-Length: 0", False),
    (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0", True),
])
def test_keep_alive(raw: bytes, keep_alive: bool) -> None:
    parser = ResponseParser()
    parser.receive(raw + b"\r\n\r\n")
    event = parser.next_event()
    assert isinstance(event, Head)
    assert event.head.keep_alive is keep_alive


def test_response_head_lookups() -> None:
    head = ResponseHead(401, "Unauthorized", b"HTTP/1.1",
                        ((b"www-authenticate", b"Negotiate"),
                         (b"www-authenticate", b'Basic realm="caf\xe9"')))
    assert head.header("WWW-Authenticate") == "Negotiate"
    assert head.header_values("www-authenticate") == ["Negotiate", 'Basic realm="café"']
    assert head.header("content-length") is None
    assert head.header_values("content-length") == []


def test_encode_request() -> None:
    assert encode_request("POST", "/ipp/print", "printer.local:631",
                          [("Content-Type", "application/ipp"), ("Authorization", "Basic eA==")],
                          content_length=123) == (
        b"POST /ipp/print HTTP/1.1\r\nHost: printer.local:631\r\n"
        b"Content-Type: application/ipp\r\nAuthorization: Basic eA==\r\n"
        b"Content-Length: 123\r\n\r\n")
    assert encode_request("POST", "/printers/q", "[::1]:631", chunked=True,
                          expect_continue=True) == (
        b"POST /printers/q HTTP/1.1\r\nHost: [::1]:631\r\nTransfer-Encoding: chunked\r\n"
        b"Expect: 100-continue\r\n\r\n")
    assert encode_request("GET", "/", "h", [("X-User", "J\u00fcrgen")]) == (
        b"GET / HTTP/1.1\r\nHost: h\r\nX-User: J\xc3\xbcrgen\r\n\r\n")


@pytest.mark.parametrize(("args", "kwargs"), [
    (("PO ST", "/", "h"), {}),
    (("POST", "/a b", "h"), {}),
    (("POST", "/", "h\r\nX: y"), {}),
    (("POST", "/", "h", [("X", "a\r\nInjected: 1")]), {}),
    (("POST", "/", "h", [("Bad Name", "v")]), {}),
    (("POST", "/", "h", [("content-length", "5")]), {}),
    (("POST", "/", "h", [("Host", "other")]), {}),
    (("POST", "/", "h"), {"content_length": 5, "chunked": True}),
    (("POST", "/", "h"), {"content_length": -1}),
])
def test_encode_request_refuses_what_would_break_the_head(args: tuple[object, ...],
                                                          kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        encode_request(*args, **kwargs)  # type: ignore[arg-type]


def test_chunks_round_trip_through_the_parser() -> None:
    assert encode_chunk(b"") == b""
    assert encode_chunk(memoryview(b"")) == b""
    assert encode_chunk(b"hello") == b"5\r\nhello\r\n"
    assert encode_chunk(bytearray(b"x" * 26)) == b"1A\r\n" + b"x" * 26 + b"\r\n"
    assert LAST_CHUNK == b"0\r\n\r\n"
    pieces = [b"a" * 1000, b"", b"bc", bytes(range(256))]
    body = b"".join(encode_chunk(memoryview(p)) for p in pieces) + LAST_CHUNK
    response = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    assert run([response], close=False) == [
        head(200, "OK", (b"transfer-encoding", b"chunked")), ("body", b"".join(pieces)),
        ("end",)]


def test_a_chunk_line_of_the_limit_split_before_its_lf_is_accepted() -> None:
    """Found by the http-response fuzz target's review: the CR of the line end was counted
    when the line arrived without its LF."""
    data = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;" + b"x" * 62
            + b"\r\na\r\n0\r\n\r\n")
    cut = data.index(b"\r\na\r\n") + 1
    for pieces in ([data], [data[:cut], data[cut:]]):
        parser = ResponseParser(max_head_bytes=64)
        events = []
        for piece in pieces:
            parser.receive(piece)
            while (event := parser.next_event()) is not NEED_DATA and not isinstance(event, End):
                events.append(type(event).__name__)
        assert isinstance(parser.next_event(), End) and events == ["Head", "Body"], (
            pieces, events)
