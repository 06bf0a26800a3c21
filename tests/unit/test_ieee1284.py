"""IEEE 1284 device ids: parsing, key aliases, both length byte orders."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.ieee1284 import decode_device_id_reply, encode_device_id_reply, parse_device_id

HP = "MFG:Hewlett-Packard;CMD:PJL,PML,PCLXL,POSTSCRIPT,PCL;MDL:HP LaserJet 4050;CLS:PRINTER;"


def test_short_keys() -> None:
    device = parse_device_id(HP)
    assert (device.manufacturer, device.model, device.device_class) == (
        "Hewlett-Packard", "HP LaserJet 4050", "PRINTER"
    )
    assert device.command_set == ("PJL", "PML", "PCLXL", "POSTSCRIPT", "PCL")
    assert device.supports("pjl") and device.supports("PostScript") and not device.supports("ESC")
    assert device.make_and_model == "HP LaserJet 4050"  # the short make is not repeated


def test_long_keys_spaces_and_missing_semicolon() -> None:
    device = parse_device_id(
        " MANUFACTURER: EPSON ; COMMAND SET:ESCPL2,BDC ;MODEL:Stylus;SERIALNUMBER:X1;DES:Epson"
    )
    assert (device.manufacturer, device.model, device.serial_number) == ("EPSON", "Stylus", "X1")
    assert device.command_set == ("ESCPL2", "BDC") and device.description == "Epson"
    assert device.make_and_model == "EPSON Stylus"


def test_model_naming_its_maker_is_not_repeated() -> None:
    assert parse_device_id("MFG:Brother;MDL:Brother HL-2270DW;").make_and_model == (
        "Brother HL-2270DW"
    )
    assert parse_device_id("DES:Label printer;").make_and_model == "Label printer"


@pytest.mark.parametrize("order", ["big", "little"])
def test_reply_length_in_either_byte_order(order: str) -> None:
    payload = HP.encode()
    reply = (len(payload) + 2).to_bytes(2, order) + payload + b"\x00" * 20  # type: ignore[arg-type]
    assert decode_device_id_reply(reply) == HP


def test_reply_round_trip_and_junk() -> None:
    assert decode_device_id_reply(encode_device_id_reply(HP)) == HP
    assert decode_device_id_reply(b"") == ""
    assert decode_device_id_reply(b"\xff\xffMFG:X;") == "MFG:X;"


@given(st.binary(max_size=600))
def test_any_reply_decodes(reply: bytes) -> None:
    parse_device_id(decode_device_id_reply(reply))
