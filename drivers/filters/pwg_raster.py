"""PWG raster (PWG 5102.4, `image/pwg-raster`): streaming reader and writer.

Layout (protocols.md 9.1-9.3): "RaS2", then per page a 1796-byte big-endian header and
`Height` lines compressed with the shared packet codec.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from drivers.errors import ConversionError
from drivers.filters.linecodec import encode_rows
from drivers.filters.packet_reader import (
    Normaliser,
    PacketRasterReader,
    PageLayout,
    high_bytes,
    inverted,
    inverted_high_bytes,
)
from drivers.model.capabilities import media_name_for
from drivers.model.raster import PixelFormat, RasterPage, Row

SYNC = b"RaS2"
HEADER_SIZE = 1796

# ColorSpace values (protocols.md 9.3)
CS_RGB, CS_BLACK, CS_CMYK, CS_SGRAY, CS_SRGB, CS_ADOBE_RGB, CS_DEVICE_W = 1, 3, 6, 18, 19, 20, 0

_GRAY_SPACES = (CS_SGRAY, CS_DEVICE_W)
_RGB_SPACES = (CS_SRGB, CS_ADOBE_RGB, CS_RGB)


def _u32(header: bytes, offset: int) -> int:
    value: int = struct.unpack_from(">I", header, offset)[0]
    return value


def _cstring(header: bytes, offset: int, size: int = 64) -> str:
    return header[offset : offset + size].split(b"\0", 1)[0].decode("ascii", "replace")


def _pixel_layout(space: int, bits: int, colors: int) -> tuple[PixelFormat, Normaliser | None]:
    """The PixelFormat a (ColorSpace, BitsPerColor) pair becomes, and how to get there."""
    if space == CS_BLACK and colors == 1 and bits == 1:
        return PixelFormat.BLACK_1, None
    if space == CS_BLACK and colors == 1 and bits in (8, 16):
        return PixelFormat.SGRAY_8, inverted if bits == 8 else inverted_high_bytes
    choices = {1: (_GRAY_SPACES, PixelFormat.SGRAY_8), 3: (_RGB_SPACES, PixelFormat.SRGB_8),
               4: ((CS_CMYK,), PixelFormat.CMYK_8)}
    spaces, pixels = choices.get(colors, ((), PixelFormat.SGRAY_8))
    if space in spaces and bits in (8, 16):
        return pixels, None if bits == 8 else high_bytes
    raise ConversionError(
        f"PWG raster: unsupported colour space {space} with {colors} colours of {bits} bits"
    )


class PwgRasterReader(PacketRasterReader):
    format_name = "PWG raster"

    @property
    def stream_header_size(self) -> int:
        return len(SYNC)

    @property
    def page_header_size(self) -> int:
        return HEADER_SIZE

    def parse_stream_header(self, header: bytes) -> None:
        if header != SYNC:
            raise ConversionError("not a PWG raster document (no RaS2 sync word)")

    def parse_page_header(self, header: bytes, number: int) -> PageLayout:
        width, height = _u32(header, 372), _u32(header, 376)
        bits_color, bits_pixel = _u32(header, 384), _u32(header, 388)
        line_bytes, order = _u32(header, 392), _u32(header, 396)
        space, colors = _u32(header, 400), _u32(header, 420)
        if order != 0:
            raise ConversionError(f"PWG raster page {number}: ColorOrder {order} is not chunked")
        if bits_pixel != bits_color * colors or bits_pixel == 0:
            raise ConversionError(
                f"PWG raster page {number}: {bits_pixel} bits per pixel for {colors} colours "
                f"of {bits_color} bits"
            )
        if line_bytes != (width * bits_pixel + 7) // 8:
            raise ConversionError(
                f"PWG raster page {number}: {line_bytes} bytes per line for {width} pixels "
                f"of {bits_pixel} bits"
            )
        pixels, normalise = _pixel_layout(space, bits_color, colors)
        page_w, page_h = _u32(header, 352), _u32(header, 356)
        page = RasterPage(
            width=width, height=height, pixels=pixels, number=number,
            dpi_x=_u32(header, 276), dpi_y=_u32(header, 280),
            page_width_pt=float(page_w) if 0 < page_w < 100_000 else 0.0,
            page_height_pt=float(page_h) if 0 < page_h < 100_000 else 0.0,
            duplex=_u32(header, 272) != 0, tumble=_u32(header, 368) != 0,
            copies=max(1, min(_u32(header, 340), 999)),
            media_name=_cstring(header, 1732) or media_name_for(page_w, page_h),
        )
        unit = max(1, bits_pixel // 8)
        fill = 0 if space in (CS_BLACK, CS_CMYK) else 0xFF
        return PageLayout(page, line_bytes, unit, fill, normalise)


_WRITE_SPACE = {
    PixelFormat.BLACK_1: (CS_BLACK, 1, 1),
    PixelFormat.SGRAY_8: (CS_SGRAY, 8, 1),
    PixelFormat.SRGB_8: (CS_SRGB, 8, 3),
    PixelFormat.CMYK_8: (CS_CMYK, 8, 4),
}


def page_header(page: RasterPage, total_pages: int = 0, quality: int = 0) -> bytes:
    """The 1796-byte PWG page header for `page`."""
    space, bits, colors = _WRITE_SPACE[page.pixels]
    header = bytearray(HEADER_SIZE)
    header[0:9] = b"PwgRaster"
    width_pt, height_pt = page.size_points
    media = (page.media_name or media_name_for(width_pt, height_pt)).encode("ascii")[:63]
    header[1732 : 1732 + len(media)] = media
    fields = (
        (272, int(page.duplex)), (276, page.dpi_x), (280, page.dpi_y), (340, page.copies),
        (352, round(width_pt)), (356, round(height_pt)), (368, int(page.tumble)),
        (372, page.width), (376, page.height), (384, bits), (388, bits * colors),
        (392, page.bytes_per_line), (400, space), (420, colors), (452, total_pages),
        (456, 1), (460, 1), (480, 0x00FFFFFF), (484, quality),
    )
    for offset, value in fields:
        struct.pack_into(">I", header, offset, value)
    return bytes(header)


class PwgRasterWriter:
    """Encodes pages to PWG raster: `start()`, then per page `page()` and `rows()`."""

    def start(self) -> bytes:
        return SYNC

    def page(self, page: RasterPage, total_pages: int = 0) -> bytes:
        self._unit = max(1, page.pixels.bits_per_pixel // 8)
        return page_header(page, total_pages)

    def rows(self, rows: Iterable[Row]) -> bytes:
        return encode_rows(rows, self._unit)
