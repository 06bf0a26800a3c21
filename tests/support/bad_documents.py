"""Documents that must fail to print, each with the format it is sent as: truncated, lying
about its size, a decompression bomb, empty, or another format than it claims."""

from __future__ import annotations

import io
import struct
from pathlib import Path

from PIL import Image

from drivers.filters.pwg_raster import page_header
from drivers.model.raster import PixelFormat, RasterPage
from tests.peers import CORPUS_DIR as CORPUS


def jpeg_bomb() -> bytes:
    """A small JPEG whose header claims 60000 x 60000 pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, "JPEG")
    data = bytearray(buffer.getvalue())
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 60000, 60000)
    return bytes(data)


def bad_documents(tmp: Path) -> dict[str, tuple[bytes, str]]:
    pdf = (CORPUS / "testpage-1p-vector.pdf").read_bytes()
    absurd = bytearray(page_header(RasterPage(8, 2, PixelFormat.SGRAY_8, 300, 300)))
    struct.pack_into(">III", absurd, 372, 0x7FFFFFFF, 0x7FFFFFFF, 0)
    urf_page = bytes([8, 0, 1, 4]) + bytes(8) + struct.pack(">III", 100, 2, 300) + bytes(8)
    return {
        "truncated-pdf": (pdf[: len(pdf) // 2], "application/pdf"),
        "absurd-pwg": (b"RaS2" + bytes(absurd) + bytes(64), "image/pwg-raster"),
        "lying-urf": (b"UNIRAST\0\0\0\0\1" + urf_page + b"\x00\x80" + b"\x00" * 20,
                      "image/urf"),
        "jpeg-bomb": (jpeg_bomb(), "image/jpeg"),
        "empty": (b"", "application/pdf"),
        "mismatch": ((CORPUS / "ladybird-2560x1600.jpg").read_bytes(), "application/pdf"),
        "truncated-jpeg": ((CORPUS / "ladybird-2560x1600.jpg").read_bytes()[:5000],
                           "image/jpeg"),
        "not-text": (b"\x00\x01\x02\x03" * 10, "application/octet-stream"),
    }
