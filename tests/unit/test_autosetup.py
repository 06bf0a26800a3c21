"""Choosing a driver from a printer's languages, naming it, and reading PJL INFO ID / CONFIG."""

from __future__ import annotations

import re

import pytest

from drivers import netprobe
from drivers.autosetup import (
    PREFERENCE,
    DriverChoice,
    choice_for_device_id,
    choose_driver,
    printer_name,
)
from drivers.errors import UriError
from drivers.pjl import (
    PjlReplyParser,
    config_sections,
    languages_from_config,
    model_from_info_id,
    parse_block,
)
from drivers.registry import driver_names
from tests.support.pjl_peer import info_config_reply, info_id_reply

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,126}$")  # gateway.config's


def test_every_preferred_driver_is_registered_and_text_is_last() -> None:
    assert set(PREFERENCE) <= set(driver_names())
    assert PREFERENCE[0] == "postscript" and PREFERENCE[-1] == "text"
    assert PREFERENCE.index("pclxl") < PREFERENCE.index("pcl5") < PREFERENCE.index("escp2")


@pytest.mark.parametrize(("tokens", "driver", "language"), [
    (["POSTSCRIPT"], "postscript", "POSTSCRIPT"),
    (["PS"], "postscript", "PS"),
    (["PostScript Level 3"], "postscript", "PostScript Level 3"),
    (["BR-Script3"], "postscript", "BR-Script3"),
    (["KPDL"], "postscript", "KPDL"),
    (["POSTSCRIPT LEVEL 2"], "postscript2", "POSTSCRIPT LEVEL 2"),
    (["PS2", "PCL"], "postscript2", "PS2"),
    (["PCLXL"], "pclxl", "PCLXL"),
    (["PCL XL"], "pclxl", "PCL XL"),
    (["pcl 6"], "pclxl", "pcl 6"),
    (["PCL6"], "pclxl", "PCL6"),
    (["PCL"], "pcl5", "PCL"),
    (["PCL5E"], "pcl5", "PCL5E"),
    (["pcl5c"], "pcl5", "pcl5c"),
    (["ESCPL2"], "escp2", "ESCPL2"),
    (["ESC/P2"], "escp2", "ESC/P2"),
    (["ESC/P"], "escp-24pin", "ESC/P"),
    (["ESCP9"], "escp-9pin", "ESCP9"),
    (["TXT"], "text", "TXT"),
    (["ascii"], "text", "ascii"),
])
def test_each_family_is_recognised_without_case_or_spaces(
    tokens: list[str], driver: str, language: str
) -> None:
    choice = choose_driver(tokens)
    assert (choice.driver, choice.language) == (driver, language)


def test_the_preference_order_decides_and_the_reason_says_why() -> None:
    choice = choose_driver(["PJL", "PCL", "PCLXL", "POSTSCRIPT"])
    assert choice == DriverChoice(
        "postscript", "POSTSCRIPT",
        "the device id lists POSTSCRIPT: PostScript is preferred over PCLXL, PCL")
    assert choose_driver(["TXT", "ESCPL2", "PCL"]).driver == "pcl5"
    assert choose_driver(["TXT", "ESCPL2"]).driver == "escp2"
    assert choose_driver(["PCL", "PCL XL"], source="PJL INFO CONFIG").reason == (
        "PJL INFO CONFIG lists PCL XL: PCL XL is preferred over PCL")
    # A plain POSTSCRIPT beside a level-2 token is not taken as level 2 only.
    assert choose_driver(["PS2", "POSTSCRIPT"]).driver == "postscript"


def test_only_one_language_says_so() -> None:
    assert choose_driver(["PJL", "PCL"]).reason == (
        "the device id lists PCL: PCL 5 is the only language it names that we print")


@pytest.mark.parametrize("tokens", [[], ["HPGL2"], ["PJL", "MLC", "HBS"], ["PCL3GUI"], [" "]])
def test_nothing_recognised_falls_back_to_text_and_says_so(tokens: list[str]) -> None:
    choice = choose_driver(tokens)
    assert (choice.driver, choice.language) == ("text", "")
    assert "fallback" in choice.reason
    if tokens and tokens[0].strip():
        assert f"({', '.join(tokens)})" in choice.reason


def test_real_device_ids() -> None:
    # HP LaserJet 4000/4050 (the foomatic and PAPPL lists carry this CMD:).
    hp = "MFG:Hewlett-Packard;MDL:HP LaserJet 4000 Series;CMD:PJL,MLC,PCL,PCLXL,POSTSCRIPT;"
    assert choice_for_device_id(hp).driver == "postscript"
    # HP LaserJet 1220: the same list, a USB printer.
    assert choice_for_device_id("MFG:Hewlett-Packard;CMD:PJL,MLC,PCL,PCLXL,POSTSCRIPT;"
                                "MDL:HP LaserJet 1220;CLS:PRINTER;").language == "POSTSCRIPT"
    # A 9-pin Epson dot-matrix (the id PAPPL's sample ESC/P driver matches).
    assert choice_for_device_id("MFG:EPSON;CMD:ESCP9;MDL:FX-890;CLS:PRINTER;").driver == (
        "escp-9pin")
    # Epson's ESC/P 2 id, as its printers give it.
    assert choice_for_device_id("MFG:EPSON;CMD:ESCPL2,BDC,D4,D4PX;MDL:Stylus D78;"
                                "CLS:PRINTER;").driver == "escp2"
    # A host-based LaserJet 1020: nothing we print.
    fallback = choice_for_device_id("MFG:HP;MDL:LaserJet 1020;CMD:HBS,PJL,ACL;CLS:PRINTER;")
    assert fallback.driver == "text" and fallback.reason.startswith("the device id names")
    assert choice_for_device_id("MFG:Acme;MDL:Thing;").driver == "text"


@pytest.mark.parametrize(("model", "name"), [
    ("Acme Laser 1", "Acme_Laser_1"),
    ("", "Printer"),
    ("   ", "Printer"),
    ("HP LaserJet 4000 Series", "HP_LaserJet_4000_Series"),
    ("Épson LX-350 (9-pin)", "Epson_LX-350_9-pin"),
    ("-- weird // name --", "weird_name"),
    ("日本語", "Printer"),
    ("x" * 300, "x" * 127),
])
def test_printer_names_fit_the_config(model: str, name: str) -> None:
    assert printer_name(model) == name
    assert NAME_PATTERN.match(printer_name(model))


def test_printer_names_are_unique_without_case() -> None:
    assert printer_name("Acme Laser 1", ["acme_laser_1"]) == "Acme_Laser_1_2"
    assert printer_name("Acme Laser 1", {"Acme_Laser_1", "ACME_LASER_1_2"}) == "Acme_Laser_1_3"
    long = printer_name("y" * 300, ["y" * 127])
    assert long == "y" * 125 + "_2" and NAME_PATTERN.match(long)
    taken = ["Printer", *(f"Printer_{n}" for n in range(2, 50))]
    assert printer_name("", taken) == "Printer_50"


# -- PJL INFO ID and INFO CONFIG --------------------------------------------------------------

# An HP LaserJet's INFO CONFIG as it comes back: indented entries, settings at the end.
LASERJET_CONFIG = (
    b"@PJL INFO CONFIG\r\nIN TRAYS [3 ENUMERATED]\r\n\tINTRAY1 MP\r\n\tINTRAY2 PC\r\n"
    b"\tINTRAY3 LC\r\nOUT TRAYS [1 ENUMERATED]\r\n\tNORMAL FACEDOWN\r\n"
    b"PAPERS [2 ENUMERATED]\r\n\tLETTER\r\n\tA4\r\nLANGUAGES [2 ENUMERATED]\r\n\tPCL\r\n"
    b"\tPOSTSCRIPT\r\nUSTATUS [4 ENUMERATED]\r\n\tDEVICE\r\n\tJOB\r\n\tPAGE\r\n\tTIMED\r\n"
    b"MEMORY=8388608\r\nDISPLAY LINES=1\r\nDISPLAY CHARACTER SIZE=16\r\n\x0c"
)


def test_info_config_sections_and_languages() -> None:
    [message] = PjlReplyParser().feed(LASERJET_CONFIG)
    sections = config_sections(message)
    assert sections["LANGUAGES"] == ("PCL", "POSTSCRIPT")
    assert sections["IN TRAYS"] == ("INTRAY1 MP", "INTRAY2 PC", "INTRAY3 LC")
    assert sections["USTATUS"] == ("DEVICE", "JOB", "PAGE", "TIMED")
    assert languages_from_config(message) == ("PCL", "POSTSCRIPT")
    assert message.fields["MEMORY"] == "8388608"


def test_info_config_odd_replies() -> None:
    # A count larger than the entries that follow stops at the next header or setting.
    short = parse_block(b"@PJL INFO CONFIG\r\nLANGUAGES [5 ENUMERATED]\r\n\tPCL XL\r\n"
                        b"MEMORY=1\r\nUSTATUS [1 ENUMERATED]\r\n\tDEVICE\r\n")
    assert short is not None
    assert languages_from_config(short) == ("PCL XL",)
    assert config_sections(short)["USTATUS"] == ("DEVICE",)
    no_languages = parse_block(b"@PJL INFO CONFIG\r\nMEMORY=1\r\n")
    assert no_languages is not None and languages_from_config(no_languages) == ()
    other = parse_block(b"@PJL INFO STATUS\r\nCODE=10001\r\n")
    assert other is not None and languages_from_config(other) == () and not config_sections(other)


def test_info_id_model_with_or_without_quotes() -> None:
    parser = PjlReplyParser()
    [quoted] = parser.feed(b'@PJL INFO ID\r\n"HP LaserJet 4000"\r\n\x0c')
    assert model_from_info_id(quoted) == "HP LaserJet 4000"
    [bare] = parser.feed(b"@PJL INFO ID\r\nLEXMARK T630\r\n\x0c")
    assert model_from_info_id(bare) == "LEXMARK T630"
    [empty] = parser.feed(b"@PJL INFO ID\r\n\x0c")
    assert model_from_info_id(empty) == ""
    [status] = parser.feed(b"@PJL INFO STATUS\r\nCODE=10001\r\n\x0c")
    assert model_from_info_id(status) == ""


def test_the_test_peer_replies_parse_as_a_printers_do() -> None:
    messages = PjlReplyParser().feed(info_id_reply("Acme Laser 1")
                                     + info_config_reply(("PCL", "PCL XL")))
    assert model_from_info_id(messages[0]) == "Acme Laser 1"
    assert languages_from_config(messages[1]) == ("PCL", "PCL XL")


# -- reading a target (no I/O) ----------------------------------------------------------------

@pytest.mark.parametrize(("target", "kind", "host", "port", "queue"), [
    ("printer.local", "host", "printer.local", 9100, ""),
    ("10.0.0.5:9101", "socket", "10.0.0.5", 9101, ""),
    ("10.0.0.5:515", "lpd", "10.0.0.5", 515, ""),
    ("[::1]:9100", "socket", "::1", 9100, ""),
    ("[fe80::1]", "host", "fe80::1", 9100, ""),
    ("::1", "host", "::1", 9100, ""),
    ("socket://printer:9200", "socket", "printer", 9200, ""),
    ("socket://printer", "socket", "printer", 9100, ""),
    ("lpd://printer/", "lpd", "printer", 515, ""),
    ("lpd://printer:1515/PASSTHRU", "lpd", "printer", 1515, "PASSTHRU"),
    ("usb://04f9:2015?serial=XY12", "local", "", 0, ""),
])
def test_targets_are_read(target: str, kind: str, host: str, port: int, queue: str) -> None:
    parsed = netprobe.parse_target(target)
    assert (parsed.kind, parsed.host, parsed.port, parsed.queue) == (kind, host, port, queue)


@pytest.mark.parametrize("target", [
    "", "host:port", "host:0", "host:70000", "[::1", "[::1]x", ":9100", "two words",
    "socket://printer?pjll=on", "lpd://printer/q?mode=fast", "nosuch://x", "host/path",
])
def test_malformed_targets_are_uri_errors(target: str) -> None:
    with pytest.raises(UriError):
        netprobe.parse_target(target)
