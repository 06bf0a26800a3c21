"""The sample documents ipptool's suites name, made from ../shared/corpus.

CUPS ships the suites but not their documents. ipptool reads `FILE` paths relative to the
suite file and aborts the whole file when one is unreadable, and ipp-everywhere.test silently
skips a print test whose `SKIP-IF-MISSING` raster sample is absent, so every name a suite uses
must exist next to the suite copies. Everything is one page; rasters are made only for the
resolutions and types the target advertises.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Collection, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tests.peers import CORPUS_DIR

VECTOR_PAGE = CORPUS_DIR / "testpage-1p-vector.pdf"  # one A4 page
PHOTO = CORPUS_DIR / "ladybird-2560x1600.jpg"
PHOTO_SIZE = (2560, 1600)
GS_TIMEOUT = 120.0

# pwg-raster-document-type-supported keyword -> (cupsColorSpace, cupsBitsPerColor) for gs.
RASTER_TYPES: dict[str, tuple[int, int]] = {
    "black_1": (3, 1),
    "sgray_8": (18, 8),
    "srgb_8": (19, 8),
    "srgb_16": (19, 16),
    "cmyk_8": (6, 8),
}
SAMPLE_PATH = re.compile(
    r"^\s*SKIP-IF-MISSING\s+(pwg-raster-samples-(\d+)dpi/([a-z0-9-]+)/(\S+)-\3-\2dpi\.pwg)\s*$",
    re.MULTILINE,
)
# Each sample name is rendered from one of three pages.
SAMPLE_SOURCES = {
    "color.jpg-4x6": "photo-4x6",
    "gray.jpg-4x6": "photo-4x6",
    "document-a4": "page-a4",
    "onepage-a4": "page-a4",
    "document-letter": "page-letter",
    "onepage-letter": "page-letter",
}


@dataclass(frozen=True)
class RasterSample:
    """One `pwg-raster-samples-*` file a suite may print."""

    path: str
    dpi: int
    raster_type: str
    name: str

    @property
    def source(self) -> str:
        return SAMPLE_SOURCES[self.name]


def raster_samples(suite_text: str) -> list[RasterSample]:
    found = {
        RasterSample(m[1], int(m[2]), m[3].replace("-", "_"), m[4])
        for m in SAMPLE_PATH.finditer(suite_text)
    }
    return sorted(found, key=lambda sample: sample.path)


def run_gs(args: list[str], cwd: Path) -> None:
    argv = ["gs", "-q", "-dNOPAUSE", "-dBATCH", "-dSAFER", *args]
    done = subprocess.run(argv, cwd=cwd, capture_output=True, timeout=GS_TIMEOUT, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{argv} failed: {done.stderr.decode(errors='replace')[-2000:]}")


def photo_program(dest: Path) -> Path:
    """PostScript that draws the corpus photo rotated onto a 4x6 in portrait page."""
    width, height = PHOTO_SIZE
    program = dest / "photo-4x6.ps"
    program.write_text(
        "<< /PageSize [288 432] >> setpagedevice\n"
        f"/src ({PHOTO}) (r) file def\n"
        "/DeviceRGB setcolorspace\n"
        "288 0 translate 90 rotate 432 288 scale\n"
        f"<< /ImageType 1 /Width {width} /Height {height} /BitsPerComponent 8\n"
        f"   /Decode [0 1 0 1 0 1] /ImageMatrix [{width} 0 0 -{height} 0 {height}]\n"
        "   /DataSource src /DCTDecode filter >> image\nshowpage\n"
    )
    return program


def page_args(source: str, work: Path) -> list[str]:
    if source == "photo-4x6":
        return [f"--permit-file-read={PHOTO}", str(photo_program(work))]
    paper = source.removeprefix("page-")
    return [f"-sPAPERSIZE={paper}", "-dFIXEDMEDIA", "-dPDFFitPage", str(VECTOR_PAGE)]


def render_raster(source: str, dpi: int, raster_type: str, out: Path, work: Path) -> None:
    color_space, bits = RASTER_TYPES[raster_type]
    run_gs(
        ["-sDEVICE=pwgraster", f"-dcupsColorSpace={color_space}",
         f"-dcupsBitsPerColor={bits}", f"-r{dpi}", f"-sOutputFile={out}",
         *page_args(source, work)],
        cwd=work,
    )


def ensure_raster_samples(
    dest: Path, suite_text: str, resolutions: Collection[int], types: Collection[str]
) -> list[RasterSample]:
    """Make every sample of `suite_text` at an advertised resolution and type; return them."""
    wanted = [s for s in raster_samples(suite_text)
              if s.dpi in resolutions and s.raster_type in types]
    work = dest / ".renders"
    work.mkdir(parents=True, exist_ok=True)
    renders = {(s.source, s.dpi, s.raster_type) for s in wanted}
    missing = [key for key in sorted(renders) if not render_path(work, *key).exists()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        jobs = [pool.submit(render_into_place, work, *key) for key in missing]
        for job in jobs:
            job.result()
    for sample in wanted:
        target = dest / sample.path
        if not is_real(target):
            target.parent.mkdir(parents=True, exist_ok=True)
            target.unlink(missing_ok=True)
            os.link(render_path(work, sample.source, sample.dpi, sample.raster_type), target)
    write_placeholders(dest, [s for s in raster_samples(suite_text) if s not in wanted])
    return wanted


def is_real(path: Path) -> bool:
    return path.is_file() and path.stat().st_size > 0


def write_placeholders(dest: Path, samples: Iterable[RasterSample]) -> None:
    """Empty files for samples the target does not advertise.

    ipptool checks every FILE while reading the suite, even in tests it will skip; the
    tests naming these files are skipped by their SKIP-IF-NOT-DEFINED conditions instead.
    """
    for sample in samples:
        target = dest / sample.path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()


def render_path(work: Path, source: str, dpi: int, raster_type: str) -> Path:
    return work / f"{source}-{raster_type}-{dpi}dpi.pwg"


def render_into_place(work: Path, source: str, dpi: int, raster_type: str) -> None:
    final = render_path(work, source, dpi, raster_type)
    partial = final.with_suffix(".partial")
    render_raster(source, dpi, raster_type, partial, work)
    partial.rename(final)


PLAIN_DOCUMENTS = ("document-a4.pdf", "document-letter.pdf", "document-a4.ps",
                   "document-letter.ps", "color.jpg", "gray.jpg")


def make_plain_document(name: str, out: Path) -> None:
    fit_letter = ["-sPAPERSIZE=letter", "-dFIXEDMEDIA", "-dPDFFitPage"]
    if name == "document-a4.pdf":
        shutil.copyfile(VECTOR_PAGE, out)
    elif name == "color.jpg":
        shutil.copyfile(PHOTO, out)
    elif name == "gray.jpg":
        run_gs(["-sDEVICE=jpeggray", "-r50", f"-sOutputFile={out}", str(VECTOR_PAGE)], out.parent)
    else:
        device = "pdfwrite" if name.endswith(".pdf") else "ps2write"
        paper = fit_letter if "letter" in name else []
        run_gs([f"-sDEVICE={device}", *paper, f"-sOutputFile={out}", str(VECTOR_PAGE)],
               out.parent)


def ensure_plain_documents(dest: Path) -> list[Path]:
    """The PDF, PostScript and JPEG files the stock suites name; made once per directory."""
    dest.mkdir(parents=True, exist_ok=True)
    made = []
    for name in PLAIN_DOCUMENTS:
        out = dest / name
        if not out.exists():
            partial = dest / f".{name}.partial"
            make_plain_document(name, partial)
            partial.rename(out)
        made.append(out)
    return made


def missing_files(dest: Path, relative_paths: Iterable[str]) -> list[str]:
    """The paths that are absent or only placeholders."""
    return [path for path in relative_paths if not is_real(dest / path)]


MAGIC = (
    (b"%PDF", "application/pdf"),
    (b"RaS2", "image/pwg-raster"),
    (b"UNIRAST\0", "image/urf"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG", "image/png"),
    (b"%!", "application/postscript"),
)


def sniff_format(head: bytes) -> str | None:
    """The MIME type whose magic `head` starts with, if any."""
    for magic, mime in MAGIC:
        if head.startswith(magic):
            return mime
    return None
