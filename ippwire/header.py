"""The eight bytes that open every IPP message (RFC 8010 section 3.1.1), defined once.

    version-number   = major SIGNED-BYTE, minor SIGNED-BYTE
    operation-id     = SIGNED-SHORT   (a request)
    status-code      = SIGNED-SHORT   (a response)
    request-id       = SIGNED-INTEGER

Everything is read signed, as the RFC writes it, and written with the same layout, so that a
response can always echo what a request carried. The assigned ranges all sit in the positive
half (operation ids and status codes 0x0000-0x7FFF, versions 1.0-2.2), so a byte or short
with its top bit set reads as a negative number that matches nothing: a major version of
0x80 or more is answered server-error-version-not-supported, an operation-id of 0x8000 or
more server-error-operation-not-supported.

request-id must be 1 to 2**31-1 (RFC 8011 4.1.1). One with its top bit set (what an unsigned
reading would call 2**31 or more) reads negative; it and 0 are refused by the dispatcher with
client-error-bad-request, and that answer echoes the same four bytes.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

HEADER = struct.Struct(">bbhi")
SIZE = HEADER.size  # 8

VERSION_RANGE = range(-(2**7), 2**7)
CODE_RANGE = range(-(2**15), 2**15)
REQUEST_ID_RANGE = range(-(2**31), 2**31)


class Header(NamedTuple):
    major: int
    minor: int
    code: int  # operation-id in a request, status-code in a response
    request_id: int


def read_header(data: bytes | bytearray | memoryview, offset: int = 0) -> Header:
    """The header at `offset`; `data` must hold at least `SIZE` bytes from there."""
    return Header(*HEADER.unpack_from(data, offset))


def write_header(major: int, minor: int, code: int, request_id: int) -> bytes:
    """The eight bytes; ValueError naming the field that does not fit its signed range."""
    try:
        return HEADER.pack(major, minor, code, request_id)
    except struct.error:
        pass
    for field, value, allowed in (("major version", major, VERSION_RANGE),
                                  ("minor version", minor, VERSION_RANGE),
                                  ("operation-id or status-code", code, CODE_RANGE),
                                  ("request-id", request_id, REQUEST_ID_RANGE)):
        if not isinstance(value, int) or value not in allowed:
            raise ValueError(f"message header: {field} {value!r} is not an integer in "
                             f"{allowed.start}..{allowed.stop - 1}")
    raise AssertionError("struct refused a header whose every field is in range")
