"""The dashboard's test page: a small document naming the printer, in a format it takes.

PostScript where the printer takes it (every converting driver does: a frame, the name,
the model and the date), else plain text (line printers, raw queues that list it); a raw
queue that takes neither gets none. Pure.
"""

from __future__ import annotations

import time
from collections.abc import Collection

POSTSCRIPT = "application/postscript"
TEXT = "text/plain"


def _ps_string(text: str) -> str:
    """A PostScript string literal of `text` (Latin-1, parentheses and backslashes escaped,
    anything else as '?')."""
    safe = text.encode("latin-1", "replace").decode("latin-1")
    return "(" + "".join("\\" + c if c in "()\\" else c if 32 <= ord(c) < 127 else "?"
                         for c in safe) + ")"


def test_page(printer: str, model: str, formats: Collection[str],
              now: float | None = None) -> tuple[str, bytes] | None:
    """(document-format, document) of a test page for a printer taking `formats`."""
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(now))
    lines = [f"Test page: {printer}", model or "", f"Printed by ipp-gateway, {when}"]
    if POSTSCRIPT in formats:
        body = [
            "%!PS-Adobe-3.0", "%%Pages: 1", "%%EndComments", "%%Page: 1 1",
            "newpath 36 36 moveto 36 756 lineto 576 756 lineto 576 36 lineto closepath",
            "4 setlinewidth stroke",
            "/Helvetica-Bold findfont 28 scalefont setfont",
            f"72 680 moveto {_ps_string(lines[0])} show",
            "/Helvetica findfont 16 scalefont setfont",
            f"72 640 moveto {_ps_string(lines[1])} show",
            f"72 610 moveto {_ps_string(lines[2])} show",
            "0 1 9 { dup 54 mul 72 add 400 moveto 0.1 mul setgray",
            "  0 50 rlineto 40 0 rlineto 0 -50 rlineto closepath fill } for",
            "showpage", "%%EOF", ""]
        return POSTSCRIPT, "\n".join(body).encode("latin-1")
    if TEXT in formats:
        return TEXT, ("\n".join([*lines, "", "-" * 60, ""]) + "\f").encode()
    return None
