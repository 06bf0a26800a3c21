"""IPP notifications end to end: ipptool runs our subscription suite, an ippget subscriber
follows a job over HTTP, and a private cupsd prints to the gateway while we watch."""

from __future__ import annotations

from pathlib import Path

import pytest

from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import Attribute, Group, Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers import CORPUS_DIR
from tests.peers.cupsd import Cupsd
from tests.peers.gateway_proc import GatewayProcess
from tests.peers.ipptool import run_ipptool
from tests.peers.procs import log_tail
from tests.support.ipp_client import post, printer_uri

T = ValueTag
SUITE = Path(__file__).parent / "suites" / "notifications.test"
JOB_EVENTS = ("job-created", "job-state-changed", "job-progress", "job-completed")
# Get-Notifications with notify-wait is held up to 30 s by the gateway: the client waits
# longer, and a few rounds are plenty for one small job.
WAIT_TIMEOUT = 45.0
MAX_ROUNDS = 20
QUEUE = "gwnotify"
COMPLETION_TIMEOUT = 120.0


def ipp_call(port: int, message: Message, document: bytes = b"") -> Message:
    status, body = post(port, encode_message(message) + document, timeout=WAIT_TIMEOUT)
    assert status == 200, (status, body[:200])
    response, _ = decode_message(body)
    return response


def subscribe(port: int, *events: str) -> int:
    message = request(Operation.CREATE_PRINTER_SUBSCRIPTIONS, printer_uri=printer_uri(port))
    message.groups.append(Group(GroupTag.SUBSCRIPTION, [
        Attribute.of("notify-pull-method", T.KEYWORD, "ippget"),
        Attribute.of("notify-events", T.KEYWORD, *events)]))
    response = ipp_call(port, message)
    assert response.code == Status.OK, response
    group = response.group(GroupTag.SUBSCRIPTION)
    assert group is not None
    attr = group.get("notify-subscription-id")
    assert attr is not None and isinstance(attr.value, int)
    return attr.value


def value(group: Group, name: str) -> object:
    attr = group.get(name)
    return None if attr is None else attr.value


def follow_job(port: int, subscription_id: int, job_id: int | None
               ) -> list[tuple[int, str, int]]:
    """(sequence, event, job-id) of the subscription's job events, fetched with notify-wait
    until `job_id` (the first job seen, when None) completed."""
    seen: list[tuple[int, str, int]] = []
    following = job_id
    first = 1
    for _ in range(MAX_ROUNDS):
        response = ipp_call(port, request(
            Operation.GET_NOTIFICATIONS, printer_uri=printer_uri(port), attrs={
                "notify-subscription-ids": (T.INTEGER, subscription_id),
                "notify-sequence-numbers": (T.INTEGER, first),
                "notify-wait": (T.BOOLEAN, True)}))
        assert response.code == Status.OK, response
        for group in response.groups_of(GroupTag.EVENT_NOTIFICATION):
            sequence, event, job = (value(group, "notify-sequence-number"),
                                    value(group, "notify-subscribed-event"),
                                    value(group, "notify-job-id"))
            assert isinstance(sequence, int) and isinstance(event, str)
            assert isinstance(job, int), group
            first = sequence + 1
            following = job if following is None else following
            if job == following:
                seen.append((sequence, event, job))
        if seen and seen[-1][1] == "job-completed":
            return seen
    raise AssertionError(f"no job-completed after {MAX_ROUNDS} rounds: {seen}")


def assert_in_order(seen: list[tuple[int, str, int]]) -> None:
    events = [event for _, event, _ in seen]
    assert events[0] == "job-created", seen
    assert events[-1] == "job-completed", seen
    assert "job-state-changed" in events[1:-1], seen
    assert set(events[1:-1]) <= {"job-state-changed", "job-progress"}, seen
    numbers = [sequence for sequence, _, _ in seen]
    assert numbers == sorted(set(numbers)), seen


@pytest.mark.peers
def test_ipptool_subscription_suite(gateway: GatewayProcess, tmp_path: Path) -> None:
    document = tmp_path / "note.txt"
    document.write_text("notifications\n")
    run = run_ipptool(gateway.printer_uri, SUITE, document=document, options=("-t",))
    context = f"{run.stdout}\n{run.stderr}\ngateway log:\n{log_tail(gateway.log, 30)}"
    assert run.outcomes and all(o.status == "PASS" for o in run.outcomes), context
    assert run.summary is not None and run.summary.failed == 0, context


@pytest.mark.peers
def test_ippget_subscriber_sees_created_state_changed_completed(
        gateway: GatewayProcess) -> None:
    subscription_id = subscribe(gateway.port, *JOB_EVENTS)
    printed = ipp_call(gateway.port, request(
        Operation.PRINT_JOB, printer_uri=printer_uri(gateway.port), attrs={
            "job-name": (T.NAME, "followed")}), b"hello from a subscriber\n")
    assert printed.code == Status.OK, printed
    job_group = printed.group(GroupTag.JOB)
    assert job_group is not None
    job_id = value(job_group, "job-id")
    assert isinstance(job_id, int)

    assert_in_order(follow_job(gateway.port, subscription_id, job_id))


@pytest.mark.peers
@pytest.mark.slow
def test_cupsd_printing_to_the_gateway_shows_the_jobs_progress(
        gateway: GatewayProcess, cupsd: Cupsd) -> None:
    """CUPS 2.4's ipp backend follows its job with Get-Job-Attributes (it sends no
    subscription requests); what it printed is seen here by an ippget subscriber on the
    gateway, and in cupsd's log as the backend's own view of the job's states."""
    cupsd.add_everywhere_queue(QUEUE, gateway.printer_uri)
    subscription_id = subscribe(gateway.port, *JOB_EVENTS)
    cups_job = cupsd.submit(QUEUE, CORPUS_DIR / "testpage-1p-vector.pdf")

    seen = follow_job(gateway.port, subscription_id, None)
    completed = cupsd.wait_completed(QUEUE, {cups_job}, COMPLETION_TIMEOUT)

    context = (f"{seen}\ncupsd error_log:\n{log_tail(cupsd.error_log, 60)}\n"
               f"gateway log:\n{log_tail(gateway.log, 30)}")
    assert completed == {cups_job}, context
    assert_in_order(seen)
    # The backend's Get-Job-Attributes answers and page count, as cupsd logs them at
    # LogLevel debug: the job's progress on the gateway, seen from CUPS.
    log = cupsd.error_log.read_text(errors="replace")
    job_lines = "\n".join(line for line in log.splitlines() if f"[Job {cups_job}]" in line)
    assert "job-state enum completed" in job_lines, context
    assert "job-impressions-completed integer 1" in job_lines, context
    assert "PAGE: total 1" in job_lines, context
