"""Collated and uncollated copies on paper: a 3-page document printed twice on each converting
driver comes out as pages 1,2,3,1,2,3 (collated) or 1,1,2,2,3,3 (uncollated).

The sheets a printer would deliver are read from the output itself: PostScript rendered by
Ghostscript with the job's /NumCopies and /Collate requests recorded, PCL 5 decoded with the
ESC&l#X in effect at each form feed, PCL XL parsed with each page's PageCopies, text split at
its form feeds. Each page is named by comparing it with a one-copy print of the same document.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path

import pytest

from drivers.driver import Driver
from drivers.filters.stage import Progress
from drivers.model.capabilities import PrintOptions
from drivers.registry import get_driver
from tests.peers import CORPUS_DIR
from tests.support.driver_printing import Document, low_resolution, print_to_file
from tests.support.pcl_decoder import decode_pcl
from tests.support.pclxl_decoder import UEL, decode_pclxl

COLLATED = [0, 1, 2, 0, 1, 2]
UNCOLLATED = [0, 0, 1, 1, 2, 2]

# Takes /NumCopies and /Collate out of every setpagedevice request and prints them, so that
# Ghostscript renders each page once and the test applies the requests as the PLRM defines
# them (Ghostscript itself ignores /Collate: it always prints NumCopies uncollated).
_RECORD_COPIES = b"""%!PS
userdict /setpagedevice {
  dup /NumCopies known { dup /NumCopies get (GW NumCopies ) print == dup /NumCopies undef } if
  dup /Collate known { dup /Collate get (GW Collate ) print == dup /Collate undef } if
  systemdict /setpagedevice get exec
} bind put
"""


@pytest.fixture(scope="module")
def three_pages(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Document]:
    """Three different pages from the corpus: a PDF (pages 1-3 of the bash manual) and a text
    (three pieces of the GPL, form feeds between them)."""
    tmp = tmp_path_factory.mktemp("three")
    pdf = tmp / "three.pdf"
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pdfwrite", "-sPageList=1-3",
         f"-sOutputFile={pdf}", str(CORPUS_DIR / "bash-87p-text.pdf")],
        check=True, capture_output=True, timeout=60,
    )
    lines = (CORPUS_DIR / "gpl-3.txt").read_text("ascii").splitlines()
    text = tmp / "three.txt"
    text.write_text("\f".join("\n".join(lines[i * 40 : i * 40 + 40]) + "\n" for i in range(3)))
    return {"pdf": Document(pdf, "application/pdf", 3),
            "text": Document(text, "text/plain", 3)}


def _ghostscript_pages(document: bytes, out: Path) -> tuple[list[bytes], bytes]:
    """Each page Ghostscript prints (a small gray image), and what the job wrote to stdout."""
    out.mkdir(parents=True)
    result = subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pgmraw", "-r9",
         f"-sOutputFile={out}/page-%03d.pgm", "-"],
        input=document, capture_output=True, timeout=120, check=True,
    )
    return [page.read_bytes() for page in sorted(out.glob("page-*.pgm"))], result.stdout


def postscript_sheets(data: bytes, tmp: Path) -> list[bytes]:
    """The pages a PostScript printer delivers, in order."""
    once, said = _ghostscript_pages(_RECORD_COPIES + data, tmp / "once")
    requests = dict(re.findall(rb"GW (\w+) (\w+)", said))
    copies = int(requests.get(b"NumCopies", b"1"))
    if requests.get(b"Collate") == b"true":
        return once * copies
    sheets = [page for page in once for _ in range(copies)]
    # Where no collation is asked for, Ghostscript prints as the printer does.
    assert _ghostscript_pages(data, tmp / "real")[0] == sheets
    return sheets


def pcl5_sheets(data: bytes) -> list[tuple[bytes, ...]]:
    """The pages a PCL 5 printer delivers: each page ESC&l#X times in a row."""
    return [(*page.rows, page.text) for page in decode_pcl(data).pages
            for _ in range(page.copies)]


def pclxl_sheets(data: bytes) -> list[tuple[int, ...]]:
    """The pages a PCL XL printer delivers: each job in turn, each page PageCopies times."""
    starts = [m.start() for m in re.finditer(re.escape(UEL + b"@PJL"), data)]
    sheets: list[tuple[int, ...]] = []
    for start, end in zip(starts, [*starts[1:], len(data)], strict=True):
        for page in decode_pclxl(data[start:end]).pages:
            sheets += [tuple(page.operators)] * page.copies
    return sheets


def text_sheets(data: bytes) -> list[bytes]:
    pages = data.split(b"\f")
    assert pages[-1] == b""  # every page ends with its form feed
    return pages[:-1]


Reader = Callable[[bytes, Path], Sequence[Hashable]]
READERS: dict[str, Reader] = {
    "postscript": postscript_sheets,
    "postscript2": postscript_sheets,
    "pcl5": lambda data, _: pcl5_sheets(data),
    "pclxl": lambda data, _: pclxl_sheets(data),
    "text": lambda data, _: text_sheets(data),
}


async def printed_order(document: Document, driver: Driver, options: PrintOptions,
                        tmp: Path) -> tuple[list[int], Progress]:
    """The order the printer delivers the document's pages in (0 = the first page)."""
    caps = low_resolution(driver) if driver.name != "text" else driver.capabilities
    read = READERS[driver.name]
    once, _ = await print_to_file(document, driver, caps, tmp / "once")
    reference = read(once, tmp / "once-pages")
    assert len(reference) == 3 and len(set(reference)) == 3  # three different pages
    data, progress = await print_to_file(document, driver, caps, tmp / "copies", options)
    return [reference.index(sheet) for sheet in read(data, tmp / "copies-pages")], progress


@pytest.mark.parametrize("collate, expected", [(True, COLLATED), (False, UNCOLLATED)])
@pytest.mark.parametrize("driver_name, name", [
    ("postscript", "pdf"), ("postscript2", "pdf"), ("pcl5", "pdf"), ("pclxl", "pdf"),
    ("pcl5", "text"), ("text", "text"), ("text", "pdf"),
])
async def test_copies_come_out_in_the_order_asked(
    driver_name: str, name: str, collate: bool, expected: list[int],
    three_pages: dict[str, Document], tmp_path: Path,
) -> None:
    driver = get_driver(driver_name)
    options = PrintOptions(copies=2, collate=collate)
    order, progress = await printed_order(three_pages[name], driver, options, tmp_path)
    assert order == expected
    assert progress.pages * progress.copies_each == 6  # impressions: pages x copies


async def test_a_one_page_document_is_sent_once_with_the_printers_copy_count(
    tmp_path: Path,
) -> None:
    """Collated or not, two copies of one page are the same sheets: the printer counts them
    and the photo is converted once."""
    driver = get_driver("pcl5")
    photo = Document(CORPUS_DIR / "ladybird-2560x1600.jpg", "image/jpeg", 1)
    data, progress = await print_to_file(photo, driver, low_resolution(driver), tmp_path / "o",
                                         PrintOptions(copies=2))
    job = decode_pcl(data)
    assert [page.copies for page in job.pages] == [2] and job.resets == 2  # one PCL job
    assert (progress.pages, progress.copies_each) == (1, 2)
