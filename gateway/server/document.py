"""Receiving a document: decompress as `compression` says, spool it, fsync before answering."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import aclosing, suppress
from typing import BinaryIO

import trio

from drivers import SNIFF_BYTES, sniff_format
from gateway.core.job import Job
from gateway.core.system import System
from gateway.errors import IppError
from gateway.server.operations import DocumentStream
from ippwire.enums import Status

# Decompression bounds. Deflate cannot expand more than about 1032:1, and a gzip bomb sits right
# at that (1.1 MB -> 1 GiB). Real documents are far below 100:1: PDF streams and JPEG are already
# compressed (about 1:1 under gzip), PWG raster and URF carry their own PackBits, plain text
# gives 3-10:1. MAX_RATIO sits between, with room on both sides: twice what a real document
# reaches, a fifth of a bomb's. Past it the document is refused, but only once it has inflated
# beyond RATIO_FLOOR: a small document (a page of spaces, an uncompressed blank bitmap) may reach
# any ratio and costs nothing to keep. max_job_bytes still caps every document.
MAX_RATIO = 200
RATIO_FLOOR = 64 << 20
# No inflate call returns more than this: a 64 KiB network chunk can hold 64 MiB of zeros.
PIECE_BYTES = 256 << 10


class Decompressor:
    """gzip, or IPP 'deflate' (raw RFC 1951 as CUPS sends it, or zlib-wrapped), inflated in
    pieces of at most `piece_bytes`; refuses output above `max_ratio` times the compressed
    bytes consumed, once the output exceeds `floor` bytes."""

    def __init__(self, compression: str, *, max_ratio: int = MAX_RATIO,
                 floor: int = RATIO_FLOOR, piece_bytes: int = PIECE_BYTES) -> None:
        self.compression = compression
        self.max_ratio, self.floor, self.piece_bytes = max_ratio, floor, piece_bytes
        self.consumed = 0  # compressed bytes inflated so far
        self.produced = 0  # decompressed bytes returned so far
        self._inflater: zlib._Decompress | None = None
        if compression == "gzip":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decompressed bytes of `data`, in non-empty pieces; raises IppError."""
        if self.compression == "none":
            if data:
                yield data
            return
        if self._inflater is None:  # deflate: look at the first bytes for a zlib header
            zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (
                (data[0] << 8) | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_header
                                                else -zlib.MAX_WBITS)
        inflater = self._inflater
        while True:
            try:
                piece = inflater.decompress(data, self.piece_bytes)
            except zlib.error as exc:
                raise IppError(Status.CLIENT_ERROR_COMPRESSION_ERROR,
                               f"the {self.compression} document data is corrupt ({exc})"
                               ) from None
            self.consumed += len(data) - len(inflater.unconsumed_tail)
            data = inflater.unconsumed_tail
            if piece:
                self._count(len(piece))
                yield piece
            # A full piece may leave output pending inside zlib even with no input left.
            if not data and len(piece) < self.piece_bytes:
                return

    def _count(self, size: int) -> None:
        self.produced += size
        if self.produced > self.floor and self.produced > self.max_ratio * self.consumed:
            raise IppError(
                Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                f"the {self.compression} document expands more than {self.max_ratio}:1 "
                f"({self.produced} bytes from {self.consumed}); refused as a decompression bomb")

    def finish(self) -> bytes:
        if self._inflater is None:
            return b""
        if not self._inflater.eof:
            raise IppError(Status.CLIENT_ERROR_COMPRESSION_ERROR,
                           f"the {self.compression} document data ends early")
        return self._inflater.flush()  # empty: feed() drained zlib of every byte it held


async def receive_document(system: System, job: Job, document: DocumentStream) -> int:
    """Spool the document of `job`; returns its size. Raises IppError for bad data, and then
    (as on any failure) leaves no partial document behind."""
    decompressor = Decompressor(job.compression)
    compressed = job.compression != "none"
    limit = system.config.max_job_bytes
    size = 0
    head = b""
    done = False
    file: BinaryIO = system.spool.open_document(job.id)
    try:
        async with aclosing(document()) as chunks:
            async for chunk in chunks:
                for data in decompressor.feed(chunk):
                    size += len(data)
                    if size > limit:
                        raise IppError(Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                                       f"the document is larger than {limit >> 20} MB")
                    if len(head) < SNIFF_BYTES:
                        head += data[: SNIFF_BYTES - len(head)]
                    # Page-cache writes are short; fsync (the slow part) runs in a thread below.
                    file.write(data)
                    if compressed:  # one chunk may inflate to many pieces: let others run
                        await trio.lowlevel.checkpoint()
        tail = decompressor.finish()
        file.write(tail)
        size += len(tail)
        await trio.to_thread.run_sync(system.spool.finish_document, file)
        done = True
    finally:
        if not done:
            # After a failed write (ENOSPC) the buffer still holds bytes and close() fails
            # flushing them again: that second error must not replace the first, nor keep
            # the partial document on a full disk.
            with suppress(OSError):
                file.close()
            system.spool.document_path(job.id).unlink(missing_ok=True)
    detected = (sniff_format(head) or "" if job.document_format == "application/octet-stream"
                else job.format_detected)
    system.store.update(job, document_bytes=size, has_document=True, format_detected=detected)
    return size
