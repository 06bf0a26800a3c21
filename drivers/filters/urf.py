"""Apple raster (`image/urf`, AirPrint): streaming reader and writer.

Layout (protocols.md 9.5): "UNIRAST\\0" + page count (uint32 BE), then per page a 32-byte
header and the lines in the shared packet codec (0x80 = fill the rest of the line with white).
Colour space numbers follow CUPS's mapping.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable

from drivers.errors import ConversionError
from drivers.filters.linecodec import encode_rows
from drivers.filters.packet_reader import Normaliser, PacketRasterReader, PageLayout, high_bytes
from drivers.model.capabilities import media_name_for
from drivers.model.raster import DEFAULT_LIMITS, PixelFormat, RasterLimits, RasterPage, Row

log = logging.getLogger(__name__)

MAGIC = b"UNIRAST\0"
FILE_HEADER_SIZE = 12
PAGE_HEADER_SIZE = 32

SGRAY, SRGB, CIELAB, ADOBE_RGB, DEVICE_GRAY, DEVICE_RGB, DEVICE_CMYK = range(7)

# (bits per pixel, colour space) -> what the page becomes
_LAYOUTS: dict[tuple[int, int], tuple[PixelFormat, Normaliser | None]] = {}
for _space in (SGRAY, DEVICE_GRAY):
    # Not Apple's: Ghostscript's urf device writes 1-bit pages (0 = white) by default.
    _LAYOUTS[1, _space] = (PixelFormat.BLACK_1, None)
    _LAYOUTS[8, _space] = (PixelFormat.SGRAY_8, None)
    _LAYOUTS[16, _space] = (PixelFormat.SGRAY_8, high_bytes)
for _space in (SRGB, ADOBE_RGB, DEVICE_RGB):
    _LAYOUTS[24, _space] = (PixelFormat.SRGB_8, None)
    _LAYOUTS[48, _space] = (PixelFormat.SRGB_8, high_bytes)
_LAYOUTS[32, DEVICE_CMYK] = (PixelFormat.CMYK_8, None)
_LAYOUTS[64, DEVICE_CMYK] = (PixelFormat.CMYK_8, high_bytes)

_WRITE_LAYOUT = {
    PixelFormat.SGRAY_8: (8, SGRAY),
    PixelFormat.SRGB_8: (24, SRGB),
    PixelFormat.CMYK_8: (32, DEVICE_CMYK),
}


class UrfReader(PacketRasterReader):
    format_name = "URF"

    def __init__(self, limits: RasterLimits = DEFAULT_LIMITS) -> None:
        super().__init__(limits)
        self.declared_pages = 0

    @property
    def stream_header_size(self) -> int:
        return FILE_HEADER_SIZE

    @property
    def page_header_size(self) -> int:
        return PAGE_HEADER_SIZE

    def parse_stream_header(self, header: bytes) -> None:
        if header[:8] != MAGIC:
            raise ConversionError("not a URF document (no UNIRAST header)")
        self.declared_pages = struct.unpack_from(">I", header, 8)[0]

    def parse_page_header(self, header: bytes, number: int) -> PageLayout:
        bits, space, duplex = header[0], header[1], header[2]
        width, height, dpi = struct.unpack_from(">III", header, 12)
        layout = _LAYOUTS.get((bits, space))
        if layout is None:
            raise ConversionError(
                f"URF page {number}: unsupported {bits} bits per pixel in colour space {space}"
            )
        pixels, normalise = layout
        width_pt = width * 72 / dpi if dpi else 0.0
        height_pt = height * 72 / dpi if dpi else 0.0
        page = RasterPage(
            width=width, height=height, pixels=pixels, dpi_x=dpi, dpi_y=dpi, number=number,
            duplex=duplex in (2, 3), tumble=duplex == 2,
            media_name=media_name_for(width_pt, height_pt),
        )
        line_bytes = (width * bits + 7) // 8
        fill = 0 if space == DEVICE_CMYK or bits == 1 else 0xFF
        return PageLayout(page, line_bytes, max(1, bits // 8), fill, normalise)

    def _finish(self) -> None:
        super()._finish()
        if self.declared_pages and self.declared_pages != self.pages_read:
            log.info("URF header announced %d pages, the document held %d",
                     self.declared_pages, self.pages_read)


def file_header(page_count: int) -> bytes:
    return MAGIC + struct.pack(">I", page_count)


def page_header(page: RasterPage, quality: int = 0) -> bytes:
    if page.pixels not in _WRITE_LAYOUT:
        raise ValueError(f"URF has no {page.pixels.value} pixels")
    bits, space = _WRITE_LAYOUT[page.pixels]
    duplex = (2 if page.tumble else 3) if page.duplex else 1
    head = bytes([bits, space, duplex, quality, 0, 0]) + bytes(6)
    return head + struct.pack(">III", page.width, page.height, page.dpi_x) + bytes(8)


class UrfWriter:
    """Encodes pages to URF: `start(page_count)`, then per page `page()` and `rows()`."""

    def start(self, page_count: int) -> bytes:
        return file_header(page_count)

    def page(self, page: RasterPage) -> bytes:
        self._unit = page.pixels.bits_per_pixel // 8
        return page_header(page)

    def rows(self, rows: Iterable[Row]) -> bytes:
        return encode_rows(rows, self._unit)
