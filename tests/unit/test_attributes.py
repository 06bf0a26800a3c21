"""Printer attributes: pure functions of Capabilities, a description and a state snapshot; the
URIs follow the scheme the client used (ipp or ipps), and so does the Get-Printer-Attributes
cache; operations-supported is the dispatcher's table."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from drivers import get_driver
from gateway.config import Config, PrinterConfig
from gateway.core.events import PrinterSnapshot
from gateway.core.system import System
from gateway.server import ops_printer
from gateway.server.attributes import (
    PrinterDescription,
    addressed_attributes,
    live_attributes,
    static_attributes,
)
from gateway.server.operation_table import OPERATIONS, dispatch
from gateway.server.operations import Endpoint, OperationTable, answer
from ippwire.enums import GroupTag, Operation, PrinterState, Status, ValueTag
from ippwire.model import Attribute, Group, IntRange, Message, Value
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request

T = ValueTag
PATH = "/ipp/print/office"


@pytest.fixture
def system(tmp_path: Path) -> System:
    config = Config(spool=tmp_path / "spool", max_job_bytes=8 << 20,
                    printers=(PrinterConfig("office", f"file://{tmp_path}/out/",
                                            driver="postscript", info="Second floor",
                                            location="Room 2.14"),))
    return System(config)


async def _no_document() -> AsyncGenerator[bytes, None]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def get_printer_attributes(system: System, endpoint: Endpoint,
                                 table: OperationTable | None = None,
                                 operation: int = Operation.GET_PRINTER_ATTRIBUTES) -> Message:
    message = request(operation, printer_uri=f"ipp://localhost:8631{PATH}")
    decoded, _ = decode_message(encode_message(message))
    if table is None:
        reply = await dispatch(system, endpoint, decoded, _no_document)
    else:
        reply = await answer(table, system, endpoint, decoded, _no_document)
    response, rest = decode_message(reply)
    assert rest == b""
    return response


def printer_group(response: Message) -> Group:
    assert response.code == Status.OK, response
    group = response.group(GroupTag.PRINTER)
    assert group is not None
    return group


def plain(group: Group, name: str) -> list[Value]:
    attr = group.get(name)
    assert attr is not None, name
    return attr.plain


@pytest.mark.parametrize(("scheme", "web", "security"), [
    ("ipp", "http", "none"), ("ipps", "https", "tls")])
async def test_uris_follow_the_scheme_the_client_used(system: System, scheme: str, web: str,
                                                      security: str) -> None:
    group = printer_group(await get_printer_attributes(
        system, Endpoint("printers.example", 8631, scheme)))
    assert plain(group, "printer-uri-supported")[0] == f"{scheme}://printers.example:8631{PATH}"
    assert plain(group, "printer-more-info") == [f"{web}://printers.example:8631{PATH}"]
    assert plain(group, "printer-supply-info-uri") == [
        f"{web}://printers.example:8631{PATH}/supplies"]
    assert plain(group, "printer-icons")[0] == f"{web}://printers.example:8631/icon-sm.png"
    assert plain(group, "uri-security-supported")[0] == security


async def test_an_ipv6_host_is_bracketed_in_every_uri(system: System) -> None:
    group = printer_group(await get_printer_attributes(system, Endpoint("::1", 631, "ipps")))
    assert plain(group, "printer-uri-supported") == [f"ipps://[::1]:631{PATH}",
                                                     f"ipp://[::1]:631{PATH}"]
    assert plain(group, "printer-more-info") == [f"https://[::1]:631{PATH}"]


async def test_the_cache_keeps_ipp_and_ipps_apart(system: System) -> None:
    # The pre-encoded selection for one scheme must never answer a client of the other,
    # in either order and however often each asks.
    for scheme in ("ipps", "ipp", "ipps", "ipp"):
        group = printer_group(await get_printer_attributes(
            system, Endpoint("localhost", 8631, scheme)))
        assert plain(group, "printer-uri-supported")[0] == f"{scheme}://localhost:8631{PATH}"
    cache = ops_printer.cache_for(system.printers["office"], system.config, OPERATIONS.supported)
    everything = frozenset({"all"})
    secure = cache.selection(everything, "ipps", "localhost", 8631, PATH)
    plain_ipp = cache.selection(everything, "ipp", "localhost", 8631, PATH)
    assert secure != plain_ipp
    assert cache.selection(everything, "ipps", "localhost", 8631, PATH) is secure  # cached
    assert secure.index(b"ipps://localhost") < secure.index(b"ipp://localhost")
    assert plain_ipp.index(b"ipp://localhost") < plain_ipp.index(b"ipps://localhost")


async def test_operations_supported_is_the_dispatchers_table(system: System) -> None:
    group = printer_group(await get_printer_attributes(system, Endpoint("localhost", 8631)))
    assert plain(group, "operations-supported") == sorted(OPERATIONS)
    assert Operation.GET_PRINTER_ATTRIBUTES in OPERATIONS.supported


async def test_a_smaller_table_answers_and_advertises_only_its_operations(
        system: System) -> None:
    table = OperationTable({
        Operation.GET_PRINTER_ATTRIBUTES: OPERATIONS[Operation.GET_PRINTER_ATTRIBUTES],
        Operation.PAUSE_PRINTER: OPERATIONS[Operation.PAUSE_PRINTER],
    })
    endpoint = Endpoint("localhost", 8631)
    group = printer_group(await get_printer_attributes(system, endpoint, table))
    assert plain(group, "operations-supported") == [Operation.GET_PRINTER_ATTRIBUTES,
                                                    Operation.PAUSE_PRINTER]
    refused = await get_printer_attributes(system, endpoint, table,
                                           operation=Operation.GET_JOBS)
    assert refused.code == Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED
    # ...and the full table's printer attributes are not the smaller one's cached answer.
    group = printer_group(await get_printer_attributes(system, endpoint))
    assert plain(group, "operations-supported") == sorted(OPERATIONS)


async def test_description_and_state_come_from_the_printer(system: System) -> None:
    group = printer_group(await get_printer_attributes(system, Endpoint("localhost", 8631)))
    printer = system.printers["office"]
    assert plain(group, "printer-name") == ["office"]
    assert plain(group, "printer-info") == ["Second floor"]
    assert plain(group, "printer-location") == ["Room 2.14"]
    assert plain(group, "printer-uuid") == [f"urn:uuid:{printer.uuid}"]
    assert plain(group, "job-k-octets-supported") == [IntRange(0, 8 << 10)]
    assert plain(group, "printer-is-accepting-jobs") == [True]
    assert plain(group, "printer-state") == [PrinterState.IDLE]
    assert plain(group, "queued-job-count") == [0]


# -- the pure functions, from data alone -----------------------------------------------------


DESCRIPTION = PrinterDescription(
    name="desk", uuid="6f1d5c1e-0000-4000-8000-000000000001", info="", location="Hall",
    formats=("application/pdf", "image/pwg-raster"), operations=(2, 4, 0x0B),
    max_job_bytes=1 << 20, multiple_operation_timeout=90)


def by_name(attrs: list[Attribute]) -> dict[str, list[Value]]:
    names = [a.name for a in attrs]
    assert len(names) == len(set(names)), "an attribute appears twice"
    return {a.name: a.plain for a in attrs}


def test_static_attributes_are_capabilities_and_description() -> None:
    caps = get_driver("postscript").capabilities
    attrs = by_name(static_attributes(caps, DESCRIPTION))
    assert attrs["printer-name"] == ["desk"]
    assert attrs["printer-info"] == ["desk"]  # no info configured: the name
    assert attrs["printer-location"] == ["Hall"]
    assert attrs["printer-uuid"] == [f"urn:uuid:{DESCRIPTION.uuid}"]
    assert attrs["operations-supported"] == [2, 4, 0x0B]
    assert attrs["document-format-supported"] == ["application/pdf", "image/pwg-raster"]
    assert attrs["job-k-octets-supported"] == [IntRange(0, 1024)]
    assert attrs["multiple-operation-time-out"] == [90]
    assert attrs["printer-make-and-model"] == [caps.make_and_model[:127]]
    assert "urf-supported" not in attrs  # image/urf is not among the formats
    assert not any(name.endswith("-uri-supported") for name in attrs)  # addressed, not static


def test_the_job_privacy_policy_is_advertised() -> None:
    # CUPS' JobPrivateAccess/JobPrivateValues default, as PWG 5100.7 names them: the
    # printer's own set of private attributes, seen by the job's owner (gateway.privacy).
    attrs = by_name(static_attributes(get_driver("raw").capabilities, DESCRIPTION))
    assert attrs["job-privacy-attributes"] == ["default"]
    assert attrs["job-privacy-scope"] == ["owner"]


def test_live_attributes_are_the_snapshot_at_a_time() -> None:
    started = 1_700_000_000.0
    snapshot = PrinterSnapshot(
        name="desk", uuid=DESCRIPTION.uuid, state=PrinterState.STOPPED,
        reasons=("media-empty-error", "paused"), message="Paused.",
        state_changed_at=started + 99.5, config_changed_at=started - 10, paused=True,
        queued_jobs=3)
    attrs = by_name(live_attributes(snapshot, now=started + 200.25, started_at=started,
                                    up_time=201))
    assert attrs["printer-state"] == [PrinterState.STOPPED]
    assert attrs["printer-state-reasons"] == ["media-empty-error", "paused"]
    assert attrs["printer-state-message"] == ["Paused."]
    assert attrs["queued-job-count"] == [3]
    assert attrs["printer-up-time"] == [201]
    assert attrs["printer-state-change-time"] == [100]
    assert attrs["printer-config-change-time"] == [1]  # before the start: the first second
    assert attrs["printer-current-time"] == [datetime.fromtimestamp(started + 200, UTC)]
    assert attrs["printer-state-change-date-time"] == [
        datetime.fromtimestamp(started + 99, UTC)]
    assert attrs["printer-is-accepting-jobs"] == [True]


def test_addressed_attributes_for_both_schemes() -> None:
    ipp = by_name(addressed_attributes("ipp", "10.0.0.5", 8631, PATH))
    ipps = by_name(addressed_attributes("ipps", "10.0.0.5", 8631, PATH))
    assert ipp["printer-uri-supported"] == [f"ipp://10.0.0.5:8631{PATH}",
                                            f"ipps://10.0.0.5:8631{PATH}"]
    assert ipps["printer-uri-supported"] == [f"ipps://10.0.0.5:8631{PATH}",
                                             f"ipp://10.0.0.5:8631{PATH}"]
    assert ipp["printer-more-info"] == [f"http://10.0.0.5:8631{PATH}"]
    assert ipps["printer-more-info"] == [f"https://10.0.0.5:8631{PATH}"]
    assert (ipp["uri-security-supported"], ipps["uri-security-supported"]) == (
        ["none", "tls"], ["tls", "none"])
    plain_only = by_name(addressed_attributes("ipp", "10.0.0.5", 8631, PATH, tls=False))
    assert plain_only["printer-uri-supported"] == [f"ipp://10.0.0.5:8631{PATH}"]
    assert plain_only["uri-security-supported"] == ["none"]
    assert set(ipp) == set(ipps)


def test_every_pure_attribute_encodes() -> None:
    caps = get_driver("postscript").capabilities
    snapshot = PrinterSnapshot(
        name="desk", uuid=DESCRIPTION.uuid, state=PrinterState.IDLE, reasons=("none",),
        message="Ready.", state_changed_at=5.0, config_changed_at=5.0, paused=False,
        queued_jobs=0)
    attrs = [*static_attributes(caps, DESCRIPTION), *addressed_attributes("ipps", "h", 1, "/"),
             *live_attributes(snapshot, now=6.0, started_at=5.0, up_time=2)]
    message = Message((2, 0), 0, 1, [Group(GroupTag.PRINTER, attrs)])
    decoded, _ = decode_message(encode_message(message))
    assert [a.name for a in decoded.groups[0]] == [a.name for a in attrs]
