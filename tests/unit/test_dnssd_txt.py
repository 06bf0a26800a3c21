"""The DNS-SD records of a printer: every TXT key equals the attribute Get-Printer-Attributes
answers with for the same printer, over the same scheme (gateway.dnssd.txt)."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import replace
from pathlib import Path

import pytest

from drivers import MEDIA_SIZES, get_driver
from gateway.config import AuthConfig, Config, PrinterConfig
from gateway.core.system import System
from gateway.dnssd.txt import (
    MAX_STRING_BYTES,
    ServiceRecord,
    encode_txt,
    instance_name,
    paper_max,
    printer_services,
)
from gateway.server.attributes import PrinterDescription, is_ipp_everywhere
from gateway.server.operation_table import OPERATIONS, dispatch
from gateway.server.operations import Endpoint
from gateway.server.ops_printer import describe
from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import Collection, Group, Value
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request

HOST, PORT = "gw.local", 8631


def make_system(tmp_path: Path, **printer: object) -> System:
    fields: dict[str, object] = {"driver": "postscript", "info": "Second floor laser",
                                 "location": "Room 2.14"}
    fields.update(printer)
    config = Config(spool=tmp_path / "spool", printers=(PrinterConfig(
        "office", f"file://{tmp_path}/out/", **fields),))  # type: ignore[arg-type]
    return System(config)


def services_of(system: System, *, tls: bool) -> dict[str, ServiceRecord]:
    printer = system.printers["office"]
    description = describe(printer, system.config, OPERATIONS.supported)
    services = printer_services(
        printer.capabilities, description, path=system.printer_path(printer), host=HOST,
        port=PORT, tls=tls,
        ipp_everywhere=is_ipp_everywhere(printer.capabilities, description))
    return {service.type: service for service in services}


async def attributes(system: System, scheme: str) -> Group:
    """Get-Printer-Attributes as a client reaching HOST:PORT over `scheme` is answered."""

    async def nothing() -> AsyncGenerator[bytes, None]:
        return
        yield b""  # pragma: no cover - makes this an async generator

    message = request(Operation.GET_PRINTER_ATTRIBUTES,
                      printer_uri=f"{scheme}://{HOST}:{PORT}/ipp/print/office",
                      attrs={"requested-attributes": (ValueTag.KEYWORD, ["all"])})
    decoded, _ = decode_message(encode_message(message))
    response = decode_message(await dispatch(system, Endpoint(HOST, PORT, scheme), decoded,
                                             nothing))[0]
    assert response.code == Status.OK, response
    group = response.group(GroupTag.PRINTER)
    assert group is not None
    return group


def values(group: Group, name: str) -> list[Value]:
    attr = group.get(name)
    assert attr is not None, name
    return attr.plain


def expected_txt(group: Group, *, tls: bool) -> dict[str, str]:
    """What each key stands for, read off the IPP answer independently of txt.py."""
    model = str(values(group, "printer-make-and-model")[0])
    widths = [int(str(m.get("x-dimension").value))  # type: ignore[union-attr]
              for m in values(group, "media-size-supported") if isinstance(m, Collection)]
    expected = {
        "txtvers": "1",
        "qtotal": "1",
        "rp": "ipp/print/office",
        "ty": model,
        "product": f"({model})",
        "note": str(values(group, "printer-location")[0]),
        "adminurl": str(values(group, "printer-more-info")[0]),
        "pdl": ",".join(str(f) for f in values(group, "document-format-supported")
                        if f != "application/octet-stream"),
        "URF": ",".join(str(v) for v in values(group, "urf-supported")),
        "UUID": str(values(group, "printer-uuid")[0]).removeprefix("urn:uuid:"),
        "Color": "T" if values(group, "color-supported") == [True] else "F",
        "Duplex": "T" if "two-sided-long-edge" in values(group, "sides-supported") else "F",
        "kind": ",".join(str(v) for v in values(group, "printer-kind")),
        "PaperMax": paper_max(widths),
        "priority": "0",
        "air": "none" if values(group, "uri-authentication-supported")[0] == "none"
        else "username,password",
    }
    if tls:
        expected["TLS"] = "1.2"
    return expected


@pytest.mark.parametrize("tls", [False, True])
@pytest.mark.parametrize("driver", ["postscript", "pcl5", "pclxl"])
async def test_every_txt_key_is_the_attribute_it_stands_for(tmp_path: Path, driver: str,
                                                           tls: bool) -> None:
    system = make_system(tmp_path, driver=driver, duplex=True, color=driver == "postscript")
    services = services_of(system, tls=tls)
    for service_type, scheme in (("_ipp._tcp", "ipp"), ("_ipps._tcp", "ipps")):
        if service_type not in services:
            assert not tls
            continue
        group = await attributes(system, scheme)
        txt = dict(services[service_type].txt)
        assert txt == expected_txt(group, tls=tls)
        assert next(iter(services[service_type].txt))[0] == "txtvers"


async def test_the_values_say_what_this_printer_is(tmp_path: Path) -> None:
    system = make_system(tmp_path, driver="pcl5", duplex=True, color=False,
                         media=("iso_a3_297x420mm", "iso_a4_210x297mm"))
    txt = dict(services_of(system, tls=False)["_ipp._tcp"].txt)
    assert txt["rp"] == "ipp/print/office"
    assert txt["note"] == "Room 2.14"
    assert txt["adminurl"] == f"http://{HOST}:{PORT}/ipp/print/office"  # its own page
    assert (txt["Color"], txt["Duplex"]) == ("F", "T")
    assert txt["PaperMax"] == "tabloid-A3"
    assert "image/urf" in txt["pdl"].split(",") and "application/octet-stream" not in txt["pdl"]
    assert txt["URF"] and "W8" in txt["URF"].split(",") and "DM1" in txt["URF"].split(",")
    assert txt["UUID"] == system.printers["office"].uuid
    assert "TLS" not in txt


def test_the_uuid_is_stable_across_restarts(tmp_path: Path) -> None:
    first = dict(services_of(make_system(tmp_path), tls=False)["_ipp._tcp"].txt)["UUID"]
    again = dict(services_of(make_system(tmp_path), tls=False)["_ipp._tcp"].txt)["UUID"]
    assert first == again and len(first) == 36


@pytest.mark.parametrize(("widths", "label"), [
    ([14800], "<legal-A4"), ([21000, 21590], "legal-A4"), ([29700], "tabloid-A3"),
    ([42000], "isoC-A2"), ([59400], ">isoC-A2")])
def test_paper_max_thresholds(widths: list[int], label: str) -> None:
    assert paper_max(widths) == label


async def test_services_subtypes_and_ports(tmp_path: Path) -> None:
    services = services_of(make_system(tmp_path), tls=True)
    assert list(services) == ["_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_http._tcp"]
    assert services["_ipp._tcp"].subtypes == ("_print", "_universal")
    assert services["_ipps._tcp"].subtypes == ("_print", "_universal")
    assert dict(services["_ipps._tcp"].txt)["adminurl"] == \
        f"https://{HOST}:{PORT}/ipp/print/office"
    assert services["_printer._tcp"] == ServiceRecord("_printer._tcp", 0, ())
    assert services["_http._tcp"] == ServiceRecord("_http._tcp", PORT,
                                                   (("path", "/ipp/print/office"),),
                                                   ("_printer",))
    assert {s.port for t, s in services.items() if t != "_printer._tcp"} == {PORT}


async def test_without_tls_there_is_no_ipps(tmp_path: Path) -> None:
    services = services_of(make_system(tmp_path), tls=False)
    assert list(services) == ["_ipp._tcp", "_printer._tcp", "_http._tcp"]


async def test_a_raw_queue_is_neither_ipp_everywhere_nor_airprint(tmp_path: Path) -> None:
    system = make_system(tmp_path, driver="raw")
    ipp = services_of(system, tls=False)["_ipp._tcp"]
    assert ipp.subtypes == ()
    txt = dict(ipp.txt)
    assert txt["URF"] == "none"  # never empty
    assert txt["pdl"] == ""  # octet-stream says nothing about a language


def test_instance_name_is_info_else_name_and_fits_a_label() -> None:
    description = PrinterDescription(name="office", uuid="u", info="", location="",
                                     formats=(), operations=(), max_job_bytes=1,
                                     multiple_operation_timeout=1)
    assert instance_name(description) == "office"
    assert instance_name(replace(description, info="Laser")) == "Laser"
    long = instance_name(replace(description, info="é" * 40))
    assert long == "é" * 31 and len(long.encode()) <= 63


def test_long_values_fit_one_txt_string() -> None:
    caps = get_driver("pcl5").capabilities.with_changes(
        make_and_model="M" * 400, media=(MEDIA_SIZES["iso_a4_210x297mm"],))
    description = PrinterDescription(
        name="p", uuid="00000000-0000-0000-0000-000000000000", info="", location="L" * 300,
        formats=tuple(f"application/x-format-{i:03d}" for i in range(20)),
        operations=(), max_job_bytes=1, multiple_operation_timeout=1)
    services = printer_services(caps, description, path="/ipp/print/p", host=HOST, port=PORT,
                                tls=False, ipp_everywhere=False)
    strings = encode_txt(services[0].txt)
    assert all(len(s) <= MAX_STRING_BYTES for s in strings)
    pdl = dict(services[0].txt)["pdl"].split(",")
    assert pdl and all(f.startswith("application/x-format-") for f in pdl)  # whole formats


@pytest.mark.parametrize(("print_by", "air", "authentication"), [
    (("anyone",), "none", "none"),
    (("authenticated",), "username,password", "basic"),
    (("alice", "@staff"), "username,password", "basic"),
])
async def test_air_follows_who_may_print(tmp_path: Path, print_by: tuple[str, ...], air: str,
                                         authentication: str) -> None:
    config = Config(spool=tmp_path / "spool", auth=AuthConfig(enabled=True),
                    printers=(PrinterConfig("office", f"file://{tmp_path}/out/",
                                            driver="postscript", print_by=print_by),))
    system = System(config)
    for service_type, scheme in (("_ipp._tcp", "ipp"), ("_ipps._tcp", "ipps")):
        txt = dict(services_of(system, tls=True)[service_type].txt)
        group = await attributes(system, scheme)
        assert txt["air"] == air
        assert values(group, "uri-authentication-supported") == [authentication] * 2
