"""The gateway-level test documents: the corpus as it is, plus PWG raster and URF pages
rendered from it by Ghostscript at a low resolution (one or two pages, to stay fast) and a PNG
made from the corpus photo by Pillow."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tests.peers import CORPUS_DIR

PDF = "application/pdf"
POSTSCRIPT = "application/postscript"
JPEG = "image/jpeg"
PNG = "image/png"
TEXT = "text/plain"
PWG = "image/pwg-raster"
URF = "image/urf"


@dataclass(frozen=True)
class Sample:
    name: str
    path: Path
    fmt: str
    pages: int  # pages when printed on A4 by a page-description (PostScript or PCL) printer

    def read(self) -> bytes:
        return self.path.read_bytes()


def render(out: Path, device: str, source: Path, dpi: int, *args: str) -> Path:
    """`gs -sDEVICE=device` at `dpi` on A4."""
    subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", f"-sDEVICE={device}", f"-r{dpi}",
         "-sPAPERSIZE=a4", "-dFIXEDMEDIA", f"-sOutputFile={out}", *args, str(source)],
        check=True, capture_output=True, timeout=60,
    )
    return out


def make_png(out: Path, source: Path, reduce: int = 4) -> Path:
    """`source` (a corpus photo) as an RGB PNG, `reduce` times smaller in each direction."""
    with Image.open(source) as photo:
        photo.convert("RGB").reduce(reduce).save(out, "PNG")
    return out


def make_samples(tmp: Path, dpi: int) -> dict[str, Sample]:
    """pdf, ps, jpeg, text from the corpus; png from the jpeg; pwg (black_1, 2 pages),
    pwg-rgb (srgb_8) and urf (sRGB 8-bit) rendered at `dpi`."""
    pic = CORPUS_DIR / "groff-pic-39p.ps"
    vector = CORPUS_DIR / "testpage-1p-vector.pdf"
    photo = CORPUS_DIR / "ladybird-2560x1600.jpg"
    samples = [
        Sample("pdf", vector, PDF, 1),
        Sample("ps", pic, POSTSCRIPT, 39),
        Sample("jpeg", photo, JPEG, 1),
        Sample("png", make_png(tmp / "ladybird.png", photo), PNG, 1),
        Sample("text", CORPUS_DIR / "gpl-3.txt", TEXT, 11),
        Sample("pwg", render(tmp / "pic.pwg", "pwgraster", pic, dpi, "-dcupsColorSpace=3",
                             "-dcupsBitsPerColor=1", "-sPageList=1-2"), PWG, 2),
        Sample("pwg-rgb", render(tmp / "rgb.pwg", "pwgraster", vector, dpi,
                                 "-dcupsColorSpace=19", "-dcupsBitsPerColor=8"), PWG, 1),
        Sample("urf", render(tmp / "page.urf", "urf", vector, dpi, "-dcupsColorSpace=19",
                             "-dcupsBitsPerColor=8"), URF, 1),
    ]
    return {sample.name: sample for sample in samples}
