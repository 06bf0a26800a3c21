"""The sans-I/O request parser: its own cases, and the same answers as h11 (which it replaced)
on a corpus of good and bad requests, fed whole and split at every byte; and the requests h11
accepts that we refuse on purpose (DIVERGENT: smuggling, head size, Host and target grammar)."""

from __future__ import annotations

import pytest

from ippwire.http11 import (
    CLOSED,
    END_OF_BODY,
    NEED_DATA,
    HttpProtocolError,
    RequestHead,
    RequestParser,
    valid_field_name,
    valid_field_value,
)
from tests.support.hostile_http import BAD_HOSTS, BAD_TARGETS, SMUGGLING

h11 = pytest.importorskip("h11")

Outcome = tuple[object, ...]

GOOD = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.0\r\n\r\n",
    b"POST /ipp/print HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3, 3\r\n\r\nabc",
    b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5\r\nhello\r\n1a;ext=1\r\n" + b"z" * 26 + b"\r\n0\r\n\r\n",
    b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n\r\n"
    b"3  \r\nabc\r\n0\r\nX-Trailer: yes\r\n\r\n",
    b"GET /x HTTP/1.1\nHost: h\nX-A:  spaced  value \n\n",  # bare LF, OWS around the value
    b"GET / HTTP/1.1\r\nHost: h\r\nX-Folded: one\r\n  two\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n",
    b"OPTIONS * HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: TLS/1.2\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
    b"GET / HTTP/2.0\r\n\r\n",  # h11 takes any digit.digit version
    b"GET / HTTP/1.1\r\nHost: h\r\nEmpty:\r\n\r\n",
    b"GET http://gw:631/ipp/print?x=%20 HTTP/1.1\r\nHost: [fe80::1%25eth0]:631\r\n\r\n",
    b"GET /a|b?[c]{d} HTTP/1.1\r\nHost: 192.0.2.1\r\n\r\n",  # what browsers leave unescaped
]
BAD = [
    b"NOT HTTP AT ALL\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b" GET / HTTP/1.1\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nBad Name: x\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nX: a\x00b\r\n\r\n",
    b"GET / HTTP/1.1\r\n Host: h\r\n\r\n",  # fold before any field
    b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1, 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: 123456789012345678901\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
    b"\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY",
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nbad trailer\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.12\r\nHost: h\r\n\r\n",
]


# What h11 accepts and we refuse on purpose, with our status.
DIVERGENT = (
    [(data, 400) for data in SMUGGLING]
    + [(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % host, 400) for host in BAD_HOSTS]
    + [(b"GET %s HTTP/1.1\r\nHost: h\r\n\r\n" % target, 400) for target in BAD_TARGETS]
    + [(b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: %s\r\n\r\n" % (b"a" * 60_000), 431),
       (b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"0\r\nX-Big: %s\r\n\r\n" % (b"a" * 60_000), 431)]
)


def ours(pieces: list[bytes], *, eof: bool) -> Outcome:
    """What our parser makes of `pieces`: the head's fields, the body, and how it ended."""
    parser = RequestParser()
    feed = list(pieces) + ([b""] if eof else [])
    head: RequestHead | None = None
    body = b""
    while True:
        try:
            event = parser.next_body() if head is not None else parser.next_request()
        except HttpProtocolError as error:
            return ("error", error.status, head is not None)
        if isinstance(event, RequestHead):
            head = event
        elif isinstance(event, bytes):
            assert event
            body += event
        elif event is NEED_DATA and feed:
            parser.receive(feed.pop(0))
        elif event is END_OF_BODY:
            assert head is not None
            return ("request", head.method, head.target, head.http_version, head.headers,
                    head.keep_alive, body)
        else:
            return ("closed" if event is CLOSED else "need-data", head is not None)


def theirs(pieces: list[bytes], *, eof: bool) -> Outcome:
    """The same from h11, in the same shape."""
    connection = h11.Connection(h11.SERVER)
    feed = list(pieces) + ([b""] if eof else [])
    request = None
    body = b""
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as error:
            return ("error", error.error_status_hint, request is not None)
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif event is h11.NEED_DATA and feed:
            connection.receive_data(feed.pop(0))
        elif isinstance(event, h11.EndOfMessage):
            assert request is not None
            headers = [(name, value) for _, name, value in request.headers._full_items]
            # h11's rule: no keep-alive with HTTP/1.0 or when Connection lists "close"
            tokens = {token.strip() for name, value in headers if name == b"connection"
                      for token in value.lower().split(b",")}
            keep_alive = b"close" not in tokens and request.http_version >= b"1.1"
            return ("request", request.method, request.target, request.http_version, headers,
                    keep_alive, body)
        else:
            closed = isinstance(event, h11.ConnectionClosed)
            return ("closed" if closed else "need-data", request is not None)


@pytest.mark.parametrize("data", GOOD + BAD)
def test_same_answer_as_h11_whole_and_split_everywhere(data: bytes) -> None:
    expected = theirs([data], eof=True)
    assert ours([data], eof=True) == expected
    for cut in range(1, len(data)):
        pieces = [data[:cut], data[cut:]]
        assert ours(pieces, eof=True) == expected, cut
        assert ours([data[:cut]], eof=False) == theirs([data[:cut]], eof=False), cut


@pytest.mark.parametrize(("data", "status"), DIVERGENT)
def test_where_h11_is_lenient_we_refuse(data: bytes, status: int) -> None:
    assert theirs([data], eof=True)[0] == "request"
    expected = ours([data], eof=True)
    assert expected[:2] == ("error", status)
    step = max(1, len(data) // 50)
    for cut in range(1, len(data), step):  # however the bytes arrive
        assert ours([data[:cut], data[cut:]], eof=True) == expected, cut


@pytest.mark.parametrize("data", GOOD)
def test_same_answer_as_h11_one_byte_at_a_time(data: bytes) -> None:
    pieces = [data[i : i + 1] for i in range(len(data))]
    assert ours(pieces, eof=False) == theirs(pieces, eof=False)


def test_bad_requests_get_h11s_status() -> None:
    statuses = {data: ours([data], eof=True) for data in BAD}
    assert statuses[BAD[0]] == ("error", 400, False)
    assert statuses[BAD[12]] == ("error", 501, False)  # Transfer-Encoding: gzip
    assert statuses[BAD[14]] == ("error", 400, True)  # bad chunk size, after the head


def test_pipelined_requests_come_out_one_after_another() -> None:
    parser = RequestParser()
    parser.receive(GOOD[2] + GOOD[0] + GOOD[5])
    bodies = []
    for _ in range(3):
        head = parser.next_request()
        assert isinstance(head, RequestHead)
        body = b""
        while (event := parser.next_body()) is not END_OF_BODY:
            assert isinstance(event, bytes)
            body += event
        assert parser.request_complete
        bodies.append((head.target, body))
        parser.start_next_cycle()
    assert bodies == [(b"/ipp/print", b"hello"), (b"/", b""),
                      (b"/p", b"hello" + b"z" * 26)]
    assert parser.next_request() is NEED_DATA
    parser.receive(b"")
    assert parser.next_request() is CLOSED


def test_head_and_body_facts() -> None:
    parser = RequestParser()
    parser.receive(GOOD[11])
    head = parser.next_request()
    assert isinstance(head, RequestHead)
    assert (head.expects_continue, head.keep_alive, parser.request_complete) == (True, True, False)
    assert parser.next_body() == b"ok"
    assert parser.request_complete and parser.next_body() is END_OF_BODY
    parser.start_next_cycle()
    parser.receive(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n")
    head = parser.next_request()
    assert isinstance(head, RequestHead)
    assert (head.expects_continue, head.keep_alive, parser.request_complete) == (False, False, True)


def test_head_over_the_limit_is_431_whole_or_incomplete() -> None:
    big = b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 200
    for data in (big, big + b"\r\n\r\n"):  # h11 refused only the incomplete one
        parser = RequestParser(max_head_bytes=100)
        parser.receive(data)
        with pytest.raises(HttpProtocolError) as caught:
            parser.next_request()
        assert caught.value.status == 431
        assert parser.failed


def test_head_of_exactly_the_limit_passes_and_one_byte_more_does_not() -> None:
    head = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n"
    fits = RequestParser(max_head_bytes=len(head))
    fits.receive(head + b"GET / HTTP/1.1\r\n")  # the pipelined next request does not count
    assert isinstance(fits.next_request(), RequestHead)
    over = RequestParser(max_head_bytes=len(head) - 1)
    over.receive(head)
    with pytest.raises(HttpProtocolError, match="larger than"):
        over.next_request()


@pytest.mark.parametrize("body", [b"%x;ext=%s\r\n", b"0\r\nX-Big: %s\r\n\r\n"])
def test_chunk_header_and_trailer_over_the_limit_are_431(body: bytes) -> None:
    parser = RequestParser(max_head_bytes=100)
    parser.receive(b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n")
    parser.receive(body.replace(b"%x", b"5").replace(b"%s", b"e" * 200) + b"hello\r\n")
    assert isinstance(parser.next_request(), RequestHead)
    with pytest.raises(HttpProtocolError) as caught:
        parser.next_body()
    assert caught.value.status == 431


def test_end_of_input_mid_body_is_an_error_and_stays_one() -> None:
    parser = RequestParser()
    parser.receive(GOOD[2][:-2])
    assert isinstance(parser.next_request(), RequestHead)
    assert parser.next_body() == b"hel"
    assert parser.next_body() is NEED_DATA
    parser.receive(b"")
    for _ in range(2):
        with pytest.raises(HttpProtocolError, match="missing"):
            parser.next_body()


def test_misuse_raises_runtime_error() -> None:
    parser = RequestParser()
    with pytest.raises(RuntimeError):
        parser.next_body()
    with pytest.raises(RuntimeError):
        parser.start_next_cycle()
    parser.receive(b"")
    with pytest.raises(RuntimeError):
        parser.receive(b"more")


def test_response_field_checks() -> None:
    assert valid_field_name(b"Content-Type") and not valid_field_name(b"Bad Name")
    assert valid_field_value(b"text/plain; charset=utf-8") and valid_field_value(b"")
    assert not valid_field_value(b"a\r\nInjected: yes") and not valid_field_value(b" lead")
