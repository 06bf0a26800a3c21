"""IPP operations driven through `dispatch` with real codec bytes, no sockets."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import pytest
import trio

from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS
from gateway.config import Config, PrinterConfig
from gateway.core.events import JobCompleted
from gateway.core.system import System
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.model import Attribute, Collection, IntRange, Message, Resolution
from ippwire.writer import request
from tests.support.ipp_dispatch import call, job_attr, op_attr

T = ValueTag
URI = "ipp://localhost:8631/ipp/print"


@pytest.fixture
def system(tmp_path: Path) -> System:
    out = tmp_path / "out"
    config = Config(spool=tmp_path / "spool",
                    printers=(PrinterConfig("office", f"file://{out}/",
                                            formats=RAW_PASSTHROUGH_FORMATS),
                              PrinterConfig("laser", f"file://{out}/laser/",
                                            driver="postscript")),
                    multiple_operation_timeout=60)
    return System(config)


async def print_job(system: System, data: bytes = b"%PDF-1.4 test", **attrs: tuple[int, object]
                    ) -> Message:
    spec = {"document-format": (T.MIME_MEDIA_TYPE, "application/pdf"), **attrs}
    return await call(system, request(Operation.PRINT_JOB, printer_uri=URI,
                                      attrs=spec), data)  # type: ignore[arg-type]


async def test_version_not_supported(system: System) -> None:
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES, version=(3, 0),
                                          printer_uri=URI))
    assert response.code == Status.SERVER_ERROR_VERSION_NOT_SUPPORTED


async def test_request_id_zero_is_bad(system: System) -> None:
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES, request_id=0,
                                          printer_uri=URI))
    assert response.code == Status.CLIENT_ERROR_BAD_REQUEST


async def test_charset_must_come_first(system: System) -> None:
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI)
    attrs = message.groups[0].attributes
    attrs[0], attrs[1] = attrs[1], attrs[0]
    response = await call(system, message)
    assert response.code == Status.CLIENT_ERROR_BAD_REQUEST
    assert "attributes-charset" in str(op_attr(response, "status-message").value)  # type: ignore[union-attr]


async def test_unsupported_charset(system: System) -> None:
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI)
    message.groups[0].attributes[0] = Attribute.of("attributes-charset", T.CHARSET, "latin-9")
    response = await call(system, message)
    assert response.code == Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED
    unsupported = response.group(GroupTag.UNSUPPORTED)
    assert unsupported is not None and unsupported.get("attributes-charset") is not None


async def test_unknown_operation_and_print_uri(system: System) -> None:
    for code in (0x4999, Operation.PRINT_URI, Operation.SEND_URI):
        response = await call(system, request(code, printer_uri=URI))
        assert response.code == Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED


async def test_missing_and_unknown_printer(system: System) -> None:
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES))
    assert response.code == Status.CLIENT_ERROR_BAD_REQUEST
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES,
                                          printer_uri="ipp://x/ipp/print/nope"))
    assert response.code == Status.CLIENT_ERROR_NOT_FOUND


async def test_get_printer_attributes_groups(system: System) -> None:
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI))
    printer = response.group(GroupTag.PRINTER)
    assert printer is not None
    assert printer.get("media-col-database") is None  # not part of 'all', as in CUPS
    uuid = printer.get("printer-uuid")
    assert uuid is not None and str(uuid.value).startswith("urn:uuid:")
    uris = printer.get("printer-uri-supported")
    assert uris is not None and uris.plain[0] == "ipp://localhost:8631/ipp/print/office"

    response = await call(system, request(
        Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI,
        attrs={"requested-attributes": (T.KEYWORD, ["job-template", "media-col-database"])}))
    printer = response.group(GroupTag.PRINTER)
    assert printer is not None
    names = {a.name for a in printer}
    assert "media-col-database" in names and "sides-supported" in names
    assert "printer-name" not in names and "printer-state" not in names

    response = await call(system, request(
        Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI,
        attrs={"requested-attributes": (T.KEYWORD, ["printer-state", "queued-job-count"])}))
    printer = response.group(GroupTag.PRINTER)
    assert printer is not None
    assert [a.name for a in printer] == ["printer-state", "queued-job-count"]


async def test_printer_uuid_is_stable_across_restarts(system: System) -> None:
    again = System(system.config)
    assert again.default_printer.uuid == system.default_printer.uuid


async def test_print_job_spools_and_reports(system: System) -> None:
    response = await print_job(system, b"%PDF-1.4 hello", **{"job-name": (T.NAME, "hello")})
    assert response.code == Status.OK
    job_id = job_attr(response, "job-id")
    assert isinstance(job_id, int)
    assert job_attr(response, "job-uri") == f"ipp://localhost:8631/ipp/print/office/{job_id}"
    assert job_attr(response, "job-state") == JobState.PENDING
    assert system.spool.document_path(job_id).read_bytes() == b"%PDF-1.4 hello"
    assert system.jobs[job_id].name == "hello"


async def test_format_not_supported(system: System) -> None:
    response = await print_job(system, **{"document-format": (T.MIME_MEDIA_TYPE, "x/y")})
    assert response.code == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
    unsupported = response.group(GroupTag.UNSUPPORTED)
    assert unsupported is not None and unsupported.get("document-format") is not None
    assert not system.jobs


@pytest.mark.parametrize("fidelity", [False, True])
async def test_unsupported_template_values(system: System, fidelity: bool) -> None:
    message = request(Operation.PRINT_JOB, printer_uri=URI, attrs={
        "document-format": (T.MIME_MEDIA_TYPE, "application/pdf"),
        "ipp-attribute-fidelity": (T.BOOLEAN, fidelity)},
        job_attrs={"copies": (T.INTEGER, 5000), "sides": (T.KEYWORD, "one-sided"),
                   "frobnicate": (T.KEYWORD, "yes")})
    response = await call(system, message, b"%PDF-1.4")
    unsupported = response.group(GroupTag.UNSUPPORTED)
    assert unsupported is not None
    copies = unsupported.get("copies")
    assert copies is not None and copies.value == 5000
    unknown = unsupported.get("frobnicate")
    assert unknown is not None and unknown.tag == T.UNSUPPORTED
    if fidelity:
        assert response.code == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
        assert not system.jobs
    else:
        assert response.code == Status.OK_IGNORED_OR_SUBSTITUTED
        (job,) = system.jobs.values()
        assert job.template == {"sides": "one-sided"}


@pytest.mark.parametrize("printer", ["laser", "office"])
async def test_template_values_checked_against_the_conversion(system: System,
                                                              printer: str) -> None:
    media_col = Collection([Attribute.of("media-size", T.BEGIN_COLLECTION, Collection([
        Attribute.of("x-dimension", T.INTEGER, 21590),
        Attribute.of("y-dimension", T.INTEGER, 27940)]))])
    message = request(Operation.VALIDATE_JOB, printer_uri=f"{URI}/{printer}", attrs={
        "document-format": (T.MIME_MEDIA_TYPE, "application/pdf")}, job_attrs={
        "media-col": (T.BEGIN_COLLECTION, media_col),
        "printer-resolution": (T.RESOLUTION, Resolution(300, 300)),
        "page-ranges": (T.RANGE_OF_INTEGER, [IntRange(1, 2), IntRange(5, 9)]),
        "print-quality": (T.ENUM, 5), "orientation-requested": (T.ENUM, 4)})
    response = await call(system, message)
    if printer == "laser":  # PostScript out of Ghostscript: all of it is applied (the pages
        # are selected and turned by Ghostscript)
        assert response.code == Status.OK, op_attr(response, "status-message")
        raster = request(Operation.VALIDATE_JOB, printer_uri=f"{URI}/{printer}", attrs={
            "document-format": (T.MIME_MEDIA_TYPE, "image/pwg-raster")}, job_attrs={
            "orientation-requested": (T.ENUM, 4)})
        response = await call(system, raster)  # raster pages come composed: not turned
        assert response.code == Status.OK_IGNORED_OR_SUBSTITUTED
        unsupported = response.group(GroupTag.UNSUPPORTED)
        assert unsupported is not None
        assert [a.name for a in unsupported] == ["orientation-requested"]
        return
    # The raw queue passes bytes through: it cannot turn pages, and takes the quality and
    # resolution the document has (only their defaults are supported); a PDF's pages it picks
    # with Ghostscript.
    assert response.code == Status.OK_IGNORED_OR_SUBSTITUTED
    unsupported = response.group(GroupTag.UNSUPPORTED)
    assert unsupported is not None
    assert {a.name for a in unsupported} == {"orientation-requested", "print-quality",
                                             "printer-resolution"}


@pytest.mark.parametrize("compression", ["gzip", "deflate", "deflate-zlib"])
async def test_compressed_documents_are_inflated(system: System, compression: str) -> None:
    payload = b"%PDF-1.4 " + bytes(range(256)) * 200
    if compression == "gzip":
        packed = gzip.compress(payload)
    elif compression == "deflate":
        packer = zlib.compressobj(wbits=-15)  # raw deflate, as CUPS sends it
        packed = packer.compress(payload) + packer.flush()
    else:
        packed = zlib.compress(payload)
    response = await print_job(system, packed,
                               compression=(T.KEYWORD, compression.split("-")[0]))
    assert response.code == Status.OK
    job_id = job_attr(response, "job-id")
    assert isinstance(job_id, int)
    assert system.spool.document_path(job_id).read_bytes() == payload


async def test_corrupt_compression_leaves_no_job(system: System) -> None:
    response = await print_job(system, b"this is not gzip at all",
                               compression=(T.KEYWORD, "gzip"))
    assert response.code == Status.CLIENT_ERROR_COMPRESSION_ERROR
    assert not system.jobs
    assert not list(system.spool.jobs_dir.iterdir())


async def test_create_send_close_and_cancel(system: System) -> None:
    created = await call(system, request(Operation.CREATE_JOB, printer_uri=URI))
    job_id = job_attr(created, "job-id")
    assert job_attr(created, "job-state") == JobState.PENDING_HELD
    # Send-Document without last-document is a bad request.
    bad = await call(system, request(Operation.SEND_DOCUMENT, printer_uri=URI,
                                     attrs={"job-id": (T.INTEGER, job_id)}), b"data")
    assert bad.code == Status.CLIENT_ERROR_BAD_REQUEST
    sent = await call(system, request(Operation.SEND_DOCUMENT, printer_uri=URI, attrs={
        "job-id": (T.INTEGER, job_id), "last-document": (T.BOOLEAN, False),
        "document-format": (T.MIME_MEDIA_TYPE, "text/plain")}), b"data")
    assert sent.code == Status.OK
    second = await call(system, request(Operation.SEND_DOCUMENT, printer_uri=URI, attrs={
        "job-id": (T.INTEGER, job_id), "last-document": (T.BOOLEAN, True)}), b"more")
    assert second.code == Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED
    closed = await call(system, request(Operation.CLOSE_JOB, printer_uri=URI,
                                        attrs={"job-id": (T.INTEGER, job_id)}))
    assert closed.code == Status.OK and job_attr(closed, "job-state") == JobState.PENDING
    canceled = await call(system, request(Operation.CANCEL_JOB, attrs={
        "job-uri": (T.URI, f"ipp://h/ipp/print/office/{job_id}")}))
    assert canceled.code == Status.OK
    again = await call(system, request(Operation.CANCEL_JOB, printer_uri=URI,
                                       attrs={"job-id": (T.INTEGER, job_id)}))
    assert again.code == Status.CLIENT_ERROR_NOT_POSSIBLE


async def test_hold_and_release(system: System) -> None:
    job_id = job_attr(await print_job(system), "job-id")
    target = {"job-id": (T.INTEGER, job_id)}
    assert (await call(system, request(Operation.HOLD_JOB, printer_uri=URI, attrs=target))
            ).code == Status.OK
    assert system.jobs[job_id].state is JobState.PENDING_HELD  # type: ignore[index]
    assert (await call(system, request(Operation.RELEASE_JOB, printer_uri=URI, attrs=target))
            ).code == Status.OK
    assert system.jobs[job_id].state is JobState.PENDING  # type: ignore[index]
    again = await call(system, request(Operation.RELEASE_JOB, printer_uri=URI, attrs=target))
    assert again.code == Status.CLIENT_ERROR_NOT_POSSIBLE


async def test_get_jobs_filters(system: System) -> None:
    first = job_attr(await print_job(system), "job-id")
    await call(system, request(Operation.CANCEL_JOB, printer_uri=URI,
                               attrs={"job-id": (T.INTEGER, first)}))
    second = job_attr(await print_job(system), "job-id")

    async def ids(**attrs: tuple[int, object]) -> list[object]:
        response = await call(system, request(Operation.GET_JOBS, printer_uri=URI,
                                              attrs=attrs))  # type: ignore[arg-type]
        assert response.code == Status.OK
        return [g.get("job-id").value for g in response.groups_of(GroupTag.JOB)]  # type: ignore[union-attr]

    assert await ids() == [second]
    assert await ids(**{"which-jobs": (T.KEYWORD, "completed")}) == [first]
    assert await ids(**{"which-jobs": (T.KEYWORD, "all")}) == [first, second]
    assert await ids(**{"which-jobs": (T.KEYWORD, "all"), "limit": (T.INTEGER, 1)}) == [first]
    assert await ids(**{"my-jobs": (T.BOOLEAN, True)}) == [second]
    bad = await call(system, request(Operation.GET_JOBS, printer_uri=URI,
                                     attrs={"which-jobs": (T.KEYWORD, "sometimes")}))
    assert bad.code == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED


async def test_jobs_print_through_the_worker(system: System, tmp_path: Path) -> None:
    with system.bus.subscribe(kinds=["job-completed"]) as completions:
        async with trio.open_nursery() as nursery:
            await nursery.start(system.run)
            job_id = job_attr(await print_job(system, b"%PDF-1.4 worker"), "job-id")
            with trio.fail_after(10):
                event = await completions.receive()
            assert isinstance(event, JobCompleted) and event.job.id == job_id
            nursery.cancel_scope.cancel()
    job = system.jobs[job_id]  # type: ignore[index]
    assert job.state is JobState.COMPLETED
    assert (tmp_path / "out" / f"job-{job_id:05d}.prn").read_bytes() == b"%PDF-1.4 worker"
    assert not system.spool.document_path(job.id).exists()  # terminal jobs drop the document
