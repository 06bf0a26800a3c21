"""What a browser sees besides the dashboard: each printer's status page and the printer icons."""

from __future__ import annotations

import html
import io
from functools import cache
from typing import TYPE_CHECKING

from gateway.authority import url
from gateway.core.printer import Printer
from gateway.core.system import PRINT_PATH, System
from gateway.server.attributes import SUPPLIES_PAGE, supply_text
from gateway.server.http import Handler, HttpError, HttpRequest, HttpResponse, RequestBody
from gateway.server.router import Router

if TYPE_CHECKING:  # prometheus-client loads only where metrics are kept
    from gateway.metrics import Metrics

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
    rows = []
    for printer in system.printers.values():
        uri = url(request.scheme, request.host, request.port, system.printer_path(printer))
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


def supplies_page(printer: Printer) -> bytes:
    """The page printer-supply-info-uri names: the supplies the device reported (an IPP
    device), or, for the legacy transports that carry none, that they are not reported, as
    printer-supply says (level -2)."""
    name = html.escape(printer.name)
    if printer.supplies:
        items = "".join(f"<li>{html.escape(supply_text(supply))}</li>"
                        for supply in printer.supplies)
        body = f"<p>As the printer last reported them:</p><ul>{items}</ul>"
    else:
        body = ("<p>Supply levels are not reported by this printer: the gateway reaches it "
                "through a connection that carries no supply status. Check the printer's own "
                "panel for toner, ink and paper.</p>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><meta name='viewport' "
        "content='width=device-width'><title>Supplies: " + name + "</title></head><body>"
        "<h1>Supplies: " + name + "</h1>" + body +
        "<p><a href='/'>All printers</a></p></body></html>")
    return page.encode()


_HTML = (("Content-Type", "text/html; charset=utf-8"),)
_PNG = (("Content-Type", "image/png"),)


def add_web_routes(router: Router, system: System, metrics: Metrics | None = None) -> None:
    """GET (and HEAD) of the pages: the status page at each printer's path (printer-more-info)
    and the icons; "/" is the dashboard's (gateway.dashboard); with `metrics`, the Prometheus
    text at /metrics. The printer paths take POST for IPP too (gateway.server.ipp_endpoint)."""

    async def printer_page(request: HttpRequest, body: RequestBody) -> HttpResponse:
        if system.printer_for_path(request.path) is not None:
            return HttpResponse(200, _HTML, status_page(system, request))
        path = request.path.rstrip("/")
        if path.endswith(SUPPLIES_PAGE):  # a printer named "supplies" was matched above
            printer = system.printer_for_path(path.removesuffix(SUPPLIES_PAGE))
            if printer is not None:
                return HttpResponse(200, _HTML, supplies_page(printer))
        raise HttpError(404, "Not found")

    router.add(PRINT_PATH, printer_page)
    router.add(PRINT_PATH + "/", printer_page, prefix=True)
    for path, size in ICON_SIZES.items():
        router.add(path, _icon(size))
    if metrics is not None:
        router.add("/metrics", metrics.handle)


def _icon(size: int) -> Handler:
    async def icon(request: HttpRequest, body: RequestBody) -> HttpResponse:
        return HttpResponse(200, _PNG, icon_png(size))

    return icon
