"""Plain-text line printers and dot-matrix printers in their text mode: the text goes as it
is, with bare line feeds made CR LF and a form feed to eject the last page."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator

from drivers.driver import MEDIA_SIZES, Capabilities, Driver, register_driver
from drivers.errors import ConversionError
from drivers.filters import formats
from drivers.filters.sniff import TEXT
from drivers.filters.stage import PageCallback

_BARE_LF = re.compile(rb"(?<!\r)\n")
_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"',
    "\u201e": '"', "\u2033": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-",
    "\u2022": "*", "\u2026": "...", "\u00a0": " ",
})


def to_ascii(text: str) -> str:
    """Unicode made printable on a plain ASCII printer: typography simplified, accents off."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.encode("ascii", "replace").decode("ascii")


class LinePrinterText:
    """Converter: text passed through with CR LF line ends; counts pages by form feeds."""

    def __init__(self, on_page: PageCallback) -> None:
        self._on_page = on_page
        self._last = b""
        self._size = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        prefix = b""
        if data[:1] == b"\n" and self._last == b"\r":
            prefix, data = b"\n", data[1:]
        out = prefix + _BARE_LF.sub(b"\r\n", data)
        self._size += len(out)
        self._last = out[-1:]
        for _ in range(out.count(b"\f")):
            self._on_page()
        yield out

    def finish(self) -> Iterator[bytes]:
        if self._size == 0:
            raise ConversionError("the text document is empty")
        if self._last != b"\f":
            self._on_page()
            yield b"\r\n\f" if self._last not in (b"\n", b"") else b"\f"


MAX_REPEATED_PAGE = 8 << 20  # bytes of one page held to print it again


class PageCopies:
    """Converter for uncollated copies on a printer that cannot count copies: each page
    (ended by a form feed) sent `copies` times in a row; counts every page it sends.

    A page is held until its form feed, so a page is bounded: text with megabytes between
    form feeds is refused (collated copies send the whole document again instead)."""

    def __init__(self, copies: int, on_page: PageCallback) -> None:
        self._copies = copies
        self._on_page = on_page
        self._page = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        start = 0
        while (end := data.find(b"\f", start)) >= 0:
            self._page += data[start : end + 1]
            start = end + 1
            yield from self._repeat()
        self._page += data[start:]
        if len(self._page) > MAX_REPEATED_PAGE:
            raise ConversionError(
                f"a page of more than {MAX_REPEATED_PAGE >> 20} MiB without a form feed cannot "
                "be repeated for uncollated copies (collated copies can be printed)")

    def finish(self) -> Iterator[bytes]:
        if self._page:  # a last page with no form feed: one keeps its copies apart
            self._page += b"\f"
            yield from self._repeat()

    def _repeat(self) -> Iterator[bytes]:
        page, self._page = bytes(self._page), bytearray()
        for _ in range(self._copies):
            self._on_page()
            yield page


@register_driver("text")
def text_driver() -> Driver:
    caps = Capabilities(
        make_and_model="Generic Text Printer", manufacturer="Generic", model="Text Printer",
        command_set=("TXT",), document_formats=formats.accepted_by("text"),
        resolutions=(72,), default_resolution=72, color=False, duplex=False,
        media=(MEDIA_SIZES["na_letter_8.5x11in"], MEDIA_SIZES["iso_a4_210x297mm"]),
        media_default="na_letter_8.5x11in", print_qualities=(4,), copies_max=99,
    )
    return Driver("text", (TEXT,), caps)
