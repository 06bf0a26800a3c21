"""Epson ESC/P (9-pin and 24-pin dot-matrix) and ESC/P 2: bit-image raster and plain text in
the printer's own fonts.

Three drivers, one a model (MODELS): `escp-9pin` (Epson FX/LX and the 9-pin printers that
emulate them), `escp-24pin` (Epson LQ printers before ESC/P 2, and 24-pin compatibles),
`escp2` (ESC/P 2 dot-matrix printers: Epson LQ-590/LQ-2190 and later). PDF, PostScript,
PWG, URF, JPEG and PNG go through the shared raster pipeline into `EscpRaster` at the mode
print-quality picks; text/plain through the shared formatter into `EscpText`. There is no
native format: ESC/P has no registered media type (a raw queue passes ESC/P through).

Commands follow Epson's "ESC/P Reference Manual" (ESC/P and ESC/P 2 printers):

- 9-pin and 24-pin raster: ESC * m nL nH, one column after the other, most significant bit =
  top dot; 1 byte a column (8 dots, 1/72" apart) on 9-pin, 3 bytes (24 dots, 1/180" apart) on
  24-pin. The paper moves with ESC J n: n/216" on 9-pin, n/180" on 24-pin. ESC $ nL nH puts
  the head at (nH*256+nL)/60" from the left margin.
- ESC/P 2 raster: ESC ( G (graphics mode), ESC ( U (unit 1/360"), ESC ( C (page length),
  ESC ( c (top and bottom margins), then ESC . c v h m nL nH rows of packed dots, each row
  most significant bit leftmost, moved over with ESC ( v (relative) and ESC $ (in units).
  c = 1 is Epson's run-length compression: a counter byte 0..127 is followed by counter+1
  literal bytes; 129..255 by one byte printed 257-counter times. Epson's table reads 128 as
  129 repeats where TIFF PackBits reads it as a no-op, so 128 is never written.
- Text: ESC x (draft/LQ), ESC P (10 cpi), ESC 2 (1/6" lines), ESC C n (page length in
  lines), ESC l (left margin), ESC R 0 (USA), ESC t 1 (the PC437 "graphics" table), ESC 6
  (codes 128-159 printable: PC437 has letters there), ESC O (no skip-over-perforation: the
  pages are ours to end), CR LF line ends and FF.

Raster jobs: ESC @, ESC O (9/24-pin) or ESC ( G + ESC ( U (ESC/P 2), ESC U (direction); each
page sets its length when it changes (ESC 3 n + ESC C lines on 9/24-pin, the shortest length
not under the sheet; ESC ( C + ESC ( c on ESC/P 2), skips blank rows with ESC J / ESC ( v,
prints bands of inked rows (white columns on the left skipped with ESC $, on the right cut),
and ends with FF; the job ends with ESC @. A raster page's pixel (0, 0) prints at the head's
starting point: the top-of-form and the left margin on 9/24-pin printers; on ESC/P 2 the top
margin set by ESC ( c, the rows above it being dropped. Columns wider than the model's
printable width are dropped (the printer would ignore them). Memory is one band (8 or 24 rows,
24 for the 9-pin three-pass mode) whatever the page.

print-quality -> raster resolution (horizontal x vertical dpi), see MODELS:
  9-pin:   3 = 60x72 (ESC * 0), 4 = 120x72 (ESC * 1), 5 = 120x216 (ESC * 1, three passes
           1/216" apart, unidirectional, NLQ text)
  24-pin:  3 = 120x180 (ESC * 33), 4 = 180x180 (ESC * 39), 5 = 360x180 (ESC * 40, even and odd
           columns in two passes, unidirectional)
  ESC/P 2: 3 = 180x180 (ESC . v=20 h=20 m=24), 4 = 360x180 (h=10), 5 = 360x360 (v=10 h=10 m=1,
           unidirectional)
Text is draft (ESC x 0) at print-quality 3, and at 4 on 9-pin; letter quality otherwise.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction

from PIL import Image

from drivers.driver import Driver
from drivers.errors import ConversionError
from drivers.filters.planner import Plan, raster_plan, text_plan
from drivers.filters.text import TextLayout
from drivers.filters.text import layout as text_formatter_layout
from drivers.model.capabilities import (
    MEDIA_SIZES,
    Capabilities,
    PrintOptions,
    page_rotation,
)
from drivers.model.formats import DOCUMENT_FORMATS, OCTET_STREAM, TEXT
from drivers.model.raster import PixelFormat, RasterPage, Row

ESC = b"\x1b"
CR, FF = b"\r", b"\x0c"
INIT = ESC + b"@"
KINDS = ("9pin", "24pin", "escp2")
ESCP2_UNIT = 360  # ESC ( U 01 00 0A: 10/3600" = 1/360"
TEXT_CPI = 10
TEXT_LPI = 6
MAX_PAGE_INCHES = 22  # ESC C and ESC ( C
_MAX_ESC_J = 255
_MAX_ESCP2_MOVE = 32767


@dataclass(frozen=True)
class EscpMode:
    """How one print-quality prints raster.

    `density`: the m of ESC * m (9/24-pin) or the h of ESC . (ESC/P 2, in 1/3600").
    `pins`: dot rows one pass prints. `passes`: vertical interleave, passes 1 row apart at
    `dpi_y` (so pins are `passes` rows apart). `column_passes`: 2 where the density cannot
    fire a pin twice in a row (ESC * 40): even columns, then odd ones.
    """

    quality: int  # print-quality: 3 draft, 4 normal, 5 high
    dpi_x: int
    dpi_y: int
    density: int
    pins: int
    passes: int = 1
    column_passes: int = 1
    unidirectional: bool = False  # ESC U 1: better dot registration, half the speed
    letter_quality: bool = False  # text mode: ESC x 1 (LQ/NLQ fonts) rather than draft

    @property
    def band_rows(self) -> int:
        return self.pins * self.passes

    @property
    def gs_resolution(self) -> str:
        """Ghostscript's -r argument for rendering pages for this mode."""
        return f"{self.dpi_x}x{self.dpi_y}"


@dataclass(frozen=True)
class EscpModel:
    """A family of compatible printers: its command dialect, paper units and modes."""

    name: str
    kind: str  # "9pin", "24pin" or "escp2"
    make_and_model: str
    vertical_unit: int  # denominator of ESC J (9/24-pin) or of ESC ( v and ESC ( C (ESC/P 2)
    horizontal_unit: int  # denominator of ESC $
    printable_width_in: float
    modes: tuple[EscpMode, ...]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ESC/P kind {self.kind!r} is not one of {KINDS}")

    def mode(self, quality: int) -> EscpMode:
        for mode in self.modes:
            if mode.quality == quality:
                return mode
        raise ValueError(f"{self.name} has no print-quality {quality}")

    @property
    def qualities(self) -> tuple[int, ...]:
        return tuple(mode.quality for mode in self.modes)

    @property
    def text_columns(self) -> int:
        return int(self.printable_width_in * TEXT_CPI)


MODELS: dict[str, EscpModel] = {
    model.name: model
    for model in (
        EscpModel(
            "escp-9pin", "9pin", "Epson FX-890 (ESC/P 9-pin)", 216, 60, 8.0,
            (
                EscpMode(3, 60, 72, density=0, pins=8),  # single density
                EscpMode(4, 120, 72, density=1, pins=8),  # double density
                # Three passes 1/216" apart fill the gaps between the pins (1/72").
                EscpMode(5, 120, 216, density=1, pins=8, passes=3, unidirectional=True,
                         letter_quality=True),
            ),
        ),
        EscpModel(
            "escp-24pin", "24pin", "Epson LQ-1050 (ESC/P 24-pin)", 180, 60, 8.0,
            (
                EscpMode(3, 120, 180, density=33, pins=24),  # 24-dot double density
                EscpMode(4, 180, 180, density=39, pins=24, letter_quality=True),  # triple
                # Hex density fires a pin at most every other 1/360": even columns, then odd.
                EscpMode(5, 360, 180, density=40, pins=24, column_passes=2,
                         unidirectional=True, letter_quality=True),
            ),
        ),
        EscpModel(
            "escp2", "escp2", "Epson LQ-590II (ESC/P 2)", ESCP2_UNIT, ESCP2_UNIT, 8.0,
            (
                EscpMode(3, 180, 180, density=20, pins=24),
                EscpMode(4, 360, 180, density=10, pins=24, letter_quality=True),
                # At 360 dpi vertical a 24-pin ESC/P 2 printer takes one row per ESC . (m=1)
                # and interleaves by itself.
                EscpMode(5, 360, 360, density=10, pins=1, unidirectional=True,
                         letter_quality=True),
            ),
        ),
    )
}


def _u16(value: int) -> bytes:
    return value.to_bytes(2, "little")


def escp2_rle(data: bytes) -> bytes:
    """Epson's run-length compression (ESC . c=1) of one row."""
    out = bytearray()
    pos = 0
    for run in _RUNS.finditer(data):
        start, end = run.span()
        _literals(out, data[pos:start])
        length = end - start
        while length >= 2:
            take = min(length, 128)
            out.append(257 - take)
            out.append(data[start])
            length -= take
        if length:
            _literals(out, data[end - 1 : end])
        pos = end
    _literals(out, data[pos:])
    return bytes(out)


_RUNS = re.compile(rb"(.)\1{2,}", re.DOTALL)  # a run of two costs as much as two literals


def _literals(out: bytearray, chunk: bytes) -> None:
    for offset in range(0, len(chunk), 128):
        piece = chunk[offset : offset + 128]
        out.append(len(piece) - 1)
        out += piece


class _Transposer:
    """Rows of packed pixels to columns of dots: 8 rows in, one byte a column out (most
    significant bit = top row). Each 8x8 bit block is transposed in place with the three
    delta swaps of Hacker's Delight (transpose8rS64), on every block of the row at once."""

    def __init__(self, line_bytes: int) -> None:
        self.line_bytes = line_bytes
        self._masks = tuple(
            int.from_bytes(bytes.fromhex(pattern) * line_bytes, "big")
            for pattern in ("00AA00AA00AA00AA", "0000CCCC0000CCCC", "00000000F0F0F0F0")
        )

    def columns(self, rows: list[bytes]) -> bytes:
        size = self.line_bytes
        blocks = bytearray(8 * size)
        for i, row in enumerate(rows):
            blocks[i::8] = row
        x = int.from_bytes(blocks, "big")
        for shift, mask in zip((7, 14, 28), self._masks, strict=True):
            t = (x ^ (x >> shift)) & mask
            x ^= t ^ (t << shift)
        return x.to_bytes(8 * size, "big")


def _fit_lines(length: int, max_unit: int = 255, max_lines: int = 127) -> tuple[int, int]:
    """(n, lines) for ESC 3 n + ESC C lines: the shortest page length not under `length`
    units (ESC C counts at most 127 lines of at most 255 units)."""
    best: tuple[int, int, int] | None = None
    for spacing in range(max(1, -(-length // max_lines)), max_unit + 1):
        lines = -(-length // spacing)
        over = spacing * lines - length
        if best is None or over < best[0]:
            best = (over, spacing, lines)
        if over == 0:
            break
    if best is None:
        raise ConversionError(f"a page of {length} units is longer than ESC C can set")
    return best[1], best[2]


class EscpRasterWriter:
    """Raster pages (1-bit, 1 = black) as ESC/P bit images or ESC/P 2 raster graphics.

    The same shape as the PCL writer (a `RasterSink`): start_job, start_page, write_rows
    (bands of any size), end_page, end_job. Copies are not a printer feature here: the
    pipeline sends pages again."""

    accepts: tuple[PixelFormat, ...] = (PixelFormat.BLACK_1,)

    def __init__(self, model: EscpModel, quality: int = 4, top_margin_pt: float = 0.0) -> None:
        self.model = model
        self.mode = model.mode(quality)
        self.top_margin_pt = top_margin_pt  # ESC/P 2 only: pin printers start at top-of-form
        self._length: tuple[int, int] | None = None  # page length and top margin set
        self._transposer: _Transposer | None = None
        self._band: list[bytes] = []
        self._band_start = 0  # page row of the band's first row
        self._next_row = 0  # page row of the next row to come
        self._skip_rows = 0  # rows above the ESC/P 2 top margin, dropped
        self._y = 0  # head position in vertical units from where the page started
        self._width = 0  # columns printed: the page's, at most the printable width
        self._line_bytes = 0
        self._pad_mask = 0xFF

    # -- the RasterSink interface ---------------------------------------------------------

    def start_job(self) -> bytes:
        out = INIT
        if self.model.kind == "escp2":
            out += ESC + b"(G\x01\x00\x01" + ESC + b"(U\x01\x00" + bytes([3600 // ESCP2_UNIT])
        else:
            out += ESC + b"O"
        return out + ESC + b"U" + (b"\x01" if self.mode.unidirectional else b"\x00")

    def start_page(self, page: RasterPage) -> bytes:
        mode = self.mode
        if page.pixels is not PixelFormat.BLACK_1:
            raise ConversionError(f"ESC/P raster takes 1-bit pages, not {page.pixels.value}")
        if (page.dpi_x, page.dpi_y) != (mode.dpi_x, mode.dpi_y):
            raise ConversionError(
                f"{self.model.name} print-quality {mode.quality} prints {mode.gs_resolution} "
                f"dpi, not {page.dpi_x}x{page.dpi_y}")
        self._width = min(page.width, int(self.model.printable_width_in * mode.dpi_x))
        self._line_bytes = (self._width + 7) // 8
        self._pad_mask = (0xFF00 >> (self._width % 8 or 8)) & 0xFF
        if self._transposer is None or self._transposer.line_bytes != self._line_bytes:
            self._transposer = _Transposer(self._line_bytes)
        self._band, self._band_start, self._next_row, self._y = [], 0, 0, 0
        return self._page_length(page)

    def write_rows(self, rows: Iterable[Row]) -> list[bytes]:
        """The band's commands: rows are held until a band is full, blank rows only counted."""
        out: list[bytes] = []
        for line, count in rows:
            self._take(line, count, out)
        return out

    def end_page(self) -> bytes:
        out: list[bytes] = []
        if self._band:
            self._print_band(out)
        return b"".join(out) + FF

    def end_job(self) -> bytes:
        return INIT

    # -- page geometry --------------------------------------------------------------------

    def _rows_to_units(self, rows: int) -> int:
        units, rest = divmod(rows * self.model.vertical_unit, self.mode.dpi_y)
        assert rest == 0, "every mode's rows are whole vertical units"
        return units

    def _page_length(self, page: RasterPage) -> bytes:
        """Page length (and ESC/P 2 margins) when they change: set at the top-of-form."""
        unit = self.model.vertical_unit
        height_in = max(page.size_points[1] / 72, page.height / page.dpi_y)
        length = math.ceil(height_in * unit - 1e-6)
        if height_in > MAX_PAGE_INCHES:
            raise ConversionError(
                f"a page of {height_in:.1f} inches is longer than ESC/P can set "
                f"({MAX_PAGE_INCHES} inches)")
        self._skip_rows = 0
        top = 0
        if self.model.kind == "escp2":
            self._skip_rows = min(page.height - 1,
                                  math.ceil(self.top_margin_pt / 72 * page.dpi_y))
            top = self._rows_to_units(self._skip_rows)
        if self._length == (length, top):
            return b""
        self._length = (length, top)
        if self.model.kind == "escp2":
            # ESC ( C cancels the margins, so ESC ( c follows it; the bottom margin is the end.
            return (ESC + b"(C\x02\x00" + _u16(length)
                    + ESC + b"(c\x04\x00" + _u16(top) + _u16(length))
        spacing, lines = _fit_lines(length)
        return ESC + b"3" + bytes([spacing]) + ESC + b"C" + bytes([lines])

    # -- bands ----------------------------------------------------------------------------

    def _take(self, line: bytes, count: int, out: list[bytes]) -> None:
        if self._next_row < self._skip_rows:
            dropped = min(count, self._skip_rows - self._next_row)
            self._next_row += dropped
            count -= dropped
        if count <= 0:
            return
        line = self._clean(line)
        blank = not any(line)
        band_rows = self.mode.band_rows
        while count > 0:
            if not self._band:
                if blank:  # only counted: the next band starts at the next inked row
                    self._next_row += count
                    return
                self._band_start = self._next_row
            take = min(count, band_rows - len(self._band))
            self._band.extend([line] * take)
            self._next_row += take
            count -= take
            if len(self._band) == band_rows:
                self._print_band(out)

    def _clean(self, line: bytes) -> bytes:
        """The printable part of a line, the padding bits after the last pixel cleared."""
        size = self._line_bytes
        if len(line) < size:
            line = line.ljust(size, b"\0")
        elif len(line) > size:
            line = line[:size]
        if self._pad_mask != 0xFF and line[-1] & ~self._pad_mask & 0xFF:
            line = line[:-1] + bytes([line[-1] & self._pad_mask])
        return line

    def _print_band(self, out: list[bytes]) -> None:
        band, self._band = self._band, []
        band.extend([bytes(self._line_bytes)] * (self.mode.band_rows - len(band)))
        if self.model.kind == "escp2":
            self._escp2_band(band, out)
        else:
            self._pin_band(band, out)

    def _move_to(self, row: int, out: list[bytes]) -> None:
        """Paper fed forward to put the top pin (first raster row) on page row `row`."""
        target = self._rows_to_units(row - self._skip_rows)
        distance, self._y = target - self._y, target
        assert distance >= 0, "the paper only moves forward"
        if self.model.kind == "escp2":
            while distance > 0:
                step = min(distance, _MAX_ESCP2_MOVE)
                out.append(ESC + b"(v\x02\x00" + _u16(step))
                distance -= step
            return
        while distance > 0:
            step = min(distance, _MAX_ESC_J)
            out.append(ESC + b"J" + bytes([step]))
            distance -= step

    def _pin_band(self, band: list[bytes], out: list[bytes]) -> None:
        mode = self.mode
        assert self._transposer is not None
        bytes_per_column = mode.pins // 8
        for number in range(mode.passes):
            rows = band[number :: mode.passes]
            extent = _ink_extent(rows)
            if extent is None:
                continue
            groups = [self._transposer.columns(rows[g * 8 : g * 8 + 8])
                      for g in range(bytes_per_column)]
            columns = bytearray(len(groups[0]) * bytes_per_column)
            for g, group in enumerate(groups):
                columns[g::bytes_per_column] = group
            self._move_to(self._band_start + number, out)
            self._pin_pass(columns, extent, bytes_per_column, out)

    def _pin_pass(self, columns: bytearray, extent: tuple[int, int], per_column: int,
                  out: list[bytes]) -> None:
        mode = self.mode
        step = mode.dpi_x // self.model.horizontal_unit  # columns per ESC $ unit
        first, end = extent
        skip = first - first % step
        data = bytes(columns[skip * per_column : end * per_column])
        count = end - skip
        for parity in range(mode.column_passes):
            pass_data = data if mode.column_passes == 1 else _every_other_column(
                data, per_column, parity)
            if not any(pass_data):
                continue
            out.append(ESC + b"$" + _u16(skip // step) + ESC + b"*" + bytes([mode.density])
                       + _u16(count) + pass_data)

    def _escp2_band(self, band: list[bytes], out: list[bytes]) -> None:
        mode = self.mode
        extent = _ink_extent(band)
        assert extent is not None, "a band starts with an inked row"
        first, end = extent
        skip = first // 8
        dots = end - skip * 8
        size = (dots + 7) // 8
        self._move_to(self._band_start, out)
        v = 3600 // mode.dpi_y
        data = b"".join(escp2_rle(row[skip : skip + size]) for row in band)
        out.append(
            ESC + b"$" + _u16(skip * 8 * ESCP2_UNIT // mode.dpi_x)
            + ESC + b".\x01" + bytes([v, mode.density, mode.pins]) + _u16(dots) + data
        )


def _ink_extent(rows: list[bytes]) -> tuple[int, int] | None:
    """(first inked column, last inked column + 1) of these rows, None when all blank."""
    union = 0
    for row in rows:
        union |= int.from_bytes(row, "big")
    if not union:
        return None
    bits = len(rows[0]) * 8
    trailing = (union & -union).bit_length() - 1
    return bits - union.bit_length(), bits - trailing


def _every_other_column(data: bytes, per_column: int, parity: int) -> bytes:
    """Column data with the columns of the other parity blanked."""
    kept = bytearray(len(data))
    stride = 2 * per_column
    for offset in range(parity * per_column, (parity + 1) * per_column):
        kept[offset::stride] = data[offset::stride]
    return bytes(kept)


# -- text ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EscpTextLayout:
    """Text geometry in characters at 10 cpi and lines at 6 lpi."""

    columns: int  # characters a line, after the left margin
    lines: int  # text lines a page, between the top and bottom margins
    page_lines: int  # ESC C: the page length
    left_columns: int = 0  # ESC l
    top_lines: int = 0  # blank lines at the top of each page


def formatter_layout(model: EscpModel, columns: int, lines: int, left_pt: float, top_pt: float,
                     page_height_pt: float) -> EscpTextLayout:
    """The shared text formatter's layout (its columns, lines and margins) in the printer's
    terms: the left margin narrowed where the lines would pass the carriage, the top margin
    where the lines would pass the page. A layout that cannot fit at all (a landscape page,
    say) is refused."""
    page_lines = min(127, int(page_height_pt * TEXT_LPI / 72 + 1e-6))
    if columns > model.text_columns or lines > page_lines:
        raise ConversionError(
            f"{model.name} prints at most {model.text_columns} columns and {page_lines} lines "
            f"a page, not {columns} x {lines}")
    left_columns = min(round(left_pt * TEXT_CPI / 72), model.text_columns - columns)
    top_lines = min(round(top_pt * TEXT_LPI / 72), page_lines - lines)
    return EscpTextLayout(columns, lines, page_lines, left_columns, top_lines)


_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f-\x9f]")
# One character for one: a line keeps the width it was wrapped to.
_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201c": '"', "\u201d": '"', "\u201e": '"',
    "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-", "\u2022": "\u2219",
})


class EscpTextWriter:
    """Text pages in the printer's own font, 10 cpi, 6 lpi, the PC437 character table.

    The same shape as the PCL text writer: start_job, page(lines), end_job."""

    def __init__(self, model: EscpModel, quality: int, layout: EscpTextLayout) -> None:
        self.model, self.mode, self.layout = model, model.mode(quality), layout
        self._encoded: dict[str, bytes] = {}

    def start_job(self) -> bytes:
        layout = self.layout
        return (
            INIT + ESC + b"x" + (b"\x01" if self.mode.letter_quality else b"\x00")
            + ESC + b"R\x00" + ESC + b"t\x01" + ESC + b"6" + ESC + b"P" + ESC + b"2"
            + ESC + b"O" + ESC + b"C" + bytes([layout.page_lines])
            + (ESC + b"l" + bytes([layout.left_columns]) if layout.left_columns else b"")
        )

    def page(self, lines: list[str]) -> bytes:
        """One page: its top margin, its lines (already wrapped to the layout), a form feed."""
        if len(lines) > self.layout.lines:
            raise ValueError(f"{len(lines)} lines on a page of {self.layout.lines}")
        # The last line ends with CR and the form feed: a line feed there could reach the next
        # top-of-form, and a form feed at the top-of-form may feed a whole blank page.
        body = b"\r\n" * self.layout.top_lines + b"\r\n".join(map(self.encode, lines))
        return body + CR + FF

    def end_job(self) -> bytes:
        return INIT

    def encode(self, line: str) -> bytes:
        """A line in PC437, one byte a character: what it lacks loses its accents (or its
        typographic finery), or becomes '?'. Control characters are dropped, so no byte of
        the text can be read as a command."""
        line = _CONTROL.sub("", line)
        try:
            return line.encode("cp437")
        except UnicodeEncodeError:
            # Composed first: a letter and its combining accent are one character on paper.
            return b"".join(self._char(ch) for ch in unicodedata.normalize("NFC", line))

    def _char(self, ch: str) -> bytes:
        if (known := self._encoded.get(ch)) is None:
            try:
                known = ch.encode("cp437")
            except UnicodeEncodeError:
                plain = unicodedata.normalize("NFKD", ch.translate(_TYPOGRAPHY))
                plain = "".join(c for c in plain if not unicodedata.combining(c))
                known = plain.encode("cp437", "replace") if len(plain) == 1 else b"?"
            self._encoded[ch] = known
        return known


# -- a job's writers ------------------------------------------------------------------------


class _Resampler:
    """One PWG or URF page's rows at the client's resolution made the mode's: an output dot
    is black where any source pixel under it is (a thin line survives a reduction), and
    enlarging repeats pixels. Vertically, `q` source rows make `p` output rows (p/q the
    ratio of the resolutions), so the page is done a group of `q` rows at a time and the
    memory is one group."""

    def __init__(self, page: RasterPage, dpi_x: int, dpi_y: int) -> None:
        ratio = Fraction(dpi_y, page.dpi_y)
        self._p, self._q = ratio.numerator, ratio.denominator
        self._source_width = page.width
        self.width = max(1, -(-page.width * dpi_x // page.dpi_x))  # the last pixel kept
        width_pt, height_pt = page.size_points
        self.page = page.with_changes(
            width=self.width, height=max(1, -(-page.height * self._p // self._q)),
            dpi_x=dpi_x, dpi_y=dpi_y, page_width_pt=width_pt, page_height_pt=height_pt)
        self._group: list[bytes] = []
        self._scaled: dict[bytes, bytes] = {}  # a band's repeated lines scaled once

    def rows(self, rows: Iterable[Row]) -> list[Row]:
        merged: list[Row] = []
        q = self._q
        for line, count in rows:
            while count:
                if not self._group and count >= q:  # whole groups of one line: p rows each
                    groups = count // q
                    merged.append((line, groups * self._p))
                    count -= groups * q
                    continue
                take = min(count, q - len(self._group))
                self._group.extend([line] * take)
                count -= take
                if len(self._group) == q:
                    merged.extend(self._merge())
        return self._scale(merged)

    def finish(self) -> list[Row]:
        """The last, partial group: its share of the page's rows."""
        return self._scale(self._merge()) if self._group else []

    def _merge(self) -> list[Row]:
        """The group's output rows: each the union of the source rows it covers."""
        group, self._group = self._group, []
        p, q = self._p, self._q
        out: list[Row] = []
        for k in range(-(-len(group) * p // q)):
            first = k * q // p
            covered = group[first : max(first + 1, min(len(group), (k + 1) * q // p))]
            line = covered[0]
            if any(other != line for other in covered[1:]):
                union = 0
                for other in covered:
                    union |= int.from_bytes(other, "big")
                line = union.to_bytes(len(line), "big")
            if out and out[-1][0] == line:
                out[-1] = (line, out[-1][1] + 1)
            else:
                out.append((line, 1))
        return out

    def _scale(self, rows: list[Row]) -> list[Row]:
        if self.width == self._source_width:
            return rows
        todo = [line for line, _ in rows if line not in self._scaled]
        if todo:
            # Mode "1" reads a set bit as 255: "L" then has black as 255, so after a box
            # filter any value above 0 had black under it.
            image = Image.frombytes("1", (self._source_width, len(todo)), b"".join(todo))
            scaled = image.convert("L").resize((self.width, len(todo)), Image.Resampling.BOX)
            data = scaled.point(_ANY_BLACK, "1").tobytes()
            size = len(data) // len(todo)
            for i, line in enumerate(todo):
                self._scaled[line] = data[i * size : (i + 1) * size]
        out = [(self._scaled[line], count) for line, count in rows]
        if len(self._scaled) > 256:
            self._scaled.clear()
        return out


_ANY_BLACK = [0] + [255] * 255


class EscpRaster:
    """A job's raster sink (a `RasterSink`) on one model: the mode its print-quality picks,
    PWG and URF pages sent at another resolution resampled to it, and copies made here,
    since ESC/P has no copy count: each page is sent `copies` times in a row (the pipeline
    sends the whole document again for collated copies, with copies=1). Memory: a band, or
    one page's output when pages are repeated."""

    accepts: tuple[PixelFormat, ...] = (PixelFormat.BLACK_1,)

    def __init__(self, model: EscpModel, options: PrintOptions, caps: Capabilities) -> None:
        self._writer = EscpRasterWriter(model, options.print_quality,
                                        caps.margins[0] * 72 / 2540)
        self._copies = max(1, options.copies)
        self._media = caps.media
        self._resampler: _Resampler | None = None
        self._page: list[bytes] | None = None  # the page's output so far, to repeat it

    def start_job(self) -> bytes:
        return self._writer.start_job()

    def start_page(self, page: RasterPage) -> bytes:
        mode = self._writer.mode
        page = self._on_sheet(page)
        self._resampler = None
        if (page.dpi_x, page.dpi_y) != (mode.dpi_x, mode.dpi_y):
            self._resampler = _Resampler(page, mode.dpi_x, mode.dpi_y)
            page = self._resampler.page
        out = self._writer.start_page(page)
        self._page = [out] if self._copies > 1 else None
        return out

    def write_rows(self, rows: Iterable[Row]) -> list[bytes]:
        if self._resampler is not None:
            rows = self._resampler.rows(rows)
        out = self._writer.write_rows(rows)
        if self._page is not None:
            self._page.extend(out)
        return out

    def end_page(self) -> bytes:
        tail = self._writer.write_rows(self._resampler.finish()) if self._resampler else []
        tail.append(self._writer.end_page())
        if self._page is None:
            return b"".join(tail)
        page = b"".join(self._page + tail)
        self._page = None
        return b"".join(tail) + page * (self._copies - 1)

    def end_job(self) -> bytes:
        return self._writer.end_job()

    def _on_sheet(self, page: RasterPage) -> RasterPage:
        """The page with the exact size of the sheet it is within 2 points of (PWG 5101.1's
        tolerance): Ghostscript renders on whole points and PWG headers count them, but the
        page length is set from it, and on continuous paper every page's error adds up."""
        width, height = page.size_points
        for media in self._media:
            if (abs(media.width_points - width) <= 2 and abs(media.height_points - height) <= 2
                    and (width, height) != (media.width_points, media.height_points)):
                return page.with_changes(page_width_pt=media.width_points,
                                         page_height_pt=media.height_points)
        return page


class EscpText:
    """A job's text writer (a `TextWriter`) on one model, for the shared text formatter: its
    layout in the printer's own terms, and each page sent `copies` times in a row."""

    def __init__(self, model: EscpModel, options: PrintOptions, layout: TextLayout) -> None:
        self._writer = EscpTextWriter(model, options.print_quality, formatter_layout(
            model, layout.columns, layout.lines, layout.left, layout.top, layout.page_height))
        self._copies = max(1, options.copies)

    def start_job(self) -> bytes:
        return self._writer.start_job()

    def page(self, lines: list[str]) -> bytes:
        return self._writer.page(lines) * self._copies

    def end_job(self) -> bytes:
        return self._writer.end_job()


# -- the drivers ----------------------------------------------------------------------------


class Escp(Driver):
    """ESC/P on one model (`escp-9pin`, `escp-24pin`, `escp2`): PDF, PostScript, PWG, URF,
    JPEG and PNG as bit images, text in the printer's own font.

    There is no native format to pass through: ESC/P has no registered media type, and a
    client that has ESC/P bytes prints them on a raw queue."""

    family = "escp"
    native_formats = ()
    convertible = DOCUMENT_FORMATS
    # No copy count in the language: EscpRaster and EscpText repeat each page, and the
    # pipeline sends the document once per collated copy.
    collates = False

    def __init__(self, model: EscpModel, capabilities: Capabilities) -> None:
        super().__init__(model.name, capabilities)
        self.model = model

    def route(self, fmt: str) -> Plan:
        model = self.model
        if fmt == TEXT:
            return text_plan(OCTET_STREAM, self.name,
                             lambda options, _, layout: EscpText(model, options, layout))
        return raster_plan(fmt, OCTET_STREAM, self.name,
                           lambda options, caps: EscpRaster(model, options, caps),
                           resolution=self.resolution)

    def resolution(self, options: PrintOptions, caps: Capabilities) -> tuple[int, int]:
        """The (x, y) dpi pages are rendered at: print-quality's mode. The square resolutions
        advertised are nominal (PWG and URF pages sent at them are resampled)."""
        mode = self.model.mode(options.print_quality)
        return mode.dpi_x, mode.dpi_y

    def honours(self, attribute: str, fmt: str, caps: Capabilities,
                options: PrintOptions) -> bool:
        if fmt == TEXT and attribute == "orientation-requested":
            # The printer's font does not turn, and a landscape line is past the carriage.
            return page_rotation(options) == 0 and self.text_fits(caps, options)
        if fmt == TEXT and attribute == "media" and not self.text_fits(caps, options):
            return False
        return super().honours(attribute, fmt, caps, options)

    def text_fits(self, caps: Capabilities, options: PrintOptions) -> bool:
        """Whether the shared formatter's layout of this job fits the carriage and ESC C."""
        layout = text_formatter_layout(options, caps)
        page_lines = min(127, int(layout.page_height * TEXT_LPI / 72 + 1e-6))
        return layout.columns <= self.model.text_columns and layout.lines <= page_lines


def _capabilities(model: EscpModel, label: str, command_set: str,
                  resolutions: tuple[int, ...], default_resolution: int) -> Capabilities:
    return Capabilities(
        make_and_model=f"Generic {label} Dot-Matrix Printer", manufacturer="Generic",
        model=f"{label} Dot-Matrix Printer", command_set=(command_set,),
        document_formats=Escp.default_formats(), resolutions=resolutions,
        default_resolution=default_resolution, color=False, duplex=False,
        # Cut sheets, and continuous forms torn to Letter (US 8.5x11in fanfold) or to A4
        # (European 8.27x11.67in fanfold: ESC C 70 lines).
        media=tuple(MEDIA_SIZES[name] for name in (
            "iso_a4_210x297mm", "na_letter_8.5x11in", "na_legal_8.5x14in")),
        # What the head cannot reach on a cut sheet: about 1/6" at the top and bottom, 1/8"
        # at the sides (roughly the minimum margins Epson's manuals give).
        margins=(423, 423, 318, 318),
        print_qualities=model.qualities, pages_per_minute=2,
    )


# Nominal resolutions, for printer-resolution and the PWG and URF pages clients send (print-
# quality alone picks the mode): the square ones a model prints exactly (24-pin 180 at
# print-quality 4, ESC/P 2 180 and 360 at 3 and 5), 360 for the 24-pin 360x180 mode, and for
# a 9-pin printer, which has no square mode, its 72 dpi rows and twice that.
DRIVERS = (
    Escp(MODELS["escp-9pin"], _capabilities(MODELS["escp-9pin"], "ESC/P 9-pin", "ESCP9",
                                            (72, 144), 72)),
    Escp(MODELS["escp-24pin"], _capabilities(MODELS["escp-24pin"], "ESC/P 24-pin", "ESCP24",
                                             (180, 360), 180)),
    Escp(MODELS["escp2"], _capabilities(MODELS["escp2"], "ESC/P 2", "ESCPL2", (180, 360),
                                        360)),
)
