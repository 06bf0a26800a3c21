"""Receiving a document (gateway.server.document): inflating gzip and deflate in bounded pieces,
refusing a decompression bomb by its ratio, and the max_job_bytes limit."""

from __future__ import annotations

import gzip
import random
import zlib
from collections.abc import AsyncGenerator, Iterable, Iterator
from functools import cache
from pathlib import Path

import pytest

from gateway.config import Config, PrinterConfig
from gateway.core.job import Job
from gateway.core.system import System
from gateway.errors import IppError
from gateway.server.document import (
    MAX_RATIO,
    PIECE_BYTES,
    RATIO_FLOOR,
    Decompressor,
    receive_document,
)
from ippwire.enums import Status

MB = 1 << 20


def gzip_bomb(total: int, block: int = MB) -> Iterator[bytes]:
    """`total` zero bytes gzip-compressed as a stream: never more than `block` of them in memory."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(block)
    for _ in range(total // block):
        if packed := packer.compress(zeros):
            yield packed
    yield packer.flush()


@cache
def document_text(size: int) -> bytes:
    """Text-like bytes that compress as real documents do (a few to one)."""
    words = [b"print", b"job", b"page", b"%PDF-1.7", b"stream", b"endobj", b"0 0 612 792", b"\n"]
    chooser = random.Random(9)
    out = bytearray()
    while len(out) < size:
        out += chooser.choice(words) + b" " + str(chooser.randrange(10**6)).encode()
    return bytes(out[:size])


def inflate(decompressor: Decompressor, chunks: Iterable[bytes]) -> bytes:
    out = bytearray()
    for chunk in chunks:
        for piece in decompressor.feed(chunk):
            assert 0 < len(piece) <= decompressor.piece_bytes
            out += piece
    return bytes(out + decompressor.finish())


@pytest.fixture
def system(tmp_path: Path) -> System:
    config = Config(spool=tmp_path / "spool", max_job_bytes=256 * MB,
                    printers=(PrinterConfig("office", f"file://{tmp_path}/out/"),))
    return System(config)


def new_job(compression: str) -> Job:
    return Job(id=7, printer="office", uuid="urn:uuid:7", name="doc", user="test",
               compression=compression)


async def receive(system: System, job: Job, chunks: Iterable[bytes]) -> int:
    async def document() -> AsyncGenerator[bytes, None]:
        for chunk in chunks:
            yield chunk

    return await receive_document(system, job, document)


def test_the_constants_keep_real_documents_and_refuse_bombs() -> None:
    # A bomb inflates about 1000:1 (deflate's ceiling is 1032:1); documents stay under 100:1.
    assert 100 < MAX_RATIO < 1000
    assert RATIO_FLOOR >= 16 * MB and PIECE_BYTES <= MB


def test_one_small_chunk_inflates_in_bounded_pieces_until_the_ratio_stops_it() -> None:
    bomb = b"".join(gzip_bomb(200 * MB))
    assert len(bomb) < 300_000  # 200 MB of zeros in one network-sized chunk or so
    decompressor = Decompressor("gzip")
    produced = 0
    with pytest.raises(IppError) as caught:
        for piece in decompressor.feed(bomb):
            assert len(piece) <= PIECE_BYTES
            produced += len(piece)
    assert caught.value.status == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    assert f"more than {MAX_RATIO}:1" in caught.value.message
    assert RATIO_FLOOR < produced + PIECE_BYTES <= RATIO_FLOOR + 2 * PIECE_BYTES


async def test_a_streamed_gzip_bomb_is_refused_and_leaves_no_document(system: System) -> None:
    job = new_job("gzip")
    with pytest.raises(IppError) as caught:
        await receive(system, job, gzip_bomb(200 * MB))
    assert caught.value.status == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    assert "decompression bomb" in caught.value.message
    assert not system.spool.document_path(job.id).exists()
    assert not job.has_document


@pytest.mark.parametrize("compression", ["gzip", "deflate", "deflate-zlib"])
async def test_a_normal_compressed_document_is_spooled_exactly(system: System,
                                                               compression: str) -> None:
    payload = document_text(3 * MB)
    if compression == "gzip":
        packed = gzip.compress(payload)
    elif compression == "deflate":
        packer = zlib.compressobj(wbits=-15)  # raw deflate, as CUPS sends it
        packed = packer.compress(payload) + packer.flush()
    else:
        packed = zlib.compress(payload)
    job = new_job(compression.split("-")[0])
    chunks = [packed[start:start + 65536] for start in range(0, len(packed), 65536)]
    assert await receive(system, job, chunks) == len(payload)
    assert system.spool.document_path(job.id).read_bytes() == payload
    assert job.document_bytes == len(payload) and job.has_document


async def test_a_highly_compressible_document_under_the_floor_is_kept(system: System) -> None:
    payload = bytes(8 * MB)  # a blank uncompressed bitmap: about 1000:1, but small
    job = new_job("gzip")
    assert await receive(system, job, [gzip.compress(payload)]) == len(payload)
    assert system.spool.document_path(job.id).read_bytes() == payload


@pytest.mark.parametrize("piece_bytes", [1, 7, 4096])
def test_output_does_not_depend_on_chunks_or_piece_size(piece_bytes: int) -> None:
    payload = document_text(20_000) + bytes(30_000)
    packed = gzip.compress(payload)
    for step in (1, 13, len(packed)):
        chunks = [packed[start:start + step] for start in range(0, len(packed), step)]
        decompressor = Decompressor("gzip", piece_bytes=piece_bytes)
        assert inflate(decompressor, chunks) == payload
        assert decompressor.consumed == len(packed)
        assert decompressor.produced == len(payload)


def test_ratio_applies_only_past_the_floor() -> None:
    packed = gzip.compress(bytes(100_000))  # about 1000:1
    assert inflate(Decompressor("gzip", max_ratio=10, floor=200_000), [packed]) == bytes(100_000)
    with pytest.raises(IppError, match="more than 10:1"):
        inflate(Decompressor("gzip", max_ratio=10, floor=50_000), [packed])
    assert len(inflate(Decompressor("gzip", max_ratio=2000, floor=0), [packed])) == 100_000


def test_corrupt_and_truncated_data_are_compression_errors() -> None:
    packed = gzip.compress(document_text(10_000))
    with pytest.raises(IppError) as corrupt:
        inflate(Decompressor("gzip"), [b"this is not gzip at all"])
    with pytest.raises(IppError, match="ends early") as truncated:
        inflate(Decompressor("gzip"), [packed[:-20]])
    assert corrupt.value.status == truncated.value.status == Status.CLIENT_ERROR_COMPRESSION_ERROR


async def test_max_job_bytes_still_limits_an_uncompressed_document(tmp_path: Path) -> None:
    config = Config(spool=tmp_path / "spool", max_job_bytes=MB,
                    printers=(PrinterConfig("office", f"file://{tmp_path}/out/"),))
    system = System(config)
    job = new_job("none")
    with pytest.raises(IppError, match="larger than 1 MB") as caught:
        await receive(system, job, [bytes(65536)] * 17)
    assert caught.value.status == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    assert not system.spool.document_path(job.id).exists()
