"""What an IPP device says it can do, and the driver and printer settings that follow from it.

Pure: no trio, no socket. The `ipp://` transport reads a device's Get-Printer-Attributes
response at setup and on probe; `capabilities_from_attributes` turns it into
`DeviceCapabilities`, `choose_ipp_driver` picks our driver from its document formats with the
plug-and-print order (`drivers.autosetup`), and `printer_config_values` gives the `[[printer]]`
keys `ipp-gateway add` writes.

The order of preference:

1. application/pdf: `raw`. The device prints PDF itself, so documents pass through as they are
   (a PDF never gets worse by not being converted).
2. application/postscript: `postscript`.
3. application/vnd.hp-PCLXL (any case): `pclxl`.
4. application/vnd.hp-PCL or application/pcl: `pcl5`.
5. image/pwg-raster or image/urf and none of the above: `raw` too, since the device is
   driverless already (an AirPrint-only device lists URF alone).
6. Nothing usable: `postscript`, and the reason says it is a guess. An old IPP printer that
   lists only application/octet-stream nearly always takes PostScript.

Devices from before IPP Everywhere send odd attribute sets: an IPP/1.0 printer may leave out
half of them, use RFC 2911's media names ("iso-a4-white"), or send a value with another syntax
than the RFC's. Whatever is missing or odd gives the default, never an exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from drivers.autosetup import DriverChoice
from drivers.model.capabilities import LEGACY_MEDIA_NAMES, MEDIA_SIZES
from drivers.model.formats import (
    JPEG,
    OCTET_STREAM,
    PDF,
    PNG,
    POSTSCRIPT,
    PWG_RASTER,
    TEXT,
    URF,
)
from ippwire.enums import GroupTag, Operation
from ippwire.model import Attribute, Collection, IntRange, Message, Resolution, StringWithLanguage

# What a raw queue may pass through: drivers.languages.raw.RAW_PASSTHROUGH_FORMATS (a unit test
# holds the two equal). It is copied because drivers.languages.raw reaches trio (Ghostscript
# stages) and this module must not.
RAW_PASSTHROUGH_FORMATS: tuple[str, ...] = (PDF, POSTSCRIPT, JPEG, PNG, PWG_RASTER, URF, TEXT,
                                            OCTET_STREAM)
# The resolutions the config accepts (gateway.config: printer resolutions); others are dropped.
CONFIG_RESOLUTIONS = (150, 200, 300, 360, 600, 720, 1200)

_PCLXL = frozenset({"application/vnd.hp-pclxl"})
_PCL5 = frozenset({"application/vnd.hp-pcl", "application/pcl"})
_DRIVERLESS = (PWG_RASTER, URF)
# RFC 2911 appendix C media names carry the colour or kind of the medium after the size.
_MEDIUM_SUFFIXES = ("-white", "-colored", "-transparent")
_DPCM = 4  # resolution units: dots per centimetre (3 is dots per inch)


@dataclass(frozen=True)
class DeviceCapabilities:
    ipp_versions: tuple[str, ...] = ()  # ipp-versions-supported, e.g. ("1.0", "1.1")
    operations: frozenset[int] = frozenset()  # operations-supported
    formats: tuple[str, ...] = ()  # document-format-supported, as the device spells them
    media: tuple[str, ...] = ()  # media-supported that we know (MEDIA_SIZES names)
    media_default: str = ""  # one of MEDIA_SIZES, or ""
    sides: tuple[str, ...] = ()
    color: bool = False  # color-supported
    resolutions: tuple[int, ...] = ()  # square resolutions in dpi, ascending
    copies_max: int = 1  # upper bound of copies-supported
    make_and_model: str = ""
    state_reasons: tuple[str, ...] = ()

    @property
    def create_job(self) -> bool:
        """Whether the device takes Create-Job followed by Send-Document."""
        return {Operation.CREATE_JOB, Operation.SEND_DOCUMENT} <= self.operations

    @property
    def duplex(self) -> bool:
        return any(side.startswith("two-sided-") for side in self.sides)


def capabilities_from_attributes(message: Message) -> DeviceCapabilities:
    """The capabilities in a Get-Printer-Attributes response (its first printer group)."""
    group = message.group(GroupTag.PRINTER)
    attributes = {a.name: a for a in reversed(group.attributes)} if group else {}

    def strings(name: str) -> tuple[str, ...]:
        return _strings(attributes.get(name))

    media = tuple(dict.fromkeys(
        known for known in (known_media(m) for m in strings("media-supported")) if known))
    media_default = next((known_media(m) for m in strings("media-default")), "")
    if not media_default:
        media_default = _media_col_default(attributes.get("media-col-default"))
    if media and media_default not in media:
        media_default = media[0]
    return DeviceCapabilities(
        ipp_versions=strings("ipp-versions-supported"),
        operations=frozenset(_ints(attributes.get("operations-supported"))),
        formats=strings("document-format-supported"),
        media=media,
        media_default=media_default,
        sides=strings("sides-supported"),
        color=_color(attributes),
        resolutions=_resolutions(attributes.get("printer-resolution-supported")),
        copies_max=_copies_max(attributes.get("copies-supported")),
        make_and_model=next(iter(strings("printer-make-and-model")), ""),
        state_reasons=strings("printer-state-reasons"),
    )


def known_media(keyword: str) -> str:
    """The MEDIA_SIZES name for a media keyword: PWG, RFC 8011's legacy names, and RFC 2911's
    "iso-a4-white" kind; "" when it is not a size we know."""
    name = keyword.strip()
    if name in MEDIA_SIZES:
        return name
    lowered = name.lower()
    for suffix in _MEDIUM_SUFFIXES:
        lowered = lowered.removesuffix(suffix)
    return LEGACY_MEDIA_NAMES.get(lowered, "")


def _values(attribute: Attribute | None) -> list[object]:
    if attribute is None:
        return []
    return [value for _, value in attribute.values if value is not None]


def _strings(attribute: Attribute | None) -> tuple[str, ...]:
    found: list[str] = []
    for value in _values(attribute):
        if isinstance(value, StringWithLanguage):
            value = value.text
        elif isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip():
            found.append(value.strip())
    return tuple(dict.fromkeys(found))


def _ints(attribute: Attribute | None) -> list[int]:
    return [v for v in _values(attribute) if isinstance(v, int) and not isinstance(v, bool)]


def _color(attributes: dict[str, Attribute]) -> bool:
    supported = [v for v in _values(attributes.get("color-supported")) if isinstance(v, bool)]
    if supported:
        return supported[0]
    # Some devices leave color-supported out but list their colour modes (PWG 5100.13).
    return "color" in _strings(attributes.get("print-color-mode-supported"))


def _resolutions(attribute: Attribute | None) -> tuple[int, ...]:
    found: set[int] = set()
    for value in _values(attribute):
        if isinstance(value, Resolution) and value.x == value.y and value.x > 0:
            found.add(round(value.x * 2.54) if value.units == _DPCM else value.x)
    return tuple(sorted(found))


def _copies_max(attribute: Attribute | None) -> int:
    for value in _values(attribute):
        if isinstance(value, IntRange) and value.upper >= 1:
            return value.upper
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
    return 1


def _media_col_default(attribute: Attribute | None) -> str:
    """The known size a media-col-default's media-size describes, within 1 mm."""
    collection = next((v for v in _values(attribute) if isinstance(v, Collection)), None)
    size = collection.get("media-size") if collection is not None else None
    dimensions = next((v for v in _values(size) if isinstance(v, Collection)), None)
    if dimensions is None:
        return ""
    width = next(iter(_ints(dimensions.get("x-dimension"))), 0)
    height = next(iter(_ints(dimensions.get("y-dimension"))), 0)
    for media in MEDIA_SIZES.values():
        if abs(media.width - width) <= 100 and abs(media.height - height) <= 100:
            return media.name
    return ""


def _bare(fmt: str) -> str:
    return fmt.split(";", 1)[0].strip().lower()


def choose_ipp_driver(formats: Sequence[str]) -> DriverChoice:
    """The driver for a device whose document-format-supported is `formats`."""
    listed = [fmt.strip() for fmt in formats if fmt.strip()]
    by_bare: dict[str, str] = {}
    for fmt in listed:
        by_bare.setdefault(_bare(fmt), fmt)
    named = ", ".join(listed) if listed else "nothing"
    source = f"the device's document-format-supported lists {named}"

    def first(candidates: Iterable[str]) -> str | None:
        return next((by_bare[c] for c in candidates if c in by_bare), None)

    ranked = (
        ("raw", (PDF,), "it prints PDF itself: documents pass through as they are"),
        ("postscript", (POSTSCRIPT,), "PostScript is the best language it takes"),
        ("pclxl", _PCLXL, "PCL XL is the best language it takes"),
        ("pcl5", _PCL5, "PCL 5 is the best language it takes"),
        ("raw", _DRIVERLESS, "it is driverless already: raster passes through as it is"),
    )
    for driver, candidates, why in ranked:
        token = first(candidates)
        if token is not None:
            return DriverChoice(driver, token, f"{source}: {why}")
    return DriverChoice("postscript", "", f"{source}, no printer language we know: PostScript "
                                          "is a guess; set the driver by hand if it does not "
                                          "print")


def printer_config_values(caps: DeviceCapabilities, choice: DriverChoice) -> dict[str, object]:
    """The `[[printer]]` keys for a device with `caps` driven by `choice` (without name and
    device, which the caller knows). Only what the device said is written."""
    values: dict[str, object] = {"driver": choice.driver}
    if caps.make_and_model:
        values["make_and_model"] = caps.make_and_model
    if caps.media:
        values["media"] = list(caps.media)
        if caps.media_default in caps.media:
            values["media_default"] = caps.media_default
    if caps.sides:
        values["duplex"] = caps.duplex
    values["color"] = caps.color
    resolutions = [dpi for dpi in caps.resolutions if dpi in CONFIG_RESOLUTIONS]
    if resolutions:
        values["resolutions"] = resolutions
    if choice.driver == "raw":
        allowed = {fmt.lower(): fmt for fmt in RAW_PASSTHROUGH_FORMATS}
        passed = [allowed[b] for b in dict.fromkeys(_bare(f) for f in caps.formats)
                  if b in allowed]
        passed.sort(key=lambda fmt: fmt != PDF)  # stable: the device's order after PDF
        if passed:
            values["formats"] = passed
    return values
