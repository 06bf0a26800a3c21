"""Issue 12, item 7: a short, fixed-seed pass of the network fuzzer (tests/fuzz/netfuzz.py;
scripts/netfuzz.py runs it for 100,000 requests) against a real gateway: mutated IPP
requests and malformed HTTP in batches, a clean Get-Printer-Attributes after each batch."""

from __future__ import annotations

from tests.fuzz import netfuzz
from tests.peers.gateway_proc import GatewayProcess

REQUESTS = 2000
BATCH = 250


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
