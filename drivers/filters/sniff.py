"""Guess a document's MIME type from its first bytes (protocols.md Appendix A)."""

from __future__ import annotations

import re

from drivers.model.formats import JPEG, PCL, PCLXL, PDF, PNG, POSTSCRIPT, PWG_RASTER, TEXT, URF
from drivers.pjl import UEL

SNIFF_BYTES = 512  # enough to see past a PJL header; any shorter prefix still works

_PJL_LANGUAGE = re.compile(rb"@PJL\s+ENTER\s+LANGUAGE\s*=\s*([A-Z0-9]+)", re.IGNORECASE)
_PJL_LANGUAGES = {b"PCL": PCL, b"PCLXL": PCLXL, b"POSTSCRIPT": POSTSCRIPT, b"PDF": PDF}
_TEXT_CONTROLS = frozenset(b"\t\n\f\r")


def sniff_format(head: bytes) -> str | None:
    """The MIME type of a document starting with `head`, or None if unrecognised."""
    if head.startswith(UEL):
        return _sniff_pjl(head)
    return _sniff_magic(head) or (TEXT if _looks_like_text(head) else None)


def _sniff_magic(head: bytes) -> str | None:
    if head.startswith(b"%PDF"):
        return PDF
    if head.startswith(b"%!") or head.startswith(b"\x04%!"):
        return POSTSCRIPT
    if head.startswith(b"\xc5\xd0\xd3\xc6"):  # DOS EPS binary header
        return POSTSCRIPT
    if len(head) >= 4 and head.startswith(b"\xff\xd8\xff") and 0xC0 <= head[3] <= 0xFE:
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"RaS2"):
        return PWG_RASTER
    if head.startswith(b"UNIRAST\0"):
        return URF
    if head.startswith(b") HP-PCL XL"):
        return PCLXL
    if head.startswith(b"\x1bE") or head.startswith(b"\x1b&") or head.startswith(b"\x1b*"):
        return PCL
    return None


def _sniff_pjl(head: bytes) -> str | None:
    match = _PJL_LANGUAGE.search(head)
    if match is not None:
        return _PJL_LANGUAGES.get(match.group(1).upper())
    # No ENTER LANGUAGE in sight: PJL jobs usually switch by the data that follows.
    body = head[len(UEL) :]
    while body.startswith(b"@PJL"):
        body = body.split(b"\n", 1)[1] if b"\n" in body else b""
    return _sniff_magic(body)


def _looks_like_text(head: bytes) -> bool:
    if not head or b"\0" in head:
        return False
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # a character cut by the end of the prefix is fine
            return False
        text = head[: exc.start].decode("utf-8")
    return all(ch.isprintable() or ord(ch) in _TEXT_CONTROLS for ch in text)
