"""drivers.ippcaps: device capabilities from Get-Printer-Attributes responses, the driver they
choose, and the [[printer]] values they give; once against a real ippeveprinter."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers.autosetup import DriverChoice
from drivers.ippcaps import (
    CONFIG_RESOLUTIONS,
    RAW_PASSTHROUGH_FORMATS,
    DeviceCapabilities,
    capabilities_from_attributes,
    choose_ipp_driver,
    printer_config_values,
)
from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS as RAW_DRIVER_FORMATS
from drivers.registry import driver_names
from gateway.config import config_from_dict
from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.http_client import (
    LAST_CHUNK,
    NEED_DATA,
    Body,
    End,
    Head,
    Interim,
    ResponseParser,
    encode_chunk,
    encode_request,
)
from ippwire.model import (
    Attribute,
    Collection,
    Group,
    IntRange,
    Message,
    Resolution,
    StringWithLanguage,
)
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers.ippeveprinter import IppEvePrinter, running_ippeveprinter
from tests.peers.procs import LOOPBACK
from tests.peers.require import require_programs

T = ValueTag


def response(*attributes: Attribute, version: tuple[int, int] = (1, 1)) -> Message:
    """A Get-Printer-Attributes response as the device would send it, through the wire codec
    (so the values are what our reader makes of real bytes)."""
    operation = Group(GroupTag.OPERATION, [
        Attribute.of("attributes-charset", T.CHARSET, "utf-8"),
        Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, "en-us"),
    ])
    message = Message(version, Status.OK, 1, [operation, Group(GroupTag.PRINTER,
                                                                 list(attributes))])
    decoded, _ = decode_message(encode_message(message))
    return decoded


def hp_laserjet_ipp10() -> Message:
    """An HP LaserJet 4250 of 2004: IPP/1.0, PCL 5, PCL XL and PostScript, RFC 2911 media
    names, no Create-Job."""
    return response(
        Attribute.of("printer-uri-supported", T.URI, "ipp://10.0.0.5/ipp"),
        Attribute.of("ipp-versions-supported", T.KEYWORD, "1.0"),
        Attribute.of("operations-supported", T.ENUM, 0x02, 0x04, 0x08, 0x09, 0x0A, 0x0B),
        Attribute.of("document-format-supported", T.MIME_MEDIA_TYPE, "application/vnd.hp-PCL",
                     "application/vnd.hp-PCLXL", "application/postscript",
                     "application/octet-stream"),
        Attribute.of("media-supported", T.KEYWORD, "iso-a4-white", "na-letter-white",
                     "na-legal-white", "executive-white", "com10-envelope", "iso-a5-white"),
        Attribute.of("media-default", T.KEYWORD, "na-letter-white"),
        Attribute.of("sides-supported", T.KEYWORD, "one-sided", "two-sided-long-edge",
                     "two-sided-short-edge"),
        Attribute.of("color-supported", T.BOOLEAN, False),
        Attribute.of("printer-resolution-supported", T.RESOLUTION, Resolution(600, 600),
                     Resolution(1200, 600), Resolution(1200, 1200)),
        Attribute.of("copies-supported", T.RANGE_OF_INTEGER, IntRange(1, 999)),
        Attribute.of("printer-make-and-model", T.TEXT, "HP LaserJet 4250"),
        Attribute.of("printer-state-reasons", T.KEYWORD, "toner-low-report",
                     "media-empty-warning"),
        version=(1, 0),
    )


def ippeveprinter_postscript() -> Message:
    """ippeveprinter -f application/postscript (CUPS 2.4), trimmed."""
    return response(
        Attribute.of("ipp-versions-supported", T.KEYWORD, "1.1", "2.0"),
        Attribute.of("operations-supported", T.ENUM, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0A,
                     0x0B, 0x3B, 0x3C),
        Attribute.of("document-format-supported", T.MIME_MEDIA_TYPE, "application/octet-stream",
                     "application/postscript"),
        Attribute.of("media-supported", T.KEYWORD, "na_letter_8.5x11in", "iso_a4_210x297mm",
                     "na_legal_8.5x14in", "custom_min_3x5in", "custom_max_8.5x14in"),
        Attribute.of("media-default", T.KEYWORD, "na_letter_8.5x11in"),
        Attribute.of("sides-supported", T.KEYWORD, "one-sided"),
        Attribute.of("color-supported", T.BOOLEAN, True),
        Attribute.of("printer-resolution-supported", T.RESOLUTION, Resolution(300, 300),
                     Resolution(600, 600)),
        Attribute.of("copies-supported", T.RANGE_OF_INTEGER, IntRange(1, 999)),
        Attribute.of("printer-make-and-model", T.TEXT, "Example Printer"),
        Attribute.of("printer-state-reasons", T.KEYWORD, "none"),
    )


def cups_queue_pdf() -> Message:
    """A CUPS 2.x queue (an "old print server" shares it): IPP 2.1, PDF among many formats,
    media-default left out but media-col-default present, resolution in dots per cm."""
    size = Collection([Attribute.of("x-dimension", T.INTEGER, 21000),
                       Attribute.of("y-dimension", T.INTEGER, 29700)])
    media_col = Collection([Attribute.of("media-size", T.BEGIN_COLLECTION, size),
                            Attribute.of("media-type", T.KEYWORD, "stationery")])
    return response(
        Attribute.of("ipp-versions-supported", T.KEYWORD, "1.0", "1.1", "2.0", "2.1"),
        Attribute.of("operations-supported", T.ENUM, *range(0x02, 0x12)),
        Attribute.of("document-format-supported", T.MIME_MEDIA_TYPE,
                     "application/octet-stream", "application/pdf", "application/postscript",
                     "application/vnd.cups-raster", "image/jpeg", "image/pwg-raster",
                     "image/urf", "text/plain"),
        Attribute.of("media-supported", T.KEYWORD, "iso_a4_210x297mm", "iso_a5_148x210mm",
                     "om_small-photo_100x150mm"),
        Attribute.of("media-col-default", T.BEGIN_COLLECTION, media_col),
        Attribute.of("sides-supported", T.KEYWORD, "one-sided", "two-sided-long-edge"),
        Attribute.of("color-supported", T.BOOLEAN, True),
        Attribute.of("printer-resolution-supported", T.RESOLUTION, Resolution(118, 118, 4)),
        Attribute.of("copies-supported", T.RANGE_OF_INTEGER, IntRange(1, 9999)),
        Attribute.of("printer-make-and-model", T.TEXT, "Brother HL-L8360CDW series"),
        Attribute.of("printer-state-reasons", T.KEYWORD, "none"),
        version=(2, 0),
    )


def load_printer(values: dict[str, object]) -> object:
    table = {"name": "device", "device": "socket://printer.example:9100", **values}
    (printer,) = config_from_dict({"printer": [table]}).printers
    return printer


def test_an_ipp10_hp_laser_with_pcl_and_postscript() -> None:
    caps = capabilities_from_attributes(hp_laserjet_ipp10())
    assert caps == DeviceCapabilities(
        ipp_versions=("1.0",),
        operations=frozenset({0x02, 0x04, 0x08, 0x09, 0x0A, 0x0B}),
        formats=("application/vnd.hp-PCL", "application/vnd.hp-PCLXL", "application/postscript",
                 "application/octet-stream"),
        media=("iso_a4_210x297mm", "na_letter_8.5x11in", "na_legal_8.5x14in",
               "na_executive_7.25x10.5in", "iso_a5_148x210mm"),
        media_default="na_letter_8.5x11in",
        sides=("one-sided", "two-sided-long-edge", "two-sided-short-edge"),
        color=False,
        resolutions=(600, 1200),
        copies_max=999,
        make_and_model="HP LaserJet 4250",
        state_reasons=("toner-low-report", "media-empty-warning"),
    )
    assert not caps.create_job
    choice = choose_ipp_driver(caps.formats)
    assert (choice.driver, choice.language) == ("postscript", "application/postscript")
    assert "application/vnd.hp-PCL, application/vnd.hp-PCLXL" in choice.reason
    values = printer_config_values(caps, choice)
    assert values == {
        "driver": "postscript", "make_and_model": "HP LaserJet 4250",
        "media": list(caps.media), "media_default": "na_letter_8.5x11in", "duplex": True,
        "color": False, "resolutions": [600, 1200],
    }
    printer = load_printer(values)
    assert printer.driver == "postscript"  # type: ignore[attr-defined]
    assert printer.duplex is True  # type: ignore[attr-defined]
    assert printer.media_default == "na_letter_8.5x11in"  # type: ignore[attr-defined]


def test_an_ippeveprinter_with_only_postscript() -> None:
    caps = capabilities_from_attributes(ippeveprinter_postscript())
    assert caps.create_job
    assert caps.ipp_versions == ("1.1", "2.0")
    assert caps.media == ("na_letter_8.5x11in", "iso_a4_210x297mm", "na_legal_8.5x14in")
    assert (caps.sides, caps.color, caps.resolutions) == (("one-sided",), True, (300, 600))
    choice = choose_ipp_driver(caps.formats)
    assert choice == DriverChoice(
        "postscript", "application/postscript",
        "the device's document-format-supported lists application/octet-stream, "
        "application/postscript: PostScript is the best language it takes")
    values = printer_config_values(caps, choice)
    assert values["duplex"] is False and values["color"] is True
    assert "formats" not in values
    printer = load_printer(values)
    assert printer.resolutions == (300, 600)  # type: ignore[attr-defined]


def test_a_cups_queue_with_pdf_passes_documents_through() -> None:
    caps = capabilities_from_attributes(cups_queue_pdf())
    assert caps.media == ("iso_a4_210x297mm", "iso_a5_148x210mm")
    assert caps.media_default == "iso_a4_210x297mm"  # from media-col-default's size
    assert caps.resolutions == (300,)  # 118 dots per cm
    assert caps.copies_max == 9999 and caps.create_job
    choice = choose_ipp_driver(caps.formats)
    assert (choice.driver, choice.language) == ("raw", "application/pdf")
    values = printer_config_values(caps, choice)
    # PDF first, then the device's own order; vnd.cups-raster is nothing we pass through.
    assert values["formats"] == ["application/pdf", "application/octet-stream",
                                 "application/postscript", "image/jpeg", "image/pwg-raster",
                                 "image/urf", "text/plain"]
    printer = load_printer(values)
    assert printer.driver == "raw"  # type: ignore[attr-defined]
    assert printer.formats[0] == "application/pdf"  # type: ignore[attr-defined]


@pytest.mark.parametrize(("formats", "driver", "language"), [
    (["application/pdf", "application/postscript"], "raw", "application/pdf"),
    (["application/PDF; version=1.7"], "raw", "application/PDF; version=1.7"),
    (["application/vnd.hp-PCL", "application/postscript"], "postscript",
     "application/postscript"),
    (["application/vnd.hp-pcl", "application/vnd.hp-pclxl"], "pclxl",
     "application/vnd.hp-pclxl"),
    (["application/vnd.hp-PCLXL"], "pclxl", "application/vnd.hp-PCLXL"),
    (["application/octet-stream", "application/vnd.hp-PCL"], "pcl5", "application/vnd.hp-PCL"),
    (["application/pcl"], "pcl5", "application/pcl"),
    (["image/pwg-raster", "image/jpeg"], "raw", "image/pwg-raster"),
    (["image/urf"], "raw", "image/urf"),
    (["image/pwg-raster", "application/vnd.hp-PCL"], "pcl5", "application/vnd.hp-PCL"),
])
def test_driver_preference(formats: list[str], driver: str, language: str) -> None:
    choice = choose_ipp_driver(formats)
    assert (choice.driver, choice.language) == (driver, language)
    assert ", ".join(formats) in choice.reason
    assert choice.driver in driver_names()


@pytest.mark.parametrize("formats", [["application/octet-stream"], [], ["  "],
                                     ["application/vnd.cups-raster", "text/plain"]])
def test_nothing_usable_is_a_postscript_guess(formats: list[str]) -> None:
    choice = choose_ipp_driver(formats)
    assert (choice.driver, choice.language) == ("postscript", "")
    assert "guess" in choice.reason
    listed = ", ".join(f.strip() for f in formats if f.strip()) or "nothing"
    assert listed in choice.reason


def test_odd_or_missing_attributes_give_defaults() -> None:
    assert capabilities_from_attributes(Message((1, 0), 0, 1)) == DeviceCapabilities()
    odd = response(
        Attribute.of("ipp-versions-supported", T.NO_VALUE),
        Attribute.of("operations-supported", T.KEYWORD, "print-job"),
        Attribute.of("document-format-supported", T.NAME_WITH_LANGUAGE,
                     StringWithLanguage("application/postscript", "en")),
        Attribute("media-supported", [(T.KEYWORD, "tabloid-white"), (T.NAME, "iso_a4_210x297mm"),
                                      (T.INTEGER, 4)]),
        Attribute.of("media-default", T.KEYWORD, "na_letter_8.5x11in"),  # not supported
        Attribute.of("color-supported", T.KEYWORD, "yes"),
        Attribute.of("print-color-mode-supported", T.KEYWORD, "monochrome", "color"),
        Attribute.of("printer-resolution-supported", T.INTEGER, 600),
        Attribute.of("copies-supported", T.INTEGER, 5),
        Attribute.of("printer-make-and-model", T.OCTET_STRING, b"Old \xc3\xa9 printer"),
        Attribute.of("printer-state-reasons", T.DATE_TIME, datetime(2020, 1, 1,
                                                                     tzinfo=UTC)),
        Attribute.of("media-col-default", T.KEYWORD, "not a collection"),
    )
    caps = capabilities_from_attributes(odd)
    assert caps == DeviceCapabilities(
        formats=("application/postscript",), media=("iso_a4_210x297mm",),
        media_default="iso_a4_210x297mm", color=True, copies_max=5,
        make_and_model="Old \u00e9 printer")


def test_raw_formats_and_config_resolutions_match_their_sources() -> None:
    assert RAW_PASSTHROUGH_FORMATS == RAW_DRIVER_FORMATS
    caps = DeviceCapabilities(formats=("application/pdf",),
                              resolutions=(*CONFIG_RESOLUTIONS, 400, 2400))
    values = printer_config_values(caps, choose_ipp_driver(caps.formats))
    assert values["resolutions"] == list(CONFIG_RESOLUTIONS)
    assert load_printer(values).resolutions == CONFIG_RESOLUTIONS  # type: ignore[attr-defined]


# A real device: ippeveprinter answering Get-Printer-Attributes over our own HTTP client
# framing, twice on one connection (a chunked request with 100-continue, then a counted one).

@pytest.fixture
def postscript_printer(tmp_path: Path) -> Iterator[IppEvePrinter]:
    require_programs("ippeveprinter", "dbus-daemon")
    with running_ippeveprinter(tmp_path / "ippeveprinter",
                               formats="application/postscript") as printer:
        yield printer


def exchange(sock: socket.socket, parser: ResponseParser, head: bytes,
             body: bytes) -> tuple[list[int], Message]:
    """One request and its response: the statuses of interim heads and the decoded message.

    The body goes straight after the head even with 100-continue: ippeveprinter (CUPS 2.4)
    answers 100 Continue only once it has read the IPP request itself."""
    sock.sendall(head + body)
    interim: list[int] = []
    received = bytearray()
    final = None
    for _ in range(10_000):
        event = parser.next_event()
        if event is NEED_DATA:
            parser.receive(sock.recv(65536))
        elif isinstance(event, Interim):
            interim.append(event.head.status)
        elif isinstance(event, Head):
            final = event.head
        elif isinstance(event, Body):
            received += event.data
        else:
            assert isinstance(event, End)
            break
    assert final is not None and final.status == 200 and final.keep_alive
    assert final.header("content-type") == "application/ipp"
    message, _ = decode_message(bytes(received))
    return interim, message


def test_a_real_ippeveprinter_read_with_our_client(postscript_printer: IppEvePrinter) -> None:
    uri = postscript_printer.printer_uri
    host = f"{LOOPBACK}:{postscript_printer.port}"
    body = encode_message(request(Operation.GET_PRINTER_ATTRIBUTES, 1, version=(1, 1),
                                  printer_uri=uri))
    headers = [("Content-Type", "application/ipp")]
    parser = ResponseParser()
    with socket.create_connection((LOOPBACK, postscript_printer.port), timeout=10) as sock:
        first_head = encode_request("POST", "/ipp/print", host, headers, chunked=True,
                                    expect_continue=True)
        chunks = encode_chunk(body[:10]) + encode_chunk(body[10:]) + LAST_CHUNK
        interim, message = exchange(sock, parser, first_head, chunks)
        assert interim == [100]
        assert message.code == Status.OK
        parser.start_next()
        second_head = encode_request("POST", "/ipp/print", host, headers,
                                     content_length=len(body))
        interim, again = exchange(sock, parser, second_head, body)
        assert interim == []
    caps = capabilities_from_attributes(message)
    assert caps == capabilities_from_attributes(again)
    assert caps.formats == ("application/octet-stream", "application/postscript")
    assert {"1.1", "2.0"} <= set(caps.ipp_versions)
    assert Operation.PRINT_JOB in caps.operations and caps.create_job
    assert caps.media and caps.media_default in caps.media
    assert caps.make_and_model and caps.copies_max >= 1
    choice = choose_ipp_driver(caps.formats)
    assert choice.driver == "postscript"
    printer = load_printer(printer_config_values(caps, choice))
    assert printer.driver == "postscript"  # type: ignore[attr-defined]
    assert printer.media == caps.media  # type: ignore[attr-defined]
