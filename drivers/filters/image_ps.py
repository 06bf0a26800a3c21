"""JPEG/PNG to PostScript: one page with the image placed by a transformation matrix.

A baseline JPEG without an EXIF rotation goes in untouched as /DCTDecode (no decode, no
re-encode: the printer scales it). Everything else is decoded once and embedded as a
RunLengthDecode (level 2) or FlateDecode (level 3) image at its own resolution.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

from drivers.filters.image import (
    ImageSpool,
    Placement,
    SpooledImageConverter,
    decode,
    image_dpi,
    margins_points,
    open_image,
    place,
)
from drivers.filters.packbits import packbits
from drivers.filters.raster import PixelFormat
from drivers.filters.stage import PageCallback
from drivers.languages.postscript import PsJob, image_dict

_DCT_COLOR = {"L": PixelFormat.SGRAY_8, "RGB": PixelFormat.SRGB_8, "CMYK": PixelFormat.CMYK_8}
_EMBED_DPI = 300  # decoded images are reduced to at most this resolution on the page


def transform(placement: Placement) -> str:
    """translate/rotate/scale mapping the unit square onto the placement rectangle."""
    p = placement
    if p.rotation == 90:
        return f"{p.x + p.w:.2f} {p.y:.2f} translate 90 rotate {p.h:.2f} {p.w:.2f} scale"
    if p.rotation == 270:
        return f"{p.x:.2f} {p.y + p.h:.2f} translate -90 rotate {p.h:.2f} {p.w:.2f} scale"
    if p.rotation == 180:
        return f"{p.x + p.w:.2f} {p.y + p.h:.2f} translate 180 rotate {p.w:.2f} {p.h:.2f} scale"
    return f"{p.x:.2f} {p.y:.2f} translate {p.w:.2f} {p.h:.2f} scale"


def _embeddable_jpeg(image: Image.Image, level: int, gray: bool) -> bool:
    orientation = image.getexif().get(0x0112, 1)
    return (
        image.format == "JPEG"
        and not image.info.get("progressive") and not image.info.get("progression")
        and image.mode in _DCT_COLOR
        and orientation == 1
        and not (gray and image.mode != "L")
        and level >= 2
    )


def _verify(spool: ImageSpool, size: tuple[int, int]) -> None:
    """Decode at 1/8 scale (cheap) to be sure the JPEG we pass through is whole."""
    with open_image(spool.open()) as check:
        decode(check, (max(1, size[0] // 8), max(1, size[1] // 8)), check.mode == "L")


class ImageToPostScript(SpooledImageConverter):
    """Converter: a JPEG/PNG document to a one-page PostScript job."""

    def __init__(
        self, job: PsJob, on_page: PageCallback, input_path: Path | None = None
    ) -> None:
        super().__init__(input_path)
        self.job = job
        self._on_page = on_page

    def _print(self, image: Image.Image) -> Iterator[bytes]:
        options, caps = self.job.options, self.job.caps
        media = options.media_size(caps)
        page = (media.width_points, media.height_points)
        placement = place(image.size, image_dpi(image), page, margins_points(caps), options)
        gray = not options.in_color(caps)
        yield self.job.header()
        yield self.job.page_start(*page)
        yield f"gsave\n{transform(placement)}\n".encode("ascii")
        if _embeddable_jpeg(image, self.job.level, gray):
            yield from self._jpeg(image)
        else:
            yield from self._decoded(image, placement, gray)
        yield b"\ngrestore\n" + self.job.page_end()
        self._on_page()
        yield self.job.trailer()

    def _jpeg(self, image: Image.Image) -> Iterator[bytes]:
        _verify(self._spool, image.size)
        width, height = image.size
        pixels = _DCT_COLOR[image.mode]
        yield image_dict(width, height, pixels, "/DCTDecode filter", adobe_cmyk=(
            image.mode == "CMYK" and "adobe" in image.info))
        yield from self._spool.chunks()

    def _decoded(self, image: Image.Image, placement: Placement, gray: bool) -> Iterator[bytes]:
        longest = max(placement.w, placement.h) * _EMBED_DPI / 72
        scale = min(1.0, longest / max(image.size))
        target = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
        decoded = decode(image, target, gray)
        if decoded.size[0] > target[0] * 2:
            decoded = decoded.resize(target, Image.Resampling.BILINEAR)
        width, height = decoded.size
        pixels = PixelFormat.SGRAY_8 if decoded.mode == "L" else PixelFormat.SRGB_8
        flate = self.job.level >= 3
        filters = "/FlateDecode filter" if flate else "/RunLengthDecode filter"
        yield image_dict(width, height, pixels, filters)
        data = decoded.tobytes()
        row = len(data) // height
        if flate:
            compressor = zlib.compressobj(6)
            for start in range(0, len(data), 1 << 20):
                yield compressor.compress(data[start : start + (1 << 20)])
            yield compressor.flush()
        else:
            for start in range(0, len(data), row):
                yield packbits(data[start : start + row])
            yield b"\x80"
