"""Receiving a document: decompress as `compression` says, spool it, fsync before answering."""

from __future__ import annotations

import zlib
from contextlib import aclosing
from typing import BinaryIO

import trio

from drivers.filters.sniff import SNIFF_BYTES, sniff_format
from gateway.core.job import Job
from gateway.core.system import System
from gateway.errors import IppError
from gateway.ipp.enums import Status
from gateway.server.operations import DocumentStream


class Decompressor:
    """gzip, or IPP 'deflate' (raw RFC 1951 as CUPS sends it, or zlib-wrapped)."""

    def __init__(self, compression: str) -> None:
        self.compression = compression
        self._inflater: zlib._Decompress | None = None
        if compression == "gzip":
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def feed(self, data: bytes) -> bytes:
        if self.compression == "none":
            return data
        if self._inflater is None:  # deflate: look at the first bytes for a zlib header
            zlib_header = len(data) >= 2 and data[0] & 0x0F == 8 and (
                (data[0] << 8) | data[1]) % 31 == 0
            self._inflater = zlib.decompressobj(zlib.MAX_WBITS if zlib_header
                                                else -zlib.MAX_WBITS)
        try:
            return self._inflater.decompress(data)
        except zlib.error as exc:
            raise IppError(Status.CLIENT_ERROR_COMPRESSION_ERROR,
                           f"the {self.compression} document data is corrupt ({exc})") from None

    def finish(self) -> bytes:
        if self._inflater is None:
            return b""
        if not self._inflater.eof:
            raise IppError(Status.CLIENT_ERROR_COMPRESSION_ERROR,
                           f"the {self.compression} document data ends early")
        return self._inflater.flush()


async def receive_document(system: System, job: Job, document: DocumentStream) -> int:
    """Spool the document of `job`; returns its size. Raises IppError for bad data."""
    decompressor = Decompressor(job.compression)
    limit = system.config.max_job_bytes
    size = 0
    head = b""
    file: BinaryIO = system.spool.open_document(job.id)
    try:
        async with aclosing(document()) as chunks:
            async for chunk in chunks:
                data = decompressor.feed(chunk)
                size += len(data)
                if size > limit:
                    raise IppError(Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                                   f"the document is larger than {limit >> 20} MB")
                if len(head) < SNIFF_BYTES:
                    head += data[: SNIFF_BYTES - len(head)]
                # Page-cache writes are short; fsync (the slow part) runs in a thread below.
                file.write(data)
        tail = decompressor.finish()
        file.write(tail)
        size += len(tail)
        await trio.to_thread.run_sync(system.spool.finish_document, file)
    finally:
        file.close()
    job.document_bytes = size
    job.has_document = True
    if job.document_format == "application/octet-stream":
        job.format_detected = sniff_format(head) or ""
    return size
