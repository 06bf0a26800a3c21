"""IPP messages written byte by byte, so that the codec is never tested against itself: the
worked Get-Printer-Attributes request of protocols.md, a request header, one value entry, one
attribute group."""

from __future__ import annotations

import struct

from ippwire.enums import GroupTag

# protocols.md §1.5, byte for byte.
GET_PRINTER_ATTRIBUTES = bytes.fromhex(
    """
    02 00 00 0b 00 00 00 01 01 47 00 12 61 74 74 72
    69 62 75 74 65 73 2d 63 68 61 72 73 65 74 00 05
    75 74 66 2d 38 48 00 1b 61 74 74 72 69 62 75 74
    65 73 2d 6e 61 74 75 72 61 6c 2d 6c 61 6e 67 75
    61 67 65 00 02 65 6e 45 00 0b 70 72 69 6e 74 65
    72 2d 75 72 69 00 1c 69 70 70 3a 2f 2f 67 77 2e
    6c 6f 63 61 6c 3a 36 33 31 2f 69 70 70 2f 70 72
    69 6e 74 44 00 14 72 65 71 75 65 73 74 65 64 2d
    61 74 74 72 69 62 75 74 65 73 00 0d 70 72 69 6e
    74 65 72 2d 73 74 61 74 65 44 00 00 00 12 6d 65
    64 69 61 2d 63 6f 6c 2d 64 61 74 61 62 61 73 65
    03
    """
)

HEADER = bytes.fromhex("0200 000b 00000001")  # version 2.0, Get-Printer-Attributes, id 1


def entry(tag: int, name: str | bytes, value: bytes) -> bytes:
    """One wire value entry, built by hand so the writer is not tested against itself."""
    raw_name = name.encode() if isinstance(name, str) else name
    return struct.pack(">BH", tag, len(raw_name)) + raw_name + struct.pack(">H", len(value)) + value


def one_group(*entries: bytes, group: int = GroupTag.OPERATION) -> bytes:
    return HEADER + bytes([group]) + b"".join(entries) + b"\x03"
