"""Which document formats each printer language can print: one table for the planner and the
drivers' default capabilities, so what is advertised and what is printed cannot disagree."""

from __future__ import annotations

from drivers.filters.sniff import (
    JPEG,
    OCTET_STREAM,
    PCL,
    PCLXL,
    PDF,
    PNG,
    POSTSCRIPT,
    PWG_RASTER,
    TEXT,
    URF,
)

_PAGE_FORMATS = (PDF, POSTSCRIPT, PWG_RASTER, URF, JPEG, PNG, TEXT)

# Language (driver family) -> the formats it converts, the native one included.
CONVERTIBLE: dict[str, tuple[str, ...]] = {
    "postscript": _PAGE_FORMATS,
    "pcl5": (*_PAGE_FORMATS, PCL),
    "pclxl": (*_PAGE_FORMATS, PCLXL),
    "text": (TEXT, PDF, POSTSCRIPT),
}

FAMILY = {"postscript": "postscript", "postscript2": "postscript", "pcl5": "pcl5",
          "pclxl": "pclxl", "text": "text", "raw": "raw"}


def accepted_by(family: str) -> tuple[str, ...]:
    """document-format-supported for a language: auto-sensing first, then each format."""
    return (OCTET_STREAM, *CONVERTIBLE[family])
