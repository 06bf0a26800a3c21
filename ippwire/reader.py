"""Incremental, sans-I/O IPP message reader (RFC 8010), in the style of h11.

Feed it the HTTP body as it arrives; `next_event()` returns `RequestReceived` once the
attribute section is complete, then one `DocumentData` per fed chunk of document (passed on,
never gathered), then `EndOfDocument` after `end_of_input()`. `NEED_DATA` means "feed more".

Only structural checks live here (tags, lengths, encodings, collection nesting, size limits);
whether a well-formed message makes sense (version, request-id, group order, charset) is the
dispatcher's business. Responses parse the same way: a `Message` is either.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from enum import Enum, auto

from ippwire.enums import GroupTag, Status, ValueTag
from ippwire.errors import IppProtocolError
from ippwire.header import SIZE as HEADER_SIZE
from ippwire.header import read_header
from ippwire.model import (
    Attribute,
    Collection,
    Group,
    IntRange,
    Message,
    Resolution,
    StringWithLanguage,
    Value,
)

_RESOLUTION = struct.Struct(">iib")
_RANGE = struct.Struct(">ii")
_DATE_TIME = struct.Struct(">HBBBBBBcBB")

_RESERVED_DELIMITERS = frozenset({0x00, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F})
_ENTRY_OVERHEAD = 5  # value-tag, name-length, value-length
# Plain ints: comparing with IntEnum members costs an attribute lookup on the hot path.
_BEGIN_COLLECTION = int(ValueTag.BEGIN_COLLECTION)
_END_COLLECTION = int(ValueTag.END_COLLECTION)
_MEMBER_ATTR_NAME = int(ValueTag.MEMBER_ATTR_NAME)
_END_OF_ATTRIBUTES = int(GroupTag.END)


@dataclass(frozen=True)
class Limits:
    max_attribute_bytes: int = 256 * 1024  # header through end-of-attributes, inclusive
    max_value_length: int = 32767  # also bounds name lengths
    max_depth: int = 8  # collection nesting
    max_attributes: int = 2000  # attributes plus collection members


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True)
class RequestReceived:
    message: Message


@dataclass(frozen=True)
class DocumentData:
    data: bytes


@dataclass(frozen=True)
class EndOfDocument:
    pass


class _Sentinel(Enum):
    NEED_DATA = auto()

    def __repr__(self) -> str:
        return self.name


NEED_DATA = _Sentinel.NEED_DATA
NeedData = _Sentinel
Event = RequestReceived | DocumentData | EndOfDocument


class _Phase(Enum):
    ATTRIBUTES = auto()
    DOCUMENT = auto()


@dataclass
class _Frame:
    """An open collection and the member currently receiving values."""

    collection: Collection
    member: Attribute | None = None


class IppReader:
    """One IPP message from one HTTP body; `next_event()` raises IppProtocolError on bad bytes."""

    def __init__(self, limits: Limits = DEFAULT_LIMITS) -> None:
        self._limits = limits
        self._phase = _Phase.ATTRIBUTES
        # bytes while it holds one fed piece (slices of it are the values, one copy each);
        # a bytearray once pieces have to be joined, so that trickled input stays linear.
        self._buffer: bytes | bytearray = b""
        self._pos = 0  # parse position in _buffer
        self._consumed = 0  # bytes of the attribute section parsed so far (absolute)
        self._documents: deque[bytes] = deque()
        self._eof = False
        self._error: IppProtocolError | None = None
        self._message: Message | None = None
        self._group: Group | None = None
        self._attribute: Attribute | None = None  # receives name-length-0 values
        self._frames: list[_Frame] = []
        self._attribute_count = 0

    @property
    def buffered_bytes(self) -> int:
        """Bytes held by the reader and not yet returned as events."""
        return len(self._buffer) - self._pos + sum(len(chunk) for chunk in self._documents)

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._eof:
            raise RuntimeError("feed() after end_of_input()")
        if not data:
            return
        if self._phase is _Phase.ATTRIBUTES:
            if self._pos >= len(self._buffer):
                self._buffer, self._pos = bytes(data), 0
            else:
                if isinstance(self._buffer, bytes):
                    self._buffer, self._pos = bytearray(self._buffer[self._pos :]), 0
                self._buffer += data
        else:
            self._documents.append(bytes(data))  # no copy when given bytes

    def end_of_input(self) -> None:
        self._eof = True

    def next_event(self) -> Event | NeedData:
        if self._error is not None:
            raise self._error
        try:
            return self._next_event()
        except IppProtocolError as error:
            self._error = error
            raise

    def _next_event(self) -> Event | NeedData:
        if self._phase is _Phase.ATTRIBUTES:
            return self._attributes_event()
        if self._documents:
            return DocumentData(self._documents.popleft())
        if self._eof:
            return EndOfDocument()  # and again on every later call
        return NEED_DATA

    def _attributes_event(self) -> Event | NeedData:
        finished = self._parse_available()
        if not finished:
            if self._pos and isinstance(self._buffer, bytearray):
                del self._buffer[: self._pos]
                self._pos = 0
            if self._eof:
                ended = self._consumed + len(self._buffer) - self._pos
                raise IppProtocolError(
                    f"truncated message: input ended at byte {ended} before end-of-attributes"
                )
            return NEED_DATA
        assert self._message is not None
        if self._pos < len(self._buffer):
            self._documents.append(bytes(self._buffer[self._pos :]))
        self._buffer = b""
        self._pos = 0
        self._phase = _Phase.DOCUMENT
        return RequestReceived(self._message)

    def _parse_available(self) -> bool:
        """Parse whole entries from the buffer; True once end-of-attributes is consumed."""
        if self._message is None and not self._parse_header():
            return False
        while True:
            done = self._parse_entries()
            if done is None:
                return False
            if done:
                return True

    def _parse_header(self) -> bool:
        if len(self._buffer) - self._pos < HEADER_SIZE:
            return False
        self._check_size(HEADER_SIZE)
        major, minor, code, request_id = read_header(self._buffer, self._pos)
        self._message = Message((major, minor), code, request_id)
        self._advance(HEADER_SIZE)
        return True

    def _parse_entries(self) -> bool | None:
        """Value entries up to the next delimiter, then that delimiter: None if incomplete,
        True at end-of-attributes. Checks and decodes inline: this loop is the hot path."""
        buffer, pos = self._buffer, self._pos
        size = len(buffer)
        max_value = self._limits.max_value_length
        room = self._limits.max_attribute_bytes - self._consumed + pos  # in buffer positions
        while True:
            available = size - pos
            if available < 1:
                return None
            tag = buffer[pos]
            if tag < 0x10:
                self._check_size(1)
                return self._delimiter(tag)
            if available < 3:
                return None
            name_length = (buffer[pos + 1] << 8) | buffer[pos + 2]
            value_at = pos + _ENTRY_OVERHEAD + name_length
            if name_length > max_value or value_at > room:
                self._check_length(name_length, "name", self._consumed)
                self._check_size(_ENTRY_OVERHEAD + name_length)  # a huge value is never awaited
            if available < _ENTRY_OVERHEAD + name_length:
                return None
            value_length = (buffer[value_at - 2] << 8) | buffer[value_at - 1]
            end = value_at + value_length
            if value_length > max_value or end > room:
                self._check_length(value_length, "value", self._consumed)
                self._check_size(end - pos)
            if end > size:
                return None
            offset = self._consumed
            name = _ascii_name(buffer[pos + 3 : value_at - 2], "attribute name", offset) \
                if name_length else ""
            raw = buffer[value_at:end]
            self._pos, self._consumed = end, offset + end - pos
            pos = end
            self._add_value(tag, name, raw if type(raw) is bytes else bytes(raw), offset)

    def _delimiter(self, tag: int) -> bool:
        offset = self._consumed
        self._advance(1)
        return self._start_group(tag, offset)

    def _advance(self, size: int) -> None:
        self._pos += size
        self._consumed += size

    def _check_size(self, size: int) -> None:
        if self._consumed + size > self._limits.max_attribute_bytes:
            raise IppProtocolError(
                f"attribute section exceeds {self._limits.max_attribute_bytes} bytes"
                f" at byte {self._consumed}",
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
            )

    def _check_length(self, length: int, what: str, offset: int) -> None:
        if length > self._limits.max_value_length:
            raise IppProtocolError(
                f"{what} length {length} over {self._limits.max_value_length} at byte {offset}",
                Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG,
            )

    def _start_group(self, tag: int, offset: int) -> bool:
        if tag in _RESERVED_DELIMITERS:
            raise IppProtocolError(f"reserved delimiter tag 0x{tag:02x} at byte {offset}")
        if self._frames:
            raise IppProtocolError(
                f"delimiter tag 0x{tag:02x} inside a collection at byte {offset}"
            )
        self._attribute = None
        if tag == _END_OF_ATTRIBUTES:
            return True
        assert self._message is not None
        self._group = Group(tag)
        self._message.groups.append(self._group)
        return False

    def _add_value(self, tag: int, name: str, raw: bytes, offset: int) -> None:
        if self._group is None:
            raise IppProtocolError(f"value tag 0x{tag:02x} before any group at byte {offset}")
        if self._frames:
            self._add_collection_entry(tag, name, raw, offset)
            return
        if tag == _END_COLLECTION:
            raise IppProtocolError(f"endCollection without begCollection at byte {offset}")
        if tag == _MEMBER_ATTR_NAME:
            raise IppProtocolError(f"memberAttrName outside a collection at byte {offset}")
        attribute = self._attribute
        if name:
            self._count_attribute(offset)
            attribute = self._attribute = Attribute(name, [])
            self._group.attributes.append(attribute)
        elif attribute is None:
            raise IppProtocolError(
                f"value without an attribute name at the start of a group at byte {offset}"
            )
        self._append_value(attribute, tag, raw, offset)

    def _add_collection_entry(self, tag: int, name: str, raw: bytes, offset: int) -> None:
        frame = self._frames[-1]
        if name:
            raise IppProtocolError(f"named attribute {name!r} inside a collection at byte {offset}")
        if tag == _MEMBER_ATTR_NAME:
            self._close_member(frame, offset)
            if not raw:
                raise IppProtocolError(f"empty memberAttrName at byte {offset}")
            member_name = _ascii_name(raw, "memberAttrName", offset)
            self._count_attribute(offset)
            frame.member = Attribute(member_name, [])
            frame.collection.add(frame.member)
        elif tag == _END_COLLECTION:
            if raw:
                raise IppProtocolError(f"endCollection with a value at byte {offset}")
            self._close_member(frame, offset)
            self._frames.pop()
        elif frame.member is None:
            raise IppProtocolError(f"collection value without memberAttrName at byte {offset}")
        else:
            self._append_value(frame.member, tag, raw, offset)

    def _close_member(self, frame: _Frame, offset: int) -> None:
        if frame.member is not None and not frame.member.values:
            raise IppProtocolError(
                f"collection member {frame.member.name!r} has no value at byte {offset}"
            )

    def _count_attribute(self, offset: int) -> None:
        self._attribute_count += 1
        if self._attribute_count > self._limits.max_attributes:
            raise IppProtocolError(
                f"more than {self._limits.max_attributes} attributes at byte {offset}",
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
            )

    def _append_value(self, attribute: Attribute, tag: int, raw: bytes, offset: int) -> None:
        if tag == _BEGIN_COLLECTION:
            if raw:
                raise IppProtocolError(
                    f"begCollection of {attribute.name!r} has a value at byte {offset}"
                )
            if len(self._frames) >= self._limits.max_depth:
                raise IppProtocolError(
                    f"collections nested deeper than {self._limits.max_depth}"
                    f" in {attribute.name!r} at byte {offset}"
                )
            collection = Collection()
            attribute.values.append((tag, collection))
            self._frames.append(_Frame(collection))
            return
        try:
            value = decode_value(tag, raw)
        except ValueError as error:
            raise IppProtocolError(
                f"bad value (tag 0x{tag:02x}) of {attribute.name!r} at byte {offset}: {error}"
            ) from None
        attribute.values.append((tag, value))


def decode_message(data: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Message, bytes]:
    """A whole message at once: the message and the document bytes after it."""
    reader = IppReader(limits)
    reader.feed(data)
    reader.end_of_input()
    received = reader.next_event()
    assert isinstance(received, RequestReceived)  # anything else raised already
    document: list[bytes] = []
    while isinstance(event := reader.next_event(), DocumentData):
        document.append(event.data)
    return received.message, b"".join(document)


def _ascii_name(raw: bytes | bytearray, what: str, offset: int) -> str:
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError:
        raise IppProtocolError(f"{what} is not US-ASCII at byte {offset}") from None


# Value decoding: a decoder raises ValueError with a short reason; the reader adds context.


def decode_value(tag: int, raw: bytes) -> Value:
    if 0x10 <= tag <= 0x1F:  # out-of-band: CUPS ignores any content, so do we
        return None
    decoder = _DECODERS.get(tag)
    if decoder is None:  # octetString, 0x7F extension and unassigned tags stay opaque
        return raw
    length = _FIXED_LENGTHS.get(tag)
    if length is not None and len(raw) != length:
        raise ValueError(f"length {len(raw)}, expected {length}")
    return decoder(raw)


def _decode_integer(raw: bytes) -> int:
    return int.from_bytes(raw, "big", signed=True)


def _decode_boolean(raw: bytes) -> bool:
    if raw[0] > 1:
        raise ValueError(f"boolean byte 0x{raw[0]:02x}")
    return raw[0] == 1


def _decode_date_time(raw: bytes) -> datetime:
    year, month, day, hour, minute, second, decis, sign, off_h, off_m = _DATE_TIME.unpack(raw)
    if sign not in (b"+", b"-") or decis > 9 or off_h > 23 or off_m > 59 or second > 60:
        raise ValueError("field out of range")
    offset = timedelta(hours=off_h, minutes=off_m)
    tz = timezone(-offset if sign == b"-" else offset)
    second = min(second, 59)  # RFC 2579 allows a leap second; datetime cannot hold one
    return datetime(year, month, day, hour, minute, second, decis * 100_000, tzinfo=tz)


def _decode_resolution(raw: bytes) -> Resolution:
    return Resolution(*_RESOLUTION.unpack(raw))


def _decode_range(raw: bytes) -> IntRange:
    return IntRange(*_RANGE.unpack(raw))


def _decode_with_language(raw: bytes) -> StringWithLanguage:
    language_end = 2 + int.from_bytes(raw[:2], "big")
    text_start = language_end + 2
    text_length = int.from_bytes(raw[language_end:text_start], "big")
    if len(raw) < 4 or text_start > len(raw) or text_start + text_length != len(raw):
        raise ValueError("inner lengths do not add up")
    return StringWithLanguage(raw[text_start:].decode("utf-8"), raw[2:language_end].decode("ascii"))


def _decode_utf8(raw: bytes) -> str:
    return raw.decode("utf-8")


def _decode_ascii(raw: bytes) -> str:
    return raw.decode("ascii")


_FIXED_LENGTHS: dict[int, int] = {
    ValueTag.INTEGER: 4,
    ValueTag.ENUM: 4,
    ValueTag.BOOLEAN: 1,
    ValueTag.DATE_TIME: 11,
    ValueTag.RESOLUTION: 9,
    ValueTag.RANGE_OF_INTEGER: 8,
}
_DECODERS: dict[int, Callable[[bytes], Value]] = {
    ValueTag.INTEGER: _decode_integer,
    ValueTag.ENUM: _decode_integer,
    ValueTag.BOOLEAN: _decode_boolean,
    ValueTag.DATE_TIME: _decode_date_time,
    ValueTag.RESOLUTION: _decode_resolution,
    ValueTag.RANGE_OF_INTEGER: _decode_range,
    ValueTag.TEXT_WITH_LANGUAGE: _decode_with_language,
    ValueTag.NAME_WITH_LANGUAGE: _decode_with_language,
    ValueTag.TEXT: _decode_utf8,
    ValueTag.NAME: _decode_utf8,
    ValueTag.KEYWORD: _decode_ascii,
    ValueTag.URI: _decode_ascii,
    ValueTag.URI_SCHEME: _decode_ascii,
    ValueTag.CHARSET: _decode_ascii,
    ValueTag.NATURAL_LANGUAGE: _decode_ascii,
    ValueTag.MIME_MEDIA_TYPE: _decode_ascii,
    ValueTag.MEMBER_ATTR_NAME: _decode_ascii,
}
