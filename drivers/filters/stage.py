"""The Stage contract: one step of a conversion, chunks in, chunks out, bounded channels.

A stage reads byte chunks from its inbox until the channel ends and writes byte chunks to its
outbox; it closes both when it returns (that is how the next stage learns the data ended, or the
previous one that nobody listens any more). Channels hold a few chunks of at most `CHUNK` bytes,
so a pipeline's memory is bounded whatever the document's size.

Most stages wrap a sans-I/O `Converter` (feed bytes, get bytes back lazily); `ConverterStage`
drives it and keeps the event loop responsive between pieces of CPU work.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import trio

CHUNK = 64 * 1024
CHANNEL_DEPTH = 2  # chunks buffered between two stages
MAX_BUSY_SECONDS = 0.02  # CPU time a stage may take before yielding to other tasks

Inbox = trio.MemoryReceiveChannel[bytes]
Outbox = trio.MemorySendChannel[bytes]


@dataclass
class Progress:
    """Pages produced and bytes delivered so far; `on_change` hears every update."""

    pages: int = 0
    bytes_sent: int = 0
    copies_each: int = 1  # times the printer prints each page sent (it makes the copies)
    path: str = ""  # the plan's steps, once chosen: the route the document takes
    on_change: Callable[[Progress], None] | None = field(default=None, repr=False)

    def page_done(self) -> None:
        self.pages += 1
        self._changed()

    def sent(self, size: int) -> None:
        self.bytes_sent += size
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self)


class Converter(Protocol):
    """A sans-I/O conversion: bytes in, an iterable of output pieces back (lazily is best)."""

    def feed(self, data: bytes) -> Iterable[bytes]: ...

    def finish(self) -> Iterable[bytes]:
        """The input ended: the rest of the output. Raises ConversionError if it was bad."""
        ...


PageCallback = Callable[[], None]


class Stage(ABC):
    name: str = "stage"
    reports_pages: bool = False  # whether this stage calls progress.page_done() per page

    @abstractmethod
    async def run(self, inbox: Inbox, outbox: Outbox, progress: Progress) -> None:
        """Convert everything from `inbox` into `outbox`; close both before returning."""


class OutputBuffer:
    """Collects small output pieces into CHUNK-sized sends and yields the CPU regularly."""

    def __init__(self, outbox: Outbox) -> None:
        self._outbox = outbox
        self._pending = bytearray()
        self._busy_since = time.perf_counter()

    async def drain(self, pieces: Iterable[bytes]) -> None:
        for piece in pieces:
            self._pending += piece
            if len(self._pending) >= CHUNK:
                await self.flush()
            elif time.perf_counter() - self._busy_since > MAX_BUSY_SECONDS:
                await trio.lowlevel.checkpoint()
                self._busy_since = time.perf_counter()

    async def flush(self) -> None:
        if self._pending:
            data, self._pending = bytes(self._pending), bytearray()
            await self._outbox.send(data)
        self._busy_since = time.perf_counter()


class ConverterStage(Stage):
    """Runs a sans-I/O Converter made fresh for each run (it may count pages)."""

    def __init__(
        self, name: str, make: Callable[[PageCallback], Converter], reports_pages: bool = True
    ) -> None:
        self.name = name
        self._make = make
        self.reports_pages = reports_pages

    async def run(self, inbox: Inbox, outbox: Outbox, progress: Progress) -> None:
        converter = self._make(progress.page_done)
        async with inbox, outbox:
            output = OutputBuffer(outbox)
            async for chunk in inbox:
                await output.drain(converter.feed(chunk))
            await output.drain(converter.finish())
            await output.flush()


class Wrapper:
    """A Converter that passes data through between a fixed prologue and epilogue."""

    def __init__(self, prologue: bytes = b"", epilogue: bytes = b"") -> None:
        self._prologue = prologue
        self._epilogue = epilogue

    def feed(self, data: bytes) -> Iterable[bytes]:
        if self._prologue:
            yield self._prologue
            self._prologue = b""
        yield data

    def finish(self) -> Iterable[bytes]:
        if self._prologue:
            yield self._prologue
        yield self._epilogue


def open_channel() -> tuple[Outbox, Inbox]:
    return trio.open_memory_channel[bytes](CHANNEL_DEPTH)
