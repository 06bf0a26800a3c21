"""What a browser sees: a small status page and the printer icons (the dashboard comes later)."""

from __future__ import annotations

import html
import io
from functools import cache

from gateway.core.system import System
from gateway.server.http import HttpRequest, HttpResponse

ICON_SIZES = {"/icon-sm.png": 48, "/icon.png": 128, "/icon-lg.png": 512}


@cache
def icon_png(size: int) -> bytes:
    """A plain printer glyph drawn once per size (no image files to ship or lose)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGBA", (size, size), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = size / 16
    draw.rectangle((4 * unit, 1 * unit, 12 * unit, 6 * unit), fill=(250, 250, 250, 255),
                   outline=(60, 60, 60, 255), width=max(1, size // 48))
    draw.rounded_rectangle((1 * unit, 5 * unit, 15 * unit, 12 * unit), radius=unit,
                           fill=(70, 90, 120, 255))
    draw.rectangle((4 * unit, 10 * unit, 12 * unit, 15 * unit), fill=(255, 255, 255, 255),
                   outline=(60, 60, 60, 255), width=max(1, size // 48))
    draw.ellipse((12 * unit, 6.5 * unit, 13.5 * unit, 8 * unit), fill=(90, 200, 120, 255))
    out = io.BytesIO()
    image.save(out, "PNG", optimize=True)
    return out.getvalue()


def status_page(system: System, request: HttpRequest) -> bytes:
    authority = f"[{request.host}]:{request.port}" if ":" in request.host else (
        f"{request.host}:{request.port}")
    rows = []
    for printer in system.printers.values():
        uri = f"ipp://{authority}{system.printer_path(printer)}"
        active = sum(1 for j in system.jobs_of(printer) if not j.state.is_terminal)
        rows.append(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>".format(
                *(html.escape(str(x)) for x in (
                    printer.name, printer.state.name.lower(), printer.message, active, uri))))
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>ipp-gateway</title>"
        "<link rel='icon' href='/icon-sm.png'></head><body><h1>ipp-gateway</h1>"
        "<table border='1' cellpadding='4'><tr><th>Printer</th><th>State</th><th>Message</th>"
        "<th>Active jobs</th><th>URI</th></tr>" + "".join(rows) + "</table></body></html>"
    )
    return page.encode()


def web_response(system: System, request: HttpRequest) -> HttpResponse:
    if request.path in ICON_SIZES:
        return HttpResponse(200, [("content-type", "image/png")],
                            icon_png(ICON_SIZES[request.path]))
    if request.path == "/" or system.printer_for_path(request.path) is not None:
        return HttpResponse(200, [("content-type", "text/html; charset=utf-8")],
                            status_page(system, request))
    return HttpResponse(404, [("content-type", "text/plain")], b"Not found\n")
