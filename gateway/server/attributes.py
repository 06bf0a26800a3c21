"""Printer attributes for Get-Printer-Attributes, built from pure data only.

What a printer advertises comes from three values, never from a live `Printer`: its driver's
`Capabilities`, a `PrinterDescription` (what its configuration says: name, info, the
operations and formats it takes, the limits) and a `PrinterSnapshot` of its state at one
moment (gateway.core.events). The same data will feed the DNS-SD TXT record. No trio here:
tests/unit/test_import_rules.py holds this module to it.

Three parts with different lifetimes: `static_attributes` (capabilities and description:
fixed until a reload, pre-encoded once), `addressed_attributes` (URIs, built from the scheme
and Host the client used) and `live_attributes` (state, counters, clocks; per change).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gateway.authority import url
from gateway.core.events import PrinterSnapshot
from gateway.core.subscriptions import (
    DEFAULT_LEASE,
    EVENT_LIFE,
    EVENTS_DEFAULT,
    EVENTS_SUPPORTED,
    MAX_LEASE,
    PULL_METHODS,
)
from gateway.privacy import JOB_PRIVACY_ATTRIBUTES, JOB_PRIVACY_SCOPE
from ippwire.enums import ValueTag
from ippwire.model import Attribute, Collection, IntRange, Resolution, Value

if TYPE_CHECKING:  # types only: importing drivers.driver at run time would reach trio
    from drivers import Capabilities, MediaSize, Supply

T = ValueTag


@dataclass(frozen=True, slots=True)
class PrinterDescription:
    """What a printer's configuration says about it besides its `Capabilities` (which carry
    make-and-model, configured overrides applied): fixed until a reload."""

    name: str
    uuid: str
    info: str  # printer-info; empty: the printer's name
    location: str
    formats: tuple[str, ...]  # document-format-supported: what the planner can print
    operations: tuple[int, ...]  # operations-supported: what the dispatcher's table answers
    max_job_bytes: int  # job-k-octets-supported
    multiple_operation_timeout: int  # seconds a Create-Job waits for its document
    # Job-template attributes its driver takes only at their default (Driver.fixed): their
    # *-supported lists that default alone ("page-ranges": page-ranges-supported false).
    fixed_options: tuple[str, ...] = ()
    # uri-authentication-supported: "basic" when printing needs a login (gateway.policy),
    # else "none" (requesting-user-name is taken, unproven).
    authentication: str = "none"

# Job template attributes we accept at job creation (job-creation-attributes-supported).
JOB_CREATION_ATTRIBUTES = (
    "copies", "finishings", "ipp-attribute-fidelity", "job-hold-until", "job-name",
    "job-priority", "media", "media-col", "multiple-document-handling", "orientation-requested",
    "output-bin", "overrides", "page-ranges", "print-color-mode", "print-content-optimize",
    "print-quality", "print-rendering-intent", "print-scaling", "printer-resolution", "sides",
)

TEMPLATE_BASES = frozenset({
    "copies", "finishings", "job-hold-until", "job-priority", "job-sheets", "media", "media-col",
    "multiple-document-handling", "number-up", "orientation-requested", "output-bin",
    "page-ranges", "print-color-mode", "print-content-optimize", "print-quality",
    "print-rendering-intent", "print-scaling", "printer-resolution", "sides",
    "media-source", "media-type", "media-size", "media-top-margin", "media-bottom-margin",
    "media-left-margin", "media-right-margin", "media-col-database", "media-size-name",
    "overrides",
})

WHICH_JOBS = ("completed", "not-completed", "aborted", "all", "canceled", "pending",
              "pending-held", "processing", "processing-stopped")
COMPRESSIONS = ("none", "deflate", "gzip")
IDENTIFY_ACTIONS = ("display", "sound")


# PWG 5100.14 (IPP Everywhere v1.1) section 6.2, as read here: a Printer MUST support
# image/pwg-raster and image/jpeg and SHOULD support application/pdf; a Printer that supports
# PDF MUST support page-ranges (and "pages" overrides) for it.
IPP_EVERYWHERE_FORMATS = ("image/pwg-raster", "image/jpeg")
PDF = "application/pdf"


def is_ipp_everywhere(caps: Capabilities, description: PrinterDescription) -> bool:
    """Whether a printer with `caps` that prints `description.formats` (its
    document-format-supported) meets IPP Everywhere's format requirements: PWG raster and
    JPEG, and, when PDF is listed, page-ranges honoured (not among the options its driver
    fixes). PDF itself is recommended, not required. It decides "ipp-everywhere"
    in ipp-features-supported; the DNS-SD `_print` subtype must follow the same answer.
    A converting driver meets it whenever Ghostscript and the image filters are there; a raw
    queue only when the formats configured for it (what its printer takes as it comes) do."""
    formats = description.formats
    if not all(f in formats for f in IPP_EVERYWHERE_FORMATS):
        return False
    return PDF not in formats or (caps.page_ranges
                                  and "page-ranges" not in description.fixed_options)


def is_job_template(name: str) -> bool:
    for suffix in ("-default", "-supported", "-ready", "-database"):
        if name.endswith(suffix):
            return name[: -len(suffix)] in TEMPLATE_BASES or name == "media-col-database"
    return False


def a(name: str, tag: int, *values: Value) -> Attribute:
    return Attribute.of(name, tag, *values)


def media_size_collection(media: MediaSize) -> Collection:
    return Collection([a("x-dimension", T.INTEGER, media.width),
                       a("y-dimension", T.INTEGER, media.height)])


def media_col(caps: Capabilities, media: MediaSize, source: str | None = None) -> Collection:
    top, bottom, left, right = caps.margins
    members = [
        a("media-size", T.BEGIN_COLLECTION, media_size_collection(media)),
        a("media-size-name", T.KEYWORD, media.name),
        a("media-top-margin", T.INTEGER, top),
        a("media-bottom-margin", T.INTEGER, bottom),
        a("media-left-margin", T.INTEGER, left),
        a("media-right-margin", T.INTEGER, right),
        a("media-type", T.KEYWORD, caps.media_types[0]),
    ]
    if source is not None:
        members.insert(2, a("media-source", T.KEYWORD, source))
    return Collection(members)


def ready_media(caps: Capabilities) -> MediaSize:
    return caps.media_size(caps.media_default) or caps.media[0]


def device_id(caps: Capabilities) -> str:
    command_set = ",".join(caps.command_set) or "UNKNOWN"
    return f"MFG:{caps.manufacturer};MDL:{caps.model};CMD:{command_set};CLS:PRINTER;"


def static_attributes(caps: Capabilities, description: PrinterDescription) -> list[Attribute]:
    formats = description.formats
    resolutions = [Resolution(r, r) for r in caps.resolutions]
    default_media = ready_media(caps)
    top, bottom, left, right = caps.margins
    attrs = [
        a("charset-configured", T.CHARSET, "utf-8"),
        a("charset-supported", T.CHARSET, "us-ascii", "utf-8"),
        a("color-supported", T.BOOLEAN, caps.color),
        a("compression-supported", T.KEYWORD, *COMPRESSIONS),
        a("copies-default", T.INTEGER, 1),
        a("copies-supported", T.RANGE_OF_INTEGER, IntRange(1, caps.copies_max)),
        a("document-format-default", T.MIME_MEDIA_TYPE, "application/octet-stream"),
        a("document-format-supported", T.MIME_MEDIA_TYPE, *formats),
        # PWG 5100.13: the longest document-password taken; 0: none is (no PDF is decrypted).
        a("document-password-supported", T.INTEGER, 0),
        a("feed-orientation-supported", T.KEYWORD, "short-edge-first"),
        a("feed-orientation-default", T.KEYWORD, "short-edge-first"),
        a("finishings-default", T.ENUM, 3),
        a("finishings-supported", T.ENUM, 3),
        a("generated-natural-language-supported", T.NATURAL_LANGUAGE, "en"),
        a("identify-actions-default", T.KEYWORD, "sound"),
        a("identify-actions-supported", T.KEYWORD, *IDENTIFY_ACTIONS),
        a("ipp-features-supported", T.KEYWORD,
          "ipp-everywhere" if is_ipp_everywhere(caps, description) else "none"),
        a("ipp-versions-supported", T.KEYWORD, "1.1", "2.0"),
        a("ippget-event-life", T.INTEGER, EVENT_LIFE),
        a("job-creation-attributes-supported", T.KEYWORD, *JOB_CREATION_ATTRIBUTES),
        a("job-hold-until-default", T.KEYWORD, "no-hold"),
        a("job-hold-until-supported", T.KEYWORD, "no-hold", "indefinite"),
        a("job-ids-supported", T.BOOLEAN, True),
        a("job-k-octets-supported", T.RANGE_OF_INTEGER,
          IntRange(0, description.max_job_bytes // 1024)),
        a("job-priority-default", T.INTEGER, 50),
        a("job-priority-supported", T.INTEGER, 100),
        # What gateway.server.job_attributes leaves out of others' jobs, and who sees it.
        a("job-privacy-attributes", T.KEYWORD, *JOB_PRIVACY_ATTRIBUTES),
        a("job-privacy-scope", T.KEYWORD, JOB_PRIVACY_SCOPE),
        a("job-sheets-default", T.KEYWORD, "none"),
        a("job-sheets-supported", T.KEYWORD, "none"),
        a("media-bottom-margin-supported", T.INTEGER, bottom),
        a("media-left-margin-supported", T.INTEGER, left),
        a("media-right-margin-supported", T.INTEGER, right),
        a("media-top-margin-supported", T.INTEGER, top),
        a("media-col-default", T.BEGIN_COLLECTION, media_col(caps, default_media,
                                                               caps.media_sources[0])),
        a("media-col-ready", T.BEGIN_COLLECTION, media_col(caps, default_media,
                                                             caps.media_sources[0])),
        a("media-col-supported", T.KEYWORD, "media-bottom-margin", "media-left-margin",
          "media-right-margin", "media-size", "media-size-name", "media-source",
          "media-top-margin", "media-type"),
        a("media-default", T.KEYWORD, default_media.name),
        a("media-ready", T.KEYWORD, default_media.name),
        a("media-size-supported", T.BEGIN_COLLECTION,
          *[media_size_collection(m) for m in caps.media]),
        a("media-source-supported", T.KEYWORD, *caps.media_sources),
        a("media-supported", T.KEYWORD, *[m.name for m in caps.media]),
        a("media-type-supported", T.KEYWORD, *caps.media_types),
        # What the drivers do when a job does not say (PWG 5100.19: collated copies).
        a("multiple-document-handling-default", T.KEYWORD, "separate-documents-collated-copies"),
        a("multiple-document-handling-supported", T.KEYWORD,
          "separate-documents-uncollated-copies", "separate-documents-collated-copies"),
        a("multiple-document-jobs-supported", T.BOOLEAN, False),
        a("multiple-operation-time-out", T.INTEGER, description.multiple_operation_timeout),
        a("multiple-operation-time-out-action", T.KEYWORD, "abort-job"),
        a("natural-language-configured", T.NATURAL_LANGUAGE, "en"),
        # Notifications (RFC 3995, 3996): ippget pull delivery only, so no notify-schemes.
        a("notify-events-default", T.KEYWORD, *EVENTS_DEFAULT),
        a("notify-events-supported", T.KEYWORD, *EVENTS_SUPPORTED),
        a("notify-lease-duration-default", T.INTEGER, DEFAULT_LEASE),
        a("notify-lease-duration-supported", T.RANGE_OF_INTEGER, IntRange(0, MAX_LEASE)),
        a("notify-max-events-supported", T.INTEGER, len(EVENTS_SUPPORTED)),
        a("notify-pull-method-supported", T.KEYWORD, *PULL_METHODS),
        a("number-up-default", T.INTEGER, 1),
        a("number-up-supported", T.INTEGER, 1),
        a("operations-supported", T.ENUM, *description.operations),
        a("orientation-requested-default", T.ENUM, 3),
        a("orientation-requested-supported", T.ENUM, 3, 4, 5, 6),
        a("output-bin-default", T.KEYWORD, "face-down"),
        a("output-bin-supported", T.KEYWORD, "face-down"),
        # An override may name pages (PWG 5100.6) but change no attribute of them: the
        # selectors are all there is to honour.
        a("overrides-supported", T.KEYWORD, "document-numbers", "pages"),
        a("page-ranges-supported", T.BOOLEAN, caps.page_ranges),
        a("pages-per-minute", T.INTEGER, caps.pages_per_minute),
        a("pdl-override-supported", T.KEYWORD, "attempted"),
        a("preferred-attributes-supported", T.BOOLEAN, False),
        a("print-color-mode-default", T.KEYWORD, "auto"),
        a("print-color-mode-supported", T.KEYWORD, *caps.color_modes),
        a("print-content-optimize-default", T.KEYWORD, "auto"),
        a("print-content-optimize-supported", T.KEYWORD, "auto"),
        a("print-quality-default", T.ENUM, 4),
        a("print-quality-supported", T.ENUM, *caps.print_qualities),
        a("print-rendering-intent-default", T.KEYWORD, "auto"),
        a("print-rendering-intent-supported", T.KEYWORD, "auto"),
        a("print-scaling-default", T.KEYWORD, "auto"),
        a("print-scaling-supported", T.KEYWORD, "auto", "auto-fit", "fill", "fit", "none"),
        a("printer-device-id", T.TEXT, device_id(caps)),
        a("printer-geo-location", T.UNKNOWN),
        a("printer-get-attributes-supported", T.KEYWORD, "document-format"),
        a("printer-info", T.TEXT, description.info or description.name),
        a("printer-kind", T.KEYWORD, "document"),
        a("printer-location", T.TEXT, description.location),
        a("printer-make-and-model", T.TEXT, caps.make_and_model[:127]),
        a("printer-name", T.NAME, description.name),
        a("printer-organization", T.TEXT, ""),
        a("printer-organizational-unit", T.TEXT, ""),
        a("printer-resolution-default", T.RESOLUTION,
          Resolution(caps.default_resolution, caps.default_resolution)),
        a("printer-resolution-supported", T.RESOLUTION, *resolutions),
        a("printer-uuid", T.URI, f"urn:uuid:{description.uuid}"),
        a("pwg-raster-document-resolution-supported", T.RESOLUTION, *resolutions),
        a("pwg-raster-document-sheet-back", T.KEYWORD, "normal"),
        a("pwg-raster-document-type-supported", T.KEYWORD, *caps.pwg_raster_types),
        a("sides-default", T.KEYWORD, "one-sided"),
        a("sides-supported", T.KEYWORD, *caps.sides),
        a("urf-supported", T.KEYWORD, *caps.urf_supported),
        a("which-jobs-supported", T.KEYWORD, *WHICH_JOBS),
    ]
    if caps.color:
        attrs.append(a("pages-per-minute-color", T.INTEGER, caps.pages_per_minute))
    if description.fixed_options:
        attrs = _only_defaults(attrs, description.fixed_options)
    if "image/pwg-raster" not in formats:
        attrs = [x for x in attrs if not x.name.startswith("pwg-raster-")]
    if "image/urf" not in formats:
        attrs = [x for x in attrs if x.name != "urf-supported"]
    return attrs


def _only_defaults(attrs: list[Attribute], names: tuple[str, ...]) -> list[Attribute]:
    """`attrs` with each of `names`' -supported narrowed to its -default: what a driver can
    only take at its default is not advertised beyond it."""
    defaults = {x.name[: -len("-default")]: x for x in attrs if x.name.endswith("-default")}
    narrowed = []
    for x in attrs:
        base = x.name[: -len("-supported")] if x.name.endswith("-supported") else ""
        default = defaults.get(base) if base in names else None
        if base == "page-ranges" and base in names:
            narrowed.append(a(x.name, T.BOOLEAN, False))
        else:
            narrowed.append(x if default is None else Attribute(x.name, list(default.values)))
    return narrowed


def media_col_database(caps: Capabilities) -> Attribute:
    return a("media-col-database", T.BEGIN_COLLECTION,
             *[media_col(caps, m) for m in caps.media])


SUPPLIES_PAGE = "/supplies"  # under the printer's path: its printer-supply-info-uri


def addressed_attributes(scheme: str, host: str, port: int, path: str, *,
                         tls: bool = True, authentication: str = "none") -> list[Attribute]:
    """The URIs of the printer at `path` as the client reached it: `scheme` ("ipp" or
    "ipps") and the Host it used; the web pages are on the same port, over TLS with ipps.

    With `tls` (IPPS served on the same port) `printer-uri-supported` lists the ipp and the
    ipps URI, the one the client used first, so that a client taking the first value stays
    on the transport it chose; `uri-security-supported` and `uri-authentication-supported`
    run parallel to it. `authentication` is the printer's (PrinterDescription): over an
    ipp URI, a client that tries Basic is sent to TLS first (426, gateway.authn)."""
    secure = scheme == "ipps"
    web = url("https" if secure else "http", host, port)
    schemes = [scheme]
    if tls:
        schemes.append("ipp" if secure else "ipps")
    return [
        a("printer-icons", T.URI, f"{web}/icon-sm.png", f"{web}/icon.png", f"{web}/icon-lg.png"),
        a("printer-more-info", T.URI, f"{web}{path}"),
        a("printer-supply-info-uri", T.URI, f"{web}{path}{SUPPLIES_PAGE}"),
        a("printer-uri-supported", T.URI, *(url(each, host, port, path) for each in schemes)),
        a("uri-authentication-supported", T.KEYWORD, *(authentication for _ in schemes)),
        a("uri-security-supported", T.KEYWORD,
          *("tls" if each == "ipps" else "none" for each in schemes)),
    ]


def ipp_datetime(wall: float) -> datetime:
    return datetime.fromtimestamp(int(wall), UTC)


def up_time_at(wall: float, started_at: float) -> int:
    """A wall-clock time as printer-up-time counts: seconds since the start, at least 1."""
    return max(1, int(wall - started_at) + 1)


def live_attributes(snapshot: PrinterSnapshot, *, now: float, started_at: float,
                    up_time: int) -> list[Attribute]:
    """The state part at `now` (wall clock); `started_at` is the system's start (wall clock)
    and `up_time` its printer-up-time now, which the caller counts on a monotonic clock."""
    return [
        a("printer-config-change-date-time", T.DATE_TIME,
          ipp_datetime(snapshot.config_changed_at)),
        a("printer-config-change-time", T.INTEGER,
          up_time_at(snapshot.config_changed_at, started_at)),
        a("printer-current-time", T.DATE_TIME, ipp_datetime(now)),
        # Nothing refuses jobs yet: when something does, the snapshot will say so.
        a("printer-is-accepting-jobs", T.BOOLEAN, True),
        a("printer-state", T.ENUM, int(snapshot.state)),
        a("printer-state-change-date-time", T.DATE_TIME, ipp_datetime(snapshot.state_changed_at)),
        a("printer-state-change-time", T.INTEGER,
          up_time_at(snapshot.state_changed_at, started_at)),
        a("printer-state-message", T.TEXT, snapshot.message),
        a("printer-state-reasons", T.KEYWORD, *snapshot.reasons),
        a("printer-up-time", T.INTEGER, up_time),
        a("queued-job-count", T.INTEGER, snapshot.queued_jobs),
        *supply_attributes(snapshot.supplies),
    ]


# marker-types keywords (PWG 5100.13) -> printer-supply `type=` values (RFC 3805 PrtMarkerSupplies)
_SUPPLY_TYPES = {"toner": "toner", "ink": "ink", "ink-cartridge": "inkCartridge",
                 "toner-cartridge": "tonerCartridge", "waste-toner": "wasteToner",
                 "waste-ink": "wasteInk", "opc": "opc", "developer": "developer",
                 "fuser": "fuser", "staples": "staples", "ribbon-wax": "ribbonWax"}


def supply_text(supply: Supply) -> str:
    """One supply in words: "Black Toner: 42%" (IPP's -1, -2, -3 levels said as such)."""
    level = {-1: "not available", -2: "level unknown", -3: "some left"}.get(
        supply.level, f"{supply.level}%")
    low = " (low)" if 0 <= supply.level <= supply.low else ""
    return f"{supply.name or supply.kind}: {level}{low}"


def supply_attributes(supplies: Sequence[Supply]) -> list[Attribute]:
    """marker-* and printer-supply from what the device reported (an IPP device passes its
    own on); for a device whose transport carries none, one printer-supply saying the level
    is unknown (-2), rather than an invented one."""
    if not supplies:
        return [
            a("printer-supply", T.OCTET_STRING,
              b"index=1;class=unknown;type=other;unit=percent;maxcapacity=100;level=-2;"),
            a("printer-supply-description", T.TEXT, "Supply level not reported by this printer"),
        ]
    encoded = []
    for index, supply in enumerate(supplies, 1):
        kind = _SUPPLY_TYPES.get(supply.kind, "other")
        waste = supply.kind.startswith("waste")
        kind_class = "receptacleThatIsFilled" if waste else "supplyThatIsConsumed"
        text = (f"index={index};class={kind_class};type={kind};unit=percent;maxcapacity=100;"
                f"level={supply.level};")
        if supply.color.startswith("#"):
            text += f"colorantvalue={supply.color[1:]};"
        encoded.append(text.encode("ascii", "replace")[:1023])
    return [
        a("marker-colors", T.NAME, *(s.color or "none" for s in supplies)),
        a("marker-high-levels", T.INTEGER, *(s.high for s in supplies)),
        a("marker-levels", T.INTEGER, *(s.level for s in supplies)),
        a("marker-low-levels", T.INTEGER, *(s.low for s in supplies)),
        a("marker-names", T.NAME, *(s.name for s in supplies)),
        a("marker-types", T.KEYWORD, *(s.kind for s in supplies)),
        a("printer-supply", T.OCTET_STRING, *encoded),
        a("printer-supply-description", T.TEXT, *(s.name for s in supplies)),
    ]
