"""What one printer registers over DNS-SD: its service types, subtypes and TXT records.

Pure data (no trio, no sockets): the TXT values are read off the printer attributes that
Get-Printer-Attributes answers with, computed by `gateway.server.attributes` from the same
`Capabilities` and `PrinterDescription`, so the record and the attributes cannot disagree.
Keys follow the Bonjour Printing Specification 1.2 and PWG 5100.14; see
shared/docs/protocols.md section 10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.server.attributes import (
    PrinterDescription,
    addressed_attributes,
    static_attributes,
)
from ippwire.model import Attribute, Collection

if TYPE_CHECKING:
    from drivers import Capabilities

IPP = "_ipp._tcp"
IPPS = "_ipps._tcp"
PRINTER = "_printer._tcp"
HTTP = "_http._tcp"
SUBTYPE_EVERYWHERE = "_print"  # PWG 5100.14: an IPP Everywhere printer
SUBTYPE_AIRPRINT = "_universal"  # AirPrint: browsed only through this subtype
SUBTYPE_WEB = "_printer"  # _http._tcp: the web page of a printer

TLS_VERSION = "1.2"  # the lowest version the IPPS listener accepts (what CUPS and PAPPL send)
MAX_INSTANCE_BYTES = 63  # RFC 6763 section 4.1.1
MAX_STRING_BYTES = 255  # one TXT string, "key=value"
# PaperMax (PAPPL's thresholds on the widest media, in hundredths of millimetres).
PAPER_MAX = ((21000, "<legal-A4"), (29700, "legal-A4"), (42000, "tabloid-A3"),
             (59400, "isoC-A2"))
PAPER_MAX_LARGEST = ">isoC-A2"
RAW_FORMAT = "application/octet-stream"  # says nothing about a language: never in pdl

Txt = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """One DNS-SD service of a printer: all of a printer's records share its instance name."""

    type: str  # "_ipp._tcp"
    port: int
    txt: Txt
    subtypes: tuple[str, ...] = ()  # "_print", without "._sub."


def instance_name(description: PrinterDescription) -> str:
    """printer-info when set, else the printer's name, cut to what a DNS label holds."""
    return truncate_utf8(description.info.strip() or description.name, MAX_INSTANCE_BYTES)


def truncate_utf8(text: str, limit: int) -> str:
    """`text` cut to at most `limit` bytes of UTF-8, never inside a character."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[:limit].decode("utf-8", errors="ignore").rstrip()


def _values(attributes: list[Attribute]) -> dict[str, tuple[object, ...]]:
    return {attr.name: tuple(attr.plain) for attr in attributes}


def _text(values: dict[str, tuple[object, ...]], name: str) -> str:
    found = values.get(name, ())
    return str(found[0]) if found else ""


def _flag(value: bool) -> str:
    return "T" if value else "F"


def paper_max(widths: list[int]) -> str:
    widest = max(widths, default=0)
    for limit, label in PAPER_MAX:
        if widest < limit:
            return label
    return PAPER_MAX_LARGEST


def _media_widths(sizes: tuple[object, ...]) -> list[int]:
    widths = []
    for size in sizes:
        width = size.get("x-dimension") if isinstance(size, Collection) else None
        if width is not None and isinstance(width.value, int):
            widths.append(width.value)
    return widths


def _fit(key: str, value: str) -> str:
    """The value cut so that "key=value" fits one TXT string."""
    return truncate_utf8(value, MAX_STRING_BYTES - len(key) - 1)


def _pdl(formats: tuple[object, ...]) -> str:
    """document-format-supported without octet-stream, leaving out whole formats (the last
    ones) rather than cutting one when the list is longer than a TXT string."""
    listed: list[str] = []
    room = MAX_STRING_BYTES - len("pdl=")
    for fmt in formats:
        if fmt == RAW_FORMAT:
            continue
        needed = len(str(fmt)) + (1 if listed else 0)
        if needed > room:
            break
        listed.append(str(fmt))
        room -= needed
    return ",".join(listed)


def accepts_urf(caps: Capabilities, description: PrinterDescription) -> bool:
    """AirPrint clients send URF: only a printer that takes it is listed as `_universal`."""
    return "image/urf" in description.formats


def printer_txt(caps: Capabilities, description: PrinterDescription, *, path: str, host: str,
                port: int, scheme: str, tls: bool, queues: int = 1) -> Txt:
    """The TXT record of the `scheme` ("ipp" or "ipps") service of the printer at `path`,
    each value the attribute Get-Printer-Attributes gives over that scheme."""
    values = _values(static_attributes(caps, description)
                     + addressed_attributes(scheme, host, port, path,
                                            authentication=description.authentication))
    make_and_model = _text(values, "printer-make-and-model")
    sides = values.get("sides-supported", ())
    urf = values.get("urf-supported", ())
    entries = [
        ("txtvers", "1"),  # first, as the Bonjour Printing Specification asks
        ("qtotal", str(queues)),
        ("rp", path.lstrip("/")),
        ("ty", make_and_model),
        ("product", f"({make_and_model})"),
        ("note", _text(values, "printer-location")),
        ("adminurl", _text(values, "printer-more-info")),
        ("pdl", _pdl(values.get("document-format-supported", ()))),
        # Never empty: "none" says there is no URF, which AirPrint clients understand.
        ("URF", ",".join(str(v) for v in urf) if urf else "none"),
        ("UUID", _text(values, "printer-uuid").removeprefix("urn:uuid:")),
        ("Color", _flag(values.get("color-supported", (False,))[0] is True)),
        ("Duplex", _flag(any(side != "one-sided" for side in sides))),
        ("kind", ",".join(str(v) for v in values.get("printer-kind", ()))),
        ("PaperMax", paper_max(_media_widths(values.get("media-size-supported", ())))),
        ("priority", "0"),
        # How clients authenticate to print (Bonjour Printing 1.2): a user name and password
        # when uri-authentication-supported asks for a login.
        ("air", "username,password" if _text(values, "uri-authentication-supported") != "none"
         else "none"),
    ]
    if tls:
        entries.append(("TLS", TLS_VERSION))
    return tuple((key, _fit(key, value)) for key, value in entries)


def printer_services(caps: Capabilities, description: PrinterDescription, *, path: str,
                     host: str, port: int, tls: bool, ipp_everywhere: bool
                     ) -> tuple[ServiceRecord, ...]:
    """Every record of one printer: IPP (and IPPS with `tls`), the LPD name reservation and
    the web page. `ipp_everywhere`: whether it meets PWG 5100.14 (the `_print` subtype)."""
    subtypes = tuple(subtype for subtype, wanted in (
        (SUBTYPE_EVERYWHERE, ipp_everywhere),
        (SUBTYPE_AIRPRINT, accepts_urf(caps, description))) if wanted)
    services = [ServiceRecord(IPP, port, printer_txt(
        caps, description, path=path, host=host, port=port, scheme="ipp", tls=tls), subtypes)]
    if tls:
        services.append(ServiceRecord(IPPS, port, printer_txt(
            caps, description, path=path, host=host, port=port, scheme="ipps", tls=tls),
            subtypes))
    # Port 0: nothing serves LPD here; the record keeps another host from taking the name
    # (Bonjour Printing Specification section 9.1, as CUPS and PAPPL do).
    services.append(ServiceRecord(PRINTER, 0, ()))
    services.append(ServiceRecord(HTTP, port, (("path", path),), (SUBTYPE_WEB,)))
    return tuple(services)


def encode_txt(txt: Txt) -> list[bytes]:
    """The TXT strings on the wire: "key=value" in UTF-8, in order."""
    return [f"{key}={value}".encode() for key, value in txt]
