"""The monospace text formatter: wrapping, tabs, form feeds, overstrike, encodings; and the
line printer: what it honours for each format, and pictures turned as asked."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from drivers import get_driver
from drivers.errors import ConversionError
from drivers.filters.text import TextPaginator, character_grid, layout, to_ascii
from drivers.languages.text import LinePrinterText
from drivers.model.capabilities import LANDSCAPE, PORTRAIT, Capabilities, PrintOptions
from drivers.model.formats import JPEG, PDF, PNG, PWG_RASTER, TEXT, URF
from tests.support.driver_printing import Document, print_to_file


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


def test_character_grid_inside_the_margins() -> None:
    letter = character_grid(612, 792, (0, 0, 0, 0))  # at least a quarter inch is kept
    assert (letter.columns, letter.lines, letter.left, letter.top) == (80, 63, 18.0, 18.0)
    half_inch = character_grid(612, 792, (1270, 1270, 1270, 1270))
    assert (half_inch.columns, half_inch.lines, half_inch.left) == (75, 60, 36.0)


def test_line_printer_prints_pictures_and_honours_what_it_can_per_format() -> None:
    driver = get_driver("text")
    caps = driver.capabilities
    assert {PWG_RASTER, URF, JPEG, PNG, TEXT} <= set(driver.accepted_formats(caps))

    def refused(fmt: str, **options: object) -> list[str]:
        return driver.unsupported_options(fmt, caps, PrintOptions(**options))  # type: ignore[arg-type]

    # A picture is turned and scaled before it is cut into cells.
    assert refused(JPEG, orientation=LANDSCAPE, print_scaling="fill", copies=2) == []
    assert refused(JPEG, color_mode="color") == ["print-color-mode"]  # a monochrome printer
    assert refused(JPEG, page_ranges=((1, 1),)) == ["page-ranges"]  # one page
    # Composed raster pages are neither turned; they are selected.
    assert refused(PWG_RASTER, orientation=LANDSCAPE) == ["orientation-requested"]
    assert refused(URF, page_ranges=((2, 3),), print_scaling="none", copies=3) == []
    # Text flows at the printer's size, as it comes; PDF pages are selected.
    assert refused(TEXT, page_ranges=((1, 1),), print_scaling="fit",
                   orientation=LANDSCAPE) == ["page-ranges", "orientation-requested",
                                              "print-scaling"]
    assert refused(PDF, page_ranges=((3, 3),), color_mode="monochrome", copies=2) == []
    assert refused(PDF, print_scaling="fill") == ["print-scaling"]


@pytest.mark.parametrize("orientation, width, height, left", [
    (PORTRAIT, 70, 21, 5),  # 504 x 756 points: its top third is 70 columns x 21 lines
    (LANDSCAPE, 27, 32, 0),  # 576 x 384 points: its top third, now its left, 27 x 32
])
async def test_a_picture_is_turned_as_asked(tmp_path: Path, orientation: int, width: int,
                                            height: int, left: int) -> None:
    """A 2:3 picture whose top third is black, fitted to US Letter's 80 x 63 grid, upright or
    turned a quarter anticlockwise."""
    picture = Image.new("L", (600, 900), 255)
    picture.paste(0, (0, 0, 600, 300))
    path = tmp_path / "third.png"
    picture.save(path)
    driver = get_driver("text")
    output, _ = await print_to_file(Document(path, PNG, 1), driver, driver.capabilities,
                                    tmp_path / "out/", PrintOptions(orientation=orientation))
    dark = [line for line in output.split(b"\r\n") if b"@" in line]
    assert len(dark) in (height - 1, height, height + 1)  # cell rows the edges cut through
    assert max(line.count(b"@") for line in dark) in (width - 1, width)
    assert all(line.index(b"@") in (left, left + 1) for line in dark)
