"""Ghostscript as a pipeline stage: PDF and PostScript in, raster or a printer language out.

Ghostscript runs as a subprocess with -dSAFER, a fixed page size, banded rendering, and a
timeout that restarts whenever it reads or writes; it is killed when the job is cancelled or
the pipeline fails. Its messages go to our log. A page hook prints a marker per finished page,
which gives progress and tells a document that rendered nothing (a truncated PDF that
Ghostscript "repaired" into zero pages) from a real one.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import shutil
import subprocess
import tempfile
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import trio

from drivers.errors import ConversionError, Outcome
from drivers.filters.stage import Inbox, Outbox, Progress, Stage
from drivers.model.capabilities import MediaSize

log = logging.getLogger(__name__)

PAGE_MARKER = b"%%GW-PAGE"
_PAGE_HOOK = (
    "<< /EndPage { exch pop 2 ne dup { (%%GW-PAGE\\n) print flush } if } bind >> setpagedevice"
)
DEFAULT_IDLE_TIMEOUT = 120.0
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)  # Linux
PIPE_SIZE = 1 << 20  # the default /proc/sys/fs/pipe-max-size
OUTPUT_READ = 256 * 1024
# Render in bands of a few MB instead of a full-page bitmap (600 dpi A4 colour is 100 MB).
_BANDING = ("-dMaxBitmap=4000000", "-dBufferSpace=4000000", "-dBandBufferSpace=4000000")


def ghostscript_binary() -> str:
    found = shutil.which("gs")
    if found is None:
        raise ConversionError("Ghostscript (gs) is not installed", Outcome.STOP_PRINTER)
    return found


@dataclass(frozen=True)
class GhostscriptJob:
    """What to ask of Ghostscript: the device and how the page is laid out."""

    device: str
    media: MediaSize | None = None  # None = the document's own page size
    dpi: int | None = None
    dpi_y: int | None = None  # a vertical resolution other than `dpi` (dot-matrix printers)
    fit_to_page: bool = True
    page_list: str = ""  # e.g. "1-3,5"; "" = every page
    rotation: int = 0  # orientation-requested: degrees anti-clockwise, 0/90/180/270
    extra: tuple[str, ...] = ()
    output: str = "%stdout"  # or a file pattern such as DIR/page-%05d.txt

    def arguments(self, input_path: str | None) -> list[str]:
        args = [ghostscript_binary(), "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOINTERPOLATE",
                f"-sDEVICE={self.device}", "-sstdout=%stderr", f"-sOutputFile={self.output}",
                *_BANDING]
        if self.dpi:
            args.append(f"-r{self.dpi}x{self.dpi_y}" if self.dpi_y else f"-r{self.dpi}")
        if self.media is not None:
            width = math.floor(self.media.width_points)
            height = math.floor(self.media.height_points)
            args += ["-dFIXEDMEDIA", f"-dDEVICEWIDTHPOINTS={width}",
                     f"-dDEVICEHEIGHTPOINTS={height}"]
            if self.fit_to_page:
                args += ["-dPDFFitPage", "-dPSFitPage"]
        if self.page_list:
            args.append(f"-sPageList={self.page_list}")
        args += list(self.extra)
        hook = _PAGE_HOOK
        if self.rotation and self.media is not None:
            hook = f"{rotate_pages(self.rotation, self.media)} {hook}"
        args += ["-c", hook, "-f", input_path or "-"]
        return args


def rotate_pages(rotation: int, media: MediaSize) -> str:
    """orientation-requested for PDF and PostScript: a BeginPage procedure turning each page
    (as Ghostscript laid it out on the media, fitted or not) `rotation` degrees anti-clockwise
    about the sheet, shrunk to fit the sheet and centred when it turns by a quarter."""
    w, h = media.width_points, media.height_points
    if rotation == 180:
        place = f"{w:.2f} {h:.2f} translate 180 rotate"
    else:
        s = min(w / h, h / w)
        ox, oy = (w - s * h) / 2, (h - s * w) / 2
        tx, ty, angle = ((ox + s * h, oy, 90) if rotation == 90 else (ox, oy + s * w, -90))
        place = f"{tx:.2f} {ty:.2f} translate {angle} rotate {s:.5f} dup scale"
    return f"<< /BeginPage {{ pop {place} }} bind >> setpagedevice"


def page_list(ranges: Sequence[tuple[int, int]]) -> str:
    return ",".join(f"{lo}" if lo == hi else f"{lo}-{hi}" for lo, hi in ranges)


class GhostscriptStage(Stage):
    """Runs one Ghostscript process; reads the document from the inbox or from a file."""

    def __init__(
        self,
        job: GhostscriptJob,
        input_path: Path | None = None,
        idle_timeout: float = DEFAULT_IDLE_TIMEOUT,
        reports_pages: bool = True,
    ) -> None:
        self.name = f"ghostscript({job.device})"
        self.job = job
        self.input_path = input_path
        self.idle_timeout = idle_timeout
        self.reports_pages = reports_pages
        self.pages = 0
        self._last_messages: deque[str] = deque(maxlen=6)
        self._watchdog = trio.CancelScope()  # replaced by the running one in run()

    async def run(self, inbox: Inbox, outbox: Outbox, progress: Progress) -> None:
        # -dSAFER still lets a document read, write and delete anything in Ghostscript's
        # temporary directory (TMPDIR, else /tmp): other jobs' and other users' files there.
        # Each process gets a private, empty one (mode 0700), removed when it ends.
        scratch = tempfile.mkdtemp(prefix="gw-gs-")
        try:
            await self._run_in(scratch, inbox, outbox, progress)
        finally:
            with trio.CancelScope(shield=True):
                await trio.to_thread.run_sync(shutil.rmtree, scratch, True)

    async def _run_in(self, scratch: str, inbox: Inbox, outbox: Outbox,
                      progress: Progress) -> None:
        args = self.job.arguments(str(self.input_path) if self.input_path else None)
        log.debug("starting %s", " ".join(args))
        env = {**os.environ, "TMPDIR": scratch, "TEMP": scratch, "TMP": scratch}
        process = await trio.lowlevel.open_process(
            args, stdin=subprocess.PIPE if self.input_path is None else subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )
        _widen_pipe(process.stdout)
        try:
            async with inbox, outbox:
                with trio.CancelScope() as watchdog:
                    self._watchdog = watchdog
                    self._touch()
                    await self._converse(process, inbox, outbox, progress)
                    returncode = await process.wait()
                if watchdog.cancelled_caught:
                    raise ConversionError(
                        f"Ghostscript did nothing for {self.idle_timeout:.0f} s: stopped"
                    )
                # Judged while the outbox is still open: the next stage must not take the end
                # of a failed render's output for a document that simply ended (and fail
                # first with a message about the symptom, not the cause).
                self._check_result(returncode)
        finally:
            if process.returncode is None:
                process.kill()
                with trio.CancelScope(shield=True):
                    await process.wait()

    def _touch(self) -> None:
        self._watchdog.deadline = trio.current_time() + self.idle_timeout

    async def _converse(
        self, process: trio.Process, inbox: Inbox, outbox: Outbox, progress: Progress
    ) -> None:
        async with trio.open_nursery() as nursery:
            if process.stdin is not None:
                nursery.start_soon(self._feed, process.stdin, inbox)
            assert process.stderr is not None and process.stdout is not None
            nursery.start_soon(self._read_messages, process.stderr, progress)
            await self._read_output(process.stdout, outbox)

    async def _feed(self, stdin: trio.abc.SendStream, inbox: Inbox) -> None:
        async with stdin:
            async for chunk in inbox:
                try:
                    await stdin.send_all(chunk)
                except trio.BrokenResourceError:
                    return  # Ghostscript stopped reading: its exit status tells why
                self._touch()

    async def _read_output(self, stdout: trio.abc.ReceiveStream, outbox: Outbox) -> None:
        while data := await stdout.receive_some(OUTPUT_READ):
            self._touch()
            await outbox.send(bytes(data))

    async def _read_messages(self, stderr: trio.abc.ReceiveStream, progress: Progress) -> None:
        pending = b""
        while data := await stderr.receive_some(8192):
            self._touch()
            *lines, pending = (pending + data).split(b"\n")
            for line in lines:
                self._message(line, progress)
            pending = pending[-4096:]
        if pending:
            self._message(pending, progress)

    def _message(self, line: bytes, progress: Progress) -> None:
        if line.startswith(PAGE_MARKER):
            self.pages += 1
            if self.reports_pages:
                progress.page_done()
            return
        text = line.decode("utf-8", "replace").strip()
        if text:
            log.debug("gs: %s", text)
            self._last_messages.append(text)

    def _check_result(self, returncode: int) -> None:
        detail = " / ".join(self._last_messages) or "no message"
        if returncode != 0:
            raise ConversionError(f"Ghostscript failed (exit {returncode}): {detail}")
        if self.pages == 0:
            raise ConversionError(f"the document has no printable pages ({detail})")


def _widen_pipe(stream: object) -> None:
    """Let Ghostscript run up to a band ahead of us: with the default 64 KiB pipe it stops at
    every few rows until our side has read them, and the two processes take turns instead of
    working at once."""
    fileno = getattr(stream, "fileno", None)
    if fileno is None:
        return
    with contextlib.suppress(OSError):  # a smaller pipe only costs speed
        fcntl.fcntl(fileno(), F_SETPIPE_SZ, PIPE_SIZE)
