"""Job operations: Print-Job, Validate-Job, Create-Job, Send-Document, Close-Job, Cancel-Job,
Cancel-My-Jobs, Get-Job-Attributes, Get-Jobs, Hold-Job, Release-Job."""

from __future__ import annotations

import logging
from typing import Any

from drivers.filters import planner
from gateway.core.job import Job, JobEvent, options_from_template
from gateway.core.printer import Printer
from gateway.errors import BadRequest, IppError, NotPossible
from gateway.ipp.enums import GroupTag, JobState, Operation, Status, ValueTag
from gateway.ipp.model import Attribute, StringWithLanguage
from gateway.server.attributes import COMPRESSIONS, WHICH_JOBS
from gateway.server.document import receive_document
from gateway.server.job_attributes import job_attributes, select, status_attributes
from gateway.server.job_template import check_template
from gateway.server.operations import (
    Call,
    Reply,
    apply_job_event,
    handles,
    not_terminal,
    requested_attributes,
    target_job,
)
from gateway.server.ops_printer import accepted_formats

log = logging.getLogger("gateway.ipp")
T = ValueTag
UNSUPPORTED = Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED

WHICH_STATES: dict[str, tuple[JobState, ...]] = {
    "completed": (JobState.CANCELED, JobState.ABORTED, JobState.COMPLETED),
    "not-completed": (JobState.PENDING, JobState.PENDING_HELD, JobState.PROCESSING,
                      JobState.PROCESSING_STOPPED),
    "aborted": (JobState.ABORTED,),
    "all": tuple(JobState),
    "canceled": (JobState.CANCELED,),
    "pending": (JobState.PENDING,),
    "pending-held": (JobState.PENDING_HELD,),
    "processing": (JobState.PROCESSING,),
    "processing-stopped": (JobState.PROCESSING_STOPPED,),
}
assert set(WHICH_STATES) == set(WHICH_JOBS)


def _text(attr: Attribute | None, name: str, default: str) -> str:
    if attr is None:
        return default
    if attr.tag not in (T.NAME, T.NAME_WITH_LANGUAGE, T.TEXT) or len(attr.values) != 1:
        raise IppError(UNSUPPORTED, f"{name} must be a single name", [attr])
    value = attr.value
    return value.text if isinstance(value, StringWithLanguage) else str(value)


def _boolean(call: Call, name: str) -> bool | None:
    attr = call.attr(name)
    if attr is None:
        return None
    if attr.tag != T.BOOLEAN or len(attr.values) != 1:
        raise IppError(UNSUPPORTED, f"{name} must be a single boolean", [attr])
    return bool(attr.value)


def _document_format(call: Call, printer: Printer) -> str:
    attr = call.attr("document-format")
    if attr is None:
        return "application/octet-stream"
    if attr.tag != T.MIME_MEDIA_TYPE or len(attr.values) != 1:
        raise IppError(UNSUPPORTED, "document-format must be one mimeMediaType", [attr])
    fmt = str(attr.value).lower()
    if fmt not in accepted_formats(printer):
        raise IppError(Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                       f"document-format {fmt!r} is not supported by printer {printer.name}",
                       [attr])
    return fmt


def _compression(call: Call, takes_data: bool) -> str:
    attr = call.attr("compression")
    if attr is None:
        return "none"
    if attr.tag != T.KEYWORD or len(attr.values) != 1 or attr.value not in COMPRESSIONS:
        raise IppError(Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
                       f"compression {attr.plain!r} is not supported", [attr])
    if not takes_data and attr.value != "none":
        raise IppError(UNSUPPORTED, "compression is only for operations that carry data", [attr])
    return str(attr.value)


def _check_job_request(call: Call, takes_data: bool) -> tuple[Reply, dict[str, object]]:
    """The checks Print-Job, Validate-Job and Create-Job share."""
    printer = call.require_printer()
    if not printer.accepting:
        raise IppError(Status.SERVER_ERROR_NOT_ACCEPTING_JOBS,
                       f"printer {printer.name} is not accepting jobs")
    _text(call.attr("job-name"), "job-name", "")
    fmt = _document_format(call, printer)
    _compression(call, takes_data)
    fidelity = _boolean(call, "ipp-attribute-fidelity") or False
    job_group = call.job_group()
    result = check_template(job_group, printer.capabilities)
    for attr in _conversion_unsupported(fmt, printer, result.accepted, job_group):
        if attr not in result.unsupported:
            result.unsupported.append(attr)
    if result.unsupported:
        names = ", ".join(a.name for a in result.unsupported)
        if fidelity:
            raise IppError(UNSUPPORTED, f"unsupported attributes or values: {names}",
                           result.unsupported)
        return Reply(Status.OK_IGNORED_OR_SUBSTITUTED, f"ignored: {names}",
                     result.unsupported), result.accepted
    return Reply(), result.accepted


def _conversion_unsupported(fmt: str, printer: Printer, accepted: dict[str, Any],
                            job_group: list[Attribute]) -> list[Attribute]:
    """What the capabilities allow, the conversion for this format may still not honour:
    those values leave `accepted`; the attributes come back as the client sent them (or as
    out-of-band `unsupported` when this request did not carry them)."""
    dropped: list[Attribute] = []
    for name in planner.unsupported_options(fmt, printer.driver, printer.capabilities,
                                            options_from_template(accepted)):
        keys = ("media", "media-col") if name == "media" else (name,)
        for key in keys:
            if accepted.pop(key, None) is not None:
                sent = [a for a in job_group if a.name == key][:1]
                dropped += sent or _as_unsupported([key])
    return dropped


def _check_document_format(call: Call, job: Job, reply: Reply, fmt: str,
                           sent: list[Attribute]) -> Reply:
    """Options accepted before the document's real format was known (sniffed from
    application/octet-stream, or sent later by Send-Document) are checked against it once the
    document is spooled: what it cannot honour is refused (fidelity) or reported, never
    ignored. `sent` holds the job's attributes as the client sent them, where the request has
    them."""
    dropped = _conversion_unsupported(fmt, call.require_printer(), job.template, sent)
    if not dropped:
        return reply
    call.system.save(job)
    names = ", ".join(a.name for a in dropped)
    if job.fidelity:
        job.apply(JobEvent.ABORT, "aborted-by-system", message=f"{names}: not possible for {fmt}")
        call.system.job_finished(job)
        raise IppError(UNSUPPORTED, f"unsupported for {fmt}: {names}", dropped)
    unsupported = [*reply.unsupported, *dropped]
    return Reply(Status.OK_IGNORED_OR_SUBSTITUTED,
                 f"ignored: {', '.join(a.name for a in unsupported)}", unsupported)


def _as_unsupported(names: list[str]) -> list[Attribute]:
    """The unsupported-attributes entries for attributes a past request carried."""
    return [Attribute.of(name, T.UNSUPPORTED) for name in names]


def _new_job(call: Call, template: dict[str, object]) -> Job:
    printer = call.require_printer()
    name = _text(call.attr("job-name"), "job-name", "") or _text(
        call.attr("document-name"), "document-name", "") or "Untitled"
    job = call.system.create_job(printer, name=name[:255], user=call.user, template=template,
                                 document_format=_document_format(call, printer))
    job.hold_until = str(template.get("job-hold-until", "no-hold"))
    job.fidelity = bool(_boolean(call, "ipp-attribute-fidelity"))
    job.document_name = _text(call.attr("document-name"), "document-name", "")[:255]
    return job


def _job_reply(call: Call, reply: Reply, job: Job) -> Reply:
    reply.groups.append((GroupTag.JOB, list(status_attributes(job, call.printer_uri()))))
    return reply


async def _receive_into(call: Call, job: Job) -> None:
    """Spool the request's document; on any failure the job is aborted, never left dangling."""
    job.compression = _compression(call, takes_data=True)
    done = False
    try:
        await receive_document(call.system, job, call.document)
        done = True
    except IppError as error:
        job.apply(JobEvent.ABORT, "compression-error" if error.status in (
            Status.CLIENT_ERROR_COMPRESSION_ERROR,) else "aborted-by-system",
                  message=error.message)
        call.system.job_finished(job)
        raise
    finally:
        if not done and not job.state.is_terminal:  # the client went away mid-document
            job.apply(JobEvent.ABORT, "submission-interrupted",
                      message="The client stopped sending the document.")
            call.system.job_finished(job)
            log.info("printer %s: job %d: submission interrupted", job.printer, job.id)


@handles(Operation.VALIDATE_JOB)
async def validate_job(call: Call) -> Reply:
    reply, _ = _check_job_request(call, takes_data=False)
    return reply


@handles(Operation.PRINT_JOB)
async def print_job(call: Call) -> Reply:
    reply, template = _check_job_request(call, takes_data=True)
    job = _new_job(call, template)
    await _receive_into(call, job)
    if job.format_detected:
        reply = _check_document_format(call, job, reply, job.format_detected, call.job_group())
    call.system.queue_job(job)
    return _job_reply(call, reply, job)


@handles(Operation.CREATE_JOB)
async def create_job(call: Call) -> Reply:
    reply, template = _check_job_request(call, takes_data=False)
    job = _new_job(call, template)
    return _job_reply(call, reply, job)


@handles(Operation.SEND_DOCUMENT)
async def send_document(call: Call) -> Reply:
    job = target_job(call)
    last = _boolean(call, "last-document")
    if last is None:
        raise BadRequest("Send-Document needs last-document")
    if job.state in (JobState.CANCELED, JobState.ABORTED):
        raise IppError(Status.SERVER_ERROR_JOB_CANCELED, f"job {job.id} was canceled")
    if not (job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons):
        raise NotPossible(f"job {job.id} is not waiting for documents")
    fmt = _document_format(call, call.require_printer())
    if job.has_document:
        raise IppError(Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
                       f"job {job.id} already has its one document")
    job.document_format = fmt
    job.document_name = _text(call.attr("document-name"), "document-name", job.document_name)
    await _receive_into(call, job)
    reply = Reply()
    if job.document_bytes == 0 and not last:
        job.has_document = False  # an empty non-final Send-Document carries nothing
    elif job.has_document:
        reply = _check_document_format(call, job, reply, job.format_detected or fmt, [])
    if last:
        _close(call, job)
    else:
        call.system.save(job)
    return _job_reply(call, reply, job)


def _close(call: Call, job: Job) -> None:
    if not job.has_document:
        job.apply(JobEvent.ABORT, "aborted-by-system", message="The job has no document.")
        call.system.job_finished(job)
        return
    call.system.queue_job(job)


@handles(Operation.CLOSE_JOB)
async def close_job(call: Call) -> Reply:
    job = target_job(call)
    if not (job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons):
        raise NotPossible(f"job {job.id} is not open for documents")
    _close(call, job)
    return _job_reply(call, Reply(), job)


@handles(Operation.CANCEL_JOB)
async def cancel_job(call: Call) -> Reply:
    job = target_job(call)
    not_terminal(job)
    call.system.cancel_job(job)
    return Reply()


@handles(Operation.CANCEL_MY_JOBS)
async def cancel_my_jobs(call: Call) -> Reply:
    printer = call.require_printer()
    ids = call.attr("job-ids")
    wanted = {int(v) for v in ids.plain if isinstance(v, int)} if ids is not None else None
    mine = [j for j in call.system.jobs_of(printer)
            if j.user == call.user and not j.state.is_terminal
            and (wanted is None or j.id in wanted)]
    if wanted is not None and len(mine) != len(wanted):
        raise NotPossible("some job-ids are not your active jobs")
    for job in mine:
        call.system.cancel_job(job)
    return Reply()


@handles(Operation.HOLD_JOB)
async def hold_job(call: Call) -> Reply:
    job = target_job(call)
    not_terminal(job)
    if job.state is not JobState.PENDING_HELD:
        apply_job_event(job, JobEvent.HOLD, "job-hold-until-specified")
        job.hold_until = "indefinite"
        call.system.save(job)
    return Reply()


@handles(Operation.RELEASE_JOB)
async def release_job(call: Call) -> Reply:
    job = target_job(call)
    if job.state is not JobState.PENDING_HELD or "job-incoming" in job.reasons:
        raise NotPossible(f"job {job.id} is not held")
    apply_job_event(job, JobEvent.RELEASE, "job-queued")
    job.hold_until = "no-hold"
    call.system.queue_job(job)
    return Reply()


@handles(Operation.GET_JOB_ATTRIBUTES)
async def get_job_attributes(call: Call) -> Reply:
    job = target_job(call)
    requested = requested_attributes(call, ("all",))
    attrs = select(job_attributes(call.system, job, call.printer_uri()), requested)
    return Reply(groups=[(GroupTag.JOB, list(attrs))])


def _which_jobs(call: Call) -> tuple[JobState, ...]:
    attr = call.attr("which-jobs")
    if attr is None:
        return WHICH_STATES["not-completed"]
    if attr.tag != T.KEYWORD or len(attr.values) != 1 or attr.value not in WHICH_STATES:
        raise IppError(UNSUPPORTED, f"which-jobs {attr.plain!r} is not supported", [attr])
    return WHICH_STATES[str(attr.value)]


def _positive(call: Call, name: str) -> int | None:
    attr = call.attr(name)
    if attr is None:
        return None
    if attr.tag != T.INTEGER or len(attr.values) != 1 or not (
            isinstance(attr.value, int) and attr.value > 0):
        raise IppError(UNSUPPORTED, f"{name} must be one integer above 0", [attr])
    return attr.value


@handles(Operation.GET_JOBS)
async def get_jobs(call: Call) -> Reply:
    printer = call.require_printer()
    states = _which_jobs(call)
    my_jobs = _boolean(call, "my-jobs") or False
    limit, first = _positive(call, "limit"), _positive(call, "first-index") or 1
    ids_attr = call.attr("job-ids")
    ids = {v for v in ids_attr.plain if isinstance(v, int)} if ids_attr is not None else None
    requested = requested_attributes(call, ("job-id", "job-uri"))
    jobs = [j for j in call.system.jobs_of(printer) if j.state in states
            and (not my_jobs or j.user == call.user) and (ids is None or j.id in ids)]
    # Newest first for finished jobs, queue order for active ones (as CUPS lists them).
    jobs.sort(key=lambda j: j.id, reverse=states == WHICH_STATES["completed"])
    jobs = jobs[first - 1:]
    if limit is not None:
        jobs = jobs[:limit]
    uri = call.printer_uri()
    groups: list[tuple[GroupTag, list[Attribute | bytes]]] = [
        (GroupTag.JOB, list(select(job_attributes(call.system, j, uri), requested)))
        for j in jobs]
    return Reply(groups=groups)
