"""Printer languages and what a printer can do: the one source of every IPP `*-supported`.

A `Driver` names a printer language (raw, postscript, pcl5, ...). `Capabilities` is what one
configured printer can do; the gateway derives all its job-template and pwg-raster/urf
attributes from it, and the conversion planner decides which document formats it accepts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TypeVar


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
        """The printer takes PJL: the planner wraps PCL 5 and PostScript in ENTER LANGUAGE."""
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


@dataclass(frozen=True)
class Driver:
    """A printer language: the formats the printer takes natively and its default capabilities.

    `collates`: the language itself can print collated copies of a multi-page document (a
    copy count that repeats the whole document, not each page). Where it cannot, the pipeline
    sends the document once per copy for collated copies.
    """

    name: str
    native_formats: tuple[str, ...]
    capabilities: Capabilities = field(default_factory=Capabilities)
    collates: bool = False


_D = TypeVar("_D", bound=Callable[[], Driver])
_DRIVERS: dict[str, Callable[[], Driver]] = {}


def register_driver(name: str) -> Callable[[_D], _D]:
    def decorate(factory: _D) -> _D:
        _DRIVERS[name] = factory
        return factory

    return decorate


OCTET_STREAM = "application/octet-stream"

# The formats a raw queue may list (its `formats` setting): the printer must take them as they
# come. Each with its IEEE 1284 CMD: token, as ippeveprinter spells them; octet-stream has none.
_RAW_COMMANDS = {
    "application/pdf": "PDF",
    "application/postscript": "PS",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/pwg-raster": "PWG",
    "image/urf": "URF",
    "text/plain": "TXT",
    OCTET_STREAM: "",
}
RAW_PASSTHROUGH_FORMATS: tuple[str, ...] = tuple(_RAW_COMMANDS)


def raw_command_set(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The 1284 command set a raw queue listing `formats` reports in printer-device-id."""
    unknown = [f for f in formats if f not in _RAW_COMMANDS]
    if unknown:
        raise ValueError(f"a raw queue cannot list {', '.join(unknown)} "
                         f"(may list: {', '.join(RAW_PASSTHROUGH_FORMATS)})")
    return tuple(dict.fromkeys(_RAW_COMMANDS[f] for f in formats if _RAW_COMMANDS[f]))


def raw_capabilities(formats: tuple[str, ...] = (OCTET_STREAM,)) -> Capabilities:
    """A raw queue's capabilities: it accepts exactly `formats` (a subset of
    RAW_PASSTHROUGH_FORMATS) and passes them through untouched.

    Only octet-stream by default: a raw queue cannot know what its printer takes, and one that
    advertised PDF or URF would hand a phone's PDF to a PCL printer as it is."""
    return Capabilities(
        make_and_model="ipp-gateway raw queue",
        manufacturer="ipp-gateway",
        model="raw queue",
        command_set=raw_command_set(formats),
        document_formats=tuple(dict.fromkeys(formats)),
        color=True,
        # Bytes pass through untouched: the gateway cannot make copies or duplex of them.
        duplex=False,
        copies_max=1,
    )


@register_driver("raw")
def raw_driver() -> Driver:
    """The printer (or the file it writes) takes the listed formats as they come."""
    return Driver(name="raw", native_formats=RAW_PASSTHROUGH_FORMATS,
                  capabilities=raw_capabilities())


def driver_names() -> list[str]:
    return sorted(_DRIVERS)


# The languages a PJL job wrapper switches to (`@PJL ENTER LANGUAGE=...`), by media type.
PJL_LANGUAGES = {"application/vnd.hp-PCL": "PCL", "application/postscript": "POSTSCRIPT"}


def pjl_drivers() -> list[str]:
    """The drivers whose jobs a `pjl` printer setting can wrap: those writing PCL 5 or
    PostScript. Raw passes bytes untouched; PCL XL gets its PJL header from Ghostscript."""
    return [name for name in driver_names() if name != "raw"
            and any(f in PJL_LANGUAGES for f in get_driver(name).native_formats)]


def get_driver(name: str) -> Driver:
    try:
        return _DRIVERS[name]()
    except KeyError:
        raise KeyError(f"unknown driver {name!r} (known: {', '.join(driver_names())})") from None


# IPP orientation-requested values (RFC 8011 5.2.10).
PORTRAIT, LANDSCAPE, REVERSE_LANDSCAPE, REVERSE_PORTRAIT = 3, 4, 5, 6


@dataclass(frozen=True)
class PrintOptions:
    """What one job asks for, already validated against the printer's Capabilities.

    The gateway maps IPP job-template attributes onto this; the pipeline applies every field
    (what a printer cannot do is refused before printing, see `drivers.filters.planner`).
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


def load_builtin_drivers() -> None:
    """Import the printer languages so their `@register_driver` factories are known."""
    import importlib

    importlib.import_module("drivers.languages")


load_builtin_drivers()
