"""The document formats the paper side knows, by MIME type, and the groups the planner and the
languages reason with. Only names: what sniffs them is `drivers.filters.sniff`, what each
language prints is the language's business (`drivers.driver.Driver.convertible`)."""

from __future__ import annotations

PDF = "application/pdf"
POSTSCRIPT = "application/postscript"
JPEG = "image/jpeg"
PNG = "image/png"
PWG_RASTER = "image/pwg-raster"
URF = "image/urf"
PCL = "application/vnd.hp-PCL"
PCLXL = "application/vnd.hp-PCLXL"
TEXT = "text/plain"
OCTET_STREAM = "application/octet-stream"  # "sniff it": never printed as such except raw

PAGE_FORMATS = (PDF, POSTSCRIPT)  # page descriptions: Ghostscript interprets them
RASTER_FORMATS = (PWG_RASTER, URF)  # composed raster pages: our readers decode them
IMAGE_FORMATS = (JPEG, PNG)  # one image, placed on one page
# Every format a page printer can be fed, whatever its language.
DOCUMENT_FORMATS = (*PAGE_FORMATS, *RASTER_FORMATS, *IMAGE_FORMATS, TEXT)

_KNOWN_CASE = {fmt.lower(): fmt for fmt in (PCL, PCLXL)}


def canonical_format(fmt: str) -> str:
    """A MIME type without parameters, spelt as our tables spell it."""
    bare = fmt.split(";", 1)[0].strip().lower()
    return _KNOWN_CASE.get(bare, bare)
