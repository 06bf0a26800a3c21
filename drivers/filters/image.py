"""JPEG and PNG: placed on the media per print-scaling and orientation-requested.

For PostScript a baseline JPEG is embedded as it is (/DCTDecode) and the printer scales it;
anything else is decoded by Pillow. For raster printers the image is resampled band by band
at the printer's resolution, so memory is one band of output plus the (draft-reduced) image.
Decompression bombs are refused before decoding.
"""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from PIL import Image, ImageOps, UnidentifiedImageError

from drivers.errors import ConversionError
from drivers.filters.raster_convert import RasterRenderer
from drivers.filters.stage import PageCallback
from drivers.model.capabilities import (
    LANDSCAPE,
    PORTRAIT,
    REVERSE_LANDSCAPE,
    REVERSE_PORTRAIT,
    Capabilities,
    PrintOptions,
)
from drivers.model.raster import (
    Band,
    PageEnd,
    PageStart,
    PixelFormat,
    RasterEvent,
    RasterPage,
    RasterSink,
)

MAX_DOCUMENT_BYTES = 256 << 20
MAX_DECODED_PIXELS = 16_000_000  # after JPEG draft reduction: 48 MB of RGB at most
_SPOOL_IN_MEMORY = 4 << 20
_BAND_ROWS = 64
_ROTATIONS = {PORTRAIT: 0, LANDSCAPE: 90, REVERSE_LANDSCAPE: 270, REVERSE_PORTRAIT: 180}
_TRANSPOSE = {90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
              270: Image.Transpose.ROTATE_270}


@dataclass(frozen=True)
class Placement:
    """Where the image goes on the page, in points from the bottom-left, after `rotation`
    degrees counter-clockwise (w and h are those of the rotated image)."""

    rotation: int
    x: float
    y: float
    w: float
    h: float


def place(
    image_size: tuple[int, int], image_dpi: float, page: tuple[float, float],
    margins: tuple[float, float, float, float], options: PrintOptions,
) -> Placement:
    """Apply orientation-requested and print-scaling (margins: top, bottom, left, right)."""
    page_w, page_h = page
    top, bottom, left, right = margins
    area_w, area_h = page_w - left - right, page_h - top - bottom
    rotation = _ROTATIONS.get(options.orientation or 0, 0)
    if options.orientation is None and (image_size[0] > image_size[1]) != (area_w > area_h):
        rotation = 90
    img_w, img_h = image_size if rotation in (0, 180) else image_size[::-1]
    natural = 72 / image_dpi
    scaling = options.print_scaling
    if scaling == "auto-fit":
        fits = img_w * natural <= area_w and img_h * natural <= area_h
        scaling = "none" if fits else "fit"
    if scaling == "none":
        scale = natural
    elif scaling == "fill":
        scale = max(page_w / img_w, page_h / img_h)
        area_w, area_h, left, bottom = page_w, page_h, 0.0, 0.0
    else:  # fit, auto
        scale = min(area_w / img_w, area_h / img_h)
    w, h = img_w * scale, img_h * scale
    return Placement(rotation, left + (area_w - w) / 2, bottom + (area_h - h) / 2, w, h)


def margins_points(caps: Capabilities) -> tuple[float, float, float, float]:
    top, bottom, left, right = caps.margins
    return tuple(m * 72 / 2540 for m in (top, bottom, left, right))  # type: ignore[return-value]


def open_image(file: IO[bytes] | Path) -> Image.Image:
    """Open without decoding; refuse what is not an image or is a decompression bomb."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(file)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as exc:
        raise ConversionError(f"image refused as a decompression bomb: {exc}") from None
    except UnidentifiedImageError:
        raise ConversionError("the document is not a readable JPEG or PNG image") from None
    if image.format not in ("JPEG", "PNG"):
        image.close()
        raise ConversionError(f"{image.format} images are not supported")
    return image


def decode(image: Image.Image, target: tuple[int, int], gray: bool) -> Image.Image:
    """Decode (JPEG at the smallest scale still >= target), upright, in L or RGB."""
    mode = "L" if gray else "RGB"
    if image.format == "JPEG":
        image.draft(mode, (max(1, target[0]), max(1, target[1])))
    if image.size[0] * image.size[1] > MAX_DECODED_PIXELS:
        raise ConversionError(f"image of {image.size[0]}x{image.size[1]} pixels is too large")
    try:
        image.load()
        upright = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError) as exc:
        raise ConversionError(f"the image cannot be decoded: {exc}") from None
    if upright.mode in ("RGBA", "LA", "PA") or "transparency" in upright.info:
        rgba = upright.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        upright = Image.alpha_composite(white, rgba)
    return upright.convert(mode)


def image_dpi(image: Image.Image) -> float:
    dpi = image.info.get("dpi", (72, 72))[0]
    return float(dpi) if isinstance(dpi, int | float) and 1 <= dpi <= 10000 else 72.0


class ImageSpool:
    """The image document, kept in memory while small and on disk beyond that."""

    def __init__(self, input_path: Path | None) -> None:
        self.input_path = input_path
        self.size = 0
        self._file: IO[bytes] | None = None

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > MAX_DOCUMENT_BYTES:
            raise ConversionError(f"image document larger than {MAX_DOCUMENT_BYTES >> 20} MB")
        if self._file is None:
            self._file = tempfile.SpooledTemporaryFile(_SPOOL_IN_MEMORY)  # noqa: SIM115
        self._file.write(data)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def open(self) -> IO[bytes] | Path:
        if self.input_path is not None:
            return self.input_path
        if self._file is None:
            raise ConversionError("the image document is empty")
        self._file.seek(0)
        return self._file

    def chunks(self, size: int = 65536) -> Iterator[bytes]:
        source = self.open()
        file = source.open("rb") if isinstance(source, Path) else source
        try:
            file.seek(0)
            while chunk := file.read(size):
                yield chunk
        finally:
            if isinstance(source, Path):
                file.close()


def raster_events(image: Image.Image, placement: Placement, page: RasterPage) -> Iterator[
        RasterEvent]:
    """The page as raster bands: white around the image, the image resampled per band."""
    dpi_x, dpi_y = page.dpi_x, page.dpi_y
    left, width = round(placement.x * dpi_x / 72), round(placement.w * dpi_x / 72)
    top = round((page.size_points[1] - placement.y - placement.h) * dpi_y / 72)
    height = round(placement.h * dpi_y / 72)
    pixel_bytes = 1 if image.mode == "L" else 3
    white = page.white_line
    yield PageStart(page)
    y = 0
    if top > 0:
        yield Band([(white, min(top, page.height))])
        y = min(top, page.height)
    scale_y = image.size[1] / max(1, height)
    while y < min(page.height, top + height):
        rows = min(_BAND_ROWS, top + height - y, page.height - y)
        box = (0.0, (y - top) * scale_y, float(image.size[0]), (y - top + rows) * scale_y)
        band = image.resize((width, rows), Image.Resampling.BILINEAR, box=box).tobytes()
        yield Band([_framed(band, i, width, left, pixel_bytes, white) for i in range(rows)])
        y += rows
    if y < page.height:
        yield Band([(white, page.height - y)])
    yield PageEnd(page)


def _framed(band: bytes, i: int, width: int, left: int, size: int, white: bytes) -> tuple[
        bytes, int]:
    row = band[i * width * size : (i + 1) * width * size]
    line = white[: max(0, left) * size] + row[max(0, -left) * size :]
    return (line + white[len(line) :])[: len(white)], 1


class SpooledImageConverter:
    """An image is decoded whole, so it is spooled first (or read from the spool file) and
    printed at `finish`; subclasses say how in `_print`."""

    def __init__(self, input_path: Path | None) -> None:
        self._spool = ImageSpool(input_path)

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._spool.feed(data)
        return iter(())

    def finish(self) -> Iterator[bytes]:
        try:
            with open_image(self._spool.open()) as image:
                yield from self._print(image)
        finally:
            self._spool.close()

    def _print(self, image: Image.Image) -> Iterator[bytes]:
        raise NotImplementedError


class ImageToRaster(SpooledImageConverter):
    """Converter: a JPEG/PNG document to a raster printer language through `sink`, at
    `resolution` (x, y dpi; default the job's square `PrintOptions.dpi`)."""

    def __init__(
        self, sink: RasterSink, options: PrintOptions, caps: Capabilities, on_page: PageCallback,
        input_path: Path | None = None, resolution: tuple[int, int] | None = None,
    ) -> None:
        super().__init__(input_path)
        self.options, self.caps = options, caps
        self.resolution = resolution or (options.dpi(caps),) * 2
        self._renderer = RasterRenderer(sink, on_page)
        self._gray = PixelFormat.SRGB_8 not in sink.accepts or not options.in_color(caps)

    def _print(self, image: Image.Image) -> Iterator[bytes]:
        media = self.options.media_size(self.caps)
        page_pt = (media.width_points, media.height_points)
        placement = place(image.size, image_dpi(image), page_pt, margins_points(self.caps),
                          self.options)
        dpi_x, dpi_y = self.resolution
        dpi = max(dpi_x, dpi_y)  # decoded at least this fine whichever way it is turned
        target = (round(placement.w * dpi / 72), round(placement.h * dpi / 72))
        if placement.rotation in (90, 270):
            target = target[::-1]
        decoded = decode(image, target, self._gray)
        if placement.rotation:
            decoded = decoded.transpose(_TRANSPOSE[placement.rotation])
        page = RasterPage(
            width=round(page_pt[0] * dpi_x / 72), height=round(page_pt[1] * dpi_y / 72),
            pixels=PixelFormat.SGRAY_8 if self._gray else PixelFormat.SRGB_8,
            dpi_x=dpi_x, dpi_y=dpi_y, page_width_pt=page_pt[0], page_height_pt=page_pt[1],
            media_name=media.name,
        )
        yield from self._renderer.render(raster_events(decoded, placement, page))
        yield from self._renderer.close()
