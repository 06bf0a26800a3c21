"""The incremental reader: events, document pass-through and bounded buffering."""

from __future__ import annotations

from ippwire.enums import Operation, ValueTag
from ippwire.reader import (
    NEED_DATA,
    DocumentData,
    EndOfDocument,
    IppReader,
    NeedData,
    RequestReceived,
)
from ippwire.writer import encode_message, request
from tests.support.ipp_bytes import GET_PRINTER_ATTRIBUTES

Event = RequestReceived | DocumentData | EndOfDocument | NeedData

PRINT_JOB = encode_message(
    request(
        Operation.PRINT_JOB,
        42,
        printer_uri="ipp://127.0.0.1/ipp/print",
        attrs={
            "job-name": (ValueTag.NAME, "x" * 3000),
            "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/pdf"),
        },
    )
)


def drain(reader: IppReader) -> list[Event]:
    events: list[Event] = []
    while True:
        event = reader.next_event()
        events.append(event)
        if event is NEED_DATA or isinstance(event, EndOfDocument):
            return events


def test_event_sequence() -> None:
    reader = IppReader()
    assert reader.next_event() is NEED_DATA
    reader.feed(PRINT_JOB[:20])
    assert reader.next_event() is NEED_DATA
    reader.feed(PRINT_JOB[20:] + b"%PDF")
    received, first, waiting = drain(reader)
    assert isinstance(received, RequestReceived)
    assert received.message.request_id == 42
    assert first == DocumentData(b"%PDF")
    assert waiting is NEED_DATA
    reader.feed(b"-1.7")
    reader.feed(b"")  # an empty feed is not the end
    reader.feed(b"\n")
    assert drain(reader) == [DocumentData(b"-1.7"), DocumentData(b"\n"), NEED_DATA]
    reader.end_of_input()
    assert drain(reader) == [EndOfDocument()]
    assert reader.next_event() == EndOfDocument()  # stays at the end


def test_request_without_document() -> None:
    reader = IppReader()
    reader.feed(GET_PRINTER_ATTRIBUTES)
    reader.end_of_input()
    received, end = drain(reader)
    assert isinstance(received, RequestReceived) and end == EndOfDocument()


def test_one_byte_at_a_time_keeps_at_most_one_entry_buffered() -> None:
    largest_entry = 5 + len("job-name") + 3000
    reader = IppReader()
    events: list[Event] = []
    most_buffered = 0
    for index in range(len(PRINT_JOB)):
        reader.feed(PRINT_JOB[index : index + 1])
        most_buffered = max(most_buffered, reader.buffered_bytes)
        events.extend(e for e in drain(reader) if e is not NEED_DATA)
    assert most_buffered <= largest_entry
    assert len(events) == 1 and isinstance(events[0], RequestReceived)
    job_name = events[0].message.operation_attributes.get("job-name")
    assert job_name is not None and job_name.value == "x" * 3000


def test_ten_megabytes_of_document_pass_through_unbuffered() -> None:
    piece = bytes(range(256)) * 256  # 64 KiB
    reader = IppReader()
    reader.feed(PRINT_JOB)
    assert isinstance(reader.next_event(), RequestReceived)
    total = 0
    for _ in range(160):
        reader.feed(piece)
        assert reader.buffered_bytes <= len(piece)
        event = reader.next_event()
        assert isinstance(event, DocumentData)
        assert event.data is piece  # handed on, not copied
        total += len(event.data)
        assert reader.buffered_bytes == 0
        assert reader.next_event() is NEED_DATA
    reader.end_of_input()
    assert reader.next_event() == EndOfDocument()
    assert total == 10 * 1024 * 1024


def test_bytearray_input_is_copied_once_because_callers_reuse_buffers() -> None:
    reader = IppReader()
    reader.feed(bytearray(GET_PRINTER_ATTRIBUTES))
    assert isinstance(reader.next_event(), RequestReceived)
    scratch = bytearray(b"abc")
    reader.feed(scratch)
    scratch[:] = b"xyz"
    assert reader.next_event() == DocumentData(b"abc")
