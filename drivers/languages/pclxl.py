"""PCL XL (PCL 6): produced by Ghostscript's pxlmono/pxlcolor devices from PDF or PostScript;
our other formats reach it through our PostScript writer. Ghostscript writes the PJL
ENTER LANGUAGE header and the closing UEL itself."""

from __future__ import annotations

from drivers.driver import Capabilities, Driver, PrintOptions, register_driver
from drivers.filters import formats
from drivers.filters.sniff import PCLXL


def device(options: PrintOptions, caps: Capabilities) -> str:
    return "pxlcolor" if options.in_color(caps) else "pxlmono"


def device_arguments(options: PrintOptions, caps: Capabilities) -> tuple[str, ...]:
    args = [f"-dNumCopies={options.copies}"] if options.copies > 1 else []
    if caps.duplex and options.duplex:
        args += ["-dDuplex=true", f"-dTumble={'true' if options.tumble else 'false'}"]
    if options.media_source == "manual":
        args.append("-dManualFeed=true")
    return tuple(args)


@register_driver("pclxl")
def pclxl_driver() -> Driver:
    caps = Capabilities(
        make_and_model="Generic PCL 6 (PCL XL) Printer", manufacturer="Generic",
        model="PCL 6 Printer", command_set=("PCLXL", "PJL"),
        document_formats=formats.accepted_by("pclxl"), resolutions=(300, 600, 1200),
        default_resolution=600, color=False, duplex=True,
    )
    # PCL XL copies are per page (EndPage's PageCopies): uncollated copies only.
    return Driver("pclxl", (PCLXL,), caps, collates=False)
