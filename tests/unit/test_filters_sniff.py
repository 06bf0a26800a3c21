"""Format sniffing by magic bytes (protocols.md Appendix A)."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.filters.sniff import sniff_format

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"


@pytest.mark.parametrize("head, expected", [
    (b"%PDF-1.7\n", "application/pdf"),
    (b"%!PS-Adobe-3.0\n", "application/postscript"),
    (b"\x04%!PS\n", "application/postscript"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"\xff\xd8\xff\xdb\x00\x43", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "image/png"),
    (b"RaS2PwgRaster\0", "image/pwg-raster"),
    (b"UNIRAST\0\0\0\0\1", "image/urf"),
    (b"\x1bE\x1b&l26A", "application/vnd.hp-PCL"),
    (b") HP-PCL XL;2;0", "application/vnd.hp-PCLXL"),
    (b"\x1b%-12345X@PJL JOB\r\n@PJL ENTER LANGUAGE=PCLXL\r\n", "application/vnd.hp-PCLXL"),
    (b"\x1b%-12345X@PJL ENTER LANGUAGE = PCL\n\x1bE", "application/vnd.hp-PCL"),
    (b"\x1b%-12345X@PJL SET COPIES=1\n%!PS-Adobe", "application/postscript"),
    (b"Hello, world.\r\n\tTabbed\f", "text/plain"),
    (b"caf\xc3\xa9 cr\xc3", "text/plain"),  # a UTF-8 character cut by the end of the prefix
    (b"", None),
    (b"\x00\x01\x02binary", None),
    (b"\xc0\xc1 not utf-8 at all, and long enough to tell", None),
    (b"RaS3\0\0", None),
])
def test_magic(head: bytes, expected: str | None) -> None:
    assert sniff_format(head) == expected


@pytest.mark.parametrize("name, expected", [
    ("testpage-1p-vector.pdf", "application/pdf"),
    ("groff-pic-39p.ps", "application/postscript"),
    ("ladybird-2560x1600.jpg", "image/jpeg"),
    ("gpl-3.txt", "text/plain"),
])
def test_corpus(name: str, expected: str) -> None:
    with (CORPUS / name).open("rb") as file:
        assert sniff_format(file.read(64)) == expected
