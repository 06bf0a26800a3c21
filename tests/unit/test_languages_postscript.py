"""PostScript writer: DSC structure, setup injection, and output that Ghostscript renders
with the right pages, media size and pixels."""

from __future__ import annotations

import pytest

from drivers.languages.postscript import (
    PsJob,
    PsRasterWriter,
    SetupInjector,
    ps_string,
    setup_features,
)
from drivers.model.capabilities import MEDIA_SIZES, Capabilities, PrintOptions
from drivers.model.raster import PixelFormat, RasterPage
from tests.support.gs_render import render


def max_difference(got: list[bytes], wanted: list[bytes]) -> int:
    assert [len(line) for line in got] == [len(line) for line in wanted]
    pairs = zip(got, wanted, strict=True)
    return max(abs(a - b) for g, w in pairs for a, b in zip(g, w, strict=True))


def gray_page(width: int, height: int) -> list[bytes]:
    """A gradient with a black frame: every pixel position matters."""
    lines = [bytes((x * 7 + y * 3) % 256 for x in range(width)) for y in range(height)]
    lines[0] = lines[-1] = bytes(width)
    return lines


@pytest.mark.parametrize("level", [2, 3])
def test_raster_pages_render_pixel_for_pixel(level: int) -> None:
    dpi = 36
    width, height = 72, 108  # 2 x 3 inches
    lines = gray_page(width, height)
    job = PsJob(PrintOptions(job_name="raster (test)"), Capabilities(), level)
    writer = PsRasterWriter(job)
    page = RasterPage(width, height, PixelFormat.SGRAY_8, dpi, dpi)
    document = writer.start_job()
    for number in (1, 2):
        document += writer.start_page(page.with_changes(number=number))
        document += b"".join(writer.write_rows([(line, 1) for line in lines]))
        document += writer.end_page()
    document += writer.end_job()
    pages = render(document, dpi)
    assert len(pages) == 2
    assert (pages[0].width_pt, pages[0].height_pt) == (144, 216)
    for rendered in pages:  # Ghostscript may round a gray level down by one
        assert max_difference(rendered.lines, lines) <= 1
    text = document.decode("latin-1")
    assert text.startswith("%!PS-Adobe-3.0\n") and "%%Pages: 2\n%%EOF\n" in text
    assert f"%%LanguageLevel: {level}" in text and "%%Title: raster (test)" in text
    assert ("/FlateDecode" in text) == (level == 3)


@pytest.mark.parametrize("pixels", [PixelFormat.BLACK_1, PixelFormat.SRGB_8, PixelFormat.CMYK_8])
def test_every_pixel_format_renders(pixels: PixelFormat) -> None:
    page = RasterPage(72, 36, pixels, 72, 72)
    black = {PixelFormat.BLACK_1: b"\xff", PixelFormat.SRGB_8: b"\0\0\0",
             PixelFormat.CMYK_8: b"\0\0\0\xff"}[pixels]
    writer = PsRasterWriter(PsJob(PrintOptions(), Capabilities(color=True), 2))
    row = black * (page.bytes_per_line // len(black))
    document = (writer.start_job() + writer.start_page(page)
                + b"".join(writer.write_rows([(row, 36)])) + writer.end_page() + writer.end_job())
    (rendered,) = render(document, 72)
    assert rendered.lines == [bytes(72)] * 36


def test_setup_features_follow_the_options() -> None:
    caps = Capabilities(duplex=True)
    options = PrintOptions(copies=2, sides="two-sided-long-edge",
                           media="na_letter_8.5x11in", resolution=300)
    header = PsJob(options, caps, level=3).header().decode("ascii")
    assert "<< /PageSize [612 792] >> setpagedevice" in header
    assert "<< /Duplex true /Tumble false >> setpagedevice" in header
    assert "<< /NumCopies 2 /Collate true >> setpagedevice" in header
    assert "/HWResolution [300 300]" in header
    assert header.count("stopped cleartomark") == 4
    simplex = PsJob(PrintOptions(), Capabilities(duplex=False)).header().decode("ascii")
    assert "Duplex" not in simplex and "NumCopies" not in simplex


@pytest.mark.parametrize("level, collate, requests", [
    (3, True, ["<< /NumCopies 2 /Collate true >> setpagedevice"]),
    (3, False, ["<< /NumCopies 2 /Collate false >> setpagedevice"]),
    # /Collate is LanguageLevel 3: a level 2 job asks for the count alone, and says uncollated
    # in a request of its own that a level 2 interpreter may fail without losing the count.
    (2, True, ["<< /NumCopies 2 >> setpagedevice"]),
    (2, False, ["<< /NumCopies 2 >> setpagedevice", "<< /Collate false >> setpagedevice"]),
])
def test_copies_request_collation_where_the_level_defines_it(
    level: int, collate: bool, requests: list[str]
) -> None:
    setup = setup_features(PrintOptions(copies=2, collate=collate), Capabilities(), level)
    assert [line for line in setup.splitlines() if line.endswith("setpagedevice")
            and "PageSize" not in line] == requests
    assert setup.count("stopped cleartomark") == 1 + len(requests)


DOCUMENT = (b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n%%BeginProlog\n%%EndProlog\n"
            b"%%Page: 1 1\n/Courier findfont 12 scalefont setfont 72 72 moveto (hi) show\n"
            b"showpage\n%%EOF\n")


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_setup_is_injected_after_the_header_comments(chunk: int) -> None:
    injector = SetupInjector(PrintOptions(copies=3), Capabilities())
    out = b""
    for start in range(0, len(DOCUMENT), chunk):
        out += b"".join(injector.feed(DOCUMENT[start : start + chunk]))
    out += b"".join(injector.finish())
    _head, rest = out.split(b"%%EndComments\n", 1)
    assert rest.startswith(b"%%BeginSetup\n") and b"/NumCopies 3" in rest
    assert out.replace(rest[: rest.index(b"%%EndSetup\n") + 11], b"") == DOCUMENT
    assert len(render(out)) == 3  # Ghostscript honours NumCopies


def test_setup_goes_before_code_when_there_is_no_end_comments() -> None:
    injector = SetupInjector(PrintOptions(copies=2), Capabilities())
    out = b"".join(injector.feed(b"%!PS\n72 72 moveto showpage\n")) + b"".join(injector.finish())
    assert out.startswith(b"%!PS\n%%BeginSetup\n")
    assert len(render(out)) == 2


def test_ps_strings_are_escaped_and_seven_bit() -> None:
    assert ps_string("a(b)c\\d") == "(a\\(b\\)c\\\\d)"
    assert ps_string("é€") == "(\\351?)"


def test_letter_media_renders_at_its_size() -> None:
    options = PrintOptions(media="na_letter_8.5x11in")
    job = PsJob(options, Capabilities())
    media = MEDIA_SIZES["na_letter_8.5x11in"]
    document = (job.header() + job.page_start(media.width_points, media.height_points)
                + job.page_end() + job.trailer())
    (page,) = render(document)
    assert (round(page.width_pt), round(page.height_pt)) == (612, 792)


def test_print_quality_asks_for_a_resolution() -> None:
    caps = Capabilities(resolutions=(300, 600), default_resolution=600)
    draft = PsJob(PrintOptions(print_quality=3), caps).header().decode("ascii")
    high = PsJob(PrintOptions(print_quality=5), caps).header().decode("ascii")
    normal = PsJob(PrintOptions(), caps).header().decode("ascii")
    assert "<< /HWResolution [300 300] >> setpagedevice" in draft
    assert "<< /HWResolution [600 600] >> setpagedevice" in high
    assert "HWResolution" not in normal


def test_jpeg_is_embedded_verbatim_after_dctdecode() -> None:
    """A baseline JPEG goes into the PostScript byte for byte: no decode, no re-encode."""
    from drivers.languages.postscript import ImageToPostScript
    from tests.peers import CORPUS_DIR

    jpeg = CORPUS_DIR / "ladybird-2560x1600.jpg"
    pages: list[None] = []
    converter = ImageToPostScript(PsJob(PrintOptions(), Capabilities(color=True), 3),
                                  lambda: pages.append(None), jpeg)
    data = b"".join(converter.finish())
    marker = b"/DataSource currentfile /DCTDecode filter >> GwImage\n"
    start = data.index(marker) + len(marker)
    original = jpeg.read_bytes()
    assert data[start : start + len(original)] == original
    assert data[start + len(original):].startswith(b"\ngrestore\nshowpage")
    assert len(pages) == 1 and len(render(data, dpi=9)) == 1
