"""Job attributes for Get-Job-Attributes, Get-Jobs and the job-creating responses.

Who asks decides what is answered: every listing takes a `Viewer` (gateway.privacy), and a
job's private values (its name, its owner, its document's name) are left out for anyone but
its owner and an administrator. A caller that does not say who asks gets `NOBODY`'s view:
forgetting the viewer hides a job's names from its owner too, which a test notices, rather
than showing them to everyone, which none would."""

from __future__ import annotations

import logging

from gateway.core.job import Job
from gateway.core.system import System
from gateway.privacy import NOBODY, Viewer, visible
from gateway.ratelimit import LogRateLimiter
from gateway.server.attributes import ipp_datetime
from gateway.server.job_template import template_attribute
from ippwire.enums import JobState, ValueTag
from ippwire.model import Attribute
from ippwire.writer import encode_attribute

log = logging.getLogger("gateway.ipp")
T = ValueTag
# A listing repeats every few seconds (CUPS polls): name a broken record once an hour.
_BROKEN_RECORD_LOG = LogRateLimiter(burst=1, interval=3600.0, max_keys=1024)

JOB_DESCRIPTION_NAMES = frozenset({
    "compression-supplied", "date-time-at-completed", "date-time-at-creation",
    "date-time-at-processing", "document-format", "document-format-detected",
    "document-format-supplied", "document-name-supplied", "job-id", "job-impressions",
    "job-impressions-completed", "job-k-octets", "job-k-octets-processed",
    "job-media-sheets-completed", "job-name",
    "job-originating-user-name", "job-printer-up-time", "job-printer-uri", "job-state",
    "job-state-message", "job-state-reasons", "job-uri", "job-uuid", "number-of-documents",
    "number-of-intervening-jobs", "time-at-completed", "time-at-creation", "time-at-processing",
})


def job_uri(printer_uri: str, job: Job) -> str:
    return f"{printer_uri}/{job.id}"


def status_attributes(job: Job, printer_uri: str) -> list[Attribute]:
    """The attributes every job-creating operation returns."""
    return [
        Attribute.of("job-id", T.INTEGER, job.id),
        Attribute.of("job-uri", T.URI, job_uri(printer_uri, job)),
        Attribute.of("job-state", T.ENUM, int(job.state)),
        Attribute.of("job-state-reasons", T.KEYWORD, *job.reasons),
        # PWG 5100.14 lists it among the creation response's attributes: empty until the
        # job has something to say.
        Attribute.of("job-state-message", T.TEXT, job.message),
    ]


def job_impressions(system: System, job: Job) -> Attribute:
    """job-impressions (RFC 8011 5.3.17.2): the document's impressions, copies not counted.
    Pages are counted only as they are converted, so the size is known once a job has
    completed; until then, and for a raw queue that never looks inside its documents, it is
    no-value (the 'unknown' PWG 5100.14 allows)."""
    printer = system.printers.get(job.printer)
    if job.state is not JobState.COMPLETED or printer is None or (
            printer.driver.passes_through) or job.impressions_completed <= 0:
        return Attribute.of("job-impressions", T.NO_VALUE)
    copies = job.template.get("copies", 1) if isinstance(job.template, dict) else 1
    per_copy = job.impressions_completed // copies if isinstance(copies, int) and copies > 0 \
        else job.impressions_completed
    return Attribute.of("job-impressions", T.INTEGER, max(1, per_copy))


def _time(system: System, name: str, wall: float | None) -> list[Attribute]:
    value = system.to_up_time(wall)
    if value is None or wall is None:
        return [Attribute.of(f"time-at-{name}", T.NO_VALUE),
                Attribute.of(f"date-time-at-{name}", T.NO_VALUE)]
    return [Attribute.of(f"time-at-{name}", T.INTEGER, value),
            Attribute.of(f"date-time-at-{name}", T.DATE_TIME, ipp_datetime(wall))]


def job_attributes(system: System, job: Job, printer_uri: str, *,
                   viewer: Viewer = NOBODY) -> list[Attribute]:
    """Every attribute of `job` that `viewer` may see; raises ValueError or TypeError for a
    record that does not hold what this version would have stored (see
    `encoded_job_attributes`)."""
    attrs, broken = _job_attributes(system, job, printer_uri, viewer)
    if broken:
        raise ValueError(f"job {job.id}: bad stored {', '.join(broken)}")
    return attrs


def encoded_job_attributes(system: System, job: Job, printer_uri: str,
                           requested: set[str], *, viewer: Viewer = NOBODY
                           ) -> list[bytes] | None:
    """The `requested` attributes of `job` that `viewer` may see, encoded. One that cannot be
    (a record an older version wrote, say a boolean margin) is left out; a job whose
    attributes cannot even be built is left out (None). Either way one log line names the
    job: a broken record must not fail the whole answer, and Get-Jobs lists every job."""
    try:
        attrs, broken = _job_attributes(system, job, printer_uri, viewer)
    except (ValueError, TypeError) as error:
        _report_broken(job, f"its record cannot be listed ({error})")
        return None
    encoded = []
    for attr in select(attrs, requested):
        try:
            encoded.append(encode_attribute(attr))
        except (ValueError, TypeError):
            broken.append(attr.name)
    if broken:
        _report_broken(job, "stored values cannot be encoded, left out: " + ", ".join(broken))
    return encoded


def _report_broken(job: Job, what: str) -> None:
    _BROKEN_RECORD_LOG.log(log, logging.WARNING, f"{job.printer}/{job.id}/{job.uuid}",
                           "printer %s: job %d: %s", job.printer, job.id, what)


def _job_attributes(system: System, job: Job, printer_uri: str, viewer: Viewer
                    ) -> tuple[list[Attribute], list[str]]:
    attrs = status_attributes(job, printer_uri)
    attrs += [
        Attribute.of("job-uuid", T.URI, job.uuid),
        Attribute.of("job-printer-uri", T.URI, printer_uri),
        Attribute.of("job-printer-up-time", T.INTEGER, system.up_time()),
        Attribute.of("job-name", T.NAME, job.name),
        Attribute.of("job-originating-user-name", T.NAME, job.user),
        Attribute.of("job-k-octets", T.INTEGER, job.k_octets),
        Attribute.of("job-k-octets-processed", T.INTEGER, job.k_octets_processed),
        job_impressions(system, job),
        Attribute.of("job-impressions-completed", T.INTEGER, job.impressions_completed),
        Attribute.of("job-media-sheets-completed", T.INTEGER, job.sheets_completed),
        Attribute.of("document-format", T.MIME_MEDIA_TYPE, job.document_format),
        Attribute.of("document-format-supplied", T.MIME_MEDIA_TYPE, job.document_format),
        Attribute.of("compression-supplied", T.KEYWORD, job.compression),
        Attribute.of("number-of-documents", T.INTEGER, 1 if job.has_document else 0),
    ]
    if job.format_detected:
        attrs.append(Attribute.of("document-format-detected", T.MIME_MEDIA_TYPE,
                                  job.format_detected))
    if job.document_name:
        attrs.append(Attribute.of("document-name-supplied", T.NAME, job.document_name))
    attrs += _time(system, "creation", job.created)
    attrs += _time(system, "processing", job.processing_at)
    attrs += _time(system, "completed", job.completed_at)
    # job-hold-until as it is now (Hold-Job, Release-Job and a HOLD failure change it), not as
    # the job was created.
    broken: list[str] = []
    template = job.template if isinstance(job.template, dict) else {"job-template": None}
    for name, value in template.items():
        if name == "job-hold-until":
            continue
        try:
            attrs.append(template_attribute(name, value))
        except (ValueError, TypeError):
            broken.append(name)
    if job.hold_until not in ("", "no-hold") or "job-hold-until" in job.template:
        attrs.append(Attribute.of("job-hold-until", T.KEYWORD, job.hold_until or "no-hold"))
    # Last, over the whole list: a private value that came in through the template is left
    # out as surely as the job's own name.
    return visible(attrs, job.user, viewer, job.user_authenticated), broken


def select(attrs: list[Attribute], requested: set[str]) -> list[Attribute]:
    if "all" in requested:
        return attrs
    return [x for x in attrs if x.name in requested
            or ("job-description" in requested and x.name in JOB_DESCRIPTION_NAMES)
            or ("job-template" in requested and x.name not in JOB_DESCRIPTION_NAMES)]
