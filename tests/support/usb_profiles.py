"""Four kinds of simulated USB printer for the plug-and-print tests, and checks that what one of
them received is a job in its own language.

The 1284 ids are those the real printers report (as CUPS backends, foomatic and HP's device
tables list them); the serial numbers are ours. Each kind makes its driver choice interesting:

- `postscript-laser`: an HP LaserJet 1220, whose CMD lists PCL and PCL XL before PostScript,
  so only the preference order picks PostScript. Its USB ids are the real 03f0:0412.
- `pcl5-laser`: an HP LaserJet 1100: PCL 5e and PJL, nothing newer.
- `pclxl-laser`: a Brother HL-2270DW: PCL XL and PCL, no PostScript.
- `text-dot-matrix`: an Oki Microline 320 Turbo in its IBM Proprinter emulation. The id foomatic
  records for it also names EPSON (ESC/P); that emulation is off here, so CMD names no language
  the drivers know and plain text is all that is left.

Vendor ids are the makers' (HP 03f0, Brother 04f9, Oki Data 06bc); product ids other than the
LaserJet 1220's are made up but distinct.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.errors import ConversionError
from drivers.ieee1284 import parse_device_id
from tests.support.gs_render import render
from tests.support.pcl_decoder import decode_pcl
from tests.support.pclxl_decoder import decode_pclxl
from tests.support.usb_sim import SimPrinter

UEL = b"\x1b%-12345X"
_PCL_XL_HEADER = b") HP-PCL XL"
_PS_START = b"%!PS"


@dataclass(frozen=True)
class UsbProfile:
    """One kind of printer: its USB identity, its 1284 id, and the driver it should get."""

    name: str
    vendor: int
    product: int
    serial: str  # the default; `make` takes another so two of a kind can be plugged
    manufacturer: str  # the USB iManufacturer / iProduct strings
    product_name: str
    device_id_template: str  # "{serial}" stands for the serial number
    driver: str  # the registered driver name auto-setup should choose
    language: str  # the CMD token that should decide it ("" for none: plain text)

    def device_id(self, serial: str | None = None) -> str:
        return self.device_id_template.format(serial=serial or self.serial)

    @property
    def make_and_model(self) -> str:
        return parse_device_id(self.device_id()).make_and_model

    def make(self, serial: str | None = None, *, plugged: bool = True) -> SimPrinter:
        """A fresh simulated printer of this kind (bidirectional, usblp bound)."""
        chosen = serial or self.serial
        return SimPrinter(vendor=self.vendor, product=self.product, serial=chosen,
                          device_id=self.device_id(chosen), plugged=plugged,
                          manufacturer=self.manufacturer, product_name=self.product_name)


POSTSCRIPT_LASER = UsbProfile(
    "postscript-laser", 0x03F0, 0x0412, "CNBW4A1220", "Hewlett-Packard", "HP LaserJet 1220",
    "MFG:Hewlett-Packard;CMD:PJL,MLC,PCL,PCLXL,POSTSCRIPT;MDL:HP LaserJet 1220;CLS:PRINTER;"
    "DES:Hewlett-Packard LaserJet 1220;SN:{serial};",
    "postscript", "POSTSCRIPT")
PCL5_LASER = UsbProfile(
    "pcl5-laser", 0x03F0, 0x0517, "USGB061100", "Hewlett-Packard", "HP LaserJet 1100",
    "MFG:Hewlett-Packard;MDL:HP LaserJet 1100;DES:HP LaserJet 1100 Printer;CMD:MLC,PCL,PJL;"
    "CLS:PRINTER;REV:1.1;SN:{serial};",
    "pcl5", "PCL")
PCLXL_LASER = UsbProfile(
    "pclxl-laser", 0x04F9, 0x0042, "E7N123456", "Brother", "HL-2270DW series",
    "MFG:Brother;CMD:PJL,PCL,PCLXL;MDL:HL-2270DW series;CLS:PRINTER;CID:Brother Laser Type1;"
    "SN:{serial};",
    "pclxl", "PCLXL")
TEXT_DOT_MATRIX = UsbProfile(
    "text-dot-matrix", 0x06BC, 0x000B, "AL7B012345", "OKI DATA CORP", "ML320/1TURBO",
    "MFG:OKI DATA CORP;MDL:ML320/1TURBO;CMD:IBM,MICROLINE;DES:OKIDATA ML320/1 TURBO;"
    "SN:{serial};",
    "text", "")

PROFILES: dict[str, UsbProfile] = {
    profile.name: profile
    for profile in (POSTSCRIPT_LASER, PCL5_LASER, PCLXL_LASER, TEXT_DOT_MATRIX)
}


def profile(name: str) -> UsbProfile:
    try:
        return PROFILES[name]
    except KeyError:
        raise KeyError(f"no USB profile {name!r} (known: {', '.join(PROFILES)})") from None


# -- what a printer received --------------------------------------------------------------


def check_printed(kind: UsbProfile | str, data: bytes, pages: int) -> None:
    """Assert that `data` is one job in the language of `kind` with `pages` pages on which
    something is printed; AssertionError (saying what is wrong) otherwise."""
    chosen = profile(kind) if isinstance(kind, str) else kind
    assert data, f"{chosen.name}: nothing received"
    checks = {"postscript": _check_postscript, "pcl5": _check_pcl5, "pclxl": _check_pclxl,
              "text": _check_text}
    checks[chosen.driver](data, pages)


def _pjl_language(data: bytes) -> str:
    """The language an `@PJL ENTER LANGUAGE=` line names, "" without one."""
    marker = b"@PJL ENTER LANGUAGE"
    start = data.find(marker)
    if start < 0:
        return ""
    line = data[start : data.find(b"\n", start)]
    return line.partition(b"=")[2].strip().decode("latin-1").upper()


def _check_postscript(data: bytes, pages: int) -> None:
    assert _PCL_XL_HEADER not in data, "a PCL XL job, not PostScript"
    start = data.find(_PS_START)
    assert start >= 0 and UEL not in data[start : start + 64], "no PostScript program"
    assert _pjl_language(data[:start]) in ("", "POSTSCRIPT"), _pjl_language(data[:start])
    end = data.find(UEL, start)
    program = data[start : end if end >= 0 else len(data)]
    try:
        rendered = render(program)  # fails on any PostScript error
    except ConversionError as exc:  # Ghostscript drew no page at all
        raise AssertionError(f"the PostScript program renders nothing: {exc}") from exc
    assert len(rendered) == pages, f"{len(rendered)} PostScript pages, expected {pages}"
    for number, page in enumerate(rendered, 1):
        assert any(min(line) < 128 for line in page.lines), f"page {number} is blank"


def _check_pcl5(data: bytes, pages: int) -> None:
    assert _PCL_XL_HEADER not in data, "a PCL XL job, not PCL 5"
    assert _PS_START not in data, "a PostScript job, not PCL 5"
    assert _pjl_language(data) in ("", "PCL"), _pjl_language(data)
    job = decode_pcl(data)
    assert job.resets >= 1, "no PCL reset (ESC E)"
    assert len(job.pages) == pages, f"{len(job.pages)} PCL pages, expected {pages}"
    for number, page in enumerate(job.pages, 1):
        assert any(any(row) for row in page.rows), f"page {number} has no raster marks"


def _check_pclxl(data: bytes, pages: int) -> None:
    assert _PS_START not in data, "a PostScript job, not PCL XL"
    job = decode_pclxl(data)  # fails on the first byte that is not a PCL XL token
    assert len(job.pages) == pages, f"{len(job.pages)} PCL XL pages, expected {pages}"
    for number, page in enumerate(job.pages, 1):
        assert page.operators != [0x44], f"page {number} draws nothing"  # EndPage alone


def _check_text(data: bytes, pages: int) -> None:
    # A line printer in text mode prints any escape sequence as garbage or worse: none at all.
    assert b"\x1b" not in data, "escape sequences in a job for a text-only printer"
    assert _PS_START not in data and b"@PJL" not in data, "not plain text"
    text = data.decode("latin-1")
    assert all(ch.isprintable() or ch in "\r\n\f\t" for ch in text), "control bytes in the text"
    feeds = data.count(b"\f")
    assert feeds == pages, f"{feeds} form feeds, expected {pages}"
    body = data.rstrip(b"\r\n\f")
    assert b"\n" not in body.replace(b"\r\n", b""), "a bare line feed (no carriage return)"
    for number, page in enumerate(data.split(b"\f")[:pages], 1):
        assert page.strip(), f"page {number} is empty"
