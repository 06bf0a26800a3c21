"""Bad documents abort with a ConversionError and a message, Ghostscript is killed on cancel
and on silence, memory stays bounded, and the next job prints."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from drivers.errors import ConversionError, Outcome
from drivers.filters.ghostscript import GhostscriptJob, GhostscriptStage
from drivers.filters.stage import Progress, open_channel
from drivers.model.capabilities import PrintOptions
from drivers.pipeline import print_document
from drivers.registry import get_driver
from drivers.transport import JobInfo, Transport, open_transport
from tests.peers import CORPUS_DIR as CORPUS
from tests.support.bad_documents import bad_documents
from tests.support.driver_printing import DPI, Document, print_to_file

DRIVERS = ["postscript", "pcl5", "pclxl", "text"]

CASES = ["truncated-pdf", "absurd-pwg", "lying-urf", "jpeg-bomb", "empty", "mismatch",
         "truncated-jpeg", "not-text"]


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("driver_name", ["postscript", "pcl5"])
async def test_bad_document_aborts_and_the_next_job_prints(
    case: str, driver_name: str, tmp_path: Path
) -> None:
    data, fmt = bad_documents(tmp_path)[case]
    path = tmp_path / "bad"
    path.write_bytes(data)
    driver = get_driver(driver_name)
    caps = driver.capabilities.with_changes(resolutions=(DPI,), default_resolution=DPI)
    with pytest.raises(ConversionError) as failure:
        await print_to_file(Document(path, fmt, 0), driver, caps, tmp_path / "out")
    assert failure.value.outcome is Outcome.CANCEL and failure.value.message
    good = Document(CORPUS / "testpage-1p-vector.pdf", "application/pdf", 1)
    _, progress = await print_to_file(good, driver, caps, tmp_path / "next")
    assert progress.pages == 1


@pytest.mark.parametrize("driver_name", ["pclxl", "text"])
async def test_truncated_pdf_on_ghostscript_printers(driver_name: str, tmp_path: Path) -> None:
    data, fmt = bad_documents(tmp_path)["truncated-pdf"]
    path = tmp_path / "bad.pdf"
    path.write_bytes(data)
    driver = get_driver(driver_name)
    with pytest.raises(ConversionError, match="no printable pages"):
        await print_to_file(Document(path, fmt, 0), driver, driver.capabilities, tmp_path / "o")


async def test_unsupported_format_is_refused_with_the_list(tmp_path: Path) -> None:
    driver = get_driver("text")
    pcl = tmp_path / "page.pcl"
    pcl.write_bytes(b"\x1bE\x1b&l0O hello\x0c\x1bE")
    transport = open_transport("file:///dev/null")
    with pytest.raises(ConversionError, match=r"cannot print application/vnd\.hp-PCL"):
        await print_document(pcl, "application/vnd.hp-PCL", driver,
                             driver.capabilities, PrintOptions(), transport)


def child_processes() -> set[int]:
    children = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == os.getpid():
                children.add(int(entry.name))
    return children


class SlowTransport(Transport):
    """Accepts bytes slowly, so a job is still converting when it is cancelled."""

    scheme = "slow"
    received = 0

    async def start_job(self, job: JobInfo) -> None:
        pass

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        self.received += len(data)
        await trio.sleep(0.05)

    async def end_job(self) -> None:
        pass

    async def abort_job(self) -> None:
        pass


async def test_cancelling_a_job_kills_ghostscript() -> None:
    driver = get_driver("pcl5")
    transport = SlowTransport(None)  # type: ignore[arg-type]
    before = child_processes()
    with trio.move_on_after(1.5) as scope:
        await print_document(CORPUS / "bash-87p-text.pdf", "application/pdf", driver,
                             driver.capabilities, PrintOptions(resolution=300), transport)
    assert scope.cancelled_caught and transport.received > 0
    assert child_processes() - before == set()


async def test_silent_ghostscript_is_stopped_by_the_idle_timeout() -> None:
    stage = GhostscriptStage(GhostscriptJob("nullpage"), idle_timeout=0.5)
    inbox_send, inbox = open_channel()
    outbox, outbox_receive = open_channel()
    before = child_processes()
    with trio.fail_after(10), pytest.raises(ConversionError, match="did nothing"):
        async with inbox_send, outbox_receive:  # the document never ends
            await stage.run(inbox, outbox, Progress())
    assert child_processes() - before == set()


async def test_streamed_source_is_accepted(tmp_path: Path) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        data = (CORPUS / "gpl-3.txt").read_bytes()
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    driver = get_driver("postscript")
    transport = open_transport(f"file://{tmp_path}/out.ps")
    await transport.start_job(JobInfo(job_id=1))
    progress = await print_document(chunks(), "application/octet-stream", driver,
                                    driver.capabilities, PrintOptions(), transport)
    await transport.end_job()
    assert progress.pages == 11


# VmHWM, not ru_maxrss: the latter survives exec() and would count the pytest parent.
_MEMORY_SCRIPT = """
import re, sys, trio
from pathlib import Path
from drivers.model.capabilities import PrintOptions
from drivers.registry import get_driver
from drivers.pipeline import print_document
from drivers.transport import JobInfo, open_transport

async def main():
    driver = get_driver(sys.argv[2])
    transport = open_transport(sys.argv[3])
    await transport.start_job(JobInfo(job_id=1))
    await print_document(Path(sys.argv[1]), "image/pwg-raster", driver, driver.capabilities,
                         PrintOptions(print_quality=5), transport)
    await transport.end_job()

trio.run(main)
print(re.search(r"VmHWM:\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))
"""


@pytest.mark.parametrize("driver_name", ["postscript", "pcl5"])
def test_600_dpi_a4_colour_page_stays_under_64_mb(driver_name: str, tmp_path: Path) -> None:
    source = tmp_path / "page.pwg"
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pwgraster", "-r600",
         "-dcupsColorSpace=19", "-dcupsBitsPerColor=8", "-sPAPERSIZE=a4", "-dFIXEDMEDIA",
         f"-sOutputFile={source}", str(CORPUS / "testpage-1p-vector.pdf")],
        check=True, capture_output=True, timeout=60,
    )
    result = subprocess.run(
        [sys.executable, "-c", _MEMORY_SCRIPT, str(source), driver_name,
         f"file://{tmp_path}/out"],
        check=True, capture_output=True, timeout=120, text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    peak_kb = int(result.stdout.split()[-1])
    assert (tmp_path / "out").stat().st_size > 10_000
    assert peak_kb < 64 * 1024, f"peak RSS {peak_kb // 1024} MB"


def hostile_postscript(read: str, delete: str, write: str, guarded: bool) -> bytes:
    """A page that tries to read `read` (and show it), delete `delete` and create `write`;
    guarded, each attempt is in `stopped` and shows a -DENIED marker instead of failing."""
    attempts = [
        (f"({read}) (r) file 4000 string readstring pop", "READ-DENIED"),
        (f"({delete}) deletefile (DELETED)", "DELETE-DENIED"),
        (f"({write}) (w) file dup (written) writestring closefile (WRITTEN)", "WRITE-DENIED"),
    ]
    lines = ["%!PS", "/Courier findfont 10 scalefont setfont"]
    for row, (attempt, denied) in enumerate(attempts):
        lines.append(f"72 {720 - 20 * row} moveto")
        lines.append(f"{{ {attempt} }} stopped {{ ({denied}) }} if show" if guarded
                     else f"{attempt} show")
    return "\n".join([*lines, "showpage", ""]).encode()


async def run_hostile_job(tmp_path: Path, files: Path, secret: Path, guarded: bool
                          ) -> tuple[bytes, Path, Path]:
    """The hostile page on the text printer (Ghostscript's txtwrite: text shows in the
    output). Unguarded it must abort with a conversion error. Returns the output and the
    file it tried to delete and the one it tried to write, both in `files`."""
    victim, written = files / "victim.txt", files / "written.txt"
    victim.write_text("keep me\n")
    document = files / "hostile.ps"
    document.write_bytes(hostile_postscript(str(secret), str(victim), str(written), guarded))
    driver = get_driver("text")
    result = print_to_file(Document(document, "application/postscript", 1), driver,
                           driver.capabilities, tmp_path / "out")
    if guarded:
        output, _ = await result
        return output, victim, written
    with pytest.raises(ConversionError) as failure:
        await result
    assert failure.value.outcome is Outcome.CANCEL and failure.value.message
    out = tmp_path / "out"
    return (out.read_bytes() if out.exists() else b""), victim, written


@pytest.mark.parametrize("guarded", [False, True], ids=["unguarded", "guarded"])
@pytest.mark.parametrize("secret", ["/etc/passwd", "beside-the-document"])
async def test_ghostscript_runs_postscript_with_safer(
    guarded: bool, secret: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Real Ghostscript, -dSAFER: PostScript cannot read, delete or write files outside
    Ghostscript's temporary directory (here a private TMPDIR, so the test's own /tmp files
    are outside it). Unguarded the job aborts; guarded it prints the three denials."""
    private = tmp_path / "gs-tmp"
    private.mkdir()
    monkeypatch.setenv("TMPDIR", str(private))
    readable = Path(secret) if secret.startswith("/") else tmp_path / "secret.txt"
    if readable.parent == tmp_path:
        readable.write_text("root:x:0:0:TOP-SECRET\n")
    output, victim, written = await run_hostile_job(tmp_path, tmp_path, readable, guarded)
    assert b"root:" not in output and b"TOP-SECRET" not in output
    assert victim.read_text() == "keep me\n" and not written.exists()
    if guarded:
        text = output.decode("ascii", "replace")
        assert all(f"{what}-DENIED" in text for what in ("READ", "DELETE", "WRITE")), text


async def test_postscript_cannot_touch_the_shared_temporary_directory(tmp_path: Path) -> None:
    """-dSAFER permits Ghostscript's temporary directory (TMPDIR, else /tmp): with the
    gateway's own TMPDIR a job must still not reach other users' or other jobs' files there,
    because each Ghostscript gets a private one."""
    shared = Path(tempfile.mkdtemp(prefix="gw-safer-", dir=os.environ.get("TMPDIR") or "/tmp"))
    try:
        secret = shared / "secret.txt"
        secret.write_text("root:x:0:0:TOP-SECRET\n")
        output, victim, written = await run_hostile_job(tmp_path, shared, secret, True)
        assert b"TOP-SECRET" not in output, output
        assert victim.exists() and not written.exists()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
