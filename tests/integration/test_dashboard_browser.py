"""The web dashboard in a real browser (issue 13): Debian's headless `chromium`, driven by
Playwright's Python package with the system executable, against a gateway process with
logins on, over HTTPS on its own port (and plain HTTP where that is the point).

What is proved here:
- a job sent over IPP appears live, without a reload, and its bytes sent move on the page as
  the printer reads;
- cancel, hold and release a job, pause and resume a printer and a test page, from the page,
  with the page changing in place (no navigation: a window variable survives);
- a lost feed reconnects and catches up; a reload of the gateway keeps it;
- screenshots at phone (360x740) and desktop (1280x800) width, kept as test artifacts, with
  no sideways scrolling and thumb-size buttons at 360 px;
- actions without a login, without the CSRF token or with another user's token are refused,
  and the job or printer does not change;
- a user who may not see a job's owner and name sees "hidden", and a refusal is shown in
  words;
- a printer added through the form (device URI built from its parts, probed, a refusal
  shown next to the form) appears live after the gateway's reload and prints a job; it is
  edited and removed from its card (a screenshot of the form at 360 px is kept too). That
  test has a gateway of its own: its reloads must not pull the module's gateway from under
  the others.

The printer reads nothing until the test lets it (`StallingPrinter`), so a job stays printing,
part sent, for as long as a test needs it.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.passwords import PasswordFile
from ippwire.enums import Operation, ValueTag
from ippwire.writer import AttributeSpec, request
from tests.peers import CORPUS_DIR, REPO_ROOT
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK
from tests.support.ipp_client import ipp_to, job_id_of, job_status
from tests.support.ipps_client import send

try:
    from playwright import sync_api
except ImportError:  # the browser tests skip; the API test below needs no browser
    sync_api = None

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ADMIN = ("admin", "admin-pw")
BOB = ("bob", "bob-pw")  # an account, not an administrator
PRINTER = "slow"
ARTIFACTS = REPO_ROOT / "build" / "test-artifacts"
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
BIG_JOB = 16 << 20  # more than the loopback socket buffers hold: the job stays part-sent
TIMEOUT_MS = 15_000  # for anything the page should show
TOUCH_PX = 44  # WCAG 2.5.5 target size
RELOAD_MS = 30_000  # a change saved by the form, until the reloaded gateway shows it
PRINT_MS = 60_000  # a PDF through Ghostscript to PostScript
PDF = CORPUS_DIR / "testpage-1p-vector.pdf"
# IPP job-state values
HELD, PROCESSING, CANCELED = 4, 5, 7
PENDING = 3


class StallingPrinter:
    """A port-9100 printer on loopback that accepts every job and reads only what the test
    lets it (`read`), as a printer out of paper: the socket transport sends until the
    socket buffers are full and the job stays "printing" with its bytes part sent."""

    def __init__(self) -> None:
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive buffer (set before listen, so accepted sockets inherit it) keeps
        # what the kernel takes on the printer's behalf well under BIG_JOB.
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 * 1024)
        self.server.bind((LOOPBACK, 0))
        self.server.listen(8)
        self.uri = f"socket://{LOOPBACK}:{self.server.getsockname()[1]}"
        self._connections: list[socket.socket] = []  # open ones, oldest first
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return  # closed by stop()
            with self._arrived:
                self._connections.append(connection)
                self._arrived.notify_all()

    def read(self, count: int, timeout: float = 10.0) -> int:
        """Read up to `count` bytes of the job being sent (the newest connection that has
        not ended: an earlier job's was closed by its cancel); how many were read."""
        read = 0
        while read < count:
            with self._arrived:
                assert self._arrived.wait_for(lambda: bool(self._connections), timeout), \
                    "the gateway never connected to the printer"
                connection = self._connections[-1]
            connection.settimeout(timeout)
            chunk = connection.recv(min(65536, count - read))
            if chunk:
                read += len(chunk)
            elif read:
                break  # the job ended under way
            else:
                with self._arrived:  # an ended job's: wait for the next connection
                    self._connections.remove(connection)
                connection.close()
        return read

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.server.shutdown(socket.SHUT_RDWR)
        self.server.close()
        self._thread.join(5)
        with self._arrived:
            for connection in self._connections:
                connection.close()
            self._connections.clear()


@pytest.fixture(scope="module")
def printer() -> Iterator[StallingPrinter]:
    device = StallingPrinter()
    try:
        yield device
    finally:
        device.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, printer: StallingPrinter
            ) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("dashboard")
    passwords = PasswordFile(workdir / "spool" / "passwd")
    passwords.set(*ADMIN, admin=True)
    passwords.set(*BOB, admin=False)
    printers = [PrinterTable.on_device(PRINTER, printer.uri),
                PrinterTable("archive", extra={"location": "Back office",
                                               "info": "Archive copies"})]
    with start_configured_gateway(workdir, printers, log_level="info",
                                  extra_toml="[auth]\nenabled = true\n") as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if sync_api is None:
        pytest.skip("needs Playwright's Python package: pip install -e '.[test]' (no browser "
                    "download: the tests drive Debian's chromium)")
    if not CHROMIUM.exists():
        pytest.skip(f"needs Debian's chromium at {CHROMIUM}: apt-get install chromium "
                    "(scripts/install-peers.sh)")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def cleanup(gateway: GatewayProcess) -> Iterator[list[int]]:
    """Job ids a test made: canceled at its end (as the administrator, over IPPS), and the
    printer resumed, so a job left printing never holds up the next test."""
    jobs: list[int] = []
    yield jobs
    for job_id in jobs:
        admin_ipp(gateway, Operation.CANCEL_JOB, {"job-id": (ValueTag.INTEGER, job_id)})
    admin_ipp(gateway, Operation.RESUME_PRINTER, {})


# -- helpers -------------------------------------------------------------------------------------

def admin_ipp(gateway: GatewayProcess, operation: Operation, attrs: AttributeSpec) -> None:
    send(gateway.port, f"/ipp/print/{PRINTER}",
         request(operation, printer_uri=f"ipps://{LOOPBACK}:{gateway.port}/ipp/print/{PRINTER}",
                 user=ADMIN[0], attrs=attrs), credentials=ADMIN)


def submit(gateway: GatewayProcess, jobs: list[int], size: int, *, name: str,
           held: bool = False) -> int:
    """Print-Job over plain IPP as the unauthenticated user "test"; the job id."""
    attrs: AttributeSpec = {
        "job-name": (ValueTag.NAME, name),
        "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")}
    held_attrs: AttributeSpec = {"job-hold-until": (ValueTag.KEYWORD, "indefinite")}
    message = request(Operation.PRINT_JOB, user="test", attrs=attrs,
                      job_attrs=held_attrs if held else None,
                      printer_uri=f"ipp://{LOOPBACK}:{gateway.port}/ipp/print/{PRINTER}")
    document = (b"dashboard test page\n" * (size // 20 + 1))[:size]
    reply = ipp_to(gateway.port, PRINTER, message, document)
    assert reply.code == 0, reply
    job_id = job_id_of(reply)
    jobs.append(job_id)
    return job_id


def state_of(gateway: GatewayProcess, job_id: int) -> int:
    return job_status(gateway.port, job_id, PRINTER).state


class FeedSwitch:
    """The page's WebSocket to /api/live through Playwright's route: `drop` closes it on both
    sides, and while `allowed` is False every new attempt is refused, as a gateway that is
    down would; the page's own reconnect logic does the rest."""

    def __init__(self) -> None:
        self.allowed = True
        self.current: Any = None
        self.refused = 0

    def __call__(self, route: Any) -> None:
        if not self.allowed:
            self.refused += 1
            route.close(code=1013, reason="try again later")
            return
        self.current = (route, route.connect_to_server())

    def drop(self) -> None:
        assert self.current is not None, "the page never opened its feed"
        page_side, server_side = self.current
        self.current = None
        server_side.close(code=1001, reason="gone")
        page_side.close(code=1001, reason="gone")


def open_page(browser: Any, gateway: GatewayProcess, *, credentials: tuple[str, str] | None,
              tls: bool = True, viewport: dict[str, int] = DESKTOP,
              route_feed: FeedSwitch | None = None) -> Any:
    """A fresh context and page on the dashboard, its feed live; the page's main-frame
    navigations from then on are counted in `page.navigations`."""
    options: dict[str, Any] = {"ignore_https_errors": True, "viewport": viewport}
    if credentials is not None:
        options["http_credentials"] = {"username": credentials[0],
                                       "password": credentials[1]}
    context = browser.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    if route_feed is not None:
        page.route_web_socket(re.compile(r"/api/live$"), route_feed)
    scheme = "https" if tls else "http"
    page.goto(f"{scheme}://{LOOPBACK}:{gateway.port}/")
    live(page)
    page.evaluate("window.sameDocument = 'kept'")
    navigations: list[str] = []
    page.on("framenavigated",
            lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    page.navigations = navigations
    page.script_errors = errors
    return page


def live(page: Any) -> None:
    sync_api.expect(page.locator("#connection")).to_have_attribute("data-state", "live")


def log_in(page: Any, user: str) -> None:
    page.get_by_role("button", name="Log in").click()
    sync_api.expect(page.locator("#who")).to_contain_text(f"Logged in as {user}")


def job_card(page: Any, job_id: int) -> Any:
    return page.locator(f"#job-{job_id}")


def printer_card(page: Any, name: str = PRINTER) -> Any:
    return page.locator(f'#printers > li[data-printer="{name}"]')


def expect_state(card: Any, state: str) -> None:
    sync_api.expect(card).to_have_attribute("data-state", state)


def bytes_shown(card: Any) -> int:
    return int(card.get_attribute("data-bytes"))


def wait_bytes_above(page: Any, job_id: int, floor: int) -> int:
    page.wait_for_function(
        "([id, floor]) => Number(document.getElementById(`job-${id}`)?.dataset.bytes) > floor",
        arg=[job_id, floor], timeout=TIMEOUT_MS)
    return bytes_shown(job_card(page, job_id))


def same_document(page: Any) -> None:
    """The page changed in place: no navigation, its script state intact, no script error."""
    assert page.evaluate("window.sameDocument") == "kept"
    assert page.navigations == []
    assert page.script_errors == []


def close_page(page: Any) -> None:
    page.context.close()


def screenshot(page: Any, tmp_path: Path, name: str) -> Path:
    """A full-page PNG in the test's tmp dir, copied to build/test-artifacts/."""
    kept = tmp_path / f"{name}.png"
    page.screenshot(path=str(kept), full_page=True)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    copy = ARTIFACTS / kept.name
    shutil.copyfile(kept, copy)
    return copy


def notice(page: Any) -> Any:
    return page.locator("#notice")


# Every visible piece of text against the background it is drawn on, as the browser computed
# both: the pairs below WCAG AA's 4.5:1 (disabled controls are exempt).
LOW_CONTRAST_JS = """() => {
  const parse = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null;
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return { r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1 };
  };
  const channel = (v) => {
    v /= 255;
    return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  };
  const lum = (c) => 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b);
  const under = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = parse(getComputedStyle(e).backgroundColor);
      if (c && c.a > 0) return c;
    }
    return { r: 255, g: 255, b: 255, a: 1 };
  };
  const low = [];
  let checked = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    const text = walker.currentNode.textContent.trim();
    if (!text || !el || el.closest(".visually-hidden, [hidden], template, :disabled")) continue;
    if (el.getClientRects().length === 0) continue;
    const fg = parse(getComputedStyle(el).color);
    const bg = under(el);
    const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    checked += 1;
    if (ratio < 4.5) low.push(`${text.slice(0, 30)}: ${ratio.toFixed(2)}`);
  }
  return { checked, low };
}"""


# -- the page ------------------------------------------------------------------------------------

def test_job_appears_live_with_progress_and_cancel_changes_the_page(
        browser: Any, gateway: GatewayProcess, printer: StallingPrinter, cleanup: list[int],
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    page = open_page(browser, gateway, credentials=ADMIN)
    try:
        log_in(page, ADMIN[0])
        job_id = submit(gateway, cleanup, BIG_JOB, name="quarterly report")
        card = job_card(page, job_id)
        expect_state(card, "printing")
        # The administrator sees the owner and the name; progress in pages and bytes.
        sync_api.expect(card.locator('[data-f="owner"]')).to_have_text("test")
        sync_api.expect(card.locator('[data-f="name"]')).to_have_text("quarterly report")
        sync_api.expect(card.locator('[data-f="format"]')).to_have_text(
            "application/octet-stream")
        # Progress is told a block at a time, once the printer has taken it.
        assert printer.read(1 << 20) == 1 << 20
        first = wait_bytes_above(page, job_id, 0)
        assert first < BIG_JOB
        sync_api.expect(card.locator('[data-f="bytes"]')).to_contain_text("/ 16.8 MB")
        sync_api.expect(card.locator("progress")).to_be_visible()
        # The printer takes some: the bytes move on the page, live.
        assert printer.read(4 << 20) == 4 << 20
        later = wait_bytes_above(page, job_id, first)
        assert first < later < BIG_JOB
        sync_api.expect(printer_card(page)).to_have_attribute("data-state", "printing")

        contrast = page.evaluate(LOW_CONTRAST_JS)
        assert contrast["checked"] > 40 and contrast["low"] == [], contrast
        shots = [screenshot(page, tmp_path, "dashboard-desktop-1280")]
        page.set_viewport_size(PHONE)
        # One column, nothing wider than the screen, buttons a thumb can hit.
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        cancel = card.get_by_role("button", name=f"Cancel job {job_id}")
        box = cancel.bounding_box()
        assert box is not None and box["height"] >= TOUCH_PX and box["width"] >= TOUCH_PX
        shots.append(screenshot(page, tmp_path, "dashboard-phone-360"))
        with capsys.disabled():
            print("\ndashboard screenshots: " + ", ".join(str(shot) for shot in shots))

        cancel.click()
        expect_state(card, "canceled")
        sync_api.expect(card.get_by_role("button", name=f"Cancel job {job_id}")).to_be_hidden()
        assert state_of(gateway, job_id) == CANCELED
        sync_api.expect(notice(page)).to_contain_text(f"Cancel job {job_id}: done")
        same_document(page)
    finally:
        close_page(page)


def test_hold_release_pause_resume_and_test_page_from_the_page(
        browser: Any, gateway: GatewayProcess, cleanup: list[int]) -> None:
    page = open_page(browser, gateway, credentials=ADMIN)
    try:
        log_in(page, ADMIN[0])
        slow = printer_card(page)
        slow.get_by_role("button", name=f"Pause {PRINTER}").click()
        sync_api.expect(slow).to_have_attribute("data-state", "paused")
        sync_api.expect(slow.get_by_role("button", name=f"Resume {PRINTER}")).to_be_visible()

        job_id = submit(gateway, cleanup, 1000, name="held letter", held=True)
        card = job_card(page, job_id)
        expect_state(card, "held")
        card.get_by_role("button", name=f"Release job {job_id}").click()
        expect_state(card, "queued")  # the printer is paused: it waits
        assert state_of(gateway, job_id) == PENDING
        card.get_by_role("button", name=f"Hold job {job_id}").click()
        expect_state(card, "held")
        assert state_of(gateway, job_id) == HELD

        slow.get_by_role("button", name=f"Print test page {PRINTER}").click()
        sync_api.expect(notice(page)).to_contain_text("Test page printer slow: done as job")
        made = re.search(r"done as job (\d+)\.", notice(page).inner_text())
        assert made is not None
        test_page = int(made[1])
        cleanup.append(test_page)
        expect_state(job_card(page, test_page), "queued")

        slow.get_by_role("button", name=f"Identify {PRINTER}").click()
        sync_api.expect(notice(page)).to_contain_text(f"Identify printer {PRINTER}: done")

        for each in (job_id, test_page):
            job_card(page, each).get_by_role("button", name=f"Cancel job {each}").click()
            expect_state(job_card(page, each), "canceled")
        slow.get_by_role("button", name=f"Resume {PRINTER}").click()
        sync_api.expect(slow).to_have_attribute("data-state", "idle")
        same_document(page)
    finally:
        close_page(page)


def test_lost_feed_reconnects_and_catches_up(
        browser: Any, gateway: GatewayProcess, cleanup: list[int]) -> None:
    feed = FeedSwitch()
    page = open_page(browser, gateway, credentials=ADMIN, route_feed=feed)
    try:
        log_in(page, ADMIN[0])
        feed.allowed = False
        feed.drop()
        sync_api.expect(page.locator("#connection")).to_have_attribute("data-state", "offline")
        # Made while the page has no feed at all: only catching up can show it.
        job_id = submit(gateway, cleanup, 1000, name="while away", held=True)
        # It tries again, is refused, and waits longer the next time.
        sync_api.expect(page.locator("#connection")).to_contain_text("trying again in 2 s")
        assert feed.refused >= 1
        feed.allowed = True
        live(page)
        card = job_card(page, job_id)
        expect_state(card, "held")
        # Still logged in on the new feed: the administrator sees the name.
        sync_api.expect(card.locator('[data-f="name"]')).to_have_text("while away")
        sync_api.expect(card.get_by_role("button", name=f"Release job {job_id}")).to_be_visible()
        # And live again: a change made now arrives as an event.
        admin_ipp(gateway, Operation.CANCEL_JOB, {"job-id": (ValueTag.INTEGER, job_id)})
        expect_state(card, "canceled")
        same_document(page)
    finally:
        close_page(page)


def test_page_follows_the_gateway_through_a_reload(
        browser: Any, gateway: GatewayProcess, cleanup: list[int]) -> None:
    page = open_page(browser, gateway, credentials=None)
    try:
        # The reload is applied in place: the page's feed carries on through it (the lost
        # feed and its catching up are the test above).
        live(page)
        reloads = gateway.log.read_text().count("INFO gateway: reloaded:")
        os.kill(gateway.pid, signal.SIGHUP)
        deadline = time.monotonic() + RELOAD_MS / 1000
        while gateway.log.read_text().count("INFO gateway: reloaded:") == reloads:
            assert time.monotonic() < deadline, "no reload"
            time.sleep(0.05)
        job_id = submit(gateway, cleanup, 1000, name="after reload", held=True)
        live(page)
        card = job_card(page, job_id)
        expect_state(card, "held")
        # Anonymous: no name, no owner, nothing to act on.
        sync_api.expect(card.locator('[data-f="owner"]')).to_have_text("hidden")
        sync_api.expect(card.locator('[data-f="name"]')).to_have_text("hidden")
        sync_api.expect(card.locator(".actions")).to_be_hidden()
        same_document(page)
    finally:
        close_page(page)


def test_plain_http_page_sends_the_login_to_https(
        browser: Any, gateway: GatewayProcess, cleanup: list[int]) -> None:
    page = open_page(browser, gateway, credentials=None, tls=False, viewport=PHONE)
    try:
        job_id = submit(gateway, cleanup, 1000, name="over http", held=True)
        expect_state(job_card(page, job_id), "held")  # the feed works over ws:// too
        page.get_by_role("button", name="Log in").click()
        sync_api.expect(notice(page)).to_have_attribute("data-tone", "error")
        link = notice(page).get_by_role("link")
        sync_api.expect(link).to_have_attribute("href", f"https://{LOOPBACK}:{gateway.port}/")
        sync_api.expect(notice(page)).to_contain_text("only taken over HTTPS")
        sync_api.expect(page.locator("#who")).to_have_text("Not logged in")
        same_document(page)
    finally:
        close_page(page)


def test_another_user_sees_hidden_names_and_a_refusal_in_words(
        browser: Any, gateway: GatewayProcess, cleanup: list[int]) -> None:
    page = open_page(browser, gateway, credentials=BOB, viewport=PHONE)
    try:
        log_in(page, BOB[0])
        job_id = submit(gateway, cleanup, 1000, name="someone else's", held=True)
        card = job_card(page, job_id)
        expect_state(card, "held")
        sync_api.expect(card.locator('[data-f="owner"]')).to_have_text("hidden")
        sync_api.expect(card.locator('[data-f="name"]')).to_have_text("hidden")
        card.get_by_role("button", name=f"Cancel job {job_id}").click()
        sync_api.expect(notice(page)).to_have_attribute("data-tone", "error")
        sync_api.expect(notice(page)).to_contain_text(f"Cancel job {job_id} was refused:")
        printer_card(page).get_by_role("button", name=f"Pause {PRINTER}").click()
        sync_api.expect(notice(page)).to_contain_text(f"Pause printer {PRINTER} was refused:")
        expect_state(card, "held")
        assert state_of(gateway, job_id) == HELD
        sync_api.expect(printer_card(page)).not_to_have_attribute("data-state", "paused")
        same_document(page)
    finally:
        close_page(page)


# -- the API without the page --------------------------------------------------------------------

def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the gateway's own self-signed certificate
    return context


def api(gateway: GatewayProcess, method: str, path: str, *, tls: bool = True,
        credentials: tuple[str, str] | None = None, token: str | None = None,
        origin: str | None = None) -> tuple[int, dict[str, str], bytes]:
    connection: http.client.HTTPConnection = (
        http.client.HTTPSConnection(LOOPBACK, gateway.port, timeout=30, context=_unverified())
        if tls else http.client.HTTPConnection(LOOPBACK, gateway.port, timeout=30))
    headers: dict[str, str] = {}
    if credentials is not None:
        pair = f"{credentials[0]}:{credentials[1]}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode("ascii")
    if token is not None:
        headers["X-CSRF-Token"] = token
    if origin is not None:
        headers["Origin"] = origin
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        found = {name.lower(): value for name, value in response.getheaders()}
        return response.status, found, response.read()
    finally:
        connection.close()


def token_of(gateway: GatewayProcess, credentials: tuple[str, str]) -> str:
    status, _, body = api(gateway, "GET", "/api/login", credentials=credentials)
    assert status == 200, body
    answer = json.loads(body)
    assert answer["user"] == credentials[0]
    token = answer["token"]
    assert isinstance(token, str)
    return token


def paused(gateway: GatewayProcess) -> bool:
    status, _, body = api(gateway, "GET", "/api/state")
    assert status == 200
    printers = {p["name"]: p for p in json.loads(body)["printers"]}
    return bool(printers[PRINTER]["paused"])


def test_actions_without_login_or_token_are_refused(
        gateway: GatewayProcess, cleanup: list[int]) -> None:
    job_id = submit(gateway, cleanup, 1000, name="keep me", held=True)
    cancel = f"/api/jobs/{job_id}/cancel"
    pause = f"/api/printers/{PRINTER}/pause"
    admin_token, bob_token = token_of(gateway, ADMIN), token_of(gateway, BOB)
    own = f"https://{LOOPBACK}:{gateway.port}"
    refusals = [
        # (what, status, request keywords)
        ("no login over plain http", 426, {"tls": False}),
        ("no login over https", 401, {}),
        ("a login but no token", 403, {"credentials": ADMIN}),
        ("a login with another user's token", 403, {"credentials": ADMIN, "token": bob_token}),
        ("a login with a forged token", 403,
         {"credentials": ADMIN, "token": admin_token[:-4] + "AAAA"}),
        ("a token but no login", 401, {"token": admin_token}),
        ("another site's page", 403,
         {"credentials": ADMIN, "token": admin_token, "origin": "https://evil.example"}),
    ]
    for path in (cancel, pause):
        for what, expected, keywords in refusals:
            status, headers, body = api(gateway, "POST", path, **keywords)  # type: ignore[arg-type]
            assert status == expected, (path, what, status, body)
            if status == 401:
                assert headers.get("www-authenticate", "").startswith("Basic"), (what, headers)
    assert state_of(gateway, job_id) == HELD
    assert not paused(gateway)
    # The same request with both is taken (from the gateway's own origin): the refusals
    # above were for what they lacked.
    status, _, body = api(gateway, "POST", cancel, credentials=ADMIN, token=admin_token,
                          origin=own)
    assert status == 200, body
    assert json.loads(body)["status"] == "successful-ok"
    assert state_of(gateway, job_id) == CANCELED


@pytest.fixture
def form_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway of the form test's own, with one printer (the last printer cannot be
    removed) and its configuration file, which the form rewrites before each reload."""
    workdir = tmp_path / "form-gateway"
    (workdir / "spool").mkdir(parents=True)
    PasswordFile(workdir / "spool" / "passwd").set(*ADMIN, admin=True)
    with start_configured_gateway(workdir, [PrinterTable("archive")], log_level="info",
                                  extra_toml="[auth]\nenabled = true\n") as running:
        yield running


def test_a_printer_added_through_the_form_prints_a_job(
        browser: Any, form_gateway: GatewayProcess, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    gateway = form_gateway
    out = tmp_path / "out"
    out.mkdir()
    device = f"{out.as_uri()}/"
    config = gateway.workdir / "gateway.toml"
    before = config.read_text()
    expect = sync_api.expect
    page = open_page(browser, gateway, credentials=ADMIN, viewport=PHONE)
    try:
        log_in(page, ADMIN[0])
        page.get_by_role("button", name="Add printer", exact=True).click()
        form = page.get_by_role("form", name="Add a printer")
        expect(form.get_by_label("Name", exact=True)).to_be_focused()
        built = form.locator("output")
        kind = form.get_by_label("Connection", exact=True)
        # The device URI is built from its parts, as they are typed.
        kind.select_option("lpd")
        form.get_by_label("Host", exact=True).fill("printhost")
        form.get_by_label("Queue", exact=True).fill("raw")
        expect(built).to_have_text("lpd://printhost/raw")
        kind.select_option("socket")
        expect(form.get_by_label("Port", exact=True)).to_have_value("9100")
        expect(built).to_have_text("socket://printhost:9100")
        expect(form.get_by_label("Queue", exact=True)).to_be_hidden()

        # The form's own check, next to it: a name the gateway would refuse is not sent.
        error = form.get_by_role("alert")
        form.get_by_label("Name", exact=True).fill("-annex")
        kind.select_option("other")
        form.get_by_label("Device URI", exact=True).fill("bogus://x")
        form.get_by_role("button", name="Save", exact=True).click()
        expect(error).to_contain_text("Name: Letters, digits")
        expect(form.get_by_label("Name", exact=True)).to_have_attribute("aria-invalid", "true")
        expect(form.get_by_label("Name", exact=True)).to_be_focused()
        # The gateway's refusal (400), in words, next to the form; nothing written.
        form.get_by_label("Name", exact=True).fill("annex")
        form.get_by_role("button", name="Save", exact=True).click()
        expect(error).to_contain_text("Not saved:")
        expect(error).to_contain_text("bogus")
        assert config.read_text() == before

        form.get_by_label("Device URI", exact=True).fill(device)
        expect(built).to_have_text(device)
        form.get_by_label("Driver", exact=True).select_option("postscript")
        form.get_by_label("Location", exact=True).fill("Room 3")
        form.get_by_label("Description", exact=True).fill("Added laser")
        form.get_by_role("button", name="Probe", exact=True).click()
        probed = form.locator(".probe-result")
        # A directory device cannot say whether a job would print before one does.
        expect(probed).to_contain_text("Probed: a job could print on it.")
        expect(probed).to_contain_text("Reachable")
        expect(probed).to_contain_text("cannot tell without printing")
        expect(probed).to_contain_text(device)

        # At 360 px: nothing wider than the screen, thumb-size buttons, AA contrast.
        assert page.evaluate(
            "document.documentElement.scrollWidth <= document.documentElement.clientWidth")
        for name in ("Save", "Probe", "Cancel"):
            box = form.get_by_role("button", name=name, exact=True).bounding_box()
            assert box is not None and box["height"] >= TOUCH_PX and box["width"] >= TOUCH_PX
        contrast = page.evaluate(LOW_CONTRAST_JS)
        assert contrast["low"] == [], contrast
        shot = screenshot(page, tmp_path, "dashboard-form-phone-360")
        with capsys.disabled():
            print(f"\ndashboard form screenshot: {shot}")

        form.get_by_role("button", name="Save", exact=True).click()
        # "saved; the gateway reloads", then, as the reload is quick, at once:
        expect(form).to_have_count(0)
        card = printer_card(page, "annex")
        expect(card).to_be_visible(timeout=RELOAD_MS)
        expect(notice(page)).to_contain_text("Printer annex added: it is on the list.")
        expect(card.locator('[data-f="driver"]')).to_have_text("postscript")
        expect(card.locator('[data-f="device"]')).to_have_text(device)
        expect(card.locator('[data-f="location"]')).to_have_text("Room 3 — Added laser")
        written = config.read_text()
        assert written.startswith(before.rstrip("\n")) and 'name = "annex"' in written

        # It prints: a PDF over IPP in, PostScript out, and the page follows the job.
        message = request(Operation.PRINT_JOB, user="test",
                          printer_uri=f"ipp://{LOOPBACK}:{gateway.port}/ipp/print/annex",
                          attrs={"job-name": (ValueTag.NAME, "form test"),
                                 "document-format": (ValueTag.MIME_MEDIA_TYPE,
                                                     "application/pdf")})
        reply = ipp_to(gateway.port, "annex", message, PDF.read_bytes())
        assert reply.code == 0, reply
        job_id = job_id_of(reply)
        job = job_card(page, job_id)
        expect(job).to_have_attribute("data-state", "completed", timeout=PRINT_MS)
        expect(job.locator('[data-f="printer"]')).to_have_text("annex")
        printed = list(out.glob("job-*.prn"))
        assert len(printed) == 1 and printed[0].read_bytes().startswith(b"%!PS"), printed

        # Edit from the card: the builder shows the device as it is; only the change is sent.
        card.get_by_role("button", name="Edit annex", exact=True).click()
        edit = card.get_by_role("form", name="Edit annex")
        expect(edit.get_by_label("Connection", exact=True)).to_have_value("other")
        expect(edit.locator("output")).to_have_text(device)
        expect(edit.get_by_label("Driver", exact=True)).to_have_value("postscript")
        expect(edit.get_by_label("Name", exact=True)).to_be_hidden()  # no renaming
        edit.get_by_label("Location", exact=True).fill("Room 4")
        edit.get_by_role("button", name="Save", exact=True).click()
        expect(card.locator('[data-f="location"]')).to_have_text(
            "Room 4 — Added laser", timeout=RELOAD_MS)
        expect(notice(page)).to_contain_text("Printer annex changed.")
        written = config.read_text()
        assert 'location = "Room 4"' in written and f'device = "{device}"' in written

        # Remove, with a confirm step whose safe choice has the focus.
        card.get_by_role("button", name="Remove annex", exact=True).click()
        expect(card.get_by_role("button", name="Keep annex", exact=True)).to_be_focused()
        card.get_by_role("button", name="Keep annex", exact=True).click()
        expect(card.get_by_role("button", name="Yes, remove annex")).to_be_hidden()
        card.get_by_role("button", name="Remove annex", exact=True).click()
        card.get_by_role("button", name="Yes, remove annex", exact=True).click()
        expect(card).to_have_count(0, timeout=RELOAD_MS)
        expect(notice(page)).to_contain_text("Printer annex removed.")
        expect(printer_card(page, "archive")).to_be_visible()
        assert 'name = "annex"' not in config.read_text()
        same_document(page)
    finally:
        close_page(page)
