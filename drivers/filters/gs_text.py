"""PDF and PostScript to plain text for line printers: Ghostscript's txtwrite, one file per
page in a private temporary directory, sent as ASCII lines with a form feed after each page."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import trio

from drivers.filters.ghostscript import GhostscriptJob, GhostscriptStage
from drivers.filters.stage import Inbox, Outbox, Progress, Stage, open_channel
from drivers.filters.text import to_ascii


class GhostscriptTextStage(Stage):
    name = "ghostscript(txtwrite)"
    reports_pages = True

    def __init__(self, job: GhostscriptJob, input_path: Path | None = None) -> None:
        self.job = replace(job, device="txtwrite", media=None, dpi=None)
        self.input_path = input_path

    async def run(self, inbox: Inbox, outbox: Outbox, progress: Progress) -> None:
        with tempfile.TemporaryDirectory(prefix="gw-text-") as directory:
            job = replace(self.job, output=str(Path(directory) / "page-%05d.txt"))
            stage = GhostscriptStage(job, self.input_path, reports_pages=False)
            nothing_out, nothing_in = open_channel()
            async with outbox:
                async with nothing_in:
                    await stage.run(inbox, nothing_out, progress)
                for page in sorted(await trio.Path(directory).glob("page-*.txt")):
                    text = await page.read_text("utf-8", "replace")
                    lines = [line.rstrip() for line in to_ascii(text).splitlines()]
                    await outbox.send(("\r\n".join(lines) + "\r\n\f").encode("ascii"))
                    progress.page_done()
