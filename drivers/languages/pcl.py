"""PCL 5e: monochrome raster pages (compression mode 2 or 3) and plain text in the printer's
own Courier. Commands follow protocols.md 11.3 and HP's PCL 5 technical reference.

PDF, PostScript, PWG, URF, JPEG and PNG go through the shared raster pipeline into
`PclRasterWriter`; text/plain through our formatter into `PclTextWriter`; PCL passes through.
A printer that takes PJL gets each job in `@PJL ENTER LANGUAGE=PCL`."""

from __future__ import annotations

import re
from collections.abc import Iterable

from drivers.driver import Driver
from drivers.errors import ConversionError
from drivers.filters.planner import Plan, passthrough_plan, raster_plan, text_plan
from drivers.filters.text import CHAR_WIDTH, LINE_HEIGHT, TextLayout
from drivers.model import accel
from drivers.model.capabilities import MEDIA_SIZES, Capabilities, PrintOptions, media_name_for
from drivers.model.formats import DOCUMENT_FORMATS, PCL, TEXT
from drivers.model.packbits import packbits_bilevel
from drivers.model.raster import PixelFormat, RasterPage, Row

ESC = b"\x1b"
RESET = ESC + b"E"
RASTER_RESOLUTIONS = (75, 100, 150, 200, 300, 600)

PAGE_SIZE_CODES = {
    "na_executive_7.25x10.5in": 1, "na_letter_8.5x11in": 2, "na_legal_8.5x14in": 3,
    "na_ledger_11x17in": 6, "iso_a5_148x210mm": 25, "iso_a4_210x297mm": 26,
    "iso_a3_297x420mm": 27, "jis_b5_182x257mm": 45, "na_number-10_4.125x9.5in": 81,
    "iso_dl_110x220mm": 90, "iso_c5_162x229mm": 91,
}
# Where the logical page (x = 0) starts, in 1/300 inch from the sheet's left edge (portrait).
_LOGICAL_OFFSET_300 = {"iso_a4_210x297mm": 71, "iso_a3_297x420mm": 71, "iso_a5_148x210mm": 71}
_DEFAULT_OFFSET_300 = 75


def page_size_code(media_name: str) -> int:
    return PAGE_SIZE_CODES.get(media_name, 26 if media_name.startswith("iso") else 2)


def job_settings(options: PrintOptions, caps: Capabilities) -> bytes:
    """Copies (each page that many times in a row) and duplex, sent once after the reset."""
    out = b""
    if options.copies > 1:
        out += ESC + b"&l%dX" % options.copies
    if caps.duplex:
        out += ESC + b"&l%dS" % ((2 if options.tumble else 1) if options.duplex else 0)
    if options.media_source == "manual":
        out += ESC + b"&l2H"
    return out


def _delta_row_py(row: bytes, seed: bytes) -> bytes:
    """Mode 3: only the bytes that differ from the seed row, in commands of up to 8 bytes.

    The reference for the C `delta_row` of drivers.model.accel."""
    width = max(len(row), len(seed))
    row, seed = row.ljust(width, b"\0"), seed.ljust(width, b"\0")
    diff = (int.from_bytes(row, "big") ^ int.from_bytes(seed, "big")).to_bytes(width, "big")
    out = bytearray()
    pos = 0
    for match in _CHANGED.finditer(diff):
        start, end = match.span()
        while start < end:
            take = min(8, end - start)
            offset = start - pos
            out.append((take - 1) << 5 | min(offset, 31))
            if offset >= 31:
                offset -= 31
                while offset >= 255:
                    out.append(255)
                    offset -= 255
                out.append(offset)
            out += row[start : start + take]
            start += take
            pos = start
    return bytes(out)


_CHANGED = re.compile(rb"[^\x00]+(?:\x00{1,2}[^\x00]+)*")  # small gaps merged into one run
_delta_row = accel.choose("delta_row", _delta_row_py)


def _pcl_band_py(
    rows: Iterable[Row], crop: int, compression: int, blank_rows: int, seed: bytes
) -> tuple[bytes, int, bytes]:
    """Raster transfers for a band of rows, and the (blank_rows, seed) the next band starts from.

    Each line loses `crop` bytes on the left and its trailing white; blank rows are counted
    and skipped with one ESC*b#Y before the next inked row (which then has no seed). The
    reference for the C `pcl_band` of drivers.model.accel."""
    out: list[bytes] = []
    for line, count in rows:
        data = line[crop:].rstrip(b"\0")
        if not data:
            blank_rows += count
            continue
        if blank_rows:
            out.append(ESC + b"*b%dY" % blank_rows)
            blank_rows, seed = 0, b""
        if compression == 2:
            encoded = packbits_bilevel(data)
            out.append((ESC + b"*b%dW" % len(encoded) + encoded) * count)
        else:
            encoded = _delta_row(data, seed)
            out.append(ESC + b"*b%dW" % len(encoded) + encoded)
            if count > 1:  # an empty row repeats the seed row
                out.append((ESC + b"*b0W") * (count - 1))
            seed = data
    return b"".join(out), blank_rows, seed


_pcl_band = accel.choose("pcl_band", _pcl_band_py)


class PclRasterWriter:
    """Raster pages (1-bit, 1 = black) as PCL 5 raster graphics."""

    accepts: tuple[PixelFormat, ...] = (PixelFormat.BLACK_1,)

    def __init__(self, options: PrintOptions, caps: Capabilities, compression: int = 2) -> None:
        if compression not in (2, 3):
            raise ValueError("PCL compression mode must be 2 or 3")
        self.options, self.caps, self.compression = options, caps, compression
        self._size_code: int | None = None
        self._crop = 0
        self._blank_rows = 0
        self._seed = b""

    def start_job(self) -> bytes:
        return RESET + job_settings(self.options, self.caps)

    def start_page(self, page: RasterPage) -> bytes:
        if page.dpi_x != page.dpi_y or page.dpi_x not in RASTER_RESOLUTIONS:
            raise ConversionError(
                f"PCL raster cannot print {page.dpi_x}x{page.dpi_y} dpi "
                f"(takes {', '.join(map(str, RASTER_RESOLUTIONS))})"
            )
        media = page.media_name or media_name_for(*page.size_points)
        code = page_size_code(media)
        out = b""
        if code != self._size_code:  # a page size command ejects: only when it changes
            out += ESC + b"&l%dA" % code + ESC + b"&l0o0E" + ESC + b"&l0L"
            self._size_code = code
        offset = _LOGICAL_OFFSET_300.get(media, _DEFAULT_OFFSET_300) * page.dpi_x / 300
        self._crop = round(offset / 8)  # whole bytes: at most 4 pixels off
        width = max(0, page.width - self._crop * 8)
        self._blank_rows, self._seed = 0, b""
        return out + (
            ESC + b"*t%dR" % page.dpi_x + ESC + b"*r%dS" % width + ESC + b"*r%dT" % page.height
            + ESC + b"*p0x0Y" + ESC + b"*b%dM" % self.compression + ESC + b"*r1A"
        )

    def write_rows(self, rows: Iterable[Row]) -> list[bytes]:
        """The band's commands, at once: the writer's state moves on even if they are dropped."""
        out, self._blank_rows, self._seed = _pcl_band(
            rows, self._crop, self.compression, self._blank_rows, self._seed
        )
        return [out] if out else []

    def end_page(self) -> bytes:
        return ESC + b"*rB\x0c"

    def end_job(self) -> bytes:
        return RESET


class PclTextWriter:
    """Text pages in the printer's Courier 10 pitch at 6 lines per inch."""

    def __init__(self, options: PrintOptions, caps: Capabilities, landscape: bool) -> None:
        self.options, self.caps, self.landscape = options, caps, landscape

    def start_job(self, left_columns: int, top_lines: int) -> bytes:
        media = self.options.media_size(self.caps)
        return (
            RESET + job_settings(self.options, self.caps)
            + ESC + b"&l%dA" % page_size_code(media.name)
            + ESC + b"&l%dO" % (1 if self.landscape else 0)
            + ESC + b"&l0L" + ESC + b"&l6D" + ESC + b"&l%dE" % top_lines
            + ESC + b"(0N" + ESC + b"(s0p10h12v0s0b3T" + ESC + b"&a%dL" % left_columns
        )

    @staticmethod
    def page(lines: list[str]) -> bytes:
        body = "\r\n".join(lines) + "\r\n"
        return body.encode("latin-1", "replace") + b"\x0c"

    @staticmethod
    def end_job() -> bytes:
        return RESET


class PclText:
    """The shared text layout in PCL 5 text (a TextWriter): the logical page starts 1/4 inch
    in and the top margin counts in lines."""

    def __init__(self, options: PrintOptions, caps: Capabilities, layout: TextLayout) -> None:
        self._writer = PclTextWriter(options, caps, layout.landscape)
        self._left_columns = max(0, round((layout.left - 18) / CHAR_WIDTH))
        self._top_lines = max(1, round(layout.top / LINE_HEIGHT))

    def start_job(self) -> bytes:
        return self._writer.start_job(self._left_columns, self._top_lines)

    def page(self, lines: list[str]) -> bytes:
        return self._writer.page(lines)

    def end_job(self) -> bytes:
        return self._writer.end_job()


class Pcl5(Driver):
    family = "pcl5"
    native_formats = (PCL,)
    convertible = (*DOCUMENT_FORMATS, PCL)
    pjl_language = "PCL"
    # ESC&l#X prints each page # times before the next: uncollated copies only.
    collates = False

    def route(self, fmt: str) -> Plan:
        if fmt == PCL:
            return passthrough_plan(fmt, self.name)
        if fmt == TEXT:
            return text_plan(PCL, self.name, PclText, stage_name="text-to-pcl")
        return raster_plan(fmt, PCL, self.name, PclRasterWriter, stage_name="to-pcl")


DRIVERS = (Pcl5("pcl5", Capabilities(
    make_and_model="Generic PCL 5e Laser Printer", manufacturer="Generic",
    model="PCL 5e Laser Printer", command_set=("PCL",),
    document_formats=Pcl5.default_formats(), resolutions=(300, 600),
    default_resolution=600, color=False, duplex=False,
    media=tuple(MEDIA_SIZES[name] for name in (
        "iso_a4_210x297mm", "na_letter_8.5x11in", "na_legal_8.5x14in", "iso_a5_148x210mm",
        "na_executive_7.25x10.5in")),
)),)
