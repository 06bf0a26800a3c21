"""Job operations: Print-Job, Validate-Job, Create-Job, Send-Document, Close-Job, Cancel-Job,
Cancel-My-Jobs, Get-Job-Attributes, Get-Jobs, Hold-Job, Release-Job."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from typing import Any

from drivers import unsupported_options
from gateway.authn import address_of
from gateway.core.job import Job, JobEvent, options_from_template
from gateway.core.printer import Printer
from gateway.errors import BadRequest, IppError, NotPossible
from gateway.server import values
from gateway.server.attributes import COMPRESSIONS, WHICH_JOBS
from gateway.server.document import receive_document
from gateway.server.job_attributes import encoded_job_attributes, status_attributes
from gateway.server.job_template import check_template, template_attributes
from gateway.server.operations import (
    Call,
    Reply,
    apply_job_event,
    not_terminal,
    prepared,
    requested_attributes,
    spool_error,
    target_job,
)
from gateway.server.ops_printer import accepted_formats
from gateway.server.ops_subscriptions import job_subscriptions, with_subscriptions
from gateway.server.values import INT32_MAX
from ippwire.enums import GroupTag, JobState, Status, ValueTag
from ippwire.model import Attribute
from ippwire.writer import encode_attributes

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

_job_name = partial(values.single_name, texts=True)
_positive = partial(values.single_integer, low=1, high=INT32_MAX)
_job_ids = partial(values.integers, low=1, high=INT32_MAX)


def _sent(call: Call, name: str) -> list[Attribute]:
    attr = call.attr(name)
    return [] if attr is None else [attr]


def _name(call: Call, name: str, default: str) -> str:
    value = call.value(name, _job_name)
    return default if value is None else value


def _boolean(call: Call, name: str) -> bool | None:
    return call.value(name, values.single_boolean)


def _document_format(call: Call, printer: Printer) -> str:
    fmt = call.value("document-format", values.single_mime_type)
    if fmt is None:
        return "application/octet-stream"
    if fmt not in accepted_formats(printer):
        raise IppError(Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                       f"document-format {fmt!r} is not supported by printer {printer.name}",
                       _sent(call, "document-format"))
    return fmt


def _compression(call: Call, takes_data: bool) -> str:
    """RFC 8011 4.2.1.1: a compression that is not one keyword is a bad value; a keyword
    the Printer does not support is client-error-compression-not-supported. Create-Job
    carries no document, so only 'none' is meaningful there (as ippeveprinter has it);
    Validate-Job checks what Print-Job would (4.2.3), so it is `takes_data`."""
    compression = call.value("compression", values.single_keyword)
    if compression is None:
        return "none"
    if compression not in COMPRESSIONS:
        raise IppError(Status.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
                       f"compression {compression!r} is not supported",
                       _sent(call, "compression"))
    if not takes_data and compression != "none":
        raise IppError(UNSUPPORTED, "compression is only for operations that carry data",
                       _sent(call, "compression"))
    return compression


def _check_size(call: Call) -> None:
    """RFC 8011 4.2.1.1: a job-k-octets beyond job-k-octets-supported is refused with
    client-error-request-entity-too-large (the document's real size is checked as it
    arrives, see `receive_document`)."""
    size = call.value("job-k-octets", partial(values.single_integer, low=0, high=INT32_MAX))
    limit = call.system.config.max_job_bytes // 1024
    if size is not None and size > limit:
        raise IppError(Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE,
                       f"job-k-octets {size} is over the limit of {limit}",
                       _sent(call, "job-k-octets"))


def _check_job_request(call: Call, takes_data: bool) -> tuple[Reply, dict[str, object]]:
    """The checks Print-Job, Validate-Job and Create-Job share."""
    printer = call.require_printer()
    _name(call, "job-name", "")
    _name(call, "document-name", "")
    fmt = _document_format(call, printer)
    _compression(call, takes_data)
    _check_size(call)
    fidelity = _boolean(call, "ipp-attribute-fidelity") or False
    job_group = call.job_group()
    result = check_template(job_group, printer.capabilities,
                            printer.driver.fixed(printer.capabilities))
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
    for name in unsupported_options(fmt, printer.driver, printer.capabilities,
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
    document is spooled: what it cannot honour is refused (fidelity, as IppError; the caller
    disposes of the job) or reported, never ignored. `sent` holds the job's attributes as the
    client sent them, where the request has them."""
    dropped = _conversion_unsupported(fmt, call.require_printer(), job.template, sent)
    if not dropped:
        return reply
    names = ", ".join(a.name for a in dropped)
    if job.fidelity:
        raise IppError(UNSUPPORTED, f"unsupported for {fmt}: {names}", dropped)
    call.system.store.update(job)  # _conversion_unsupported took values out of its template
    unsupported = [*reply.unsupported, *dropped]
    return Reply(Status.OK_IGNORED_OR_SUBSTITUTED,
                 f"ignored: {', '.join(a.name for a in unsupported)}", unsupported)


def _as_unsupported(names: list[str]) -> list[Attribute]:
    """The unsupported-attributes entries for attributes a past request carried."""
    return [Attribute.of(name, T.UNSUPPORTED) for name in names]


async def _admit(call: Call) -> None:
    """Refuse a new job the spool should not take, before any byte of it is spooled: while
    the spool's filesystem is under `[limits]` min_free_disk_mb, or when the job would pass
    max_jobs or max_jobs_per_user. Call it right before `_new_job`, with no await between
    (the count is checked last, after the only await here)."""
    system = call.system
    floor = system.config.limits.min_free_disk_mb
    printer = call.require_printer().name
    if floor:
        try:
            free = await system.spool_free_bytes()
        except OSError as error:
            raise spool_error(error, f"printer {printer}: new job") from None
        if free < floor << 20:
            # server-error-busy, not server-error-too-many-jobs: the condition is the
            # server's and passes on its own as jobs print and their documents go, and
            # clients (CUPS's ipp backend among them) retry a busy server after a while.
            log.warning("printer %s: new job refused: the spool has %d MB free, under "
                        "limits.min_free_disk_mb (%d MB)", printer, free >> 20, floor)
            raise IppError(Status.SERVER_ERROR_BUSY,
                           f"the print spool is nearly full ({free >> 20} MB free, under "
                           f"limits.min_free_disk_mb = {floor}); try again later")
    refusal = system.job_limit_refusal(call.user)
    if refusal is not None:
        log.info("printer %s: new job of %s refused: %s", printer, call.user, refusal)
        raise IppError(Status.SERVER_ERROR_TOO_MANY_JOBS, refusal)


def _new_job(call: Call, template: dict[str, object]) -> Job:
    """The job, in memory and on its way to the disk: the request makes it durable before it
    commits (see `_discarded_unless_committed`), so a spool failure leaves no job behind."""
    printer = call.require_printer()
    name = _name(call, "job-name", "") or _name(call, "document-name", "") or "Untitled"
    # What is stored must be answerable later: a value check_template let through that does
    # not encode is a bug, and it shows here, before anything is stored.
    encode_attributes(template_attributes(template))
    return call.system.create_job(
        printer, name=name, user=call.user, template=template,
        document_format=_document_format(call, printer),
        hold_until=str(template.get("job-hold-until", "no-hold")),
        fidelity=bool(_boolean(call, "ipp-attribute-fidelity")),
        document_name=_name(call, "document-name", ""),
        user_authenticated=call.viewer.authenticated,
        origin_host=address_of(call.endpoint.client) if call.endpoint.client else "")


class _Commit:
    """Whether a job-creating request got as far as handing its job over."""

    done = False


@contextmanager
def _discarded_unless_committed(call: Call, job: Job) -> Iterator[_Commit]:
    """A job-creating request that does not succeed leaves no job behind: whatever ends it
    (a refusal, a spool error, the client going away) discards the job unless the handler
    marked it committed."""
    commit = _Commit()
    why = "the client went away"
    try:
        yield commit
    except IppError as error:
        why = error.message
        raise
    except OSError as error:
        why = error.strerror or "spool error"
        raise spool_error(error, f"printer {job.printer}: job {job.id}") from None
    finally:
        if not commit.done:
            call.system.discard_job(job, why)  # a spool that cannot delete logs it there


def _job_reply(call: Call, reply: Reply, job: Job) -> Reply:
    """The reply with the job's status group, encoded now (see `prepared`)."""
    reply.groups.append((GroupTag.JOB, list(status_attributes(job, call.printer_uri()))))
    return prepared(reply)


async def _spool_document(call: Call, job: Job) -> None:
    call.system.store.update(job, compression=_compression(call, takes_data=True))
    try:
        await receive_document(call.system, job, call.document)
    except OSError as error:
        raise spool_error(error, f"printer {job.printer}: job {job.id}") from None


def _abort(call: Call, job: Job, reason: str, message: str) -> None:
    if not job.state.is_terminal:
        call.system.store.transition(job, JobEvent.ABORT, reason, message=message)


async def _receive_into(call: Call, job: Job) -> None:
    """Spool a Send-Document's document; on any failure the job (whose id the client holds
    since Create-Job) is aborted, never left dangling."""
    done = False
    try:
        await _spool_document(call, job)
        done = True
    except IppError as error:
        _abort(call, job, "compression-error" if error.status in (
            Status.CLIENT_ERROR_COMPRESSION_ERROR,) else "aborted-by-system", error.message)
        raise
    finally:
        if not done and not job.state.is_terminal:  # the client went away mid-document
            _abort(call, job, "submission-interrupted",
                   "The client stopped sending the document.")
            log.info("printer %s: job %d: submission interrupted", job.printer, job.id)


async def validate_job(call: Call) -> Reply:
    reply, _ = _check_job_request(call, takes_data=True)  # checked as Print-Job's (4.2.3)
    return reply


async def print_job(call: Call) -> Reply:
    reply, template = _check_job_request(call, takes_data=True)
    await _admit(call)
    job = _new_job(call, template)
    subscribed = job_subscriptions(call, job)  # before any await: they hear job-created
    with _discarded_unless_committed(call, job) as commit:
        await _spool_document(call, job)
        if job.format_detected:
            reply = _check_document_format(call, job, reply, job.format_detected,
                                           call.job_group())
        # Encoded before the job is queued, so that once it is, answering cannot fail (the
        # final answer differs only in job-state, which always encodes).
        _job_reply(call, Reply(reply.status, reply.message, list(reply.unsupported),
                               list(reply.groups)), job)
        await call.system.queue_job(job)
        commit.done = True
    return with_subscriptions(_job_reply(call, reply, job), subscribed)


async def create_job(call: Call) -> Reply:
    reply, template = _check_job_request(call, takes_data=False)
    await _admit(call)
    job = _new_job(call, template)
    subscribed = job_subscriptions(call, job)
    with _discarded_unless_committed(call, job) as commit:
        reply = with_subscriptions(_job_reply(call, reply, job), subscribed)
        await call.system.store.flushed()  # on disk (with its job-id mark) before it is told
        commit.done = True
    return reply


async def send_document(call: Call) -> Reply:
    job = target_job(call)
    last = _boolean(call, "last-document")
    if last is None:
        raise BadRequest("Send-Document needs last-document")
    # A job that ended before this request began is not-possible, as cupsd and ippeveprinter
    # answer (server-error-job-canceled is for one canceled while its data is arriving).
    if job.state.is_terminal:
        raise NotPossible(f"job {job.id} is {job.state.name.lower()}: it takes no documents")
    if not (job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons):
        raise NotPossible(f"job {job.id} is not waiting for documents")
    fmt = _document_format(call, call.require_printer())
    document_name = _name(call, "document-name", job.document_name)
    if job.has_document:
        raise IppError(Status.SERVER_ERROR_MULTIPLE_DOCUMENT_JOBS_NOT_SUPPORTED,
                       f"job {job.id} already has its one document")
    call.system.store.update(job, document_format=fmt, document_name=document_name)
    await _receive_into(call, job)
    reply = Reply()
    if job.document_bytes == 0 and not last:
        # An empty non-final Send-Document carries nothing.
        call.system.store.update(job, has_document=False)
    elif job.has_document:
        try:
            reply = _check_document_format(call, job, reply, job.format_detected or fmt, [])
        except IppError as error:
            _abort(call, job, "aborted-by-system", error.message)
            raise
    if last:
        await _close(call, job)
    return _job_reply(call, reply, job)


async def _close(call: Call, job: Job) -> None:
    if not job.has_document:
        _abort(call, job, "aborted-by-system", "The job has no document.")
        return
    try:
        await call.system.queue_job(job)
    except OSError as error:  # the client holds the job-id: the job ends, it does not vanish
        _abort(call, job, "aborted-by-system", "The print spool cannot store the job.")
        raise spool_error(error, f"printer {job.printer}: job {job.id}") from None


async def close_job(call: Call) -> Reply:
    job = target_job(call)
    if not (job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons):
        raise NotPossible(f"job {job.id} is not open for documents")
    await _close(call, job)
    return _job_reply(call, Reply(), job)


async def cancel_job(call: Call) -> Reply:
    job = target_job(call)
    not_terminal(job)
    call.system.cancel_job(job)
    return Reply()


async def cancel_my_jobs(call: Call) -> Reply:
    printer = call.require_printer()
    ids = call.value("job-ids", _job_ids)
    wanted = set(ids) if ids is not None else None
    viewer = call.viewer
    active = [j for j in call.system.jobs_of(printer) if not j.state.is_terminal]
    mine = [j for j in active if viewer.owns(j.user, j.user_authenticated)
            and (wanted is None or j.id in wanted)]
    if wanted is not None and len(mine) != len(wanted):
        # Others' jobs, named by job-ids: an administrator's to cancel (gateway.policy).
        others = [j for j in active if j.id in wanted and j not in mine]
        if len(mine) + len(others) != len(wanted):
            raise NotPossible("some job-ids are not active jobs")
        if not viewer.is_admin:  # PWG 5100.11: not-possible, as for jobs that are not there
            raise NotPossible("some job-ids are not your active jobs")
        mine += others
    for job in mine:
        call.system.cancel_job(job)
    return Reply()


async def hold_job(call: Call) -> Reply:
    job = target_job(call)
    not_terminal(job)
    if job.state is not JobState.PENDING_HELD:
        apply_job_event(call.system, job, JobEvent.HOLD, "job-hold-until-specified",
                        hold_until="indefinite")
    return Reply()


async def release_job(call: Call) -> Reply:
    job = target_job(call)
    if job.state is not JobState.PENDING_HELD or "job-incoming" in job.reasons:
        raise NotPossible(f"job {job.id} is not held")
    apply_job_event(call.system, job, JobEvent.RELEASE, "job-queued", hold_until="no-hold")
    await call.system.queue_job(job)
    return Reply()


async def get_job_attributes(call: Call) -> Reply:
    job = target_job(call)
    requested = requested_attributes(call, ("all",))
    encoded = encoded_job_attributes(call.system, job, call.printer_uri(), requested,
                                     viewer=call.viewer)
    if encoded is None:
        raise IppError(Status.SERVER_ERROR_INTERNAL_ERROR,
                       f"the stored record of job {job.id} cannot be read")
    return Reply(groups=[(GroupTag.JOB, list[Attribute | bytes](encoded))])


def _which_jobs(call: Call) -> tuple[JobState, ...]:
    which = call.value("which-jobs", partial(values.single_keyword, allowed=WHICH_STATES))
    return WHICH_STATES[which or "not-completed"]


async def get_jobs(call: Call) -> Reply:
    printer = call.require_printer()
    states = _which_jobs(call)
    my_jobs = _boolean(call, "my-jobs") or False
    limit, first = call.value("limit", _positive), call.value("first-index", _positive) or 1
    ids_sent = call.value("job-ids", _job_ids)
    ids = set(ids_sent) if ids_sent is not None else None
    requested = requested_attributes(call, ("job-id", "job-uri"))
    jobs = [j for j in call.system.jobs_of(printer) if j.state in states
            and (not my_jobs or call.viewer.owns(j.user, j.user_authenticated))
            and (ids is None or j.id in ids)]
    # Newest first for finished jobs, queue order for active ones (as CUPS lists them).
    jobs.sort(key=lambda j: j.id, reverse=states == WHICH_STATES["completed"])
    jobs = jobs[first - 1:]
    if limit is not None:
        jobs = jobs[:limit]
    uri = call.printer_uri()
    groups: list[tuple[GroupTag, list[Attribute | bytes]]] = []
    for job in jobs:
        encoded = encoded_job_attributes(call.system, job, uri, requested,
                                         viewer=call.viewer)
        if encoded is not None:  # a record that cannot be listed was logged, not answered
            groups.append((GroupTag.JOB, list[Attribute | bytes](encoded)))
    return Reply(groups=groups)
