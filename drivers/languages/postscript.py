"""PostScript: a DSC 3.0 job writer, raster pages, images and text as PostScript, setup injection.

`PsJob` writes the document structure (header, setpagedevice features, pages, trailer) that
the raster, image and text writers fill. Raster pages are one image per page: RunLengthDecode
at LanguageLevel 2, FlateDecode at level 3, binary (the job says `%%DocumentData: Binary`).

The plans: PostScript passes through with our setup injected (through Ghostscript when pages
must be selected, turned or grayed); PDF goes through Ghostscript's ps2write; every other
format is written as PostScript here. Level 3 and level 2 are two drivers of one class.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from PIL import Image

from drivers.driver import Driver
from drivers.filters.ghostscript import GhostscriptStage
from drivers.filters.image import (
    ImageSpool,
    Placement,
    SpooledImageConverter,
    decode,
    image_dpi,
    margins_points,
    open_image,
    place,
)
from drivers.filters.planner import (
    Context,
    Plan,
    converter,
    ghostscript_job,
    media_fit,
    raster_reader,
    text_plan,
)
from drivers.filters.raster_convert import RasterConverter
from drivers.filters.stage import Converter, PageCallback, Stage
from drivers.filters.text import FONT_SIZE, LINE_HEIGHT, TextLayout
from drivers.model.capabilities import Capabilities, PrintOptions, page_rotation
from drivers.model.formats import (
    DOCUMENT_FORMATS,
    IMAGE_FORMATS,
    PDF,
    POSTSCRIPT,
    RASTER_FORMATS,
    TEXT,
)
from drivers.model.packbits import packbits, packbits_bilevel
from drivers.model.raster import PixelFormat, RasterPage, Row

# Shows an image whose DataSource is a filter, then reads that filter to its end-of-data,
# so the interpreter resumes after the binary data even if `image` stopped short of it.
_PROLOG = b"""%%BeginProlog
/GwImage { dup /DataSource get exch image flushfile } bind def
%%EndProlog
"""

_COLOR_SPACES = {
    PixelFormat.BLACK_1: (b"/DeviceGray", b"[1 0]", 1),
    PixelFormat.SGRAY_8: (b"/DeviceGray", b"[0 1]", 8),
    PixelFormat.SRGB_8: (b"/DeviceRGB", b"[0 1 0 1 0 1]", 8),
    PixelFormat.CMYK_8: (b"/DeviceCMYK", b"[0 1 0 1 0 1 0 1]", 8),
}


def ps_string(text: str) -> str:
    """A PostScript string literal, 7-bit clean."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in "()\\":
            out.append("\\" + ch)
        elif 32 <= code < 127:
            out.append(ch)
        else:
            out.append(f"\\{min(code, 255):03o}" if code < 256 else "?")
    return "(" + "".join(out) + ")"


def _dsc_text(text: str) -> str:
    return "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in text)[:200]


def _feature(name: str, code: str) -> str:
    return f"[{{\n%%BeginFeature: {name}\n{code}\n%%EndFeature\n}} stopped cleartomark\n"


# /Collate is a LanguageLevel 3 page device parameter (PLRM 3rd ed., table 6.2): with
# /NumCopies it asks for collated page sets. LanguageLevel 2 does not define it, so a level 2
# job cannot count on it and collated copies are made by sending the document once per copy.
COLLATE_LEVEL = 3


def copies_feature(options: PrintOptions, level: int) -> str:
    """The copy count, collated or not as the job asks, where the language level can say so."""
    copies = options.copies
    if level >= COLLATE_LEVEL:
        collate = "true" if options.collate else "false"
        code = f"<< /NumCopies {copies} /Collate {collate} >> setpagedevice"
        return _feature(f"*NumCopies {copies}", code)
    feature = _feature(f"*NumCopies {copies}", f"<< /NumCopies {copies} >> setpagedevice")
    if not options.collate:
        # A level 3 printer driven at level 2 may collate by default; a level 2 one fails
        # this request alone (stopped), and keeps the copy count.
        feature += _feature("*Collate False", "<< /Collate false >> setpagedevice")
    return feature


def setup_features(options: PrintOptions, caps: Capabilities, level: int = 3) -> str:
    """setpagedevice requests for the job's options, each one skippable by a strict printer."""
    media = options.media_size(caps)
    width, height = round(media.width_points), round(media.height_points)
    page_size = f"<< /PageSize [{width} {height}] >> setpagedevice"
    parts = [_feature(f"*PageSize {media.name}", page_size)]
    if caps.duplex:
        if options.duplex:
            keyword = "DuplexTumble" if options.tumble else "DuplexNoTumble"
            tumble = "true" if options.tumble else "false"
            code = f"<< /Duplex true /Tumble {tumble} >> setpagedevice"
        else:
            keyword, code = "None", "<< /Duplex false >> setpagedevice"
        parts.append(_feature(f"*Duplex {keyword}", code))
    if options.media_source == "manual":
        parts.append(_feature("*ManualFeed True", "<< /ManualFeed true >> setpagedevice"))
    if options.resolution or options.print_quality != PrintOptions.print_quality:
        dpi = options.dpi(caps)  # printer-resolution, else draft/high print-quality
        code = f"<< /HWResolution [{dpi} {dpi}] >> setpagedevice"
        parts.append(_feature(f"*Resolution {dpi}dpi", code))
    if options.copies > 1:
        parts.append(copies_feature(options, level))
    return "".join(parts)


class PsJob:
    """The DSC skeleton of one job; pages are counted as they are started."""

    def __init__(self, options: PrintOptions, caps: Capabilities, level: int = 2) -> None:
        self.options, self.caps, self.level = options, caps, level
        self.pages = 0
        media = options.media_size(caps)
        self._size = (round(media.width_points), round(media.height_points))
        self._current_size = self._size

    def header(self) -> bytes:
        media = self.options.media_size(self.caps)
        width, height = self._size
        head = (
            f"%!PS-Adobe-3.0\n%%Creator: ipp-gateway\n"
            f"%%Title: {_dsc_text(self.options.job_name)}\n%%For: {_dsc_text(self.options.user)}\n"
            f"%%BoundingBox: 0 0 {width} {height}\n%%Pages: (atend)\n"
            f"%%LanguageLevel: {self.level}\n%%DocumentData: Binary\n"
            f"%%DocumentMedia: {media.name} {width} {height} 0 () ()\n%%EndComments\n"
        )
        features = setup_features(self.options, self.caps, self.level)
        setup = "%%BeginSetup\n" + features + "%%EndSetup\n"
        return head.encode("ascii") + _PROLOG + setup.encode("ascii")

    def page_start(self, width_pt: float, height_pt: float) -> bytes:
        self.pages += 1
        size = (round(width_pt), round(height_pt))
        setup = ""
        if size != self._current_size:
            setup = f"<< /PageSize [{size[0]} {size[1]}] >> setpagedevice\n"
            self._current_size = size
        return (
            f"%%Page: {self.pages} {self.pages}\n%%PageBoundingBox: 0 0 {size[0]} {size[1]}\n"
            f"%%BeginPageSetup\n{setup}%%EndPageSetup\n"
        ).encode("ascii")

    @staticmethod
    def page_end() -> bytes:
        return b"showpage\n%%PageTrailer\n"

    def trailer(self) -> bytes:
        return f"%%Trailer\n%%Pages: {self.pages}\n%%EOF\n".encode("ascii")


def image_dict(
    width: int, height: int, pixels: PixelFormat, filters: str, adobe_cmyk: bool = False
) -> bytes:
    """An image dictionary shown by GwImage, its data read through `filters` from currentfile
    (top row first). Adobe's CMYK JPEGs store inverted samples, hence their own Decode."""
    space, decode, bits = _COLOR_SPACES[pixels]
    if adobe_cmyk:
        decode = b"[1 0 1 0 1 0 1 0]"
    return (
        space + b" setcolorspace\n"
        + f"<< /ImageType 1 /Width {width} /Height {height} /BitsPerComponent {bits}\n"
          f"/Decode {decode.decode()} /ImageMatrix [{width} 0 0 -{height} 0 {height}]\n"
          f"/DataSource currentfile {filters} >> GwImage\n".encode("ascii")
    )


class PsRasterWriter:
    """Raster pages to PostScript: each page one full-page image."""

    def __init__(self, job: PsJob) -> None:
        self.job = job
        self.accepts: tuple[PixelFormat, ...] = tuple(_COLOR_SPACES)
        if not job.options.in_color(job.caps):
            self.accepts = (PixelFormat.SGRAY_8, PixelFormat.BLACK_1)
        if job.options.color_mode == "bi-level":
            self.accepts = (PixelFormat.BLACK_1,)
        self._flate: zlib._Compress | None = None
        self._bilevel = False

    def start_job(self) -> bytes:
        return self.job.header()

    def start_page(self, page: RasterPage) -> bytes:
        width_pt, height_pt = page.size_points
        flate = self.job.level >= 3
        self._flate = zlib.compressobj(3) if flate else None
        self._bilevel = page.pixels is PixelFormat.BLACK_1
        filters = "/FlateDecode filter" if flate else "/RunLengthDecode filter"
        place = f"gsave\n0 0 translate {width_pt:.2f} {height_pt:.2f} scale\n".encode("ascii")
        return (
            self.job.page_start(width_pt, height_pt)
            + place
            + image_dict(page.width, page.height, page.pixels, filters)
        )

    def write_rows(self, rows: Iterable[Row]) -> Iterator[bytes]:
        flate = self._flate
        if flate is not None:
            for line, count in rows:
                yield flate.compress(line * count if count > 1 else line)
            return
        encode = packbits_bilevel if self._bilevel else packbits
        for line, count in rows:
            encoded = encode(line)
            yield encoded * count if count > 1 else encoded

    def end_page(self) -> bytes:
        end_of_data = self._flate.flush() if self._flate is not None else b"\x80"
        return end_of_data + b"\ngrestore\n" + self.job.page_end()

    def end_job(self) -> bytes:
        return self.job.trailer()


_PAGE_COMMENT = b"\n%%Page:"


class SetupInjector:
    """Passes a PostScript job through, adding our setup right after its header comments;
    counts the pages by their DSC %%Page: comments."""

    def __init__(self, options: PrintOptions, caps: Capabilities,
                 on_page: Callable[[], None] | None = None, level: int = 3) -> None:
        features = setup_features(options, caps, level)
        self._setup = f"%%BeginSetup\n{features}%%EndSetup\n".encode("ascii")
        self._head = b""
        self._done = False
        self._on_page = on_page
        self._tail = b"\n"  # the last bytes seen: a comment may straddle two chunks

    def _count_pages(self, data: bytes) -> None:
        if self._on_page is None:
            return
        text = self._tail + data
        for _ in range(text.count(_PAGE_COMMENT)):
            self._on_page()
        self._tail = text[-(len(_PAGE_COMMENT) - 1):]

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._count_pages(data)
        if self._done:
            yield data
            return
        self._head += data
        split = _end_of_header(self._head)
        if split is not None or len(self._head) > 65536:
            yield from self._release(split if split is not None else 0)

    def finish(self) -> Iterator[bytes]:
        if not self._done:
            split = _end_of_header(self._head)
            yield from self._release(split if split is not None else len(self._head))

    def _release(self, split: int) -> Iterator[bytes]:
        self._done = True
        head, self._head = self._head, b""
        yield head[:split]
        yield self._setup
        yield head[split:]


def _end_of_header(data: bytes) -> int | None:
    """Where the DSC header comments end: after %%EndComments, or at the first other line."""
    pos = 0
    while True:
        newline = data.find(b"\n", pos)
        if newline < 0:
            return None
        line = data[pos:newline].rstrip(b"\r")
        if pos > 0 and not line.startswith(b"%%") and not line.startswith(b"%!"):
            return pos
        pos = newline + 1
        if line.startswith(b"%%EndComments"):
            return pos


# ---- JPEG/PNG to PostScript: one page with the image placed by a transformation matrix.
# A baseline JPEG without an EXIF rotation goes in untouched as /DCTDecode (no decode, no
# re-encode: the printer scales it). Everything else is decoded once and embedded as a
# RunLengthDecode (level 2) or FlateDecode (level 3) image at its own resolution.

_DCT_COLOR = {"L": PixelFormat.SGRAY_8, "RGB": PixelFormat.SRGB_8, "CMYK": PixelFormat.CMYK_8}
_EMBED_DPI = 300  # decoded images are reduced to at most this resolution on the page


def transform(placement: Placement) -> str:
    """translate/rotate/scale mapping the unit square onto the placement rectangle."""
    p = placement
    if p.rotation == 90:
        return f"{p.x + p.w:.2f} {p.y:.2f} translate 90 rotate {p.h:.2f} {p.w:.2f} scale"
    if p.rotation == 270:
        return f"{p.x:.2f} {p.y + p.h:.2f} translate -90 rotate {p.h:.2f} {p.w:.2f} scale"
    if p.rotation == 180:
        return f"{p.x + p.w:.2f} {p.y + p.h:.2f} translate 180 rotate {p.w:.2f} {p.h:.2f} scale"
    return f"{p.x:.2f} {p.y:.2f} translate {p.w:.2f} {p.h:.2f} scale"


def _embeddable_jpeg(image: Image.Image, level: int, gray: bool) -> bool:
    orientation = image.getexif().get(0x0112, 1)
    return (
        image.format == "JPEG"
        and not image.info.get("progressive") and not image.info.get("progression")
        and image.mode in _DCT_COLOR
        and orientation == 1
        and not (gray and image.mode != "L")
        and level >= 2
    )


def _verify(spool: ImageSpool, size: tuple[int, int]) -> None:
    """Decode at 1/8 scale (cheap) to be sure the JPEG we pass through is whole."""
    with open_image(spool.open()) as check:
        decode(check, (max(1, size[0] // 8), max(1, size[1] // 8)), check.mode == "L")


class ImageToPostScript(SpooledImageConverter):
    """Converter: a JPEG/PNG document to a one-page PostScript job."""

    def __init__(
        self, job: PsJob, on_page: PageCallback, input_path: Path | None = None
    ) -> None:
        super().__init__(input_path)
        self.job = job
        self._on_page = on_page

    def _print(self, image: Image.Image) -> Iterator[bytes]:
        options, caps = self.job.options, self.job.caps
        media = options.media_size(caps)
        page = (media.width_points, media.height_points)
        placement = place(image.size, image_dpi(image), page, margins_points(caps), options)
        gray = not options.in_color(caps)
        yield self.job.header()
        yield self.job.page_start(*page)
        yield f"gsave\n{transform(placement)}\n".encode("ascii")
        if _embeddable_jpeg(image, self.job.level, gray):
            yield from self._jpeg(image)
        else:
            yield from self._decoded(image, placement, gray)
        yield b"\ngrestore\n" + self.job.page_end()
        self._on_page()
        yield self.job.trailer()

    def _jpeg(self, image: Image.Image) -> Iterator[bytes]:
        _verify(self._spool, image.size)
        width, height = image.size
        pixels = _DCT_COLOR[image.mode]
        yield image_dict(width, height, pixels, "/DCTDecode filter", adobe_cmyk=(
            image.mode == "CMYK" and "adobe" in image.info))
        yield from self._spool.chunks()

    def _decoded(self, image: Image.Image, placement: Placement, gray: bool) -> Iterator[bytes]:
        longest = max(placement.w, placement.h) * _EMBED_DPI / 72
        scale = min(1.0, longest / max(image.size))
        target = (max(1, round(image.size[0] * scale)), max(1, round(image.size[1] * scale)))
        decoded = decode(image, target, gray)
        if decoded.size[0] > target[0] * 2:
            decoded = decoded.resize(target, Image.Resampling.BILINEAR)
        width, height = decoded.size
        pixels = PixelFormat.SGRAY_8 if decoded.mode == "L" else PixelFormat.SRGB_8
        flate = self.job.level >= 3
        filters = "/FlateDecode filter" if flate else "/RunLengthDecode filter"
        yield image_dict(width, height, pixels, filters)
        data = decoded.tobytes()
        row = len(data) // height
        if flate:
            compressor = zlib.compressobj(6)
            for start in range(0, len(data), 1 << 20):
                yield compressor.compress(data[start : start + (1 << 20)])
            yield compressor.flush()
        else:
            for start in range(0, len(data), row):
                yield packbits(data[start : start + row])
            yield b"\x80"


class PsTextWriter:
    """The shared text layout as PostScript pages in Courier (a TextWriter)."""

    def __init__(self, job: PsJob, layout: TextLayout) -> None:
        self.job, self.layout = job, layout

    def start_job(self) -> bytes:
        return self.job.header() + (
            b"/GwFont /Courier findfont dup length dict begin { 1 index /FID ne { def } "
            b"{ pop pop } ifelse } forall /Encoding ISOLatin1Encoding def currentdict end "
            b"definefont pop\n"
        )

    def page(self, lines: list[str]) -> bytes:
        media = self.job.options.media_size(self.job.caps)
        out = [self.job.page_start(media.width_points, media.height_points).decode("ascii")]
        geometry = self.layout
        if geometry.landscape:
            out.append(f"{media.width_points:.2f} 0 translate 90 rotate\n")
        out.append(f"/GwFont findfont {FONT_SIZE} scalefont setfont\n")
        y = geometry.page_height - geometry.top - FONT_SIZE * 0.8
        for line in lines:
            if line.strip():
                out.append(f"{geometry.left:.2f} {y:.2f} moveto {ps_string(line)} show\n")
            y -= LINE_HEIGHT
        return "".join(out).encode("latin-1", "replace") + self.job.page_end()

    def end_job(self) -> bytes:
        return self.job.trailer()


def postscript_stages(fmt: str, context: Context, level: int) -> list[Stage]:
    """Our own PostScript for every format but PDF and PostScript (also the way into PCL XL)."""
    options, caps, path = context.options, context.caps, context.input_path
    if fmt in RASTER_FORMATS:
        def make_raster(on_page: PageCallback) -> Converter:
            writer = PsRasterWriter(PsJob(options, caps, level))
            return RasterConverter(raster_reader(fmt), writer, on_page, options.wants_page,
                                   options.last_page_wanted(), media_fit(options, caps))
        return [converter("raster-to-ps", make_raster)]
    if fmt in IMAGE_FORMATS:
        return [converter("image-to-ps",
                          lambda on_page: ImageToPostScript(PsJob(options, caps, level), on_page,
                                                            path))]
    if fmt == TEXT:
        return _ps_text(level).stages(context)
    raise ValueError(f"no PostScript writer for {fmt}")


def _ps_text(level: int) -> Plan:
    return text_plan(POSTSCRIPT, "postscript",
                     lambda options, caps, layout: PsTextWriter(PsJob(options, caps, level),
                                                                layout),
                     stage_name="text-to-ps")


class PostScript(Driver):
    """LanguageLevel 3 (FlateDecode images, /Collate: every PostScript printer since the late
    1990s) or 2 (RunLengthDecode images, no /Collate) for older printers."""

    family = "postscript"
    native_formats = (POSTSCRIPT,)
    convertible = DOCUMENT_FORMATS
    pjl_language = "POSTSCRIPT"

    def __init__(self, name: str, level: int) -> None:
        super().__init__(name, Capabilities(
            make_and_model=f"Generic PostScript Level {level} Printer",
            manufacturer="Generic", model=f"PostScript Level {level} Printer",
            command_set=("POSTSCRIPT",), document_formats=self.default_formats(),
            resolutions=(300, 600), default_resolution=600, color=True, duplex=True,
        ))
        self.level = level
        self.collates = level >= COLLATE_LEVEL

    def route(self, fmt: str) -> Plan:
        if fmt == POSTSCRIPT:
            return Plan(fmt, fmt, "postscript -> setup -> postscript", self._native,
                        needs_ghostscript=True)
        if fmt == PDF:
            return Plan(fmt, POSTSCRIPT, f"{fmt} -> ghostscript(ps2write) -> postscript",
                        self._via_ghostscript, reads_path=True, needs_ghostscript=True)
        if fmt == TEXT:
            return _ps_text(self.level)
        level = self.level
        return Plan(fmt, POSTSCRIPT, f"{fmt} -> gateway -> postscript",
                    lambda context: postscript_stages(fmt, context, level),
                    reads_path=fmt in IMAGE_FORMATS)

    def _native(self, context: Context) -> list[Stage]:
        options, caps, level = context.options, context.caps, self.level
        if options.page_ranges or page_rotation(options) or (
                caps.color and not options.in_color(caps)):
            # Only Ghostscript can select, turn or gray the pages; this plan streams the
            # document to it.
            return self._via_ghostscript(context, from_file=False)
        return [converter("ps-setup",
                          lambda on_page: SetupInjector(options, caps, on_page, level))]

    def _via_ghostscript(self, context: Context, from_file: bool = True) -> list[Stage]:
        options, caps, level = context.options, context.caps, self.level
        gray = () if options.in_color(caps) else (
            "-sColorConversionStrategy=Gray", "-dProcessColorModel=/DeviceGray")
        # ps2write rasterizes what PostScript cannot say (transparency, some shadings) at
        # this resolution: the printer's, not Ghostscript's 720 dpi, which prints no better
        # and took 3.5x as long on the self-certification's transparent PDFs (26 s -> 7 s a
        # document at 300 dpi).
        job = ghostscript_job(context, "ps2write", *gray)
        # The pages are counted in ps2write's output: Ghostscript's page hook also counts the
        # PostScript pages that -sPageList skips.
        return [GhostscriptStage(job, context.input_path if from_file else None),
                converter("ps-setup", lambda on_page: SetupInjector(options, caps, on_page,
                                                                    level))]


DRIVERS = (PostScript("postscript", 3), PostScript("postscript2", 2))
