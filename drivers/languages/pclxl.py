"""PCL XL (PCL 6): produced by Ghostscript's pxlmono/pxlcolor devices from PDF or PostScript;
our other formats reach it through our PostScript writer. Ghostscript writes the PJL
ENTER LANGUAGE header and the closing UEL itself, so the job is never wrapped here."""

from __future__ import annotations

from dataclasses import replace

from drivers.driver import Driver
from drivers.filters.planner import (
    Context,
    Plan,
    ghostscript_job,
    ghostscript_stage,
    passthrough_plan,
)
from drivers.filters.stage import Stage
from drivers.languages.postscript import postscript_stages
from drivers.model.capabilities import Capabilities, PrintOptions
from drivers.model.formats import DOCUMENT_FORMATS, IMAGE_FORMATS, PAGE_FORMATS, PCLXL


def device(options: PrintOptions, caps: Capabilities) -> str:
    return "pxlcolor" if options.in_color(caps) else "pxlmono"


def device_arguments(options: PrintOptions, caps: Capabilities) -> tuple[str, ...]:
    args = [f"-dNumCopies={options.copies}"] if options.copies > 1 else []
    if caps.duplex and options.duplex:
        args += ["-dDuplex=true", f"-dTumble={'true' if options.tumble else 'false'}"]
    if options.media_source == "manual":
        args.append("-dManualFeed=true")
    return tuple(args)


def _build(fmt: str, context: Context) -> list[Stage]:
    options, caps = context.options, context.caps
    pxl = device(options, caps)
    extra = device_arguments(options, caps)
    if fmt in PAGE_FORMATS:
        return [ghostscript_stage(context, ghostscript_job(context, pxl, *extra))]
    # Our PostScript asks for the copies and duplex; the pxl device turns them into PCL XL.
    job = replace(ghostscript_job(context, pxl, *extra, pages=False), fit_to_page=False)
    return [*postscript_stages(fmt, context, 3), ghostscript_stage(context, job, first=False)]


class PclXl(Driver):
    family = "pclxl"
    native_formats = (PCLXL,)
    convertible = (*DOCUMENT_FORMATS, PCLXL)
    # PCL XL copies are per page (EndPage's PageCopies): uncollated copies only.
    collates = False

    def route(self, fmt: str) -> Plan:
        if fmt == PCLXL:
            return passthrough_plan(fmt, self.name)
        via = "" if fmt in PAGE_FORMATS else "postscript -> "
        return Plan(fmt, PCLXL, f"{fmt} -> {via}ghostscript(pxl) -> pclxl",
                    lambda context: _build(fmt, context),
                    reads_path=fmt in PAGE_FORMATS or fmt in IMAGE_FORMATS,
                    needs_ghostscript=True)


DRIVERS = (PclXl("pclxl", Capabilities(
    make_and_model="Generic PCL 6 (PCL XL) Printer", manufacturer="Generic",
    model="PCL 6 Printer", command_set=("PCLXL", "PJL"),
    document_formats=PclXl.default_formats(), resolutions=(300, 600, 1200),
    default_resolution=600, color=False, duplex=True,
)),)
