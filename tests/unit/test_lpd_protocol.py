"""RFC 1179 dialogue, sans-I/O: exact bytes, the state machine in both orders, queue state."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.errors import Outcome, TransportError
from drivers.transports.lpd_protocol import (
    ControlFile,
    Need,
    Order,
    ReceiveJob,
    Step,
    clean_host,
    file_command,
    job_number,
    parse_queue_state,
    queue_state_command,
    receive_job_command,
)

CONTROL = ControlFile(number=42, host="gateway", user="alice", title="Report.pdf")


def test_control_file_bytes_as_cups_writes_them() -> None:
    assert CONTROL.render() == (
        b"Hgateway\nPalice\nJReport.pdf\nldfA042gateway\nUdfA042gateway\nNReport.pdf\n"
    )
    assert (CONTROL.control_name, CONTROL.data_name) == ("cfA042gateway", "dfA042gateway")


def test_control_file_banner_copies_and_format() -> None:
    control = ControlFile(7, "gw", "bob", "t", format="o", copies=2, banner=True)
    assert control.render() == b"Hgw\nPbob\nJt\nCgw\nLbob\nodfA007gw\nodfA007gw\nUdfA007gw\nNt\n"


@given(user=st.text(), title=st.text(), host=st.text())
def test_control_file_is_always_well_formed(user: str, title: str, host: str) -> None:
    control = ControlFile(job_number(123456), host, user, title)
    lines = control.render().decode("ascii").split("\n")
    assert lines[-1] == "" and all(line and line.isprintable() for line in lines[:-1])
    limits = {"H": 31, "P": 31, "J": 99, "N": 131}
    assert all(len(line) - 1 <= limits.get(line[0], 200) for line in lines[:-1])
    assert control.data_name.startswith("dfA456") and len(control.data_name) <= 6 + 15


def test_host_names_in_file_names() -> None:
    assert clean_host("printer server.example.com") == "printerserver.e"
    assert clean_host("é/\\") == "localhost"


def test_command_lines() -> None:
    assert receive_job_command("lp") == b"\x02lp\n"
    assert file_command(Step.CONTROL_COMMAND, 60, "cfA001h") == b"\x0260 cfA001h\n"
    assert file_command(Step.DATA_COMMAND, 5, "dfA001h") == b"\x035 dfA001h\n"
    assert queue_state_command("lp") == b"\x03lp\n"
    assert queue_state_command("lp", long=True, operands=("alice", "7")) == b"\x04lp alice 7\n"
    with pytest.raises(TransportError) as caught:
        receive_job_command("two words")
    assert caught.value.outcome is Outcome.STOP_PRINTER


def run_dialogue(job: ReceiveJob, data: bytes) -> list[bytes]:
    """Drive the machine with a server that acks everything; return what went out."""
    sent: list[bytes] = []
    while (need := job.need()) is not Need.CLOSE:
        if need is Need.SEND:
            sent.append(job.next_message())
            job.message_sent()
        elif need is Need.ACK:
            job.receive_ack(b"\x00")
        else:
            job.data_sent(len(data))
            sent.append(data)
            job.data_done()
    return sent


def test_control_first_dialogue() -> None:
    job = ReceiveJob("lp", CONTROL, Order.CONTROL_FIRST, 5)
    body = CONTROL.render()
    assert run_dialogue(job, b"hello") == [
        b"\x02lp\n", b"\x02%d cfA042gateway\n" % len(body), body + b"\x00",
        b"\x035 dfA042gateway\n", b"hello", b"\x00",
    ]
    assert job.everything_sent and job.control_delivered


def test_data_first_dialogue() -> None:
    job = ReceiveJob("lp", CONTROL, Order.DATA_FIRST, 5)
    sent = run_dialogue(job, b"hello")
    assert sent[1:4] == [b"\x035 dfA042gateway\n", b"hello", b"\x00"]
    assert sent[4].startswith(b"\x02") and sent[5].endswith(b"\x00")


def test_streaming_announces_zero_and_ends_without_nul() -> None:
    job = ReceiveJob("lp", CONTROL, Order.DATA_FIRST, None)  # forced to control first
    sent = run_dialogue(job, b"stream")
    assert sent[-2:] == [b"\x030 dfA042gateway\n", b"stream"]
    assert job.everything_sent


def test_everything_sent_only_after_the_last_byte() -> None:
    job = ReceiveJob("lp", CONTROL, Order.CONTROL_FIRST, 3)
    while job.need() is not Need.DATA:
        if job.need() is Need.SEND:
            job.message_sent()
        else:
            job.receive_ack(b"\x00")
    job.data_sent(3)
    job.data_done()
    assert not job.everything_sent and job.need() is Need.SEND
    job.message_sent()
    assert job.everything_sent and job.awaiting is Step.DATA_FILE


@pytest.mark.parametrize(
    ("acks", "reply", "reason"),
    [(0, b"\x01", "other"), (1, b"\x02", "spool-area-full"), (2, b"\x01", "other"),
     (1, b"", "offline")],
)
def test_refusals(acks: int, reply: bytes, reason: str) -> None:
    job = ReceiveJob("lp", CONTROL, Order.CONTROL_FIRST, 3)
    for _ in range(acks):
        job.message_sent()
        job.receive_ack(b"\x00")
    job.message_sent()
    with pytest.raises(TransportError) as caught:
        job.receive_ack(reply)
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, reason)


def test_abort_only_where_the_server_reads_a_subcommand() -> None:
    job = ReceiveJob("lp", CONTROL, Order.CONTROL_FIRST, 3)
    assert not job.can_abort
    job.message_sent()  # receive-job
    job.receive_ack(b"\x00")
    assert job.can_abort  # the control-file command is next
    job.message_sent()
    assert not job.can_abort  # after its ack the server reads the control file itself
    job.receive_ack(b"\x00")
    job.message_sent()
    assert job.can_abort  # the control file is out; the server reads a subcommand next
    job.receive_ack(b"\x00")
    job.message_sent()
    job.receive_ack(b"\x00")
    assert job.need() is Need.DATA and not job.can_abort


def test_length_mismatch_holds_the_job() -> None:
    job = ReceiveJob("lp", CONTROL, Order.DATA_FIRST, 3)
    job.message_sent()
    job.receive_ack(b"\x00")
    job.message_sent()
    job.receive_ack(b"\x00")
    with pytest.raises(TransportError) as caught:
        job.data_sent(4)
    assert caught.value.outcome is Outcome.HOLD
    job.data_sent(2)
    with pytest.raises(TransportError):
        job.data_done()


BSD_SHORT = (
    "Warning: gwtest is down: printing disabled\n"
    "Rank   Owner      Job  Files                                 Total Size\n"
    "1st    bob        5    untitled                              3 bytes\n"
    "2nd    carol      6    report.pdf                            1024 bytes\n"
)
BSD_LONG = (
    "printing disabled\n\nbob: 1st                                 [job 005localhost]\n"
    "\tuntitled                                3 bytes -- Sun Nov 22 05:04:50 2026\n"
)
LPRNG = (
    "Printer: lp@server  (printing disabled)\n Queue: 1 printable job\n"
    " Server: no server active\n Status: paper out at 10:22:01\n"
    " Rank   Owner/ID                   Pr/Class Job Files                 Size Time\n"
    "1      alice@gw+322                  A    322 report                 2048 10:21:58\n"
)


@pytest.mark.parametrize(
    ("text", "jobs", "reasons", "message"),
    [
        ("no entries\n", 0, set(), "Remote queue empty."),
        (BSD_SHORT, 2, {"offline-report"},
         "Warning: gwtest is down: printing disabled; 2 jobs in the remote queue"),
        (BSD_LONG, 1, {"offline-report"}, "printing disabled; 1 job in the remote queue"),
        ("Warning: lp queue is turned off\nno entries\n", 0, {"other-warning"},
         "Warning: lp queue is turned off"),
        ("vm: lpd: nosuch: unknown printer\n", 0, {"other-error"},
         "vm: lpd: nosuch: unknown printer"),
        ("", 0, set(), "No answer."),
    ],
)
def test_queue_state(text: str, jobs: int, reasons: set[str], message: str) -> None:
    state = parse_queue_state(text)
    assert (state.jobs, set(state.reasons), state.message) == (jobs, reasons, message)


def test_queue_state_of_other_servers_keeps_their_words() -> None:
    state = parse_queue_state(LPRNG)
    assert {"offline-report", "media-empty-report"} <= state.reasons
    assert state.message.startswith("Printer: lp@server")


@given(st.text())
def test_queue_state_never_fails(text: str) -> None:
    state = parse_queue_state(text)
    assert state.jobs >= 0 and len(state.message) <= 200


@pytest.mark.parametrize(
    ("text", "unknown"),
    [("vm: lpd: nosuch: unknown printer\n", True),  # BSD lpd
     ("Printer 'nosuch@gw' - ERROR: spool queue for 'nosuch' does not exist on server gw\n",
      True),  # LPRng
     ("Unknown printer\n", True),  # cups-lpd
     ("no entries\n", False), (BSD_SHORT, False), (LPRNG, False), ("", False)],
)
def test_queue_state_tells_an_unknown_queue(text: str, unknown: bool) -> None:
    state = parse_queue_state(text)
    assert state.unknown_queue is unknown
    assert ("other-error" in state.reasons) is unknown
