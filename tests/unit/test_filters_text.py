"""The monospace text formatter: wrapping, tabs, form feeds, overstrike, encodings."""

from __future__ import annotations

import pytest

from drivers.errors import ConversionError
from drivers.filters.text import TextPaginator, layout, to_ascii
from drivers.languages.text import LinePrinterText
from drivers.model.capabilities import LANDSCAPE, Capabilities, PrintOptions


def paginate(data: bytes, columns: int = 10, lines: int = 3, chunk: int = 1000) -> list[list[str]]:
    paginator = TextPaginator(columns, lines)
    pages = []
    for start in range(0, len(data), chunk):
        pages += list(paginator.feed(data[start : start + chunk]))
    return pages + list(paginator.finish())


@pytest.mark.parametrize("chunk", [1, 2, 5, 1000])
def test_wrapping_paging_and_form_feeds(chunk: int) -> None:
    data = b"abcdefghijklm\r\nshort\n\tx\fnext page\nline 2\nline 3\nline 4\n"
    assert paginate(data, chunk=chunk) == [
        ["abcdefghij", "klm", "short"], ["        x"], ["next page", "line 2", "line 3"],
        ["line 4"],
    ]


def test_utf8_split_across_chunks_and_control_characters() -> None:
    data = "é\x07ü\n".encode()
    assert paginate(data, chunk=1) == [["éü"]]


def test_carriage_return_overprints() -> None:
    assert paginate(b"bold\r____ \r\n") == [["____"]]
    assert paginate(b"ab  \r  cd\n") == [["abcd"]]


def test_empty_documents_are_refused() -> None:
    for data in (b"", b"\n\n\n"):
        with pytest.raises(ConversionError):
            paginate(data)


def test_explicit_blank_page_is_kept() -> None:
    assert paginate(b"a\f\fb") == [["a"], [], ["b"]]


def test_form_feed_after_a_full_page_adds_no_blank_page() -> None:
    assert paginate(b"1\n2\n3\n\f4\n") == [["1", "2", "3"], ["4"]]


def test_layout_from_media_margins_and_orientation() -> None:
    caps = Capabilities()
    portrait = layout(PrintOptions(), caps)
    assert (portrait.columns, portrait.lines) == (77, 67)  # A4 with 1/4 inch margins
    landscape = layout(PrintOptions(orientation=LANDSCAPE), caps)
    assert landscape.landscape and landscape.columns > landscape.lines


def test_layout_counts_the_columns_that_fit_exactly() -> None:
    # US Letter with 1/4 inch margins is 8 inches of 1/10 inch characters: 80, not the 79
    # that flooring 576 / 7.2 in binary floating point gives.
    letter = layout(PrintOptions(media="na_letter_8.5x11in"), Capabilities())
    assert letter.columns == 80


@pytest.mark.parametrize("chunks, expected", [
    ([b"a\nb\n"], b"a\r\nb\r\n\f"),
    ([b"a\r", b"\nb"], b"a\r\nb\r\n\f"),
    ([b"page 1\f", b"page 2\f"], b"page 1\fpage 2\f"),
])
def test_line_printer_crlf_and_final_form_feed(chunks: list[bytes], expected: bytes) -> None:
    pages = []
    converter = LinePrinterText(lambda: pages.append(1))
    out = b"".join(b"".join(converter.feed(chunk)) for chunk in chunks)
    out += b"".join(converter.finish())
    assert out == expected
    assert len(pages) == expected.count(b"\f")


def test_line_printer_refuses_empty_text() -> None:
    with pytest.raises(ConversionError):
        list(LinePrinterText(lambda: None).finish())


def test_unicode_to_ascii() -> None:
    assert to_ascii("“naïve” \u2013 ﬁle • ok…") == '"naive" - file * ok...'
