"""What a printer can do and what a job asks of it: media sizes, `Capabilities` (the one source
of every IPP `*-supported`: the gateway derives all its job-template and pwg-raster/urf
attributes from it) and `PrintOptions` (one job's choices, validated against them).

Pure data, no I/O: printer attributes and DNS-SD TXT records are built from these alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class MediaSize:
    """A PWG 5101.1 media size: keyword and dimensions in hundredths of millimetres."""

    name: str
    width: int
    height: int

    @property
    def width_points(self) -> float:
        return self.width * 72 / 2540

    @property
    def height_points(self) -> float:
        return self.height * 72 / 2540


MEDIA_SIZES: dict[str, MediaSize] = {
    m.name: m
    for m in (
        MediaSize("iso_a4_210x297mm", 21000, 29700),
        MediaSize("iso_a5_148x210mm", 14800, 21000),
        MediaSize("iso_a3_297x420mm", 29700, 42000),
        MediaSize("na_letter_8.5x11in", 21590, 27940),
        MediaSize("na_legal_8.5x14in", 21590, 35560),
        MediaSize("na_executive_7.25x10.5in", 18415, 26670),
        MediaSize("na_ledger_11x17in", 27940, 43180),
        MediaSize("na_number-10_4.125x9.5in", 10477, 24130),
        MediaSize("iso_dl_110x220mm", 11000, 22000),
        MediaSize("iso_c5_162x229mm", 16200, 22900),
        MediaSize("na_index-4x6_4x6in", 10160, 15240),
        MediaSize("jis_b5_182x257mm", 18200, 25700),
    )
}

# Legacy RFC 8011 media keywords that old clients still send.
LEGACY_MEDIA_NAMES = {
    "a4": "iso_a4_210x297mm",
    "iso-a4": "iso_a4_210x297mm",
    "a5": "iso_a5_148x210mm",
    "iso-a5": "iso_a5_148x210mm",
    "a3": "iso_a3_297x420mm",
    "na-letter": "na_letter_8.5x11in",
    "letter": "na_letter_8.5x11in",
    "na-legal": "na_legal_8.5x14in",
    "legal": "na_legal_8.5x14in",
    "executive": "na_executive_7.25x10.5in",
}


def media_name_for(width_pt: float, height_pt: float) -> str:
    """The PWG name of the known media within 2 points of this size (either orientation)."""
    for media in MEDIA_SIZES.values():
        w, h = media.width_points, media.height_points
        for a, b in ((w, h), (h, w)):
            if abs(a - width_pt) <= 2 and abs(b - height_pt) <= 2:
                return media.name
    return ""


@dataclass(frozen=True)
class Capabilities:
    """What one printer can do. Every IPP `*-supported` value is derived from this."""

    make_and_model: str = "Generic Printer"
    manufacturer: str = "Generic"
    model: str = "Printer"
    command_set: tuple[str, ...] = ()  # IEEE 1284 CMD: values for printer-device-id
    document_formats: tuple[str, ...] = ("application/octet-stream",)
    resolutions: tuple[int, ...] = (300, 600)  # dpi, square
    default_resolution: int = 600
    color: bool = False
    duplex: bool = False
    media: tuple[MediaSize, ...] = (
        MEDIA_SIZES["iso_a4_210x297mm"],
        MEDIA_SIZES["na_letter_8.5x11in"],
        MEDIA_SIZES["na_legal_8.5x14in"],
        MEDIA_SIZES["iso_a5_148x210mm"],
    )
    media_default: str = "iso_a4_210x297mm"
    media_sources: tuple[str, ...] = ("main",)
    media_types: tuple[str, ...] = ("stationery",)
    margins: tuple[int, int, int, int] = (423, 423, 423, 423)  # top, bottom, left, right 1/100 mm
    print_qualities: tuple[int, ...] = (3, 4, 5)
    copies_max: int = 999
    pages_per_minute: int = 10
    page_ranges: bool = True

    @property
    def pwg_raster_types(self) -> tuple[str, ...]:
        return ("black_1", "sgray_8", "srgb_8") if self.color else ("black_1", "sgray_8")

    @property
    def urf_supported(self) -> tuple[str, ...]:
        resolutions = "-".join(str(r) for r in self.resolutions)
        values = ["V1.4", "CP1", "PQ" + "-".join(str(q) for q in self.print_qualities)]
        values += ["RS" + resolutions, "W8"]
        if self.color:
            values.append("SRGB24")
        if self.duplex:
            values.append("DM1")  # back sides arrive as they print: no flip needed
        return tuple(dict.fromkeys(values))

    @property
    def sides(self) -> tuple[str, ...]:
        if self.duplex:
            return ("one-sided", "two-sided-long-edge", "two-sided-short-edge")
        return ("one-sided",)

    @property
    def color_modes(self) -> tuple[str, ...]:
        return ("auto", "color", "monochrome") if self.color else ("auto", "monochrome")

    @property
    def pjl(self) -> bool:
        """The printer takes PJL: a language with a PJL name (PCL 5, PostScript) wraps its jobs in
        ENTER LANGUAGE."""
        return "PJL" in self.command_set

    def with_pjl(self, enabled: bool) -> Capabilities:
        """These capabilities with PJL listed in (or left out of) the 1284 command set."""
        others = tuple(c for c in self.command_set if c != "PJL")
        return replace(self, command_set=(*others, "PJL") if enabled else others)

    def media_size(self, name: str) -> MediaSize | None:
        name = LEGACY_MEDIA_NAMES.get(name, name)
        return next((m for m in self.media if m.name == name), None)

    def with_changes(self, **changes: object) -> Capabilities:
        return replace(self, **changes)  # type: ignore[arg-type]


# IPP orientation-requested values (RFC 8011 5.2.10).
PORTRAIT, LANDSCAPE, REVERSE_LANDSCAPE, REVERSE_PORTRAIT = 3, 4, 5, 6


@dataclass(frozen=True)
class PrintOptions:
    """What one job asks for, already validated against the printer's Capabilities.

    The gateway maps IPP job-template attributes onto this; the pipeline applies every field
    (what a printer cannot do is refused before printing, see `Driver.unsupported_options`).
    """

    copies: int = 1
    sides: str = "one-sided"  # one-sided, two-sided-long-edge, two-sided-short-edge
    media: str = ""  # PWG media name; "" = the printer's media_default
    media_source: str = ""  # "" = automatic
    orientation: int | None = None  # orientation-requested 3..6; None = as the document says
    color_mode: str = "auto"  # auto, color, monochrome, bi-level
    print_quality: int = 4  # 3 draft, 4 normal, 5 high
    resolution: int = 0  # dpi; 0 = chosen from print_quality and the printer's default
    page_ranges: tuple[tuple[int, int], ...] = ()  # 1-based, inclusive; () = every page
    print_scaling: str = "auto"  # auto, auto-fit, fill, fit, none
    job_name: str = "untitled"
    user: str = "anonymous"
    # multiple-document-handling: collated copies (1,2,3,1,2,3), else each page `copies` times
    # in a row (1,1,2,2,3,3).
    collate: bool = True

    @property
    def duplex(self) -> bool:
        return self.sides.startswith("two-sided")

    @property
    def tumble(self) -> bool:
        return self.sides == "two-sided-short-edge"

    def media_size(self, caps: Capabilities) -> MediaSize:
        chosen = caps.media_size(self.media) if self.media else None
        return chosen or caps.media_size(caps.media_default) or caps.media[0]

    def dpi(self, caps: Capabilities) -> int:
        if self.resolution in caps.resolutions:
            return self.resolution
        if self.print_quality == 3:
            return min(caps.resolutions)
        if self.print_quality == 5:
            return max(caps.resolutions)
        return caps.default_resolution

    def in_color(self, caps: Capabilities) -> bool:
        return caps.color and self.color_mode in ("auto", "color")

    def wants_page(self, page: int) -> bool:
        return not self.page_ranges or any(lo <= page <= hi for lo, hi in self.page_ranges)

    def last_page_wanted(self) -> int | None:
        return max(hi for _, hi in self.page_ranges) if self.page_ranges else None


def page_rotation(options: PrintOptions) -> int:
    """orientation-requested as degrees anti-clockwise (RFC 8011 5.2.10); portrait or none: 0."""
    return {LANDSCAPE: 90, REVERSE_LANDSCAPE: 270, REVERSE_PORTRAIT: 180}.get(
        options.orientation or PORTRAIT, 0)
