"""Ghostscript's rendering of a document, page by page, as the tests compare it: each page's
size in points and its rows of pixels (gray by default)."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

from drivers.filters.pnm import PnmReader
from drivers.model.raster import Band, PageStart, expand


@dataclass
class RenderedPage:
    width_pt: float
    height_pt: float
    lines: list[bytes]


def render(document: bytes, dpi: int = 36, device: str = "pgmraw") -> list[RenderedPage]:
    """Ghostscript's rendering of a document: one entry per page (fails on any PS error)."""
    result = subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", f"-sDEVICE={device}", f"-r{dpi}",
         "-dNOINTERPOLATE", "-dUseFastColor", "-sOutputFile=-", "-"],
        input=document, capture_output=True, timeout=120, check=False,
    )
    assert result.returncode == 0 and b"Error" not in result.stderr, result.stderr[-2000:]
    reader = PnmReader(dpi)
    reader.feed(result.stdout)
    reader.end_of_input()
    pages: list[RenderedPage] = []
    for event in reader.events():
        if isinstance(event, PageStart):
            width, height = event.page.size_points
            pages.append(RenderedPage(width, height, []))
        elif isinstance(event, Band):
            pages[-1].lines.extend(expand(event.rows))
    return pages
