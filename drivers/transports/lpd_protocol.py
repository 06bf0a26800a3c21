"""RFC 1179 (LPD) client dialogue, sans-I/O: commands, control files, acks and queue state.

`ReceiveJob` is the receive-job dialogue as a small state machine. The I/O shell asks it what
is needed next (`Need.SEND` a message, `Need.ACK` one byte to check, `Need.DATA` the data file
body, `Need.CLOSE`), so the order of files, the acks and the end-of-job rule ("all sent, only
the last ack missing" counts as printed, as in CUPS) live here, testable over plain bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

from drivers.errors import Outcome, TransportError

DEFAULT_PORT = 515
FORMATS = "cdfglnoprtv"  # print-command letters RFC 1179 defines for a data file
ABORT_JOB = b"\x01\n"
END_OF_FILE = b"\x00"
ACK_OK = 0
ACK_NO_SPACE = 2  # BSD lpd's answer to a file that does not fit (and to a length of 0)
STREAM_LENGTH = 0  # "until the connection closes" (LPRng); used when the length is unknown

_HOST_IN_NAME = 15  # CUPS's limit for the host part of cfA/dfA names
_LIMITS = {"H": 31, "P": 31, "J": 99, "C": 31, "L": 31, "N": 131}


class Order(Enum):
    CONTROL_FIRST = "control,data"
    DATA_FIRST = "data,control"


class Step(Enum):
    RECEIVE_JOB = "receive-job command"
    CONTROL_COMMAND = "control-file command"
    CONTROL_FILE = "control file"
    DATA_COMMAND = "data-file command"
    DATA_FILE = "data file"


class Need(Enum):
    SEND = auto()  # send `ReceiveJob.next_message()`, then call `message_sent()`
    ACK = auto()  # read one byte and pass it to `ReceiveJob.receive_ack()`
    DATA = auto()  # stream the data file body (`data_sent`), then call `data_done()`
    CLOSE = auto()  # the dialogue is over; close the connection


def job_number(job_id: int) -> int:
    """The 3-digit LPD job number: the only handle the server knows the job by."""
    return job_id % 1000


def clean_host(host: str) -> str:
    """A host name fit for cfA/dfA file names: letters, digits, '-' and '.', 15 at most."""
    cleaned = re.sub(r"[^A-Za-z0-9.-]", "", host)[:_HOST_IN_NAME]
    return cleaned or "localhost"


def clean_field(text: str, limit: int) -> str:
    """A control-file operand: printable, single line, within the RFC's length limit."""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return cleaned.encode("ascii", "replace").decode("ascii")[:limit]


def check_queue_name(queue: str) -> str:
    if not queue or any(ch.isspace() or not ch.isprintable() for ch in queue):
        raise TransportError(
            f"LPD queue name {queue!r} is empty or has spaces/control characters",
            Outcome.STOP_PRINTER,
            reason="other",
        )
    return queue


@dataclass(frozen=True)
class ControlFile:
    """The control file of one job with one data file (RFC 1179 section 7)."""

    number: int
    host: str
    user: str
    title: str
    file_name: str = ""
    format: str = "l"
    copies: int = 1
    banner: bool = False

    @property
    def control_name(self) -> str:
        return f"cfA{self.number:03d}{clean_host(self.host)}"

    @property
    def data_name(self) -> str:
        return f"dfA{self.number:03d}{clean_host(self.host)}"

    def render(self) -> bytes:
        user = clean_field(self.user, _LIMITS["P"]) or "anonymous"
        title = clean_field(self.title, _LIMITS["J"]) or "untitled"
        lines = [f"H{clean_field(self.host, _LIMITS['H']) or 'localhost'}", f"P{user}"]
        lines.append(f"J{title}")
        if self.banner:
            lines += [f"C{clean_field(self.host, _LIMITS['C'])}", f"L{user[: _LIMITS['L']]}"]
        lines += [f"{self.format}{self.data_name}"] * max(1, self.copies)
        lines.append(f"U{self.data_name}")
        lines.append(f"N{clean_field(self.file_name or self.title, _LIMITS['N']) or 'untitled'}")
        return "".join(line + "\n" for line in lines).encode("ascii")


def receive_job_command(queue: str) -> bytes:
    return b"\x02" + check_queue_name(queue).encode("ascii", "replace") + b"\n"


def file_command(step: Step, length: int, name: str) -> bytes:
    code = b"\x02" if step is Step.CONTROL_COMMAND else b"\x03"
    return code + f"{length} {name}\n".encode("ascii")


def queue_state_command(queue: str, *, long: bool = False, operands: tuple[str, ...] = ()) -> bytes:
    code = b"\x04" if long else b"\x03"
    words = " ".join((check_queue_name(queue), *operands))
    return code + words.encode("ascii", "replace") + b"\n"


def refusal(step: Step, queue: str, reply: bytes) -> TransportError:
    """What a missing or non-zero acknowledgment means for the job."""
    if not reply:
        return TransportError(
            f"LPD server closed the connection during the {step.value} (queue {queue!r})",
            Outcome.RETRY,
            reason="offline",
        )
    code = reply[0]
    if code == ACK_NO_SPACE and step in (Step.CONTROL_COMMAND, Step.DATA_COMMAND):
        return TransportError(
            f"LPD server has no room for the {step.value[:-8]} (queue {queue!r}, ack 2)",
            Outcome.RETRY,
            reason="spool-area-full",
        )
    return TransportError(
        f"LPD server refused the {step.value} for queue {queue!r} (ack {code:#04x}); the queue "
        "may be unknown, disabled or full",
        Outcome.RETRY,
        reason="other",
    )


class ReceiveJob:
    """One receive-job dialogue. `data_length` None streams (length 0, no trailing ack)."""

    def __init__(
        self, queue: str, control: ControlFile, order: Order, data_length: int | None
    ) -> None:
        self.queue = check_queue_name(queue)
        self.control = control
        self.data_length = data_length
        if data_length is None:
            order = Order.CONTROL_FIRST  # the control file cannot follow an unbounded data file
        files = [Step.CONTROL_COMMAND, Step.DATA_COMMAND]
        self._files = files if order is Order.CONTROL_FIRST else files[::-1]
        self._outbox: list[tuple[bytes, Step]] = [(receive_job_command(queue), Step.RECEIVE_JOB)]
        self._awaiting: Step | None = None
        self._data_sent = 0
        self.in_data = False
        self.started = False  # the server accepted the receive-job command
        self.control_delivered = False  # the server acknowledged the control file
        # The server holds every byte of both files; at most its last acknowledgment is missing.
        self.everything_sent = False

    @property
    def awaiting(self) -> Step | None:
        return self._awaiting

    @property
    def data_bytes_sent(self) -> int:
        return self._data_sent

    def need(self) -> Need:
        if self._awaiting is not None:
            return Need.ACK
        if self._outbox:
            return Need.SEND
        return Need.DATA if self.in_data else Need.CLOSE

    @property
    def can_abort(self) -> bool:
        """Whether the server's next read is a subcommand, so the abort one can go now."""
        if not self.started or self.in_data:
            return False
        if self._awaiting is not None:
            return self._awaiting in (Step.CONTROL_FILE, Step.DATA_FILE)
        return not self._outbox or self._outbox[0][1] in (Step.CONTROL_COMMAND, Step.DATA_COMMAND)

    def next_message(self) -> bytes:
        return self._outbox[0][0]

    def message_sent(self) -> None:
        """The bytes of `next_message()` went out in full; now their acknowledgment is due."""
        _, self._awaiting = self._outbox.pop(0)
        if self._awaiting in (Step.CONTROL_FILE, Step.DATA_FILE) and not self._files:
            self.everything_sent = True

    def receive_ack(self, reply: bytes) -> None:
        step = self._awaiting
        if step is None:
            raise RuntimeError("no acknowledgment is due")
        if not reply or reply[0] != ACK_OK:
            raise refusal(step, self.queue, reply[:1])
        self._awaiting = None
        self.started = True
        self.control_delivered |= step is Step.CONTROL_FILE
        if step is Step.CONTROL_COMMAND:
            self._outbox.append((self.control.render() + END_OF_FILE, Step.CONTROL_FILE))
        elif step is Step.DATA_COMMAND:
            self.in_data = True
        elif self._files:
            self._start_file(self._files.pop(0))

    def _start_file(self, step: Step) -> None:
        if step is Step.CONTROL_COMMAND:
            length, name = len(self.control.render()), self.control.control_name
        else:
            length = STREAM_LENGTH if self.data_length is None else self.data_length
            name = self.control.data_name
        self._outbox.append((file_command(step, length, name), step))

    def data_sent(self, count: int) -> None:
        if not self.in_data:
            raise RuntimeError("the data file is not open")
        if self.data_length is not None and self._data_sent + count > self.data_length:
            raise self._length_error(self._data_sent + count)
        self._data_sent += count

    def data_done(self) -> None:
        """The data file body is complete: queue its end (or, streaming, let it close)."""
        if not self.in_data:
            raise RuntimeError("the data file is not open")
        if self.data_length is not None and self._data_sent != self.data_length:
            raise self._length_error(self._data_sent)
        self.in_data = False
        if self.data_length is None:
            self.everything_sent = not self._files  # streaming: closing ends the data file
        else:
            self._outbox.append((END_OF_FILE, Step.DATA_FILE))

    def _length_error(self, count: int) -> TransportError:
        return TransportError(
            f"the job carried {count} bytes but announced {self.data_length}",
            Outcome.HOLD,
            reason="other",
        )


# -- queue state ------------------------------------------------------------------------------

_JOB_LINE = re.compile(r"^\s*(active|\d+(st|nd|rd|th))\s+\S+\s+\d+", re.IGNORECASE)
_LONG_JOB_LINE = re.compile(r"^\S+:\s*(active|\d+(st|nd|rd|th))\s+\[job", re.IGNORECASE)
# BSD lpd: "host: lpd: q: unknown printer"; LPRng: "spool queue for 'q' does not exist";
# CUPS's cups-lpd: "Unknown printer", "The printer or class does not exist".
_UNKNOWN_QUEUE = re.compile(
    r"unknown (printer|queue)|no such (printer|queue)|(queue|printer|class) .*does not exist", re.I)
_PHRASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (_UNKNOWN_QUEUE, "other-error"),
    (re.compile(r"queue is turned off|queu(e)?ing (is )?disabled", re.I), "other-warning"),
    (re.compile(r"\bis down\b|printing disabled|offline", re.I), "offline-report"),
    (re.compile(r"paper (out|empty)|out of paper", re.I), "media-empty-report"),
    (re.compile(r"paper jam|jammed", re.I), "media-jam-report"),
    (re.compile(r"(door|cover) open", re.I), "door-open-report"),
)
_NOISE = re.compile(r"^(rank\s+owner|warning: no daemon present)", re.IGNORECASE)
_MAX_MESSAGE = 200


@dataclass(frozen=True)
class QueueState:
    """What a send-queue-state reply says, as far as free text can be trusted."""

    text: str
    jobs: int
    reasons: frozenset[str]
    message: str
    unknown_queue: bool = False  # the server says it has no such queue: nothing will print


def parse_queue_state(text: str) -> QueueState:
    """Count the job lines, pick out well-known phrases, keep the rest as a message."""
    lines = [line.rstrip() for line in text.replace("\r", "").split("\n") if line.strip()]
    jobs = sum(1 for line in lines if _JOB_LINE.match(line) or _LONG_JOB_LINE.match(line))
    reasons = {reason for pattern, reason in _PHRASES if any(pattern.search(ln) for ln in lines)}
    notes = [
        line.strip()
        for line in lines
        if not _NOISE.match(line.strip()) and not _JOB_LINE.match(line)
        and not _LONG_JOB_LINE.match(line) and not line.startswith(("\t", " "))
    ]
    summary = [note for note in notes if note.lower() != "no entries"]
    if jobs:
        summary.append(f"{jobs} job{'s' if jobs != 1 else ''} in the remote queue")
    message = "; ".join(summary) or ("Remote queue empty." if lines else "No answer.")
    unknown = any(_UNKNOWN_QUEUE.search(line) for line in lines)
    return QueueState("\n".join(lines), jobs, frozenset(reasons), message[:_MAX_MESSAGE],
                      unknown_queue=unknown)
