"""The IPP message header, defined once (ippwire.header): RFC 8010 3.1.1 signedness for
every field, on both sides, and what the dispatcher makes of values with the top bit set."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from pathlib import Path

import pytest

from gateway.config import Config, PrinterConfig
from gateway.core.system import System
from gateway.server.operation_table import dispatch
from gateway.server.operations import Endpoint, Reply, encode_reply
from ippwire.enums import Operation, Status
from ippwire.header import SIZE, Header, read_header, write_header
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request


def test_layout_is_big_endian_and_eight_bytes() -> None:
    assert SIZE == 8
    assert write_header(2, 0, 0x0B, 7) == bytes.fromhex("0200 000b 00000007")
    assert read_header(bytes.fromhex("0101 0400 7fffffff")) == Header(1, 1, 0x0400, 2**31 - 1)


@pytest.mark.parametrize(("wire", "fields"), [
    ("7f7f 7fff 7fffffff", (127, 127, 0x7FFF, 2**31 - 1)),
    ("8080 8000 80000000", (-128, -128, -(2**15), -(2**31))),
    ("ffff ffff ffffffff", (-1, -1, -1, -1)),
])
def test_every_field_is_signed_both_ways(wire: str, fields: tuple[int, int, int, int]) -> None:
    data = bytes.fromhex(wire)
    assert read_header(data) == fields
    assert write_header(*fields) == data
    assert read_header(b"xx" + data, 2) == fields  # at an offset, as the reader's buffer has it


@pytest.mark.parametrize(("fields", "named"), [
    ((128, 0, 2, 1), "major version"),
    ((2, -129, 2, 1), "minor version"),
    ((2, 0, 0x8000, 1), "operation-id or status-code"),
    ((2, 0, 2, 2**31), "request-id"),
    ((2, 0, 2, -(2**31) - 1), "request-id"),
])
def test_out_of_range_fields_are_named(fields: tuple[int, int, int, int], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        write_header(*fields)
    message = Message((fields[0], fields[1]), fields[2], fields[3])
    with pytest.raises(ValueError, match=named):
        encode_message(message)


def test_a_reply_with_a_request_id_no_request_can_carry_echoes_zero() -> None:
    # Only a message built in this process can hold one; the answer must still encode.
    wire = encode_reply(Reply(Status.CLIENT_ERROR_BAD_REQUEST), (2, 0), 2**31)
    assert read_header(wire) == (2, 0, Status.CLIENT_ERROR_BAD_REQUEST, 0)


@pytest.fixture
def system(tmp_path: Path) -> System:
    return System(Config(spool=tmp_path / "spool",
                         printers=(PrinterConfig("office", f"file://{tmp_path}/out/"),)))


async def _no_document() -> AsyncGenerator[bytes, None]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def exchange(system: System, head: str) -> Message:
    """A Get-Printer-Attributes request whose eight header bytes are `head` (hex)."""
    body = encode_message(request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=(
        "ipp://localhost:8631/ipp/print/office")))[SIZE:]
    decoded, _ = decode_message(bytes.fromhex(head) + body)
    response, rest = decode_message(await dispatch(system, Endpoint("localhost", 8631),
                                                   decoded, _no_document))
    assert rest == b""
    return response


async def test_an_operation_id_with_the_top_bit_is_not_supported(system: System) -> None:
    response = await exchange(system, "0200 800b 00000005")
    assert (response.code, response.request_id) == (Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                                                     5)
    message = response.operation_attributes.get("status-message")
    assert message is not None and message.value == "operation 0x800b is not supported"


async def test_a_major_version_with_the_top_bit_is_not_supported(system: System) -> None:
    response = await exchange(system, "8200 000b 00000005")
    assert response.code == Status.SERVER_ERROR_VERSION_NOT_SUPPORTED
    assert response.version == (1, 1)


@pytest.mark.parametrize("request_id", ["80000000", "ffffffff", "00000000"])
async def test_a_request_id_below_one_is_refused_and_echoed(system: System,
                                                            request_id: str) -> None:
    response = await exchange(system, f"0200 000b {request_id}")
    assert response.code == Status.CLIENT_ERROR_BAD_REQUEST
    assert write_header(2, 0, 0, response.request_id)[4:] == bytes.fromhex(request_id)


async def test_an_ordinary_request_is_answered_with_its_id(system: System) -> None:
    response = await exchange(system, "0200 000b 7fffffff")
    assert (response.version, response.code, response.request_id) == ((2, 0), Status.OK,
                                                                      2**31 - 1)
