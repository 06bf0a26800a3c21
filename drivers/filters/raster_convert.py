"""Raster events to a printer language: the glue between any raster reader and any writer.

A `RasterSink` (the contract is in drivers.model.raster: PCL, PostScript, PWG ...) says which
pixel formats it takes; `RasterRenderer` converts each page's bands to one of them and counts
the pages it completes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

from PIL import Image

from drivers.filters.convert import PixelAdapter, choose_target
from drivers.filters.stage import PageCallback
from drivers.model.raster import (
    Band,
    PageEnd,
    PageStart,
    PixelFormat,
    RasterEvent,
    RasterPage,
    RasterSink,
    Row,
)

_PIL_MODES = {PixelFormat.BLACK_1: "1", PixelFormat.SGRAY_8: "L", PixelFormat.SRGB_8: "RGB",
              PixelFormat.CMYK_8: "CMYK"}
MEDIA_TOLERANCE_PT = 2.0  # the PWG 5101.1 tolerance, and media_name_for's


@dataclass(frozen=True)
class MediaFit:
    """The media a job asked for, which each raster page is put on when its own page size
    differs: scaled per print-scaling (fit, fill, or none: natural size) and centred."""

    name: str
    width_pt: float
    height_pt: float
    scaling: str = "fit"  # print-scaling: auto, auto-fit, fit, fill, none

    def matches(self, page: RasterPage) -> bool:
        width, height = page.size_points
        return (abs(width - self.width_pt) <= MEDIA_TOLERANCE_PT
                and abs(height - self.height_pt) <= MEDIA_TOLERANCE_PT)


class _PageFitter:
    """One page's rows, resampled (nearest neighbour, a band at a time) and framed in white
    on the requested media. Memory: a band."""

    def __init__(self, page: RasterPage, media: MediaFit) -> None:
        self.source = page
        width = round(media.width_pt * page.dpi_x / 72)
        height = round(media.height_pt * page.dpi_y / 72)
        self.page = page.with_changes(width=width, height=height, page_width_pt=media.width_pt,
                                      page_height_pt=media.height_pt, media_name=media.name)
        sx, sy = width / page.width, height / page.height
        scaling = media.scaling
        if scaling == "auto-fit":
            scaling = "none" if page.width <= width and page.height <= height else "fit"
        scale = {"none": 1.0, "fill": max(sx, sy)}.get(scaling, min(sx, sy))
        self.scaled_w = max(1, round(page.width * scale))
        self.scaled_h = max(1, round(page.height * scale))
        left = (width - self.scaled_w) // 2
        if page.pixels is PixelFormat.BLACK_1:
            left -= left % 8  # whole bytes
        bits = page.pixels.bits_per_pixel
        self._left = left * bits // 8  # bytes; negative: cropped
        self._top = (height - self.scaled_h) // 2  # rows; negative: cropped
        self._white = self.page.white_line
        self._src_rows = 0  # source rows seen
        self._out_rows = 0  # rows of the scaled image emitted (before cropping)
        self._emitted = 0  # rows of the page emitted

    def start(self) -> list[Row]:
        if self._top <= 0:
            return []
        self._emitted = min(self._top, self.page.height)
        return [(self._white, self._emitted)]

    def band(self, rows: list[Row]) -> list[Row]:
        lines = self._scale_lines([line for line, _ in rows])
        out: list[Row] = []
        for line, (_, count) in zip(lines, rows, strict=True):
            self._src_rows += count
            start = self._out_rows
            self._out_rows = -(-self._src_rows * self.scaled_h // self.source.height)  # ceil
            low = max(start + self._top, 0)  # page rows; those off the sheet are cropped
            high = min(self._out_rows + self._top, self.page.height)
            if high > low:
                out.append((line, high - low))
                self._emitted = high
        return out

    def end(self) -> list[Row]:
        rest = self.page.height - self._emitted
        self._emitted = self.page.height
        return [(self._white, rest)] if rest > 0 else []

    def _scale_lines(self, lines: list[bytes]) -> list[bytes]:
        if not lines:
            return []
        mode = _PIL_MODES[self.source.pixels]
        size = (self.source.width, len(lines))
        image = Image.frombytes(mode, size, b"".join(lines))
        if self.scaled_w != self.source.width:
            image = image.resize((self.scaled_w, len(lines)), Image.Resampling.NEAREST)
        data = image.tobytes()
        step = len(data) // len(lines)
        white, left = self._white, self._left
        framed = []
        for i in range(len(lines)):
            row = data[i * step : (i + 1) * step]
            line = white[: max(0, left)] + row[max(0, -left) :]
            framed.append((line + white[len(line) :])[: len(white)])
        return framed


class MediaFitter:
    """Raster events with every page whose size is not `media` put on `media` (the state of
    the page in progress is kept across the reader's chunks)."""

    def __init__(self, media: MediaFit | None) -> None:
        self.media = media
        self._page: _PageFitter | None = None

    def events(self, events: Iterable[RasterEvent]) -> Iterator[RasterEvent]:
        if self.media is None:
            yield from events
            return
        for event in events:
            if isinstance(event, PageStart):
                self._page = None
                if not self.media.matches(event.page):
                    self._page = page = _PageFitter(event.page, self.media)
                    yield PageStart(page.page)
                    if top := page.start():
                        yield Band(top)
                    continue
            elif self._page is not None and isinstance(event, Band):
                if rows := self._page.band(event.rows):
                    yield Band(rows)
                continue
            elif self._page is not None and isinstance(event, PageEnd):
                if rest := self._page.end():
                    yield Band(rest)
                yield PageEnd(self._page.page)
                self._page = None
                continue
            yield event


class RasterSource(Protocol):
    pages_read: int

    def feed(self, chunk: bytes) -> None: ...

    def end_of_input(self) -> None: ...

    def events(self) -> Iterator[RasterEvent]: ...


class RasterRenderer:
    """Writes raster events through a sink; pages `wanted` says no to are skipped."""

    def __init__(
        self,
        sink: RasterSink,
        on_page: PageCallback,
        wanted: Callable[[int], bool] | None = None,
    ) -> None:
        self.sink = sink
        self._on_page = on_page
        self._wanted = wanted
        self._started = False
        self._adapter: PixelAdapter | None = None
        self._skipping = False

    def render(self, events: Iterable[RasterEvent]) -> Iterator[bytes]:
        for event in events:
            if isinstance(event, Band):
                if not self._skipping:
                    assert self._adapter is not None
                    yield from self.sink.write_rows(self._adapter.convert(event.rows))
            elif isinstance(event, PageStart):
                yield from self._start_page(event.page)
            elif isinstance(event, PageEnd) and not self._skipping:
                yield self.sink.end_page()
                self._on_page()

    def _start_page(self, page: RasterPage) -> Iterator[bytes]:
        self._skipping = self._wanted is not None and not self._wanted(page.number)
        if self._skipping:
            return
        if not self._started:
            self._started = True
            yield self.sink.start_job()
        target = choose_target(page.pixels, self.sink.accepts)
        self._adapter = PixelAdapter(page.pixels, target, page.width)
        yield self.sink.start_page(page.with_changes(pixels=target))

    def close(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            yield self.sink.start_job()
        yield self.sink.end_job()


class RasterConverter:
    """A Converter: raster document bytes in (PWG, URF, PNM), printer language out."""

    def __init__(
        self,
        source: RasterSource,
        sink: RasterSink,
        on_page: PageCallback,
        wanted: Callable[[int], bool] | None = None,
        last_page: int | None = None,
        media: MediaFit | None = None,
    ) -> None:
        self._source = source
        self._fitter = MediaFitter(media)
        self._renderer = RasterRenderer(sink, on_page, wanted)
        self._last_page = last_page

    def _done_early(self) -> bool:
        return self._last_page is not None and self._source.pages_read > self._last_page

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._done_early():
            return  # every wanted page is out: the rest need not even be decoded
        self._source.feed(data)
        yield from self._renderer.render(self._fitter.events(self._source.events()))

    def finish(self) -> Iterator[bytes]:
        if not self._done_early():
            self._source.end_of_input()
            yield from self._renderer.render(self._fitter.events(self._source.events()))
        yield from self._renderer.close()
