"""Printing through a driver in this process, as the driver-level pipeline tests do: the corpus
documents (and PWG raster, URF and PNG pages made from them at a low resolution), a driver's
capabilities at that resolution, `print_document` into a file transport, and PWG raster read
back into rows."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import trio
from PIL import Image

from drivers.driver import Driver
from drivers.errors import ConversionError
from drivers.filters.pwg_raster import PwgRasterReader
from drivers.filters.stage import Progress
from drivers.model.capabilities import Capabilities, PrintOptions
from drivers.model.raster import Band, PageStart, expand
from drivers.pipeline import print_document
from drivers.transport import JobInfo, open_transport
from tests.peers import CORPUS_DIR as CORPUS

DPI = 75  # low resolution keeps the matrix fast; the benchmark does 300 and 600


@dataclass(frozen=True)
class Document:
    path: Path
    fmt: str
    pages: int  # as printed on A4 by the page-description printers


def _gs(out: Path, device: str, source: str, *args: str) -> Path:
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", f"-sDEVICE={device}", f"-r{DPI}",
         "-sPAPERSIZE=a4", "-dFIXEDMEDIA", f"-sOutputFile={out}", *args, str(CORPUS / source)],
        check=True, capture_output=True, timeout=60,
    )
    return out


def make_documents(tmp: Path) -> dict[str, Document]:
    """Every input format, by name: pdf, ps, jpeg, png, text, pwg (3 pages, black_1), pwg-rgb
    and urf, the rasters rendered into `tmp` at `DPI`."""
    png = tmp / "ladybird.png"
    with Image.open(CORPUS / "ladybird-2560x1600.jpg") as photo:
        photo.reduce(8).save(png)
    return {
        "pdf": Document(CORPUS / "testpage-1p-vector.pdf", "application/pdf", 1),
        "ps": Document(CORPUS / "groff-pic-39p.ps", "application/postscript", 39),
        "jpeg": Document(CORPUS / "ladybird-2560x1600.jpg", "image/jpeg", 1),
        "png": Document(png, "image/png", 1),
        "text": Document(CORPUS / "gpl-3.txt", "text/plain", 11),
        "pwg": Document(_gs(tmp / "page.pwg", "pwgraster", "groff-pic-39p.ps",
                            "-dcupsColorSpace=3", "-dcupsBitsPerColor=1", "-sPageList=1-3"),
                        "image/pwg-raster", 3),
        "pwg-rgb": Document(_gs(tmp / "rgb.pwg", "pwgraster", "testpage-1p-vector.pdf",
                                "-dcupsColorSpace=19", "-dcupsBitsPerColor=8"),
                            "image/pwg-raster", 1),
        "urf": Document(_gs(tmp / "page.urf", "urf", "testpage-1p-vector.pdf",
                            "-dcupsColorSpace=18", "-dcupsBitsPerColor=8"), "image/urf", 1),
    }


def low_resolution(driver: Driver) -> Capabilities:
    return driver.capabilities.with_changes(resolutions=(DPI, 150), default_resolution=DPI)


async def print_to_file(
    document: Document, driver: Driver, caps: Capabilities, out: Path,
    options: PrintOptions | None = None, fmt: str | None = None,
) -> tuple[bytes, Progress]:
    transport = open_transport(f"file://{out}")
    await transport.start_job(JobInfo(job_id=1))
    try:
        with trio.fail_after(120):
            progress = await print_document(document.path, fmt or document.fmt, driver, caps,
                                            options or PrintOptions(), transport)
    except ConversionError:
        await transport.abort_job()
        raise
    await transport.end_job()
    return await trio.Path(out).read_bytes(), progress


def pwg_pages(path: Path) -> list[list[bytes]]:
    reader = PwgRasterReader()
    reader.feed(path.read_bytes())
    reader.end_of_input()
    pages: list[list[bytes]] = []
    for event in reader.events():
        if isinstance(event, PageStart):
            pages.append([])
        elif isinstance(event, Band):
            pages[-1].extend(expand(event.rows))
    return pages
