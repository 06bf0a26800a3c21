"""A test-side PCL 5 decoder: a job's pages, raster rows decoded (compression 0, 2 and 3),
the text between them and every command seen, so that tests check what a printer would do."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from drivers.model.packbits import unpackbits

# ESC, then either a two-character command or a parameterised one: parameter character,
# optional group character, then value/letter pairs until an upper-case letter.
_COMMAND = re.compile(
    rb"\x1b(?:(?P<two>[0-9A-Z=<>@\[\]^_`])|%-12345X|(?P<param>[!-/])(?P<group>[`-~])?"
    rb"(?P<pairs>(?:[-+]?[0-9]*\.?[0-9]*[`-~])*[-+]?[0-9]*\.?[0-9]*[@-^]))"
)
_PAIR = re.compile(rb"([-+]?[0-9]*\.?[0-9]*)([@-~])")


@dataclass
class PclPage:
    resolution: int = 0
    width: int = 0  # ESC*r#S
    rows: list[bytes] = field(default_factory=list)  # raster rows, padded to `width`
    text: bytes = b""  # printable bytes outside raster data
    copies: int = 1  # the ESC&l#X in effect when the page ejected: printed that many times


@dataclass
class PclJob:
    pages: list[PclPage] = field(default_factory=list)
    commands: list[bytes] = field(default_factory=list)  # e.g. b"&l26A", b"E"
    resets: int = 0


class _Decoder:
    def __init__(self) -> None:
        self.job = PclJob()
        self.page = PclPage()
        self.mode = 0
        self.seed = b""
        self.marked = False  # anything drawn on the current page
        self.copies = 1  # ESC&l#X until the next reset

    def command(self, param: bytes, group: bytes, value: bytes, letter: bytes,
                data: bytes, pos: int) -> int:
        key = param + group + letter.upper()
        self.job.commands.append(param + group + value + letter.upper())
        number = int(float(value)) if value not in (b"", b"+", b"-") else 0
        if key == b"*tR":
            self.page.resolution = number
        elif key == b"&lX":
            self.copies = max(1, number)
        elif key == b"*rS":
            self.page.width = number
        elif key == b"*bM":
            self.mode = number
        elif key == b"*rA":
            self.seed = b""
        elif key == b"*bY":
            self.page.rows += [bytes((self.page.width + 7) // 8)] * number
            self.seed = b""
        elif key in (b"*bW", b"*bV"):
            self._row(data[pos : pos + number])
            return pos + number
        return pos

    def _row(self, payload: bytes) -> None:
        size = (self.page.width + 7) // 8
        if self.mode == 0:
            row = payload
        elif self.mode == 2:
            row = unpackbits(payload)
        elif self.mode == 3:
            row = delta_decode(payload, self.seed, size)
        else:
            raise AssertionError(f"compression mode {self.mode}")
        row = row[:size].ljust(size, b"\0")
        self.seed = row
        self.page.rows.append(row)
        self.marked = True

    def form_feed(self) -> None:
        self.page.copies = self.copies
        self.job.pages.append(self.page)
        self.page = PclPage(self.page.resolution, self.page.width)
        self.marked = False


def delta_decode(payload: bytes, seed: bytes, size: int) -> bytes:
    row = bytearray(seed.ljust(size, b"\0"))
    pos = index = 0
    while index < len(payload):
        command = payload[index]
        index += 1
        count, offset = (command >> 5) + 1, command & 31
        if offset == 31:
            while True:
                extra = payload[index]
                index += 1
                offset += extra
                if extra != 255:
                    break
        pos += offset
        row[pos : pos + count] = payload[index : index + count]
        index += count
        pos += count
    return bytes(row)


def decode_pcl(data: bytes) -> PclJob:
    """Pages of a PCL 5 job: raster rows decoded, text bytes kept."""
    decoder = _Decoder()
    pos = 0
    while pos < len(data):
        byte = data[pos : pos + 1]
        if byte == b"\x1b":
            match = _COMMAND.match(data, pos)
            assert match is not None, data[pos : pos + 20]
            pos = match.end()
            if match.group("two"):
                decoder.job.commands.append(match.group("two"))
                if match.group("two") == b"E":
                    decoder.job.resets += 1
                    decoder.copies = 1
                continue
            if match.group("param") is None:
                continue  # UEL
            param, group = match.group("param"), match.group("group") or b""
            for value, letter in _PAIR.findall(match.group("pairs")):
                pos = decoder.command(param, group, value, letter, data, pos)
        elif byte == b"\x0c":
            decoder.form_feed()
            pos += 1
        else:
            end = min((i for i in (data.find(b"\x1b", pos), data.find(b"\x0c", pos)) if i >= 0),
                      default=len(data))
            decoder.page.text += data[pos:end]
            pos = end
    return decoder.job
