"""The dashboard's pure parts: what it shows of jobs and printers (privacy, redaction,
errors in words), its session tokens (the CSRF proof) and its test page."""

from __future__ import annotations

import pytest

from drivers import Supply
from gateway.core.events import (
    JobCompleted,
    JobProgress,
    JobSnapshot,
    PrinterConfigChanged,
    PrinterSnapshot,
    PrinterStateChanged,
)
from gateway.dashboard.session import TOKEN_SECONDS, Sessions
from gateway.dashboard.testpage import test_page as make_test_page
from gateway.dashboard.view import event_message, job_error, job_view, printer_view, redact_uri
from gateway.privacy import Viewer
from ippwire.enums import JobState, PrinterState

ALICE = Viewer("alice", authenticated=True)
ADMIN = Viewer("root", is_admin=True, authenticated=True)


def job(state: JobState = JobState.PROCESSING, reasons: tuple[str, ...] = ("job-printing",),
        message: str = "", *, user: str = "alice", logged_in: bool = True) -> JobSnapshot:
    return JobSnapshot(7, "office", "salaries.pdf", user, state, reasons, message,
                       "application/pdf", 3, 2, 4096, 1, "192.0.2.4", logged_in, 10000)


def printer(state: PrinterState = PrinterState.IDLE) -> PrinterSnapshot:
    return PrinterSnapshot("office", "urn:uuid:x", state, ("none",), "Ready.", 0.0, 0.0,
                           False, 0)


@pytest.mark.parametrize(("uri", "shown"), [
    ("lpd://printer.lan/queue", "lpd://printer.lan/queue"),
    ("lpd://bob:secret@printer.lan/queue", "lpd://bob:***@printer.lan/queue"),
    ("ipps://u:p%40ss@[2001:db8::1]:631/ipp/print", "ipps://u:***@[2001:db8::1]:631/ipp/print"),
    ("socket://10.0.0.5:9100", "socket://10.0.0.5:9100"),
    ("serial:/dev/ttyUSB0?baud=9600", "serial:/dev/ttyUSB0?baud=9600"),
])
def test_a_device_uri_is_shown_without_its_password(uri: str, shown: str) -> None:
    assert redact_uri(uri) == shown
    assert "secret" not in redact_uri(uri) and "p%40ss" not in redact_uri(uri)


def test_a_job_shows_its_progress_and_private_values_only_to_who_may_see_them() -> None:
    mine = job_view(job(), ALICE)
    assert (mine["pages"], mine["bytes"], mine["size"], mine["state"]) == (3, 4096, 10000,
                                                                           "printing")
    assert mine["name"] == "salaries.pdf" and mine["owner"] == "alice"
    assert job_view(job(), ADMIN)["name"] == "salaries.pdf"
    for other in (Viewer("bob", authenticated=True), Viewer("alice"), Viewer("anonymous"),
                  Viewer("root", is_admin=True)):  # a bare name, or admin by being local
        shown = job_view(job(), other)
        assert not {"name", "owner", "origin"} & set(shown)
        assert shown["pages"] == 3  # the counters stay visible, as over IPP


def test_a_failed_job_says_why_in_words() -> None:
    failed = job(JobState.ABORTED, ("document-format-error",), "Ghostscript: no pages")
    assert job_error(failed) == ("the document could not be read or converted; "
                                 "Ghostscript: no pages")
    assert job_view(failed, ALICE)["state"] == "failed"
    assert job_error(job(JobState.CANCELED, ("job-canceled-by-user",), "Canceled.")) == \
        "canceled by its owner"
    assert job_error(job()) == ""


def test_events_become_page_updates() -> None:
    update = event_message(JobProgress(5, 0.0, job()), Viewer("anonymous"))
    assert update is not None and update["type"] == "job" and update["revision"] == 5
    assert "name" not in update["job"]
    done = event_message(JobCompleted(6, 0.0, job(JobState.COMPLETED, ("none",)),
                                      JobState.PROCESSING), ALICE)
    assert done is not None and done["job"]["terminal"] and done["job"]["reasons"] == []
    state = event_message(PrinterStateChanged(7, 0.0, printer(PrinterState.STOPPED)), ALICE)
    assert state is not None and state["printer"]["state"] == "stopped"
    assert event_message(PrinterConfigChanged(8, 0.0, printer()), ALICE) == {
        "type": "resync", "revision": 8, "reason": "printer-config"}


def test_a_session_token_proves_its_user_and_nothing_else() -> None:
    now = [1000.0]
    sessions = Sessions(key=b"k" * 32, clock=lambda: now[0])
    token = sessions.issue(Viewer("alice", is_admin=True, authenticated=True,
                                  groups=frozenset({"staff"})))
    assert sessions.viewer(token) == Viewer("alice", is_admin=True, authenticated=True,
                                            groups=frozenset({"staff"}))
    assert sessions.matches(token, ALICE)
    assert not sessions.matches(token, Viewer("bob", authenticated=True))
    assert not sessions.matches(token, Viewer("alice"))  # not logged in now
    assert not sessions.matches(None, ALICE)
    body, mac = token.split(".")
    forged = body.replace(body[5], "A" if body[5] != "A" else "B") + "." + mac
    for bad in (forged, body, "x.y", "", "." * 3, token + "x", "a" * 5000):
        assert sessions.viewer(bad) is None
    assert Sessions(key=b"o" * 32).viewer(token) is None  # another process's key
    now[0] += TOKEN_SECONDS + 1
    assert sessions.viewer(token) is None  # expired


def test_the_test_page_is_made_in_a_format_the_printer_takes() -> None:
    page = make_test_page("office (2)", "Laser\\Jet", ("application/postscript", "text/plain"),
                          now=0)
    assert page is not None and page[0] == "application/postscript"
    assert page[1].startswith(b"%!PS-Adobe-3.0") and b"(Test page: office \\(2\\))" in page[1]
    assert b"(Laser\\\\Jet)" in page[1] and page[1].rstrip().endswith(b"%%EOF")
    text = make_test_page("lp", "Line printer", ("text/plain",), now=0)
    assert text is not None and text[0] == "text/plain" and b"Test page: lp" in text[1]
    assert make_test_page("raw", "", ("application/octet-stream",)) is None


def test_a_printer_shows_what_its_device_says() -> None:
    lpd = PrinterSnapshot("office", "urn:uuid:x", PrinterState.IDLE, ("none",), "Ready.", 0.0,
                          0.0, False, 0, device_status="lp is ready and printing")
    shown = printer_view(lpd, device_uri="lpd://u:pw@host/lp", driver="pcl5",
                         make_and_model="Laser", location="", info="", path="/ipp/print/office")
    assert shown["device_status"] == "lp is ready and printing"
    assert shown["device"] == "lpd://u:***@host/lp" and shown["reasons"] == []
    update = event_message(PrinterStateChanged(9, 0.0, lpd), ALICE)
    assert update is not None and update["printer"]["device_status"] == lpd.device_status


def test_a_printer_shows_its_supplies_in_words() -> None:
    laser = PrinterSnapshot("office", "urn:uuid:x", PrinterState.IDLE, ("none",), "Ready.", 0.0,
                            0.0, False, 0, supplies=(
                                Supply("Black Toner", "toner", "#000000", 8, low=10),
                                Supply("", "waste-toner", "none", -3),
                                Supply("Drum", "opc", "none", -2)))
    shown = printer_view(laser, device_uri="ipp://host/ipp/print", driver="postscript",
                         make_and_model="Laser", location="", info="", path="/ipp/print/office")
    assert shown["supplies"] == ["Black Toner: 8% (low)", "waste-toner: some left",
                                 "Drum: level unknown"]
    update = event_message(PrinterStateChanged(9, 0.0, laser), ALICE)
    assert update is not None and update["printer"]["supplies"] == shown["supplies"]
