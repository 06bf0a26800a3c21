"""The metrics: what the bus's job events and attempts add up to, the bounded label values,
and GET /metrics served by the gateway's own router over a real HttpConnection in front of a
real System, read back with prometheus-client's own text parser."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

from gateway.config import Config, PrinterConfig
from gateway.core.events import JobAttempt, JobCompleted, JobCreated, JobSnapshot
from gateway.core.system import PRINT_PATH, System
from gateway.metrics import CONTENT_TYPE, OTHER, Metrics
from gateway.server.ipp_endpoint import IppApp
from ippwire.enums import JobState, Operation, Status, ValueTag
from ippwire.header import HEADER
from ippwire.writer import encode_message, request
from tests.support.http_harness import get, post, served

PRINTER = "office"
URI = f"ipp://gw.local:631{PRINT_PATH}/{PRINTER}"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels, as prometheus-client parses it."""
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key
            found[key] = sample.value
    return found


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def _snapshot(job_id: int, state: JobState, printer: str = PRINTER, *, impressions: int = 0,
              sent: int = 0) -> JobSnapshot:
    return JobSnapshot(id=job_id, printer=printer, name="n", user="u", state=state,
                       reasons=("none",), message="", document_format="application/pdf",
                       impressions_completed=impressions, sheets_completed=impressions,
                       bytes_sent=sent, attempts=1)


def _config(tmp_path: Path) -> Config:
    return Config(spool=tmp_path / "spool", printers=(
        PrinterConfig(PRINTER, f"file://{tmp_path}/out/", driver="raw",
                      formats=("application/octet-stream",)),))


# -- the events -------------------------------------------------------------------------------

def test_ended_jobs_are_counted_by_printer_and_outcome_with_what_they_printed() -> None:
    metrics = Metrics(process=False)
    for job_id, state, printer, impressions, sent in (
            (1, JobState.COMPLETED, PRINTER, 3, 1000), (2, JobState.COMPLETED, PRINTER, 2, 500),
            (3, JobState.CANCELED, PRINTER, 1, 200), (4, JobState.ABORTED, "lab", 0, 0)):
        metrics.event(JobCompleted(job_id, 0.0, _snapshot(
            job_id, state, printer, impressions=impressions, sent=sent), JobState.PROCESSING))
    metrics.event(JobCreated(5, 0.0, _snapshot(5, JobState.PENDING)))  # not an ending
    found = samples(metrics.render().decode())
    assert value(found, "ipp_gateway_jobs_total", printer=PRINTER, outcome="completed") == 2
    assert value(found, "ipp_gateway_jobs_total", printer=PRINTER, outcome="canceled") == 1
    assert value(found, "ipp_gateway_jobs_total", printer="lab", outcome="aborted") == 1
    assert value(found, "ipp_gateway_printed_bytes_total", printer=PRINTER) == 1700
    assert value(found, "ipp_gateway_printed_impressions_total", printer=PRINTER) == 6
    assert value(found, "ipp_gateway_printed_bytes_total", printer="lab") == 0


def test_attempts_give_device_errors_and_conversion_seconds() -> None:
    metrics = Metrics(process=False)
    job = _snapshot(1, JobState.PROCESSING)
    path = "application/pdf -> ghostscript(pbmraw) -> pcl5"
    for seconds in (0.3, 4.0):
        metrics.event(JobAttempt(1, 0.0, job, "socket", path=path, seconds=seconds))
    for _ in range(3):
        metrics.event(JobAttempt(1, 0.0, job, "socket", failure="connecting-to-device",
                                 device=True))
    metrics.event(JobAttempt(1, 0.0, job, "lpd", failure="spool-area-full", device=True))
    # A conversion failure is the document's fault, not the device's: the job's outcome
    # (aborted) counts it.
    metrics.event(JobAttempt(1, 0.0, job, "socket", failure="other", device=False))
    found = samples(metrics.render().decode())
    assert value(found, "ipp_gateway_device_errors_total", transport="socket",
                 kind="connecting-to-device") == 3
    assert value(found, "ipp_gateway_device_errors_total", transport="lpd",
                 kind="spool-area-full") == 1
    assert ("ipp_gateway_device_errors_total",
            frozenset({("transport", "socket"), ("kind", "other")})) not in found
    assert value(found, "ipp_gateway_conversion_seconds_count", path=path) == 2
    assert value(found, "ipp_gateway_conversion_seconds_sum", path=path) == 4.3
    assert value(found, "ipp_gateway_conversion_seconds_bucket", path=path, le="0.5") == 1
    assert value(found, "ipp_gateway_conversion_seconds_bucket", path=path, le="5.0") == 2


def test_label_values_a_client_chooses_stay_bounded() -> None:
    metrics = Metrics(process=False)
    ok = HEADER.pack(2, 0, int(Status.OK), 1)
    for code in range(0x4000, 0x4000 + 500):  # operation codes nobody defined
        metrics.ipp_answered(HEADER.pack(2, 0, code, 1), HEADER.pack(
            2, 0, int(Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED), 1))
    metrics.ipp_answered(HEADER.pack(1, 1, int(Operation.PRINT_JOB), 7), ok)
    metrics.ipp_answered(b"\x02", ok)  # a head cut short
    for method in ("BREW", "PROPFIND", "GET"):
        metrics.http_answered(method, 405)
    found = samples(metrics.render().decode())
    requests: dict[str, float] = {}
    for (name, labels), count in found.items():
        if name == "ipp_gateway_http_requests_total":
            operation = dict(labels)["operation"]
            requests[operation] = requests.get(operation, 0) + count
    assert requests == {OTHER: 500 + 1 + 2, "Print-Job": 1, "GET": 1}
    assert value(found, "ipp_gateway_http_requests_total", operation=OTHER,
                 status="server-error-operation-not-supported") == 500
    assert value(found, "ipp_gateway_http_requests_total", operation="Print-Job",
                 status="successful-ok") == 1


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()  # a shared registry would refuse the second's names
    first.http_answered("GET", 200)
    assert value(samples(first.render().decode()), "ipp_gateway_http_requests_total",
                 operation="GET", status="200") == 1
    found = samples(second.render().decode())
    assert not any(name == "ipp_gateway_http_requests_total" for name, _ in found)
    assert value(found, "process_resident_memory_bytes") > 0


# -- following a System ---------------------------------------------------------------------------

async def test_a_reader_that_falls_behind_counts_what_it_missed(tmp_path: Path) -> None:
    system = await System.open(_config(tmp_path))
    metrics = Metrics(process=False, queue=2)
    async with trio.open_nursery() as nursery:
        with metrics.following(system, nursery):
            for job_id in range(1, 6):  # published without a checkpoint: it cannot keep up
                system.bus.publish(JobCompleted(job_id, 0.0, _snapshot(
                    job_id, JobState.COMPLETED, sent=10), JobState.PROCESSING))
        assert system.bus.subscriber_count == 0  # the subscription ended with the block
    found = samples(metrics.render().decode())
    assert value(found, "ipp_gateway_metrics_events_missed_total") == 3
    assert value(found, "ipp_gateway_jobs_total", printer=PRINTER, outcome="completed") == 2
    assert value(found, "ipp_gateway_printed_bytes_total", printer=PRINTER) == 20


async def test_a_running_system_served_over_http(tmp_path: Path) -> None:
    """A job printed through the real router and dispatcher on a real System: the scrape says
    what it printed, what the requests were, and the queue."""
    system = await System.open(_config(tmp_path))
    metrics = Metrics(process=False)
    app = IppApp(system, metrics=metrics)
    document = b"data" * 1000
    print_job = encode_message(request(Operation.PRINT_JOB, printer_uri=URI, user="carol", attrs={
        "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")})) + document
    missing = encode_message(request(Operation.GET_JOB_ATTRIBUTES, printer_uri=URI, attrs={
        "job-id": (ValueTag.INTEGER, 999)}))
    async with trio.open_nursery() as nursery:
        with metrics.following(system, nursery):
            await nursery.start(system.run)
            found = await _scrape(app)  # before anything: every series of the printer at 0
            assert value(found, "ipp_gateway_jobs_total", printer=PRINTER,
                         outcome="completed") == 0
            assert value(found, "ipp_gateway_queue_length", printer=PRINTER) == 0
            with system.bus.subscribe(kinds=[JobCompleted.kind]) as completions:
                async with served(app) as client:
                    await client.send(post(f"{PRINT_PATH}/{PRINTER}", print_job))
                    assert (await client.reply()).status == 200
                    await client.send(post(f"{PRINT_PATH}/{PRINTER}", missing))
                    assert (await client.reply()).status == 200
                    await client.send(post(PRINT_PATH, b"x", content_type="text/plain"))
                    assert (await client.reply()).status == 400
                    await client.send(get("/no-such-page"))
                    assert (await client.reply()).status == 404
                with trio.fail_after(10):
                    ended = await completions.receive()
            await trio.testing.wait_all_tasks_blocked()  # the metrics' task has read it too
            found = await _scrape(app)
        nursery.cancel_scope.cancel()
    assert isinstance(ended, JobCompleted) and ended.job.state is JobState.COMPLETED
    assert value(found, "ipp_gateway_jobs_total", printer=PRINTER, outcome="completed") == 1
    assert value(found, "ipp_gateway_printed_bytes_total", printer=PRINTER) == len(document)
    assert value(found, "ipp_gateway_printed_impressions_total", printer=PRINTER) == 1
    assert value(found, "ipp_gateway_queue_length", printer=PRINTER) == 0
    requests = {tuple(sorted(labels)): count for (name, labels), count in found.items()
                if name == "ipp_gateway_http_requests_total"}
    assert requests == {
        (("operation", "Print-Job"), ("status", "successful-ok")): 1,
        (("operation", "Get-Job-Attributes"), ("status", "client-error-not-found")): 1,
        (("operation", "POST"), ("status", "400")): 1,
        (("operation", "GET"), ("status", "404")): 1,
        (("operation", "GET"), ("status", "200")): 1,  # the first scrape
    }
    conversions = {dict(labels)["path"]: count for (name, labels), count in found.items()
                   if name == "ipp_gateway_conversion_seconds_count"}
    assert conversions == {"application/octet-stream -> raw": 1}


async def test_a_failing_device_is_counted_by_transport_and_kind(tmp_path: Path) -> None:
    """A file device whose directory cannot be made (its parent is a regular file): the
    transport says "other" and stops the printer; the attempt is one device error."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"not a directory")
    system = await System.open(Config(spool=tmp_path / "spool", printers=(
        PrinterConfig(PRINTER, f"file://{blocker}/out/", driver="raw",
                      formats=("application/octet-stream",)),)))
    metrics = Metrics(process=False)
    async with trio.open_nursery() as nursery:
        with metrics.following(system, nursery):
            with system.bus.subscribe(kinds=[JobAttempt.kind]) as attempts:
                await nursery.start(system.run)
                async with served(IppApp(system, metrics=metrics)) as client:
                    await client.send(post(f"{PRINT_PATH}/{PRINTER}", encode_message(request(
                        Operation.PRINT_JOB, printer_uri=URI, attrs={"document-format": (
                            ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")})) + b"x"))
                    assert (await client.reply()).status == 200
                with trio.fail_after(10):
                    attempt = await attempts.receive()
            await trio.testing.wait_all_tasks_blocked()
            found = samples(metrics.render().decode())
            nursery.cancel_scope.cancel()
    assert isinstance(attempt, JobAttempt) and (attempt.transport, attempt.failure) == (
        "file", "other")
    assert value(found, "ipp_gateway_device_errors_total", transport="file", kind="other") == 1
    assert value(found, "ipp_gateway_queue_length", printer=PRINTER) == 1  # it waits
    assert value(found, "ipp_gateway_jobs_total", printer=PRINTER, outcome="aborted") == 0


async def test_the_queue_length_is_read_from_the_store_when_scraped(tmp_path: Path) -> None:
    system = await System.open(_config(tmp_path))
    metrics = Metrics(process=False)
    app = IppApp(system, metrics=metrics)
    async with trio.open_nursery() as nursery:
        with metrics.following(system, nursery):
            # Not running: nothing prints, so the jobs stay queued.
            for _ in range(3):
                system.store.create(PRINTER, name="n", user="u", template={},
                                    document_format="application/octet-stream")
            found = await _scrape(app)
    assert value(found, "ipp_gateway_queue_length", printer=PRINTER) == 3
    found = await _scrape(app)  # no System followed: no queue to tell of
    assert not any(name == "ipp_gateway_queue_length" for name, _ in found)


async def _scrape(app: IppApp) -> Samples:
    async with served(app) as client:
        await client.send(get("/metrics"))
        reply = await client.reply()
    assert reply.status == 200
    assert reply.headers["content-type"] == CONTENT_TYPE
    return samples(reply.body.decode())
