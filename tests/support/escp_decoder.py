"""A test-side Epson ESC/P and ESC/P 2 reader, written from Epson's ESC/P Reference Manual and
not from our writer: it walks the byte stream command by command, moves a model of the head
and the paper, and puts every dot on a page bitmap; text goes into lines of characters.

Anything it does not know fails loudly: an unknown command, a control code, a printable byte
in ESC/P 2 graphics mode, a dot off the page or between pixels of the resolution asked for,
adjacent dots in a density that cannot print them, paper moving backwards, text past the
printer's right edge. A job that decodes is therefore one a real printer reads the same way.

Positions are kept as exact fractions of an inch, so 1/216", 1/180" and 1/360" steps mix
without rounding.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

ESC = 0x1B

# ESC * m: (horizontal dpi, dots a column, adjacent dots allowed). Only the 24-dot densities
# are read on 24-pin printers (their 8-dot ones use every third pin).
_DENSITIES_9PIN = {0: (60, 8, True), 1: (120, 8, True), 2: (120, 8, False),
                   3: (240, 8, False), 4: (80, 8, True), 5: (72, 8, True),
                   6: (90, 8, True), 7: (144, 8, True)}
_DENSITIES_24PIN = {32: (60, 24, True), 33: (120, 24, True), 38: (90, 24, True),
                    39: (180, 24, True), 40: (360, 24, False)}
_PIN_PITCH = {"9pin": Fraction(1, 72), "24pin": Fraction(1, 180), "escp2": Fraction(1, 180)}
# ESC J n and ESC 3 n: n/216" on 9-pin printers, n/180" on 24-pin ones (ESC/P 2 included).
_FINE_UNIT = {"9pin": Fraction(1, 216), "24pin": Fraction(1, 180), "escp2": Fraction(1, 180)}


@dataclass
class EscpPage:
    dots: set[tuple[int, int]] = field(default_factory=set)  # (row, column) at the job's dpi
    text: list[str] = field(default_factory=list)  # lines of characters, top line first
    length: Fraction = Fraction(0)  # page length in force when the page ended

    def bitmap(self, width: int, height: int) -> list[bytes]:
        """The dots as rows of packed pixels (1 = black, leftmost pixel in the high bit)."""
        rows = [bytearray((width + 7) // 8) for _ in range(height)]
        for row, column in self.dots:
            assert row < height and column < width, f"dot {row},{column} off {width}x{height}"
            rows[row][column >> 3] |= 0x80 >> (column & 7)
        return [bytes(row) for row in rows]


@dataclass
class EscpJob:
    pages: list[EscpPage] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # every command, in order: "ESC *", "FF"
    values: list[tuple[str, int]] = field(default_factory=list)  # the same, with their values
    resets: int = 0  # ESC @
    state: dict[str, int] = field(default_factory=dict)  # the last value of each setting


class _Printer:
    def __init__(self, data: bytes, kind: str, dpi: tuple[int, int], width_in: Fraction,
                 columns: int) -> None:
        assert kind in _PIN_PITCH, kind
        self.data, self.pos, self.kind = data, 0, kind
        self.dpi_x, self.dpi_y = dpi
        self.width_in, self.max_columns = width_in, columns
        self.job = EscpJob()
        self.page = EscpPage()
        self.marked = False  # anything printed or moved on this page
        self.reset()

    def reset(self) -> None:
        self.spacing = Fraction(1, 6)
        self.length = Fraction(11)  # until set: the usual 11" fanfold
        self.top = Fraction(0)
        self.bottom: Fraction | None = None
        self.unit = Fraction(1, 60)  # ESC/P 2 defined unit: also that of ESC $
        self.x = Fraction(0)
        self.y = Fraction(0)
        self.left_margin = 0
        self.graphics = False
        self.table = 0  # ESC t: 0 italic (ASCII below 128 only), 1 graphics (PC437)
        self.upper_printable = False  # ESC 6
        self.text_column = 0
        self.text_line = 0

    # -- the stream ----------------------------------------------------------------------

    def take(self, count: int) -> bytes:
        end = self.pos + count
        assert end <= len(self.data), f"ESC/P ends inside a command at {self.pos}"
        chunk, self.pos = self.data[self.pos : end], end
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def word(self) -> int:
        return int.from_bytes(self.take(2), "little")

    def run(self) -> EscpJob:
        while self.pos < len(self.data):
            code = self.byte()
            if code == ESC:
                self.escape()
            elif code in (0x0D, 0x0A, 0x0C):
                self.control(code)
            else:
                self.character(code)
        assert not self.marked, "the job ends inside a page (no form feed)"
        return self.job

    def record(self, name: str, value: int = 0) -> None:
        self.job.commands.append(name)
        self.job.values.append((name, value))
        self.job.state[name] = value

    # -- control codes and characters -----------------------------------------------------

    def control(self, code: int) -> None:
        if code == 0x0D:
            self.record("CR")
            self.x, self.text_column = Fraction(0), 0
        elif code == 0x0A:
            self.record("LF")
            assert not self.graphics, "LF in ESC/P 2 graphics mode"
            self.x, self.text_column = Fraction(0), 0  # LF also returns the carriage
            self.feed(self.spacing)
            self.text_line += 1
        else:
            self.record("FF")
            self.end_page()

    def character(self, code: int) -> None:
        assert not self.graphics, f"byte {code:#04x} at {self.pos - 1} in graphics mode"
        assert 0x20 <= code != 0x7F, f"control code {code:#04x} at {self.pos - 1}"
        if code >= 0x80:
            assert self.table == 1, f"byte {code:#04x} with the italic table"
            assert code >= 0xA0 or self.upper_printable, f"control code {code:#04x} (no ESC 6)"
        char = bytes([code]).decode("cp437")
        column = self.left_margin + self.text_column
        assert column < self.max_columns, f"text past column {self.max_columns}: {char!r}"
        lines = self.page.text
        while len(lines) <= self.text_line:
            lines.append("")
        line = lines[self.text_line].ljust(self.text_column)
        if self.text_column < len(line) and char == " ":
            pass  # a space prints nothing over what is there
        else:
            line = line[: self.text_column] + char + line[self.text_column + 1 :]
        lines[self.text_line] = line
        self.text_column += 1
        self.marked = True

    # -- paper ----------------------------------------------------------------------------

    def feed(self, distance: Fraction) -> None:
        assert distance >= 0, "the paper only moves forward"
        self.y += distance
        self.marked = True
        # Past the page's end the printer itself goes on to the next page: a job that relies
        # on it has the wrong page length (the tests see an extra page).
        while self.y >= self.length - self.top:
            self.y -= self.length - self.top
            self.end_page()
            self.marked = True

    def end_page(self) -> None:
        self.page.length = self.length
        # Down to the line the head is on: blank lines at the end of a page count.
        lines = self.page.text + [""] * (self.text_line + 1 - len(self.page.text))
        self.page.text = [line.rstrip() for line in lines]
        self.job.pages.append(self.page)
        self.page = EscpPage()
        self.x, self.y, self.marked = Fraction(0), Fraction(0), False
        self.text_column, self.text_line = 0, 0

    # -- dots -----------------------------------------------------------------------------

    def pixel(self, position: Fraction, dpi: int, what: str) -> int:
        value = position * dpi
        assert value.denominator == 1, f"{what} at {position}\" is between pixels at {dpi} dpi"
        return int(value)

    def dots(self, x: Fraction, y: Fraction, points: list[tuple[int, int]]) -> None:
        """Dots at (row, column) pixels from the head at (x, y); off the page: an error."""
        if not points:
            return
        row0 = self.pixel(self.top + y, self.dpi_y, "a row")
        column0 = self.pixel(x, self.dpi_x, "a column")
        last_row = max(row for row, _ in points)
        last_column = max(column for _, column in points)
        assert Fraction(column0 + last_column + 1, self.dpi_x) <= self.width_in, (
            f"a dot at column {column0 + last_column} is past the printable width")
        if self.bottom is not None:
            assert Fraction(row0 + last_row, self.dpi_y) < self.bottom, "a dot below the margin"
        self.page.dots.update((row0 + row, column0 + column) for row, column in points)
        self.marked = True

    # -- escape sequences ---------------------------------------------------------------

    def escape(self) -> None:
        code = self.take(1)
        handler = _HANDLERS.get(code)
        assert handler is not None, f"unknown command ESC {code!r} at {self.pos - 2}"
        handler(self)

    def esc_at(self) -> None:
        self.record("ESC @")
        assert not self.marked, "ESC @ inside a page"
        self.job.resets += 1
        self.reset()

    def esc_star(self) -> None:
        assert self.kind != "escp2" or not self.graphics, "ESC * in ESC/P 2 graphics mode"
        density = self.byte()
        count = self.word()
        table = _DENSITIES_9PIN if self.kind == "9pin" else _DENSITIES_24PIN
        assert density in table, f"ESC * {density} is not a {self.kind} density we read"
        dpi, pins, adjacent = table[density]
        assert dpi == self.dpi_x, f"ESC * {density} prints {dpi} dpi, the job is {self.dpi_x}"
        self.record("ESC *", density)
        per_column = pins // 8
        data = self.take(count * per_column)
        pin_rows = _PIN_PITCH[self.kind] * self.dpi_y
        assert pin_rows.denominator == 1, f"pins 1/{1 / _PIN_PITCH[self.kind]}\" apart"
        step = Fraction(1, dpi)
        previous = 0
        points = []
        for column in range(count):
            bits = int.from_bytes(data[column * per_column : (column + 1) * per_column], "big")
            assert adjacent or not bits & previous, f"adjacent dots with ESC * {density}"
            previous = bits
            points += [(pin * int(pin_rows), column) for pin in _set_bits(bits, pins)]
        self.dots(self.x, self.y, points)
        self.x += count * step

    def esc_j(self) -> None:
        distance = self.byte()
        self.record("ESC J", distance)
        assert distance > 0, "ESC J 0"
        self.feed(distance * _FINE_UNIT[self.kind])

    def esc_dollar(self) -> None:
        position = self.word()
        self.record("ESC $", position)
        self.x = position * self.unit

    def esc_three(self) -> None:
        n = self.byte()
        self.record("ESC 3", n)
        assert n > 0
        self.spacing = n * _FINE_UNIT[self.kind]

    def esc_two(self) -> None:
        self.record("ESC 2")
        self.spacing = Fraction(1, 6)

    def esc_c(self) -> None:
        assert not self.marked, "page length set away from the top-of-form"
        lines = self.byte()
        if lines == 0:
            inches = self.byte()
            self.record("ESC C 0", inches)
            assert 1 <= inches <= 22
            self.length = Fraction(inches)
        else:
            self.record("ESC C", lines)
            assert lines <= 127
            self.length = lines * self.spacing
        self.top, self.bottom = Fraction(0), None

    def esc_u(self) -> None:
        value = self.byte()
        assert value in (0, 1, 0x30, 0x31), f"ESC U {value}"
        self.record("ESC U", value & 1)

    def esc_o(self) -> None:
        self.record("ESC O")

    def esc_x(self) -> None:
        value = self.byte()
        assert value in (0, 1, 0x30, 0x31), f"ESC x {value}"
        self.record("ESC x", value & 1)

    def esc_p(self) -> None:
        self.record("ESC P")

    def esc_r(self) -> None:
        value = self.byte()
        assert value <= 13, f"ESC R {value}"
        self.record("ESC R", value)

    def esc_t(self) -> None:
        value = self.byte()
        assert value in (0, 1), f"ESC t {value}"
        self.record("ESC t", value)
        self.table = value

    def esc_six(self) -> None:
        self.record("ESC 6")
        self.upper_printable = True

    def esc_l(self) -> None:
        value = self.byte()
        self.record("ESC l", value)
        assert value < self.max_columns
        self.left_margin = value

    def esc_dot(self) -> None:
        assert self.kind == "escp2", "ESC . is ESC/P 2"
        assert self.graphics, "ESC . outside graphics mode (ESC ( G)"
        compressed, v, h, rows = self.take(4)
        dots = self.word()
        self.record("ESC .", compressed)
        assert compressed in (0, 1), f"ESC . c={compressed}"
        assert (v, h) in ((20, 20), (20, 10), (10, 10), (10, 20)), f"ESC . v={v} h={h}"
        assert rows in (1, 8, 24) and (v == 20 or rows == 1), f"ESC . m={rows} with v={v}"
        assert 3600 // h == self.dpi_x and 3600 // v == self.dpi_y, (v, h)
        size = (dots + 7) // 8
        data = self.unpack(size * rows) if compressed else self.take(size * rows)
        points = []
        for r in range(rows):
            bits = int.from_bytes(data[r * size : (r + 1) * size], "big")
            points += [(r, column) for column in _set_bits(bits, size * 8) if column < dots]
        self.dots(self.x, self.y, points)
        self.x += Fraction(dots * h, 3600)

    def unpack(self, size: int) -> bytes:
        """Epson's run-length compression: counter 0..127 = counter+1 literal bytes,
        129..255 = the next byte 257-counter times (128 is read two ways: refused)."""
        out = bytearray()
        while len(out) < size:
            counter = self.byte()
            assert counter != 128, "compression counter 128"
            if counter < 128:
                out += self.take(counter + 1)
            else:
                out += self.take(1) * (257 - counter)
        assert len(out) == size, f"compressed data overruns the rows by {len(out) - size}"
        return bytes(out)

    def esc_paren(self) -> None:
        code = self.take(1)
        length = self.word()
        body = self.take(length)
        name = f"ESC ( {code.decode('latin-1')}"
        if code == b"G":
            assert body == b"\x01", body
            self.graphics = True
            self.record(name, 1)
        elif code == b"U":
            assert length == 1 and body[0] in (5, 10, 20, 30, 40, 50, 60), body
            self.unit = Fraction(body[0], 3600)
            self.record(name, body[0])
        elif code == b"C":
            assert length == 2 and not self.marked, "ESC ( C away from the top-of-form"
            self.length = int.from_bytes(body, "little") * self.unit
            self.top, self.bottom = Fraction(0), None
            self.record(name, int.from_bytes(body, "little"))
        elif code == b"c":
            assert length == 4 and not self.marked, "ESC ( c away from the top-of-form"
            top, bottom = (int.from_bytes(body[i : i + 2], "little") * self.unit for i in (0, 2))
            assert 0 <= top < bottom <= self.length, (top, bottom, self.length)
            self.top, self.bottom = top, bottom
            self.record(name, int.from_bytes(body[:2], "little"))
        elif code == b"v":
            assert length == 2
            distance = int.from_bytes(body, "little", signed=True)
            self.record(name, distance)
            self.feed(distance * self.unit)
        else:
            raise AssertionError(f"unknown command ESC ( {code!r} at {self.pos}")


def _set_bits(bits: int, width: int) -> list[int]:
    """Positions of the set bits of a `width`-bit number, the most significant one being 0."""
    found = []
    while bits:
        top = bits.bit_length() - 1
        found.append(width - 1 - top)
        bits ^= 1 << top
    return found


_HANDLERS = {
    b"@": _Printer.esc_at, b"*": _Printer.esc_star, b"J": _Printer.esc_j,
    b"$": _Printer.esc_dollar, b"3": _Printer.esc_three, b"2": _Printer.esc_two,
    b"C": _Printer.esc_c, b"U": _Printer.esc_u, b"O": _Printer.esc_o, b"x": _Printer.esc_x,
    b"P": _Printer.esc_p, b"R": _Printer.esc_r, b"t": _Printer.esc_t, b"6": _Printer.esc_six,
    b"l": _Printer.esc_l, b".": _Printer.esc_dot, b"(": _Printer.esc_paren,
}


def decode_escp(data: bytes, kind: str, dpi: tuple[int, int] = (180, 180),
                width_in: float = 8.0, columns: int = 80) -> EscpJob:
    """Read an ESC/P job for a `kind` of printer ("9pin", "24pin", "escp2") whose raster is
    `dpi` (horizontal, vertical); `width_in` and `columns` (at 10 cpi) are its right edge.
    Assertion errors name what is wrong and where."""
    return _Printer(data, kind, dpi, Fraction(width_in), columns).run()
