"""Metrics at GET /metrics, in the Prometheus text format (prometheus-client).

What is counted, and where it comes from:
- `ipp_gateway_jobs_total{printer,outcome}`: jobs that ended (completed, canceled, aborted),
  from `JobCompleted` on the bus;
- `ipp_gateway_printed_bytes_total{printer}` and `ipp_gateway_printed_impressions_total
  {printer}`: what those jobs report at their end (job-k-octets-processed's bytes and
  job-impressions-completed), from the same events, so the counters match the jobs run;
- `ipp_gateway_queue_length{printer}`: jobs not yet ended (queued-job-count), read from the
  System's store at each scrape: a level read when asked cannot drift, as one kept from
  events would when the bus drops some for a slow reader;
- `ipp_gateway_device_errors_total{transport,kind}`: failed print attempts, by device URI
  scheme and the failure's reason keyword, from `JobAttempt` on the bus;
- `ipp_gateway_conversion_seconds{path}`: how long a document took from its plan to its last
  byte handed to the transport, by the plan's route ("pdf -> ghostscript(pbmraw) -> pcl5"),
  from `JobAttempt`;
- `ipp_gateway_http_requests_total{operation,status}`: IPP requests by operation name and
  IPP status keyword (`ipp_answered`, called by the IPP endpoint), and every other request by
  HTTP method and status (`counting`, around the app);
- `ipp_gateway_metrics_events_missed_total`: bus events lost because this reader fell behind
  (the counters above are then short by that much);
- the `process_*` metrics of prometheus-client's ProcessCollector (memory, CPU, open files).

A `Metrics` belongs to one Gateway and keeps its counters across reloads: it follows each
System in turn (`following`). Its `CollectorRegistry` is its own, not prometheus-client's
global one, so two gateways (or tests) in one process never share or collide on a metric.
Every label value comes from the configuration or from a closed vocabulary: an operation
code or HTTP method a client made up is counted as "other", so a client cannot grow the
registry without bound.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector
from prometheus_client import generate_latest as _generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from gateway.audit import status_keyword
from gateway.core.bus import Subscription
from gateway.core.events import Event, JobAttempt, JobCompleted
from gateway.core.system import System
from gateway.server.http import (
    HttpError,
    HttpRequest,
    HttpResponse,
    HttpResult,
    RequestBody,
    Upgrade,
    is_ipp_content_type,
)
from ippwire.enums import JobState, Operation, Status

log = logging.getLogger("gateway.metrics")

# The exposition format generate_latest writes (version 0.0.4, what every scraper reads).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
METRICS_PATH = "/metrics"
METRICS_QUEUE = 1024  # bus events the metrics may fall behind by before they miss some
FOLLOWED_KINDS = (JobCompleted.kind, JobAttempt.kind)  # never progress: far too chatty
OUTCOMES = {JobState.COMPLETED: "completed", JobState.CANCELED: "canceled",
            JobState.ABORTED: "aborted"}
# Print jobs take seconds to minutes, well past the library's default buckets (to 10 s).
CONVERSION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH",
                          "CONNECT", "TRACE"})
OTHER = "other"
# What an HttpApp's `handle` is (the Router's bound method): a coroutine function.
AppHandle = Callable[[HttpRequest, RequestBody], Coroutine[Any, Any, HttpResult]]
_STATUSES = frozenset(int(status) for status in Status)


def operation_label(code: int) -> str:
    """An IPP operation as it is named (Print-Job); "other" for a code we do not know."""
    try:
        return Operation(code).name.replace("_", "-").title()
    except ValueError:
        return OTHER


def ipp_status_label(code: int) -> str:
    """An IPP status as its keyword (successful-ok); "other" for a code we do not know."""
    return status_keyword(code) if code in _STATUSES else OTHER


def method_label(method: str) -> str:
    return method if method in HTTP_METHODS else OTHER


def header_code(header: bytes) -> int | None:
    """The operation-id of a request, or the status-code of a response: bytes 2-3 of the
    8-byte IPP header (RFC 8010 3.1.1); None when fewer than 4 bytes came."""
    return int.from_bytes(header[2:4], "big") if len(header) >= 4 else None


class _QueueCollector(Collector):
    """queued-job-count of every printer of the followed System, read at scrape time."""

    def __init__(self) -> None:
        self.system: System | None = None

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("ipp_gateway_queue_length",
                                   "Jobs not yet ended (queued-job-count), by printer",
                                   labels=["printer"])
        system = self.system
        if system is not None:
            for name in system.printers:
                family.add_metric([name], system.store.queued_count(name))
        yield family

    def describe(self) -> Iterable[GaugeMetricFamily]:
        # Without describe, registering would call collect() before any System is followed.
        return [GaugeMetricFamily("ipp_gateway_queue_length", "", labels=["printer"])]


class Metrics:
    def __init__(self, *, process: bool = True, queue: int = METRICS_QUEUE) -> None:
        """`process`: include the process_* metrics (memory, CPU, open files); `queue`: the
        bus events the metrics may fall behind by before they miss some."""
        self.queue = queue
        self.registry = CollectorRegistry(auto_describe=True)
        registry = self.registry
        self.jobs = Counter("ipp_gateway_jobs", "Jobs that ended, by printer and outcome",
                            ["printer", "outcome"], registry=registry)
        self.printed_bytes = Counter("ipp_gateway_printed_bytes",
                                     "Bytes sent to the device by jobs that ended",
                                     ["printer"], registry=registry)
        self.printed_impressions = Counter("ipp_gateway_printed_impressions",
                                           "Impressions completed by jobs that ended",
                                           ["printer"], registry=registry)
        self.device_errors = Counter("ipp_gateway_device_errors",
                                     "Failed print attempts, by transport and kind",
                                     ["transport", "kind"], registry=registry)
        self.conversion_seconds = Histogram(
            "ipp_gateway_conversion_seconds",
            "Seconds from a document's plan to its last byte handed to the transport",
            ["path"], buckets=CONVERSION_BUCKETS, registry=registry)
        self.http_requests = Counter(
            "ipp_gateway_http_requests",
            "Requests: IPP by operation and IPP status, others by HTTP method and status",
            ["operation", "status"], registry=registry)
        self.events_missed = Counter("ipp_gateway_metrics_events_missed",
                                     "Bus events the metrics missed by falling behind",
                                     registry=registry)
        self._noted = 0
        self._queue = _QueueCollector()
        registry.register(self._queue)
        if process:
            ProcessCollector(registry=registry)

    # -- what is counted ------------------------------------------------------------------

    def event(self, event: Event) -> None:
        if isinstance(event, JobCompleted):
            job = event.job
            self.jobs.labels(job.printer, OUTCOMES.get(job.state, OTHER)).inc()
            self.printed_bytes.labels(job.printer).inc(max(0, job.bytes_sent))
            self.printed_impressions.labels(job.printer).inc(max(0, job.impressions_completed))
        elif isinstance(event, JobAttempt):
            if event.failure:
                if event.device:
                    self.device_errors.labels(event.transport, event.failure).inc()
            elif event.path:
                self.conversion_seconds.labels(event.path).observe(max(0.0, event.seconds))

    def ipp_answered(self, request_head: bytes, response: bytes) -> None:
        """An IPP request answered: the operation from the request's header, the status from
        the encoded response's."""
        operation = header_code(request_head)
        status = header_code(response)
        self.http_requests.labels(
            OTHER if operation is None else operation_label(operation),
            OTHER if status is None else ipp_status_label(status)).inc()

    def http_answered(self, method: str, status: int) -> None:
        self.http_requests.labels(method_label(method), str(status)).inc()

    def counting(self, handle: AppHandle) -> AppHandle:
        """`handle` with each request counted by HTTP method and status, except the IPP
        answers (Content-Type application/ipp), which `ipp_answered` counts by operation."""

        async def counted(request: HttpRequest, body: RequestBody) -> HttpResult:
            try:
                result = await handle(request, body)
            except HttpError as error:
                self.http_answered(request.method, error.status)
                raise
            if isinstance(result, Upgrade):
                self.http_answered(request.method, 101)
            elif not _is_ipp_answer(result):
                self.http_answered(request.method, result.status)
            return result

        return counted

    # -- /metrics -------------------------------------------------------------------------

    def render(self) -> bytes:
        return _generate_latest(self.registry)

    async def handle(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        """GET /metrics."""
        return HttpResponse(200, (("Content-Type", CONTENT_TYPE),), self.render())

    # -- following a System ---------------------------------------------------------------

    @contextmanager
    def following(self, system: System, nursery: trio.Nursery) -> Iterator[None]:
        """Count `system`'s bus events from a task in `nursery`, and read its queues at each
        scrape, while the block runs (a System's `run`). What is still queued when the block
        ends is counted before leaving it, so the last jobs of a stopping System are not
        lost across a reload."""
        for name in system.printers:  # every series exists from the start, at 0
            for outcome in OUTCOMES.values():
                self.jobs.labels(name, outcome)
            self.printed_bytes.labels(name)
            self.printed_impressions.labels(name)
        subscription = system.bus.subscribe(maxlen=self.queue, kinds=FOLLOWED_KINDS)
        self._noted = 0  # of the subscription's missed events, how many were counted
        self._queue.system = system
        nursery.start_soon(self._follow, subscription)
        try:
            yield
        finally:
            for event in subscription.drain():
                self.event(event)
            self._note_missed(subscription)
            subscription.close()  # ends the task: its queue is closed and empty
            if self._queue.system is system:
                self._queue.system = None

    async def _follow(self, subscription: Subscription) -> None:
        async for event in subscription:
            self._note_missed(subscription)  # the dropped ones came before this one
            self.event(event)

    def _note_missed(self, subscription: Subscription) -> None:
        missed = subscription.missed - self._noted
        if missed > 0:
            self._noted += missed
            self.events_missed.inc(missed)
            log.warning("metrics: fell behind the bus and missed %d event(s); the job "
                        "counters are short by as many", missed)


def _is_ipp_answer(response: HttpResponse) -> bool:
    return any(name.lower() == "content-type" and is_ipp_content_type(value)
               for name, value in response.headers)
