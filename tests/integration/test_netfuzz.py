"""Issue 12, item 7: the network fuzzer against a real gateway process.

A short pass with the fuzzer of tests/fuzz/netfuzz.py (one request per connection), and the
acceptance run: at least 100,000 fuzzed requests from the same mutations, pipelined over
several persistent connections (tests/support/netload.py), after which the gateway still
answers, has logged no traceback, sent no undocumented 5xx, and holds no more memory than
after a warm-up batch, give or take 10 MB."""

from __future__ import annotations

import pytest

from tests.fuzz import netfuzz
from tests.peers.gateway_proc import GatewayProcess
from tests.support import netload

REQUESTS = 2000
BATCH = 250

VOLUME = 100_000
VOLUME_BATCH = 5000
WARM_UP = 10_000  # the job store fills to its limits and the caches to theirs by then
RSS_SLACK_KB = 10 * 1024
SEED = 12


def test_gateway_survives_fuzzed_requests(gateway: GatewayProcess) -> None:
    log_start = gateway.log.stat().st_size
    checks: list[int] = []
    report = netfuzz.run(gateway.port, REQUESTS, seed=12, batch=BATCH,
                         after_batch=lambda report: checks.append(report.requests))

    assert report.requests == REQUESTS
    assert checks == list(range(BATCH, REQUESTS + 1, BATCH))  # a health check per batch
    assert report.unanswered_checks == []
    assert report.undocumented_5xx == {}, report.summary()
    assert netfuzz.tracebacks(gateway.log, log_start) == []
    assert gateway.alive()
    # The fuzzer reached both the IPP layer and the HTTP layer's refusals.
    assert report.http_statuses[200] > REQUESTS // 4, report.summary()
    assert report.http_statuses[400] > 0 and report.http_statuses[431] > 0, report.summary()


def test_health_check_fails_when_nothing_listens() -> None:
    """The check the fuzzer relies on can fail: a port with no gateway is reported."""
    from tests.peers.procs import free_port

    assert netfuzz.health_check(free_port(), "ipp://127.0.0.1/ipp/print") is not None


@pytest.mark.slow
def test_gateway_survives_100000_fuzzed_requests_without_growing(
        gateway: GatewayProcess) -> None:
    log_start = gateway.log.stat().st_size
    with gateway:
        pool = netload.Pool.generate(gateway.printer_uri, SEED)
        warm = netload.run(gateway.port, WARM_UP, seed=SEED, batch=VOLUME_BATCH, pool=pool)
        rss_warm = gateway.memory_kb("VmRSS")
        rss_seen: list[int] = []
        run = netload.run(gateway.port, VOLUME - warm.report.requests, seed=SEED + 1,
                          batch=VOLUME_BATCH, pool=pool,
                          after_batch=lambda _: rss_seen.append(gateway.memory_kb("VmRSS")))
        rss_end = gateway.memory_kb("VmRSS")
        alive = gateway.alive()
    log = gateway.log.read_bytes()[log_start:].decode("utf-8", "replace")

    reports = (warm.report, run.report)
    summary = "\n".join(report.summary() for report in reports)
    assert warm.report.requests + run.report.requests >= VOLUME, summary
    for report in reports:
        assert report.unanswered_checks == [], summary
        assert report.undocumented_5xx == {}, (summary, report.samples)
    assert "Traceback" not in log, netfuzz.tracebacks(gateway.log, log_start)[:5]
    assert alive
    assert rss_end - rss_warm <= RSS_SLACK_KB, (rss_warm, rss_seen, rss_end)
    # The run went where it was meant to: most requests were pipelined IPP the gateway read
    # and answered, and the malformed HTTP met its refusals.
    stats = run.stats
    assert stats.timed_out == 0 and stats.garbled == 0, stats
    assert stats.framed_answered >= stats.framed_sent * 0.95, stats  # pipelining held
    statuses = run.report.http_statuses
    assert statuses[200] > run.report.requests // 2, summary
    assert statuses[400] > 0 and statuses[431] > 0, summary
