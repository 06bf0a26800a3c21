"""Hostile IPP values at the operations layer (issue 9, item 10): each cause the mutation
fuzzer found, rebuilt, and the class behind it; plus a Hypothesis property over arbitrary
well-formed messages."""

from __future__ import annotations

import errno
import json
import logging
import struct
import uuid
from collections.abc import AsyncGenerator
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS
from gateway.config import Config, PrinterConfig
from gateway.core.job import Job
from gateway.core.spool import SpoolBatch
from gateway.core.system import System
from gateway.errors import IppError
from gateway.privacy import Viewer
from gateway.server import values
from gateway.server.http import ClientDisconnected, HttpError, HttpRequest
from gateway.server.ipp_endpoint import IppApp
from gateway.server.job_attributes import encoded_job_attributes
from gateway.server.job_template import CHECKS
from gateway.server.operation_table import OPERATIONS as TABLE
from gateway.server.operation_table import dispatch
from gateway.server.operations import Endpoint
from gateway.server.values import BadValue
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.model import (
    Attribute,
    Collection,
    Group,
    IntRange,
    Message,
    Resolution,
    StringWithLanguage,
    Value,
)
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.support.ipp_strategies import values as wire_values

T = ValueTag
URI = "ipp://localhost:8631/ipp/print"
OFFICE = f"{URI}/office"
BAD = Status.CLIENT_ERROR_BAD_REQUEST
UNSUPPORTED = Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
LETTER = "na_letter_8.5x11in"


def make_system(spool: Path) -> System:
    config = Config(spool=spool, printers=(
        PrinterConfig("office", f"file://{spool.parent}/out/", formats=RAW_PASSTHROUGH_FORMATS),
        PrinterConfig("laser", f"file://{spool.parent}/out/laser/", driver="postscript")),
        multiple_operation_timeout=60)
    return System(config)


@pytest.fixture
def system(tmp_path: Path) -> System:
    return make_system(tmp_path / "spool")


def chunks_of(document: bytes, fail_after: int | None = None
              ) -> Any:
    async def chunks() -> AsyncGenerator[bytes, None]:
        for start in range(0, len(document), 100):
            if fail_after is not None and start >= fail_after:
                raise ClientDisconnected("the client went away")
            yield document[start:start + 100]
    return chunks


async def send(system: System, message: Message | bytes, document: bytes = b"", *,
               client: str = "192.0.2.1:4000", fail_after: int | None = None) -> Message:
    """Through the codec (bytes as a client sends them) and `dispatch`, as the server does."""
    wire = message if isinstance(message, bytes) else encode_message(message)
    decoded, _ = decode_message(wire)
    reply = await dispatch(system, Endpoint("localhost", 8631, "ipp", client), decoded,
                           chunks_of(document, fail_after))
    response, rest = decode_message(reply)
    assert rest == b""
    assert response.request_id == decoded.request_id
    return response


def status_message(response: Message) -> str:
    attr = response.operation_attributes.get("status-message")
    return "" if attr is None else str(attr.value)


def job_ids(response: Message) -> list[object]:
    return [g.get("job-id").value for g in response.groups_of(GroupTag.JOB)]  # type: ignore[union-attr]


def print_request(uri: str = OFFICE, fmt: str = "application/pdf",
                  job_attrs: dict[str, tuple[int, Any]] | None = None,
                  **attrs: tuple[int, Any]) -> Message:
    return request(Operation.PRINT_JOB, printer_uri=uri, attrs={
        "document-format": (T.MIME_MEDIA_TYPE, fmt), **attrs}, job_attrs=job_attrs)


async def get_all_jobs(system: System, uri: str = OFFICE) -> Message:
    response = await send(system, request(Operation.GET_JOBS, printer_uri=uri, attrs={
        "which-jobs": (T.KEYWORD, "all"), "requested-attributes": (T.KEYWORD, "all")}))
    assert response.code == Status.OK, status_message(response)
    return response


def margin_col(value: Value, tag: int = T.BOOLEAN) -> Collection:
    return Collection([Attribute.of("media-size-name", T.KEYWORD, LETTER),
                       Attribute.of("media-left-margin", tag, value)])


# -- the poisoned job ------------------------------------------------------------------------


@pytest.mark.parametrize("margin", [(T.BOOLEAN, True), (T.BOOLEAN, False), (T.INTEGER, -1),
                                    (T.TEXT, "0"), (T.ENUM, 3)])
async def test_a_margin_that_is_not_an_integer_is_refused(system: System,
                                                          margin: tuple[int, Value]) -> None:
    tag, value = margin
    message = print_request(job_attrs={"media-col": (T.BEGIN_COLLECTION, margin_col(value, tag))})
    response = await send(system, message, b"%PDF-1.4")
    assert response.code == Status.OK_IGNORED_OR_SUBSTITUTED
    unsupported = response.group(GroupTag.UNSUPPORTED)
    assert unsupported is not None and unsupported.get("media-col") is not None
    (job,) = system.jobs.values()
    assert "media-col" not in job.template
    listing = await get_all_jobs(system)
    assert job_ids(listing) == [job.id]
    one = await send(system, request(Operation.GET_JOB_ATTRIBUTES, printer_uri=OFFICE,
                                     attrs={"job-id": (T.INTEGER, job.id)}))
    assert one.code == Status.OK


async def test_an_integer_margin_is_stored_and_answered(system: System) -> None:
    message = print_request(job_attrs={"media-col": (T.BEGIN_COLLECTION,
                                                     margin_col(0, T.INTEGER))})
    response = await send(system, message, b"%PDF-1.4")
    assert response.code == Status.OK, status_message(response)
    (job,) = system.jobs.values()
    assert job.template["media-col"] == {"media-size-name": LETTER, "media-left-margin": 0}
    group = (await get_all_jobs(system)).group(GroupTag.JOB)
    assert group is not None
    media_col = group.get("media-col")
    assert media_col is not None and isinstance(media_col.value, Collection)
    margin = media_col.value.get("media-left-margin")
    assert margin is not None and (margin.tag, margin.value) == (T.INTEGER, 0)


def write_old_record(spool: Path, job_id: int, template: dict[str, Any],
                     state: JobState = JobState.COMPLETED, **fields: Any) -> None:
    """A job record as an older version wrote it, values and all."""
    record: dict[str, Any] = {
        "id": job_id, "printer": "office", "uuid": f"urn:uuid:{uuid.uuid4()}",
        "name": f"old {job_id}", "user": "old", "state": state,
        "reasons": ["job-completed-successfully"], "template": template, **fields}
    job = Job(**record)
    (spool / "jobs").mkdir(parents=True, exist_ok=True)
    (spool / "jobs" / f"{job_id:05d}.json").write_text(json.dumps(job.to_record()))


async def test_a_stored_boolean_margin_does_not_break_answers(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = tmp_path / "spool"
    write_old_record(spool, 1, {"media-col": {"media-size-name": LETTER,
                                              "media-left-margin": True}, "copies": 1})
    write_old_record(spool, 2, {"sides": "one-sided"})
    system = make_system(spool)
    with caplog.at_level(logging.WARNING, logger="gateway.ipp"):
        listing = await get_all_jobs(system)
        again = await get_all_jobs(system)
    assert job_ids(listing) == job_ids(again) == [1, 2]
    first = listing.groups_of(GroupTag.JOB)[0]
    assert first.get("media-col") is None  # redacted: the rest of the job is listed
    copies = first.get("copies")
    assert copies is not None and copies.value == 1
    one = await send(system, request(Operation.GET_JOB_ATTRIBUTES, printer_uri=OFFICE,
                                     attrs={"job-id": (T.INTEGER, 1)}))
    assert one.code == Status.OK
    job = one.group(GroupTag.JOB)
    assert job is not None and job.get("job-state") is not None
    lines = [r.getMessage() for r in caplog.records if "job 1:" in r.getMessage()]
    assert lines == ["printer office: job 1: stored values cannot be encoded, left out: "
                     "media-col"]  # one line, however often the job is listed


@pytest.mark.parametrize(("fields", "template"), [
    ({"name": "\udc80 surrogate"}, {}),
    ({"message": "x" * 40000}, {}),
    ({"impressions_completed": 2**40}, {}),
    ({}, {"page-ranges": [[1, "two"]]}),
    ({}, {"printer-resolution": "300dpi"}),
    ({}, {"copies": True}),
    ({}, {"frobnicate": 7}),
    ({}, {"media-col": [1, 2]}),
    ({"document_bytes": "many"}, {}),
])
async def test_any_stored_value_that_cannot_be_encoded_is_left_out(
        tmp_path: Path, caplog: pytest.LogCaptureFixture, fields: dict[str, Any],
        template: dict[str, Any]) -> None:
    spool = tmp_path / "spool"
    write_old_record(spool, 1, template, **fields)
    write_old_record(spool, 2, {})
    system = make_system(spool)
    with caplog.at_level(logging.WARNING, logger="gateway.ipp"):
        listing = await get_all_jobs(system)
    assert job_ids(listing)[-1] == 2
    encoded = encoded_job_attributes(system, system.jobs[1], OFFICE, {"all"},
                                     viewer=Viewer("old"))  # its owner sees its name
    if encoded is None:  # not even built: the job is left out of the listing
        assert job_ids(listing) == [2]
    else:  # built: the one bad value is left out
        assert job_ids(listing) == [1, 2]
    (line,) = [r.getMessage() for r in caplog.records]
    assert line.startswith("printer office: job 1: ")


# -- request-id, natural language, URIs --------------------------------------------------------


def raw_request(request_id_hex: str, operation: int = Operation.PRINT_JOB) -> bytes:
    message = print_request()
    wire = encode_message(message)
    return wire[:2] + struct.pack(">H", operation) + bytes.fromhex(request_id_hex) + wire[8:]


@pytest.mark.parametrize("request_id", ["80000000", "ffffffff", "00000000"])
async def test_request_id_outside_1_to_2_31_is_bad_and_prints_nothing(
        system: System, request_id: str) -> None:
    response = await send(system, raw_request(request_id), b"%PDF-1.4")
    assert response.code == BAD
    assert response.request_id == struct.unpack(">i", bytes.fromhex(request_id))[0]
    assert not system.jobs


async def test_largest_request_id_prints(system: System) -> None:
    response = await send(system, raw_request("7fffffff"), b"%PDF-1.4")
    assert response.code == Status.OK and response.request_id == 2**31 - 1


@pytest.mark.parametrize("language", [
    (T.TEXT, "日本語"), (T.NAME, "ünïcode"), (T.NATURAL_LANGUAGE, "en us"),
    (T.NATURAL_LANGUAGE, "x" * 100), (T.NATURAL_LANGUAGE, ""), (T.KEYWORD, "en"),
    (T.NO_VALUE, None), (T.BEGIN_COLLECTION, Collection()), (T.OCTET_STRING, b"\xff\xfe"),
])
async def test_a_bad_natural_language_is_a_bad_request(system: System,
                                                       language: tuple[int, Value]) -> None:
    message = request(Operation.PRINT_JOB, printer_uri=OFFICE)
    message.groups[0].attributes[1] = Attribute("attributes-natural-language", [language])
    response = await send(system, message, b"%PDF-1.4")
    assert response.code == BAD
    answered = response.operation_attributes.get("attributes-natural-language")
    assert answered is not None and answered.value == "en"
    assert not system.jobs


async def test_a_good_natural_language_is_answered_in(system: System) -> None:
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=OFFICE)
    message.groups[0].attributes[1] = Attribute.of("attributes-natural-language",
                                                   T.NATURAL_LANGUAGE, "de-CH")
    response = await send(system, message)
    answered = response.operation_attributes.get("attributes-natural-language")
    assert response.code == Status.OK and answered is not None and answered.value == "de-CH"


@pytest.mark.parametrize("uri", [
    "ipp://[::1/ipp/print", "ipp://[::1]:99999/ipp/print", "ipp://host:port/ipp/print",
    "ipp://[fe80::1%25eth0/ipp/print", "ipp://h/ipp/print\x00", "ipp://h/ipp print",
    "mailto:x@y", "", "ipp://h/" + "p" * 2000,
])
async def test_a_broken_printer_uri_is_a_bad_request(system: System, uri: str) -> None:
    response = await send(system, request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=uri))
    assert response.code == BAD, status_message(response)
    response = await send(system, request(Operation.CANCEL_JOB, attrs={
        "job-uri": (T.URI, uri)}))
    assert response.code == BAD, status_message(response)


# Percent-encoded: '²' and Arabic-Indic '٣' after unquote ('²'.isdigit(), int('٣') == 3).
@pytest.mark.parametrize("job_id", ["%C2%B2", "%D9%A3", "1%C2%B2", "%EF%BC%91", "+1", "-1",
                                    "0", "1e3", "99999999999", "2147483648", ""])
async def test_a_job_uri_with_no_ascii_job_number_is_not_found(system: System,
                                                               job_id: str) -> None:
    await send(system, print_request(), b"%PDF-1.4")  # job 1 exists
    response = await send(system, request(Operation.GET_JOB_ATTRIBUTES, attrs={
        "job-uri": (T.URI, f"{OFFICE}/{job_id}")}))
    assert response.code == Status.CLIENT_ERROR_NOT_FOUND, status_message(response)


async def test_job_uri_names_the_job_even_beside_a_job_id(system: System) -> None:
    await send(system, print_request(), b"%PDF-1.4")
    response = await send(system, request(Operation.GET_JOB_ATTRIBUTES, attrs={
        "job-uri": (T.URI, f"{OFFICE}/1"), "job-id": (T.INTEGER, 77)}))
    assert response.code == Status.OK and job_ids(response) == [1]


async def test_a_host_that_cannot_be_in_a_uri_is_http_400(system: System) -> None:
    app = IppApp(system)
    for host in ("exämple", "a b", "a/b", ""):
        http_request = HttpRequest("POST", "/ipp/print", "/ipp/print", [], host, 631, "ipp",
                                   "192.0.2.1:1")

        class NoBody:
            async def receive_some(self, max_bytes: int = 65536) -> bytes:
                raise AssertionError("the body is not read")

        with pytest.raises(HttpError) as caught:
            await app.handle_ipp(http_request, NoBody())
        assert caught.value.status == 400


# -- every attribute, any tag, any value ------------------------------------------------------


WRONG_VALUES: list[tuple[int, Value]] = [
    (T.NO_VALUE, None), (T.UNKNOWN, None), (T.DEFAULT, None), (0x1F, None),
    (T.BEGIN_COLLECTION, Collection([Attribute.of("a", T.INTEGER, 1)])),
    (T.INTEGER, 2**31 - 1), (T.INTEGER, -(2**31)), (T.ENUM, 0), (T.BOOLEAN, True),
    (T.TEXT, "nul\x00inside"), (T.NAME, "x" * 32767), (T.KEYWORD, "UPPER lower"),
    (T.OCTET_STRING, b"\x00\xff"), (T.RANGE_OF_INTEGER, IntRange(5, 1)),
    (T.RESOLUTION, Resolution(300, 300, 99)), (T.URI, "ipp://[::1"),
    (T.TEXT_WITH_LANGUAGE, StringWithLanguage("t\x07", "no language!")), (0x7F, b"ext"),
    (0x4B, b"??"),
]
OPERATION_ATTRIBUTES = [
    "requesting-user-name", "job-id", "requested-attributes", "job-name", "document-name",
    "document-format", "compression", "ipp-attribute-fidelity", "last-document", "which-jobs",
    "my-jobs", "limit", "first-index", "job-ids", "identify-actions", "message",
]


# Where the operation attributes above are read (every handler reads the user's name).
READERS = (Operation.PRINT_JOB, Operation.VALIDATE_JOB, Operation.SEND_DOCUMENT,
           Operation.GET_JOBS, Operation.GET_JOB_ATTRIBUTES, Operation.CANCEL_MY_JOBS,
           Operation.IDENTIFY_PRINTER, Operation.GET_PRINTER_ATTRIBUTES)


@pytest.mark.parametrize("name", OPERATION_ATTRIBUTES)
async def test_any_value_of_any_operation_attribute_is_an_ipp_answer(
        system: System, name: str) -> None:
    created = await send(system, request(Operation.CREATE_JOB, printer_uri=OFFICE))
    assert created.code == Status.OK
    for operation in READERS:
        for tag, value in WRONG_VALUES:
            for count in (1, 2):
                message = request(operation, printer_uri=OFFICE,
                                  attrs={"job-id": (T.INTEGER, 1)})
                message.groups[0].attributes = [a for a in message.groups[0].attributes
                                                if a.name != name]
                message.groups[0].add(Attribute(name, [(tag, value)] * count))
                response = await send(system, message, b"%PDF-1.4 x")
                assert response.code != Status.SERVER_ERROR_INTERNAL_ERROR
    await get_all_jobs(system)


@pytest.mark.parametrize("name", sorted(CHECKS))
async def test_any_value_of_any_template_attribute_stores_only_what_encodes(
        system: System, name: str) -> None:
    for tag, value in WRONG_VALUES:
        for count in (1, 2):
            message = print_request(job_attrs={name: (tag, [value] * count)})
            response = await send(system, message, b"%PDF-1.4")
            assert response.code in (Status.OK, Status.OK_IGNORED_OR_SUBSTITUTED), \
                status_message(response)
    listing = await get_all_jobs(system)
    assert len(listing.groups_of(GroupTag.JOB)) == len(system.jobs)


async def test_ints_out_of_encoding_range_built_in_process_are_refused(system: System) -> None:
    # Not from the wire (4 bytes cannot hold them): a caller in this process could.
    for operation, name in ((Operation.GET_JOB_ATTRIBUTES, "job-id"),
                            (Operation.GET_JOBS, "limit"), (Operation.GET_JOBS, "first-index")):
        message = request(operation, printer_uri=OFFICE)
        message.groups[0].add(Attribute.of(name, T.INTEGER, 2**40))
        reply = await dispatch(system, Endpoint("localhost", 8631), message, chunks_of(b""))
        response, _ = decode_message(reply)
        assert response.code in (BAD, UNSUPPORTED)


def test_values_readers_raise_only_bad_value() -> None:
    attr = Attribute.of("x", T.INTEGER, True)
    with pytest.raises(BadValue):
        values.single_integer(attr)
    with pytest.raises(BadValue):
        values.single_keyword(Attribute.of("x", T.KEYWORD, "a\x00"))
    with pytest.raises(BadValue):
        values.single_name(Attribute.of("x", T.NAME, "\ud800"))
    with pytest.raises(BadValue):
        values.ascii_number("²")
    assert values.single_name(Attribute.of("x", T.NAME, "é" * 200)) == "é" * 127
    assert values.single_uri(Attribute.of("x", T.URI, "IPP://h:631/a%20b")).path == "/a b"


# -- no job left behind -----------------------------------------------------------------------


async def no_job_left(system: System) -> None:
    await system.store.flushed()  # deletions are written by the store's next round
    assert not system.jobs
    assert not list(system.spool.jobs_dir.glob("0*"))


async def test_client_gone_mid_document_leaves_no_job(system: System) -> None:
    with pytest.raises(ClientDisconnected):
        await send(system, print_request(), b"%PDF-1.4" + bytes(1000), fail_after=300)
    await no_job_left(system)


@pytest.mark.parametrize("document", [b"RaS2" + bytes(2000), b"UNIRAST\x00" + bytes(100)])
async def test_fidelity_refusal_after_sniffing_leaves_no_job(system: System,
                                                             document: bytes) -> None:
    # Sent as octet-stream, sniffed as raster: pages that come composed are not turned.
    message = request(Operation.PRINT_JOB, printer_uri=f"{URI}/laser", attrs={
        "ipp-attribute-fidelity": (T.BOOLEAN, True)},
        job_attrs={"orientation-requested": (T.ENUM, 4)})
    response = await send(system, message, document)
    assert response.code == UNSUPPORTED, status_message(response)
    assert status_message(response).startswith("unsupported for image/")
    await no_job_left(system)


@pytest.mark.parametrize(("code", "status"), [
    (errno.ENOSPC, Status.SERVER_ERROR_TEMPORARY_ERROR),
    (errno.EROFS, Status.SERVER_ERROR_INTERNAL_ERROR),
    (errno.EIO, Status.SERVER_ERROR_INTERNAL_ERROR)])
@pytest.mark.parametrize("where", ["open_document", "write_batch", "finish_document"])
async def test_a_spool_error_is_an_ipp_error_and_leaves_no_job(
        system: System, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        code: int, status: Status, where: str) -> None:
    real = getattr(system.spool, where)

    def failing(*args: Any) -> Any:
        if where == "write_batch" and not any(
                json.loads(record)["state"] == JobState.PENDING for _, record in args[0].records):
            return real(*args)  # fail once the document is in: as late as possible
        raise OSError(code, "injected", "/spool/jobs/x")

    monkeypatch.setattr(system.spool, where, failing)
    with caplog.at_level(logging.INFO):
        response = await send(system, print_request(), b"%PDF-1.4")
    assert response.code == status
    assert "the print spool cannot store the request" in status_message(response)
    monkeypatch.undo()
    await no_job_left(system)
    assert "Traceback" not in caplog.text
    spool_lines = [r for r in caplog.records if "the spool failed" in r.getMessage()]
    assert len(spool_lines) == 1 and spool_lines[0].exc_info is None


async def test_a_spool_error_on_create_job_leaves_no_job(
        system: System, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(batch: SpoolBatch) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(system.spool, "write_batch", failing)
    response = await send(system, request(Operation.CREATE_JOB, printer_uri=OFFICE))
    assert response.code == Status.SERVER_ERROR_TEMPORARY_ERROR
    monkeypatch.undo()
    await no_job_left(system)


async def test_a_failing_send_document_aborts_the_created_job(system: System) -> None:
    created = await send(system, request(Operation.CREATE_JOB, printer_uri=OFFICE))
    (job_id,) = job_ids(created)
    assert isinstance(job_id, int)
    response = await send(system, request(Operation.SEND_DOCUMENT, printer_uri=OFFICE, attrs={
        "job-id": (T.INTEGER, job_id), "last-document": (T.BOOLEAN, True),
        "compression": (T.KEYWORD, "gzip")}), b"not gzip")
    assert response.code == Status.CLIENT_ERROR_COMPRESSION_ERROR
    assert system.jobs[job_id].state is JobState.ABORTED


# -- logs and printer attributes ---------------------------------------------------------------


async def test_refusals_are_logged_at_a_bounded_rate_per_client(
        system: System, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="gateway.ipp"):
        for _ in range(50):
            await send(system, request(Operation.GET_JOBS, printer_uri=f"{URI}/nope"),
                       client="198.51.100.7:1000")
        await send(system, request(Operation.GET_JOBS, printer_uri=f"{URI}/nope"),
                   client="198.51.100.8:1000")
    first = [r for r in caplog.records if r.getMessage().startswith("198.51.100.7")]
    other = [r for r in caplog.records if r.getMessage().startswith("198.51.100.8")]
    assert 1 <= len(first) <= 11 and len(other) == 1
    assert "not_found" in first[0].getMessage()


async def test_multiple_document_handling_default(system: System) -> None:
    response = await send(system, request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=OFFICE,
                                          attrs={"requested-attributes": (T.KEYWORD, "all")}))
    group = response.group(GroupTag.PRINTER)
    assert group is not None
    attr = group.get("multiple-document-handling-default")
    assert attr is not None and attr.plain == ["separate-documents-collated-copies"]


def test_ipp_error_is_what_values_become() -> None:
    assert issubclass(BadValue, ValueError) and not issubclass(BadValue, IppError)


# -- arbitrary well-formed messages through dispatch ------------------------------------------

def _one(tag: int, strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[list[Any]]:
    return strategy.map(lambda value: [(tag, value)])


SMALL = st.integers(1, 4)
KEYWORDS = st.sampled_from(["all", "none", "gzip", "one-sided", "job-id", "media-col", "sound",
                            "completed", LETTER, "auto", "indefinite", "fill"])
MEDIA_COLS = st.builds(lambda margin, size: Collection([
    Attribute.of("media-size-name", T.KEYWORD, size),
    Attribute("media-top-margin", [margin])]),
    st.sampled_from([(T.INTEGER, 0), (T.INTEGER, 423), (T.BOOLEAN, True), (T.INTEGER, -5)]),
    st.sampled_from([LETTER, "iso_a4_210x297mm", "nope"]))
# Per attribute, values of the syntax it takes (the answer depends on them), so that the
# property reaches past the first check as often as it stops there.
PLAUSIBLE: dict[str, st.SearchStrategy[list[Any]]] = {
    "requesting-user-name": _one(T.NAME, st.sampled_from(["test", "alice", ""])),
    "job-id": _one(T.INTEGER, SMALL),
    "job-ids": st.lists(SMALL.map(lambda v: (T.INTEGER, v)), min_size=1, max_size=3),
    "limit": _one(T.INTEGER, SMALL), "first-index": _one(T.INTEGER, SMALL),
    "copies": _one(T.INTEGER, SMALL), "print-quality": _one(T.ENUM, st.integers(3, 5)),
    "orientation-requested": _one(T.ENUM, st.integers(3, 6)),
    "page-ranges": _one(T.RANGE_OF_INTEGER, st.builds(IntRange, SMALL, SMALL)),
    "printer-resolution": _one(T.RESOLUTION, st.just(Resolution(300, 300))),
    "requested-attributes": st.lists(KEYWORDS.map(lambda v: (T.KEYWORD, v)), min_size=1,
                                     max_size=3),
    "job-name": _one(T.NAME, st.text(max_size=8)), "message": _one(T.TEXT, st.text(max_size=8)),
    "document-format": _one(T.MIME_MEDIA_TYPE, st.sampled_from(
        ["application/pdf", "application/octet-stream", "text/plain", "image/pwg-raster"])),
    "media-col": _one(T.BEGIN_COLLECTION, MEDIA_COLS),
    **{name: _one(T.BOOLEAN, st.booleans())
       for name in ("ipp-attribute-fidelity", "last-document", "my-jobs")},
}
KNOWN_NAMES = [*OPERATION_ATTRIBUTES, "printer-uri", "job-uri", *CHECKS, "x-unknown"]
# operation-id is a signed short on the wire (RFC 8010 3.1.1)
OPERATIONS = st.one_of(*[st.sampled_from(TABLE.supported)] * 4, st.integers(-(2**15), 2**15 - 1))
ATTRIBUTES = st.sampled_from(KNOWN_NAMES).flatmap(lambda name: st.builds(
    Attribute, st.just(name), st.one_of(
        PLAUSIBLE.get(name, _one(T.KEYWORD, KEYWORDS)),
        st.lists(wire_values(2), min_size=1, max_size=3))))
PRELUDE = [Attribute.of("attributes-charset", T.CHARSET, "utf-8"),
           Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, "en")]
TARGETS = st.sampled_from([
    [Attribute.of("printer-uri", T.URI, OFFICE)],
    [Attribute.of("printer-uri", T.URI, f"{URI}/laser")],
    [Attribute.of("job-uri", T.URI, f"{OFFICE}/1")],
    []])


@st.composite
def messages(draw: st.DrawFn) -> tuple[Message, bytes]:
    operation_group = Group(GroupTag.OPERATION, [
        *(PRELUDE if draw(st.integers(0, 9)) else draw(st.lists(ATTRIBUTES, max_size=2))),
        *draw(TARGETS), *draw(st.lists(ATTRIBUTES, max_size=5))])
    groups = [operation_group]
    for tag in draw(st.lists(st.sampled_from([GroupTag.JOB, GroupTag.PRINTER,
                                               GroupTag.DOCUMENT]), max_size=2)):
        groups.append(Group(tag, draw(st.lists(ATTRIBUTES, max_size=4))))
    version = draw(st.sampled_from([(2, 0), (2, 0), (1, 1), (2, 2), (0, 9)]))
    request_id = draw(st.one_of(*[SMALL] * 4, st.integers(-(2**31), 2**31 - 1)))
    message = Message(version, draw(OPERATIONS), request_id, groups)
    document = draw(st.sampled_from([b"", b"%PDF-1.4\n", b"%!PS\n", b"\x1f\x8b junk",
                                     b"RaS2" + bytes(100)]))
    return message, document


@settings(max_examples=400, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(case=messages())
def test_arbitrary_well_formed_messages_get_an_ipp_answer(system: System,
                                                          case: tuple[Message, bytes]) -> None:
    message, document = case

    async def exchange() -> None:
        response = await send(system, message, document)
        assert response.code != Status.SERVER_ERROR_INTERNAL_ERROR, status_message(response)
        await get_all_jobs(system)

    trio.run(exchange)
