"""IPP message encoder (RFC 8010) and a small request builder for clients and tests.

Values that cannot be encoded are bugs in the caller, not protocol errors: a wrong Python type
for a tag raises TypeError, anything out of range (lengths over 32767, integers over 32 bits,
naive datetimes, non-ASCII keywords) raises ValueError.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from ippwire.enums import GroupTag, ValueTag
from ippwire.header import write_header
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

MAX_LENGTH = 0x7FFF  # lengths are signed shorts on the wire

_TAG_AND_LENGTH = struct.Struct(">BH")
_LENGTH = struct.Struct(">H")
_INT32 = struct.Struct(">i")
_RESOLUTION = struct.Struct(">iib")
_RANGE = struct.Struct(">ii")
_DATE_TIME = struct.Struct(">HBBBBBBcBB")
_END_COLLECTION = bytes([ValueTag.END_COLLECTION, 0, 0, 0, 0])
_END_OF_ATTRIBUTES = bytes([GroupTag.END])
_GROUP_TAGS = frozenset(tag for tag in GroupTag if tag != GroupTag.END)
_ONE_MINUTE = timedelta(minutes=1)


def encode_message(message: Message) -> bytes:
    major, minor = message.version
    pieces = [write_header(major, minor, message.code, message.request_id)]
    for group in message.groups:
        _write_group(pieces, group)
    pieces.append(_END_OF_ATTRIBUTES)
    return b"".join(pieces)


def encode_attributes(attributes: Iterable[Attribute]) -> bytes:
    pieces: list[bytes] = []
    for attribute in attributes:
        _write_attribute(pieces, attribute)
    return b"".join(pieces)


def encode_attribute(attribute: Attribute) -> bytes:
    pieces: list[bytes] = []
    _write_attribute(pieces, attribute)
    return b"".join(pieces)


def _write_group(pieces: list[bytes], group: Group) -> None:
    if group.tag not in _GROUP_TAGS:
        raise ValueError(f"not a group tag: 0x{group.tag:02x}")
    pieces.append(bytes([group.tag]))
    for attribute in group.attributes:
        _write_attribute(pieces, attribute)


def _write_attribute(pieces: list[bytes], attribute: Attribute) -> None:
    if not attribute.name:
        raise ValueError("attribute without a name")
    if not attribute.values:
        raise ValueError(f"attribute {attribute.name!r} has no values")
    name = _ascii(attribute.name)
    for tag, value in attribute.values:
        _write_value(pieces, tag, name, value, attribute.name)
        name = b""  # later values of a 1setOf carry name-length 0


def _write_value(pieces: list[bytes], tag: int, name: bytes, value: Value, label: str) -> None:
    if tag == ValueTag.BEGIN_COLLECTION:
        if not isinstance(value, Collection):
            raise TypeError(f"{label!r}: begCollection needs a Collection, got {value!r}")
        pieces.append(_entry(tag, name, b""))
        for member in value:
            if not member.name or not member.values:
                raise ValueError(f"{label!r}: member {member.name!r} needs a name and values")
            pieces.append(_entry(ValueTag.MEMBER_ATTR_NAME, b"", _ascii(member.name)))
            for member_tag, member_value in member.values:
                _write_value(pieces, member_tag, b"", member_value, member.name)
        pieces.append(_END_COLLECTION)
        return
    try:
        data = encode_value(tag, value)
    except struct.error as error:
        raise ValueError(f"{label!r}: {value!r} out of range: {error}") from None
    except (TypeError, ValueError) as error:
        raise type(error)(f"{label!r}: {error}") from None
    pieces.append(_entry(tag, name, data))


def _entry(tag: int, name: bytes, data: bytes) -> bytes:
    if len(name) > MAX_LENGTH or len(data) > MAX_LENGTH:
        raise ValueError(f"name or value longer than {MAX_LENGTH} bytes")
    return _TAG_AND_LENGTH.pack(tag, len(name)) + name + _LENGTH.pack(len(data)) + data


def _ascii(text: str) -> bytes:
    try:
        return text.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError(f"not US-ASCII: {text!r}") from None


def _expect(value: Value, kind: type[Any] | tuple[type[Any], ...], tag: int) -> None:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise TypeError(f"tag 0x{tag:02x} cannot encode {value!r}")


def encode_value(tag: int, value: Value) -> bytes:
    """The value bytes (without tag and lengths) of one non-collection value."""
    if not 0x10 <= tag <= 0xFF or tag in (ValueTag.BEGIN_COLLECTION, ValueTag.END_COLLECTION):
        raise ValueError(f"tag 0x{tag:02x} is not a plain value tag")
    if tag <= 0x1F:
        if value is not None:
            raise TypeError(f"out-of-band tag 0x{tag:02x} takes None, got {value!r}")
        return b""
    encoder = _ENCODERS.get(tag)
    if encoder is None:  # octetString, extension and unassigned tags: raw bytes
        _expect(value, bytes, tag)
        assert isinstance(value, bytes)
        return value
    return encoder(tag, value)


def _encode_integer(tag: int, value: Value) -> bytes:
    _expect(value, int, tag)
    return _INT32.pack(value)


def _encode_boolean(tag: int, value: Value) -> bytes:
    _expect(value, bool, tag)
    return b"\x01" if value else b"\x00"


def _encode_date_time(tag: int, value: Value) -> bytes:
    _expect(value, datetime, tag)
    assert isinstance(value, datetime)
    offset = value.utcoffset()
    if offset is None:
        raise ValueError(f"naive datetime {value!r}")
    if offset % _ONE_MINUTE:
        raise ValueError(f"UTC offset {offset} is not whole minutes")
    minutes = offset // _ONE_MINUTE
    hours_from_utc, minutes_from_utc = divmod(abs(minutes), 60)
    return _DATE_TIME.pack(
        value.year,
        value.month,
        value.day,
        value.hour,
        value.minute,
        value.second,
        value.microsecond // 100_000,
        b"-" if minutes < 0 else b"+",
        hours_from_utc,
        minutes_from_utc,
    )


def _encode_resolution(tag: int, value: Value) -> bytes:
    _expect(value, Resolution, tag)
    assert isinstance(value, Resolution)
    return _RESOLUTION.pack(value.x, value.y, value.units)


def _encode_range(tag: int, value: Value) -> bytes:
    _expect(value, IntRange, tag)
    assert isinstance(value, IntRange)
    return _RANGE.pack(value.lower, value.upper)


def _encode_with_language(tag: int, value: Value) -> bytes:
    _expect(value, StringWithLanguage, tag)
    assert isinstance(value, StringWithLanguage)
    language = _ascii(value.language)
    text = value.text.encode("utf-8")
    if len(language) > MAX_LENGTH or len(text) > MAX_LENGTH:
        raise ValueError("textWithLanguage part longer than 32767 bytes")
    return _LENGTH.pack(len(language)) + language + _LENGTH.pack(len(text)) + text


def _encode_utf8(tag: int, value: Value) -> bytes:
    _expect(value, str, tag)
    assert isinstance(value, str)
    return value.encode("utf-8")


def _encode_ascii(tag: int, value: Value) -> bytes:
    _expect(value, str, tag)
    assert isinstance(value, str)
    return _ascii(value)


_ENCODERS: dict[int, Callable[[int, Value], bytes]] = {
    ValueTag.INTEGER: _encode_integer,
    ValueTag.BOOLEAN: _encode_boolean,
    ValueTag.ENUM: _encode_integer,
    ValueTag.DATE_TIME: _encode_date_time,
    ValueTag.RESOLUTION: _encode_resolution,
    ValueTag.RANGE_OF_INTEGER: _encode_range,
    ValueTag.TEXT_WITH_LANGUAGE: _encode_with_language,
    ValueTag.NAME_WITH_LANGUAGE: _encode_with_language,
    ValueTag.TEXT: _encode_utf8,
    ValueTag.NAME: _encode_utf8,
    ValueTag.KEYWORD: _encode_ascii,
    ValueTag.URI: _encode_ascii,
    ValueTag.URI_SCHEME: _encode_ascii,
    ValueTag.CHARSET: _encode_ascii,
    ValueTag.NATURAL_LANGUAGE: _encode_ascii,
    ValueTag.MIME_MEDIA_TYPE: _encode_ascii,
    ValueTag.MEMBER_ATTR_NAME: _encode_ascii,
}


AttributeSpec = Mapping[str, tuple[int, Value | list[Value]]]


def request(
    operation: int,
    request_id: int = 1,
    *,
    version: tuple[int, int] = (2, 0),
    printer_uri: str | None = None,
    user: str | None = "test",
    attrs: AttributeSpec | None = None,
    job_attrs: AttributeSpec | None = None,
) -> Message:
    """A client request: charset, language, printer-uri and user first, then `attrs`."""
    operation_group = Group(
        GroupTag.OPERATION,
        [
            Attribute.of("attributes-charset", ValueTag.CHARSET, "utf-8"),
            Attribute.of("attributes-natural-language", ValueTag.NATURAL_LANGUAGE, "en"),
        ],
    )
    if printer_uri is not None:
        operation_group.add(Attribute.of("printer-uri", ValueTag.URI, printer_uri))
    if user is not None:
        operation_group.add(Attribute.of("requesting-user-name", ValueTag.NAME, user))
    operation_group.attributes.extend(_attributes(attrs or {}))
    message = Message(version, operation, request_id, [operation_group])
    if job_attrs:
        message.groups.append(Group(GroupTag.JOB, _attributes(job_attrs)))
    return message


def _attributes(spec: AttributeSpec) -> list[Attribute]:
    result = []
    for name, (tag, values) in spec.items():
        listed = values if isinstance(values, list) else [values]
        result.append(Attribute(name, [(tag, value) for value in listed]))
    return result
