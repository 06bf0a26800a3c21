"""GET /metrics of a real gateway process: it parses with prometheus-client's text parser, and
its counters match the jobs run.

Three printers: `office` (raw, a file device) prints three jobs; `laser` (pcl5, a file device)
prints a text job through the gateway's own converter and aborts a PDF that Ghostscript cannot
read; `dead` (raw, socket:// to a closed port) fails its job's attempts until the job is
canceled. Every IPP request the test makes is tallied by operation and status, and the
scrape must say exactly the same; the bytes printed must be what the file devices hold.
"""

from __future__ import annotations

import http.client
import os
import signal
import time
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from ippwire.enums import JobState, Operation, Status, ValueTag
from ippwire.writer import AttributeSpec
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK, free_port
from tests.peers.require import require_programs
from tests.support.ipp_client import post
from tests.support.ipp_jobs import Attrs, IppPrinter, Reply

pytestmark = pytest.mark.peers

T = ValueTag
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
OFFICE, LASER, DEAD = "office", "laser", "dead"
TIMEOUT = 60.0
POLL = 0.1
OPERATION_NAMES = {Operation.PRINT_JOB: "Print-Job", Operation.CANCEL_JOB: "Cancel-Job",
                   Operation.GET_JOB_ATTRIBUTES: "Get-Job-Attributes"}
STATUS_NAMES = {Status.OK: "successful-ok", Status.CLIENT_ERROR_NOT_FOUND: "client-error-not-found"}
BROKEN_PDF = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog /Pages 9 0 R >>\nendobj\n" + b"\x00\xff" * 400


class Client:
    """IPP to the gateway's printers, tallying each request by operation and IPP status."""

    def __init__(self, gateway: GatewayProcess) -> None:
        self.gateway = gateway
        self.sent: Counter[tuple[str, str]] = Counter()

    def send(self, printer: str, operation: Operation, attrs: AttributeSpec,
             document: bytes = b"") -> Reply:
        reply = IppPrinter(self.gateway.port, printer).send(operation, attrs, document=document)
        self.sent[OPERATION_NAMES[operation], STATUS_NAMES[Status(reply.status)]] += 1
        return reply

    def submit(self, printer: str, document: bytes, fmt: str) -> int:
        reply = self.send(printer, Operation.PRINT_JOB, {
            "job-name": (T.NAME, "metrics"), "document-format": (T.MIME_MEDIA_TYPE, fmt)},
            document)
        assert reply.status == Status.OK, reply
        return reply.job_id

    def job(self, printer: str, job_id: int) -> Attrs:
        reply = self.send(printer, Operation.GET_JOB_ATTRIBUTES, {"job-id": (T.INTEGER, job_id)})
        assert reply.status == Status.OK, reply
        return reply.job

    def wait_ended(self, printer: str, job_id: int) -> Attrs:
        deadline = time.monotonic() + TIMEOUT
        while not state_of(attrs := self.job(printer, job_id)).is_terminal:
            assert time.monotonic() < deadline, f"job {job_id} still {attrs}"
            time.sleep(POLL)
        return attrs


def integer(attrs: Attrs, name: str) -> int:
    value = attrs.get(name, [0])[0]
    assert isinstance(value, int), (name, attrs)
    return value


def state_of(attrs: Attrs) -> JobState:
    return JobState(integer(attrs, "job-state"))


def scrape(port: int) -> Samples:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", "/metrics")
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/plain; version=0.0.4; charset=utf-8"
    found: Samples = {}
    for family in text_string_to_metric_families(body.decode("utf-8")):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, key
            found[key] = sample.value
    return found


def series(found: Samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """The samples of `name`, keyed by their sorted labels."""
    return {tuple(sorted(labels)): number for (sample, labels), number in found.items()
            if sample == name}


def value(found: Samples, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection(LOOPBACK, port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def test_metrics_count_the_jobs_run(tmp_path: Path) -> None:
    require_programs("gs")
    closed = free_port()  # bound for a moment and let go: nothing listens there
    printers = [
        PrinterTable(OFFICE, status_interval=0.0),
        PrinterTable(LASER, driver="pcl5", status_interval=0.0),
        PrinterTable.on_device(DEAD, f"socket://{LOOPBACK}:{closed}"),
    ]
    with start_configured_gateway(tmp_path / "gateway", printers, log_level="info") as gateway:
        client = Client(gateway)
        scrapes = 0
        before = scrape(gateway.port)
        scrapes += 1
        for name in (OFFICE, LASER, DEAD):  # every series of a printer is there from the start
            for outcome in ("completed", "canceled", "aborted"):
                assert value(before, "ipp_gateway_jobs_total", printer=name,
                             outcome=outcome) == 0
            assert value(before, "ipp_gateway_queue_length", printer=name) == 0

        office_jobs = [client.submit(OFFICE, f"job {n} ".encode() * (1000 * n + 7),
                                     "application/octet-stream") for n in (1, 2, 3)]
        text_job = client.submit(LASER, b"Hello, metrics.\n" * 40, "text/plain")
        broken_job = client.submit(LASER, BROKEN_PDF, "application/pdf")
        dead_job = client.submit(DEAD, b"never printed", "application/octet-stream")
        ended = {job_id: client.wait_ended(OFFICE, job_id) for job_id in office_jobs}
        ended[text_job] = client.wait_ended(LASER, text_job)
        ended[broken_job] = client.wait_ended(LASER, broken_job)

        # The dead device: wait for a second attempt (after the first backoff), then look.
        deadline = time.monotonic() + TIMEOUT
        while gateway.attempts(dead_job) < 2:
            assert time.monotonic() < deadline, "no second attempt at the dead device"
            time.sleep(POLL)
        waiting = scrape(gateway.port)
        scrapes += 1
        assert value(waiting, "ipp_gateway_queue_length", printer=DEAD) == 1
        assert value(waiting, "ipp_gateway_queue_length", printer=OFFICE) == 0
        assert client.send(DEAD, Operation.CANCEL_JOB, {"job-id": (T.INTEGER, dead_job)}
                           ).status == Status.OK
        ended[dead_job] = client.wait_ended(DEAD, dead_job)
        attempts = gateway.attempts(dead_job)

        # Refusals: an unknown job over IPP, a page that is not there, a POST that is not IPP.
        assert client.send(OFFICE, Operation.GET_JOB_ATTRIBUTES, {"job-id": (T.INTEGER, 999)}
                           ).status == Status.CLIENT_ERROR_NOT_FOUND
        assert get(gateway.port, "/no-such-page") == 404
        assert post(gateway.port, b"not ipp", content_type="text/plain")[0] == 400

        found = scrape(gateway.port)

        # A reload (SIGHUP) starts a new System behind the same Metrics: nothing is lost.
        os.kill(gateway.pid, signal.SIGHUP)
        deadline = time.monotonic() + TIMEOUT
        while "reloaded:" not in gateway.log.read_text():
            assert time.monotonic() < deadline, "no reload"
            time.sleep(POLL)
        reloaded = scrape(gateway.port)

    for name in ("ipp_gateway_jobs_total", "ipp_gateway_printed_bytes_total",
                 "ipp_gateway_device_errors_total", "ipp_gateway_conversion_seconds_count"):
        assert series(reloaded, name) == series(found, name), name
    assert series(reloaded, "ipp_gateway_queue_length") == series(found,
                                                                  "ipp_gateway_queue_length")

    states = {job_id: state_of(attrs) for job_id, attrs in ended.items()}
    assert states == {**dict.fromkeys(office_jobs, JobState.COMPLETED),
                      text_job: JobState.COMPLETED, broken_job: JobState.ABORTED,
                      dead_job: JobState.CANCELED}

    jobs = {labels: count for labels, count in series(found, "ipp_gateway_jobs_total").items()
            if count}
    assert jobs == {(("outcome", "completed"), ("printer", OFFICE)): 3,
                    (("outcome", "completed"), ("printer", LASER)): 1,
                    (("outcome", "aborted"), ("printer", LASER)): 1,
                    (("outcome", "canceled"), ("printer", DEAD)): 1}

    # Bytes printed are the bytes the devices got; impressions are what the jobs say.
    office_files = gateway.output_files(OFFICE)
    assert len(office_files) == 3
    assert value(found, "ipp_gateway_printed_bytes_total", printer=OFFICE) == sum(
        path.stat().st_size for path in office_files)
    laser_file = gateway.output_file(LASER, text_job)
    assert value(found, "ipp_gateway_printed_bytes_total", printer=LASER) >= \
        laser_file.stat().st_size > 0
    assert value(found, "ipp_gateway_printed_bytes_total", printer=DEAD) == 0
    for name, ids in ((OFFICE, office_jobs), (LASER, [text_job, broken_job]),
                      (DEAD, [dead_job])):
        assert value(found, "ipp_gateway_printed_impressions_total", printer=name) == sum(
            integer(ended[job_id], "job-impressions-completed") for job_id in ids)
    assert value(found, "ipp_gateway_printed_impressions_total", printer=OFFICE) == 3
    for name in (OFFICE, LASER, DEAD):
        assert value(found, "ipp_gateway_queue_length", printer=name) == 0

    # Each failed attempt at the dead device is one error; the cancel may have caught the
    # last attempt before its failure was known.
    errors = series(found, "ipp_gateway_device_errors_total")
    assert set(errors) == {(("kind", "connecting-to-device"), ("transport", "socket"))}, errors
    assert attempts >= 2 and attempts - 1 <= sum(errors.values()) <= attempts

    # One conversion per document printed, by its route; the aborted one has none.
    conversions = {dict(labels)["path"]: count for labels, count in
                   series(found, "ipp_gateway_conversion_seconds_count").items()}
    assert conversions == {"application/octet-stream -> raw": 3,
                           "text/plain -> gateway -> pcl5": 1}, conversions

    requests = {labels: count for labels, count in
                series(found, "ipp_gateway_http_requests_total").items()}
    expected = {(("operation", operation), ("status", status)): count
                for (operation, status), count in client.sent.items()}
    # The start-up check (GET /), the scrapes before this one, and the two HTTP refusals.
    expected[(("operation", "GET"), ("status", "200"))] = 1 + scrapes
    expected[(("operation", "GET"), ("status", "404"))] = 1
    expected[(("operation", "POST"), ("status", "400"))] = 1
    assert requests == expected
    assert client.sent["Print-Job", "successful-ok"] == 6
    assert value(found, "ipp_gateway_metrics_events_missed_total") == 0
    assert value(found, "process_resident_memory_bytes") > 0
