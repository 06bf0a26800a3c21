"""Raster pages as character art, the way mainframe line printers printed pictures: each page
is cut into the printer's character cells (the 10 cpi, 6 lpi grid of `drivers.filters.text`,
inside the same margins) and each cell printed as one character of a luminance ramp, denser
for darker. Lines end CR LF, a page ends with a form feed, so the line printer's copy and page
logic (`PageCopies`) sees art pages as it sees text pages.

`TextArtWriter` is a `RasterSink`: the shared raster pipeline (`drivers.filters.planner`
`raster_plan`: PWG and URF readers, Pillow for JPEG and PNG) decodes, places and converts the
pages to 8-bit gray, which is luminance (ITU-R 601) for colour. The writer reduces each band
to cell averages as it arrives, so memory is one band plus one row of cells.

A cell is a physical area (7.2 x 12 points), so a picture keeps its proportions on paper even
though a cell is taller than it is wide: a square fitted to US Letter is 80 columns by 48 lines.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from PIL import Image

from drivers.filters.text import CHAR_WIDTH, LINE_HEIGHT, CharacterGrid, character_grid
from drivers.model.raster import PixelFormat, RasterPage, Row

# Light to dark: a blank cell is a space, a black one the densest mark of plain ASCII.
RAMP = b" .:-=+*#%@"


def ramp_table(ramp: bytes = RAMP) -> bytes:
    """For each 8-bit gray level (0 black, 255 white), its character: the ramp cut into equal
    steps of luminance."""
    if len(ramp) < 2 or any(not 0x20 <= c < 0x7F for c in ramp):
        raise ValueError("a ramp is at least two printable ASCII characters")
    steps = len(ramp)
    return bytes(ramp[(255 - gray) * steps // 256] for gray in range(256))


class TextArtWriter:
    """A RasterSink: gray pages in, one line of characters per row of cells out.

    `margins` are the printer's (top, bottom, left, right in hundredths of a millimetre), as
    the text formatter takes them. Blank lines at the foot of a page are not sent: the form
    feed passes over them."""

    accepts: tuple[PixelFormat, ...] = (PixelFormat.SGRAY_8,)

    def __init__(self, margins: tuple[int, int, int, int], ramp: bytes = RAMP) -> None:
        self._margins = margins
        self._table = ramp_table(ramp)
        self._page: _PageCells | None = None

    def start_job(self) -> bytes:
        return b""

    def start_page(self, page: RasterPage) -> bytes:
        if page.pixels is not PixelFormat.SGRAY_8:
            raise ValueError(f"text art takes sgray_8 pages, not {page.pixels.value}")
        width, height = page.size_points
        self._page = _PageCells(page, character_grid(width, height, self._margins),
                                self._table)
        return b""

    def write_rows(self, rows: list[Row]) -> Iterator[bytes]:
        assert self._page is not None, "rows before start_page"
        yield from self._page.rows(rows)

    def end_page(self) -> bytes:
        assert self._page is not None, "end_page before start_page"
        page, self._page = self._page, None
        return page.finish() + b"\f"

    def end_job(self) -> bytes:
        return b""


class _PageCells:
    """One page's rows folded into rows of cells: each pixel row belongs to the cell row its
    centre falls in; each row is first averaged across (per cell column), then the rows of a
    cell row are averaged down."""

    def __init__(self, page: RasterPage, grid: CharacterGrid, table: bytes) -> None:
        width_pt, height_pt = page.size_points
        self._width = page.width
        self._per_pt_y = page.height / height_pt  # pixel rows per point
        self._top, self._lines = grid.top, grid.lines
        # Cells past the sheet's right edge stay blank rather than stretch the page over them.
        self._columns = max(0, min(grid.columns, int((width_pt - grid.left) / CHAR_WIDTH)))
        per_pt_x = page.width / width_pt
        self._x0 = grid.left * per_pt_x
        self._x1 = min(float(page.width), (grid.left + self._columns * CHAR_WIDTH) * per_pt_x)
        self._table = table
        self._y = 0  # pixel rows seen
        self._cell = -1  # the cell row being gathered
        self._gathered: list[bytes] = []  # its pixel rows, each averaged across already
        self._next_line = 0  # the first cell row not yet accounted for
        self._blank = 0  # blank lines held back until something prints below them

    def _cell_of(self, y: int) -> int:
        return math.floor(((y + 0.5) / self._per_pt_y - self._top) / LINE_HEIGHT)

    def _first_row(self, cell: int) -> int:
        return math.ceil((self._top + cell * LINE_HEIGHT) * self._per_pt_y - 0.5)

    def rows(self, rows: list[Row]) -> Iterator[bytes]:
        if not rows:
            return
        for line, count in zip(self._across([line for line, _ in rows]), (c for _, c in rows),
                               strict=True):
            y, self._y = self._y, self._y + count
            while count > 0:
                cell = self._cell_of(y)
                if cell >= self._lines:
                    break  # below the last line: the page's foot margin
                taken = min(count, max(1, self._first_row(cell + 1) - y))
                if cell >= 0:
                    if cell != self._cell:
                        if out := self._flush():
                            yield out
                        self._cell = cell
                    self._gathered.extend([line] * taken)
                y += taken
                count -= taken

    def _across(self, lines: list[bytes]) -> list[bytes]:
        """Each line as one average per cell column: Pillow's box filter counts each pixel
        in the cell its centre falls in, as `_cell_of` does for rows."""
        if self._columns == 0:
            return [b""] * len(lines)
        band = Image.frombytes("L", (self._width, len(lines)), b"".join(lines))
        reduced = band.resize((self._columns, len(lines)), Image.Resampling.BOX,
                              box=(self._x0, 0.0, self._x1, float(len(lines)))).tobytes()
        size = self._columns
        return [reduced[i * size : (i + 1) * size] for i in range(len(lines))]

    def _flush(self) -> bytes:
        """The gathered cell row as a line (and the blank lines above it), or nothing yet."""
        if self._cell < 0 or not self._gathered:
            return b""
        rows, self._gathered = self._gathered, []
        self._blank += self._cell - self._next_line
        self._next_line = self._cell + 1
        if self._columns == 0:
            self._blank += 1
            return b""
        cells = Image.frombytes("L", (self._columns, len(rows)), b"".join(rows))
        means = cells.resize((self._columns, 1), Image.Resampling.BOX).tobytes()
        text = means.translate(self._table).rstrip(b" ")
        if not text:
            self._blank += 1
            return b""
        out = b"\r\n" * self._blank + text + b"\r\n"
        self._blank = 0
        return out

    def finish(self) -> bytes:
        return self._flush()
