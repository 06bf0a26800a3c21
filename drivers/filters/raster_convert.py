"""Raster events to a printer language: the glue between any raster reader and any writer.

A `RasterSink` (PCL, PostScript, PWG ...) says which pixel formats it takes; `RasterRenderer`
converts each page's bands to one of them and counts the pages it completes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from drivers.filters.convert import PixelAdapter, choose_target
from drivers.filters.raster import (
    Band,
    PageEnd,
    PageStart,
    PixelFormat,
    RasterEvent,
    RasterPage,
    Row,
)
from drivers.filters.stage import PageCallback


class RasterSink(Protocol):
    accepts: tuple[PixelFormat, ...]

    def start_job(self) -> bytes: ...

    def start_page(self, page: RasterPage) -> bytes: ...

    def write_rows(self, rows: list[Row]) -> Iterable[bytes]: ...

    def end_page(self) -> bytes: ...

    def end_job(self) -> bytes: ...


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
    ) -> None:
        self._source = source
        self._renderer = RasterRenderer(sink, on_page, wanted)
        self._last_page = last_page

    def _done_early(self) -> bool:
        return self._last_page is not None and self._source.pages_read > self._last_page

    def feed(self, data: bytes) -> Iterator[bytes]:
        if self._done_early():
            return  # every wanted page is out: the rest need not even be decoded
        self._source.feed(data)
        yield from self._renderer.render(self._source.events())

    def finish(self) -> Iterator[bytes]:
        if not self._done_early():
            self._source.end_of_input()
            yield from self._renderer.render(self._source.events())
        yield from self._renderer.close()
