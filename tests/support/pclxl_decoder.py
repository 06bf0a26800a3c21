"""A test-side PCL XL (PCL 6) reader: the PJL wrapper, then the binary stream parsed token by
token (data types, attribute ids, operators, embedded data) as HP's PCL XL Feature Reference
2.0 defines them. Any byte that is not a valid token fails the parse, so a job that reads to
its end is structurally sound; pages, media and copies are collected for the tests.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

UEL = b"\x1b%-12345X"
BEGIN_PAGE, END_PAGE, BEGIN_SESSION, END_SESSION = 0x43, 0x44, 0x41, 0x42
MEDIA_SIZE, PAGE_COPIES, SIMPLEX_PAGE_MODE, DUPLEX_PAGE_MODE = 0x25, 0x31, 0x34, 0x35
SET_COLOR_SPACE, COLOR_SPACE = 0x6A, 0x03
A4_PAPER = 2  # MediaSize enumeration: eLetterPaper 0, eLegalPaper 1, eA4Paper 2
GRAY, RGB = 1, 2  # ColorSpace enumeration: eBiLevel 0 (obsolete), eGray 1, eRGB 2
WHITESPACE = frozenset(b"\x00\x09\x0a\x0b\x0c\x0d\x20")

# Data type tag -> (struct code of one element, elements per value): single values,
# xy pairs and boxes. Arrays (0xC8..0xCD) carry their element count after the tag.
_SCALARS = {0xC0: "B", 0xC1: "H", 0xC2: "I", 0xC3: "h", 0xC4: "i", 0xC5: "f"}
_TYPES = {**{tag: (code, 1) for tag, code in _SCALARS.items()},
          **{tag + 0x10: (code, 2) for tag, code in _SCALARS.items()},
          **{tag + 0x20: (code, 4) for tag, code in _SCALARS.items()}}
_ARRAYS = {tag + 0x08: code for tag, code in _SCALARS.items()}

Value = int | float | tuple[int | float, ...] | bytes


@dataclass
class PxlPage:
    media_size: Value | None = None
    duplex: Value | None = None  # DuplexPageMode, when the page is printed two-sided
    copies: int = 1  # PageCopies of EndPage
    color_spaces: set[int] = field(default_factory=set)  # ColorSpace of each SetColorSpace
    operators: list[int] = field(default_factory=list)


@dataclass
class PxlJob:
    pjl: bytes = b""  # everything before the stream header, PJL commands included
    header: bytes = b""  # e.g. b") HP-PCL XL;2;0;..."
    pages: list[PxlPage] = field(default_factory=list)
    sessions: int = 0


class _Stream:
    def __init__(self, data: bytes, pos: int, order: str) -> None:
        self.data, self.pos, self.order = data, pos, order

    def take(self, size: int) -> bytes:
        end = self.pos + size
        assert end <= len(self.data), f"PCL XL ends inside a token at {self.pos}"
        chunk, self.pos = self.data[self.pos : end], end
        return chunk

    def unpack(self, code: str, count: int = 1) -> tuple[int | float, ...]:
        size = struct.calcsize(code) * count
        return struct.unpack(self.order + code * count, self.take(size))

    def value(self, tag: int) -> Value:
        if tag in _TYPES:
            code, count = _TYPES[tag]
            values = self.unpack(code, count)
            return values[0] if count == 1 else values
        code = _ARRAYS[tag]
        length_tag = self.take(1)[0]
        assert length_tag in (0xC0, 0xC1), f"array length of type {length_tag:#x}"
        (length,) = self.unpack(_SCALARS[length_tag])
        if code == "B":
            return self.take(int(length))
        return self.unpack(code, int(length))


def decode_pclxl(data: bytes) -> PxlJob:
    """Parse a PJL-wrapped PCL XL job; assertion errors name the first bad byte."""
    job = PxlJob()
    start = data.find(b"\n) HP-PCL XL")
    assert start >= 0, data[:200]
    job.pjl = data[: start + 1]
    header_end = data.index(b"\n", start + 1)
    job.header = data[start + 1 : header_end]
    stream = _Stream(data, header_end + 1, "<")  # ')' binds little-endian
    _parse(stream, job)
    assert data[stream.pos :].startswith(UEL), data[stream.pos : stream.pos + 20]
    return job


def _parse(stream: _Stream, job: PxlJob) -> None:
    attributes: dict[int, Value] = {}
    pending: Value | None = None
    page: PxlPage | None = None
    while stream.pos < len(stream.data) and stream.data[stream.pos] != 0x1B:
        tag = stream.take(1)[0]
        if tag in WHITESPACE:
            continue
        if tag in _TYPES or tag in _ARRAYS:
            pending = stream.value(tag)
        elif tag in (0xF8, 0xF9):
            (attribute,) = stream.unpack("B" if tag == 0xF8 else "H")
            assert pending is not None, f"attribute {attribute} without a value"
            attributes[int(attribute)], pending = pending, None
        elif tag in (0xFA, 0xFB):
            (length,) = stream.unpack("I" if tag == 0xFA else "B")
            stream.take(int(length))
        elif 0x41 <= tag <= 0xBF:
            page = _operator(tag, attributes, page, job)
            attributes = {}
        else:
            raise AssertionError(f"byte {tag:#04x} at {stream.pos - 1} is not a PCL XL token")


def _operator(tag: int, attributes: dict[int, Value], page: PxlPage | None,
              job: PxlJob) -> PxlPage | None:
    if tag == BEGIN_SESSION:
        job.sessions += 1
    if tag == BEGIN_PAGE:
        assert page is None, "BeginPage inside a page"
        page = PxlPage(attributes.get(MEDIA_SIZE), attributes.get(DUPLEX_PAGE_MODE))
        return page
    if page is None:
        assert tag not in (END_PAGE,), "EndPage without BeginPage"
        return None
    page.operators.append(tag)
    if tag == SET_COLOR_SPACE:
        space = attributes.get(COLOR_SPACE)
        assert isinstance(space, int), f"SetColorSpace without a ColorSpace: {attributes}"
        page.color_spaces.add(space)
    if tag == END_PAGE:
        copies = attributes.get(PAGE_COPIES, 1)
        page.copies = int(copies) if isinstance(copies, int) else 1
        job.pages.append(page)
        return None
    return page
