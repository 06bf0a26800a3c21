"""PJL, sans-I/O: the job wrapper bytes, reply parsing at any split, status code mapping."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers import pjl

STATUS = b'@PJL INFO STATUS\r\nCODE=40021\r\nDISPLAY="12 PRINTER OPEN"\r\nONLINE=FALSE\r\n\x0c'
USTATUS_JOB = b'@PJL USTATUS JOB\r\nEND\r\nNAME="job-42"\r\nPAGES=3\r\n\x0c'


def test_job_wrapper_bytes() -> None:
    assert pjl.job_header('a "quoted"\nname', user="bob") == (
        b'\x1b%-12345X@PJL\r\n@PJL JOB NAME="a _quoted__name"\r\n@PJL SET USERNAME="bob"\r\n'
    )
    assert pjl.job_footer("x") == b'\x1b%-12345X@PJL EOJ NAME="x"\r\n\x1b%-12345X'
    assert pjl.job_header("j", ask_status=True).endswith(
        b"@PJL USTATUS DEVICE=ON\r\n@PJL USTATUS JOB=ON\r\n@PJL INFO STATUS\r\n"
    )
    assert len(pjl.quote("x" * 500)) == 80


def test_language_wrapper_nests_in_the_job_wrapper() -> None:
    """A driver's ENTER LANGUAGE section (config `pjl = true`) inside the AppSocket transport's
    JOB/EOJ (`pjl=on`): every UEL starts a PJL line or ends the job, JOB comes first, the
    language's data stays whole and EOJ comes after the language's closing UEL."""
    data = b"\x1bE...PCL...\x1bE"
    language = pjl.language_header("PCL") + data + pjl.language_footer()
    assert language == b"\x1b%-12345X@PJL\r\n@PJL ENTER LANGUAGE=PCL\r\n" + data + pjl.UEL
    stream = pjl.job_header("j", user="u") + language + pjl.job_footer("j")
    sections = stream.split(pjl.UEL)
    assert sections[0] == b"" and sections[-1] == b""
    assert sections[1].startswith(b'@PJL\r\n@PJL JOB NAME="j"')
    assert sections[2] == b"@PJL\r\n@PJL ENTER LANGUAGE=PCL\r\n" + data
    assert sections[3] == b""  # the language's closing UEL, then the transport's
    assert sections[4] == b'@PJL EOJ NAME="j"\r\n'
    assert all(section.startswith(b"@PJL") for section in sections[1:-1] if section)


def test_reply_blocks() -> None:
    parser = pjl.PjlReplyParser()
    messages = parser.feed(b"%%[ PrinterError: out of paper ]%%\x0c" + STATUS + USTATUS_JOB)
    assert [m.header for m in messages] == ["INFO STATUS", "USTATUS JOB"]
    assert messages[0].fields == {"CODE": "40021", "DISPLAY": "12 PRINTER OPEN", "ONLINE": "FALSE"}
    assert messages[1].lines[0] == "END" and messages[1].fields["PAGES"] == "3"


@given(st.lists(st.integers(min_value=0, max_value=len(STATUS + USTATUS_JOB)), max_size=6))
def test_reply_parsing_does_not_depend_on_splits(cuts: list[int]) -> None:
    stream = b"junk" + STATUS + USTATUS_JOB
    points = sorted({0, len(stream), *cuts})
    parser = pjl.PjlReplyParser()
    messages = []
    for start, end in itertools.pairwise(points):
        messages += parser.feed(stream[start:end])
    assert [m.header for m in messages] == ["INFO STATUS", "USTATUS JOB"]


@given(st.binary(max_size=4000))
def test_arbitrary_bytes_never_fail(data: bytes) -> None:
    parser = pjl.PjlReplyParser()
    for message in parser.feed(data):
        pjl.status_from_message(message)


def test_buffer_stays_bounded() -> None:
    parser = pjl.PjlReplyParser()
    for _ in range(20):
        parser.feed(b"x" * 10_000)
    assert parser.feed(STATUS)[0].fields["CODE"] == "40021"


def test_status_from_message() -> None:
    (message,) = pjl.PjlReplyParser().feed(STATUS)
    assert pjl.status_from_message(message) == pjl.PjlStatus(
        40021, "12 PRINTER OPEN", False, frozenset({"door-open-error", "offline-report"})
    )
    (job,) = pjl.PjlReplyParser().feed(USTATUS_JOB)
    assert pjl.status_from_message(job) is None


@pytest.mark.parametrize(
    ("code", "reasons"),
    [(10001, set()), (10023, set()), (10002, {"offline-report"}), (10006, {"toner-low-report"}),
     (11204, {"media-empty-report"}), (15001, {"output-area-full-error"}),
     (25001, set()), (35078, set()), (40021, {"door-open-error"}),
     (40022, {"media-jam-error"}), (41302, {"media-empty-error", "media-needed-error"}),
     (42103, {"media-jam-error"}), (44000, {"media-jam-error"}), (40099, {"other-error"}),
     (50003, {"other-error"}), (99999, {"other-report"})],
)
def test_code_mapping(code: int, reasons: set[str]) -> None:
    assert pjl.reasons_for_code(code) == reasons
