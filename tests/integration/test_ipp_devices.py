"""Issue 15 at the gateway level: old IPP printers and print servers as devices, through a
real gateway process and its `ipp://` / `http://` transport.

- ippeveprinter taking only PostScript (the office laser of 2005): a PDF printed to the
  gateway arrives as PostScript, our job completes only after the device's job did, and
  Cancel-Job on our job cancels the device's;
- a private cupsd's queues (an old print server) at ipp://.../printers/NAME and, with a
  system account's password (HTTP Basic), at http://.../printers/NAME: both get the job, and
  a wrong password holds our job with the reason;
- the PWG self-certification ipp and document tests against a printer whose device is that
  PostScript-only ippeveprinter.

Each test starts its own peers and checks several things: they are the slow kind.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from ippwire.enums import GroupTag, JobState, Operation, ValueTag
from ippwire.writer import request
from tests.peers import CORPUS_DIR, REPO_ROOT
from tests.peers.cupsd import PROGRAMS as CUPS_PROGRAMS
from tests.peers.cupsd import running_cupsd
from tests.peers.gateway_proc import PrinterTable, start_command_line, start_configured_gateway
from tests.peers.ippeveprinter import IppEvePrinter, processing_command, running_ippeveprinter
from tests.peers.pam_user import system_user
from tests.peers.procs import LOOPBACK, wait_until
from tests.peers.require import require_programs, require_root
from tests.support.gs_render import render
from tests.support.ipp_client import (
    StateSnapshot,
    cancel,
    ipp,
    job_status,
    submit,
    wait_job,
)

pytestmark = [pytest.mark.peers, pytest.mark.slow]

POSTSCRIPT = "application/postscript"
PRINT_SECONDS = 1.5  # how long the device "prints" each job: long enough to watch it
TERMINAL = (JobState.CANCELED, JobState.ABORTED, JobState.COMPLETED)
JOB_TIMEOUT = 60.0
SELFCERT = REPO_ROOT.parent / "shared" / "selfcert"
SELFCERT_TIMEOUT = 1200
SUMMARY = re.compile(r"^SELFCERT (.*)$", re.MULTILINE)
COUNTS = re.compile(r"(ipp|documents): (\d+) pass (\d+) fail (\d+) skip")


@pytest.fixture(scope="module")
def two_page_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pages 1-2 of the bash manual: text a page-count check can tell apart."""
    require_programs("gs")
    pdf = tmp_path_factory.mktemp("pdf") / "two.pdf"
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPageList=1-2",
         f"-sOutputFile={pdf}", str(CORPUS_DIR / "bash-87p-text.pdf")],
        check=True, capture_output=True, timeout=60)
    return pdf


@pytest.fixture
def postscript_device(tmp_path: Path) -> Iterator[IppEvePrinter]:
    """ippeveprinter taking PostScript only, keeping every document, each job printing for
    PRINT_SECONDS."""
    require_programs("ippeveprinter", "dbus-daemon")
    work = tmp_path / "device"
    with running_ippeveprinter(work, command=processing_command(work, PRINT_SECONDS),
                               formats=POSTSCRIPT, keep=True) as device:
        yield device


def device_job_state(device: IppEvePrinter, job_id: int) -> int | None:
    """The device's job-state, asked over IPP; None while it has no such job."""
    answer = ipp(device.port, request(
        Operation.GET_JOB_ATTRIBUTES, printer_uri=device.printer_uri,
        attrs={"job-id": (ValueTag.INTEGER, job_id),
               "requested-attributes": (ValueTag.KEYWORD, "job-state")}))
    group = answer.group(GroupTag.JOB)
    state = group.get("job-state") if answer.code == 0 and group is not None else None
    return state.value if state is not None and isinstance(state.value, int) else None


def with_login(uri: str, user: str, password: str) -> str:
    scheme, rest = uri.split("://", 1)
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{rest}"


def ended(snapshot: StateSnapshot) -> bool:
    return snapshot.state in TERMINAL


def test_a_pdf_arrives_as_postscript_and_the_device_job_is_mirrored_and_canceled(
        tmp_path: Path, postscript_device: IppEvePrinter, two_page_pdf: Path) -> None:
    device = postscript_device
    printer = PrinterTable.on_device("laser", device.printer_uri, driver="postscript")
    with start_configured_gateway(tmp_path / "gateway", (printer,)) as gateway:
        job = submit(gateway.port, two_page_pdf, printer="laser", name="two pages",
                     fmt="application/pdf")
        # (ours, theirs) as seen one after the other: theirs is asked second, so once ours
        # shows completed, theirs must show completed too.
        seen: list[tuple[int, int | None]] = []
        deadline = time.monotonic() + JOB_TIMEOUT
        while not seen or seen[-1][0] not in TERMINAL:
            assert time.monotonic() < deadline, f"our job never ended: {seen[-5:]}"
            ours = job_status(gateway.port, job, "laser").state
            seen.append((ours, device_job_state(device, 1)))
            time.sleep(0.05)
        assert seen[-1] == (JobState.COMPLETED, JobState.COMPLETED), seen[-5:]
        assert (JobState.PROCESSING, JobState.PROCESSING) in seen, \
            "our job never waited while the device's printed"
        assert all(theirs == JobState.COMPLETED
                   for ours, theirs in seen if ours == JobState.COMPLETED), seen

        kept = device.wait_kept(1)
        assert kept.startswith(b"%!PS"), kept[:100]
        pages = render(kept)
        assert len(pages) == 2
        # A4 or Letter wide, to the pixel at gs_render's 36 dpi.
        assert all(min(abs(page.width_pt - 595), abs(page.width_pt - 612)) <= 2
                   for page in pages), [page.width_pt for page in pages]

        # A second job, canceled on our side while the device prints it.
        doomed = submit(gateway.port, two_page_pdf, printer="laser", name="to cancel",
                        fmt="application/pdf")
        wait_until(lambda: device_job_state(device, 2) == JobState.PROCESSING, JOB_TIMEOUT,
                 "device job 2 processing")
        assert cancel(gateway.port, doomed, "laser") == 0
        outcome = wait_job(gateway.port, doomed, "laser", ended, timeout=JOB_TIMEOUT,
                        what="our canceled job's end")
        assert outcome.state == JobState.CANCELED, outcome
        wait_until(lambda: device_job_state(device, 2) == JobState.CANCELED,
                 PRINT_SECONDS + JOB_TIMEOUT, "device job 2 canceled")
        assert set(device.kept_documents()) == {1, 2}, "a job was sent twice"


def postscript_page(marker: str) -> bytes:
    return (f"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n%%Page: 1 1\n"
            f"/Helvetica findfont 24 scalefont setfont 72 700 moveto ({marker}) show\n"
            f"showpage\n%%EOF\n").encode()


def test_a_cups_queue_is_a_device_over_ipp_and_over_http_with_basic_auth(
        tmp_path: Path) -> None:
    require_programs(*CUPS_PROGRAMS)
    require_root("cupsd checks a system account's password through PAM")
    with system_user() as account, \
            running_cupsd(file_device=True, locked_queues=("locked",)) as server:
        outputs = {"open": server.add_device_queue("open"),
                   "locked": server.add_device_queue("locked")}
        wrong_password = f"not-{account.password}"
        printers = (
            PrinterTable.on_device("plain", server.printer_uri("open", "ipp"),
                                   driver="postscript"),
            PrinterTable.on_device("login", with_login(server.printer_uri("locked", "http"),
                                                       account.name, account.password),
                                   driver="postscript"),
            PrinterTable.on_device("badlogin", with_login(server.printer_uri("locked", "ipp"),
                                                          account.name, wrong_password),
                                   driver="postscript"),
        )
        queue_of = {"plain": "open", "login": "locked"}
        with start_configured_gateway(tmp_path / "gateway", printers) as gateway:
            jobs = {name: submit(gateway.port, postscript_page(f"MARK-{name}"), printer=name,
                                 name=f"job for {name}", fmt=POSTSCRIPT)
                    for name in ("plain", "login", "badlogin")}
            for name, queue in queue_of.items():
                done = wait_job(gateway.port, jobs[name], name, ended, timeout=JOB_TIMEOUT,
                                what=f"the end of the job to {name}")
                assert done.state == JobState.COMPLETED, (name, done)
                printed = outputs[queue].read_bytes()
                # cupsd's pstops output: PostScript titled with our job's name.
                assert printed.startswith(b"%!PS"), (name, printed[:100])
                assert f"MARK-{name}".encode() in printed, name
                assert f"job for {name}".encode() in printed, name
            assert len(render(outputs["locked"].read_bytes())) == 1

            held = wait_job(gateway.port, jobs["badlogin"], "badlogin",
                            lambda s: s.state == JobState.PENDING_HELD, timeout=JOB_TIMEOUT,
                            what="the wrong password's job held")
            assert "credential" in held.message.lower(), held
            assert len(server.job_ids("locked", "all")) == 1, "the wrong password printed"
            # cupsd's job to the locked queue belongs to the account that logged in.
            assert account.name in server.client("lpstat", "-W", "completed", "-o", "locked")
            log = gateway.log.read_text()
            assert account.password not in log and wrong_password not in log


def test_selfcert_ipp_and_document_tests_pass_with_an_ipp_device(tmp_path: Path) -> None:
    """One printer, ipp:// only: the gateway in front of ippeveprinter-as-PostScript-printer,
    the postscript driver at 300 dpi as test_selfcert.py runs it (a quarter of the pixels)."""
    require_programs("ipptool", "gs", "ippeveprinter", "dbus-daemon")
    if not (SELFCERT / "run.sh").exists():
        pytest.skip(f"the self-certification suite is not at {SELFCERT}")
    # The device prints at once; our job still stays processing for one poll of the device's
    # job (half a second, as test_selfcert.py's slow socket printer holds each job): the
    # suite's Get-Jobs right after a Print-Job counts on a job not done yet.
    with running_ippeveprinter(tmp_path / "device", formats=POSTSCRIPT) as device:
        gateway = start_command_line(
            tmp_path / "gateway",
            ["--printer", f"p={device.printer_uri}?poll=0.5,driver=postscript,resolutions=300"],
            printer_name="p")
        try:
            result = subprocess.run(
                [str(SELFCERT / "run.sh"), str(SELFCERT / "suite"),
                 gateway.named_printer_uri.replace(f"ipp://{LOOPBACK}:", "ipp://localhost:"),
                 "-S", "-s", "ipp document", "-o", str(tmp_path / "selfcert")],
                capture_output=True, text=True, timeout=SELFCERT_TIMEOUT, check=False)
        finally:
            gateway.stop()
    found = SUMMARY.search(result.stdout)
    assert found is not None, f"no summary:\n{result.stdout}\n{result.stderr}"
    context = f"{found[1]}\n{result.stdout}\n(gateway log: {gateway.log})"
    counts = {name: (int(p), int(f), int(s)) for name, p, f, s in COUNTS.findall(found[1])}
    assert set(counts) == {"ipp", "documents"}, context
    assert all(fail == 0 for _, fail, _ in counts.values()), context
    assert "INCOMPLETE" not in found[1] and "TIMEOUT" not in found[1], context
    assert result.returncode == 0, context
    assert counts["ipp"][0] >= 39, context
    passed, _, skipped = counts["documents"]
    assert passed + skipped == 53 and passed >= 47, context
