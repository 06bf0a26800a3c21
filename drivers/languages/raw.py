"""Raw queues: the printer (or the file it writes) takes the listed formats as they come; the
gateway passes the bytes through and can apply no option to them but copies (the document is
sent once per copy, as CUPS backends do for raw queues)."""

from __future__ import annotations

from drivers.driver import Driver
from drivers.filters.ghostscript import GhostscriptJob, GhostscriptStage, page_list
from drivers.filters.planner import Context, Plan, ghostscript_available, passthrough_plan
from drivers.filters.stage import Stage
from drivers.model.capabilities import PORTRAIT, Capabilities, PrintOptions
from drivers.model.formats import OCTET_STREAM, PDF

# The formats a raw queue may list (its `formats` setting): the printer must take them as they
# come. Each with its IEEE 1284 CMD: token, as ippeveprinter spells them; octet-stream has none.
_RAW_COMMANDS = {
    "application/pdf": "PDF",
    "application/postscript": "PS",
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/pwg-raster": "PWG",
    "image/urf": "URF",
    "text/plain": "TXT",
    OCTET_STREAM: "",
}
RAW_PASSTHROUGH_FORMATS: tuple[str, ...] = tuple(_RAW_COMMANDS)


def raw_command_set(formats: tuple[str, ...]) -> tuple[str, ...]:
    """The 1284 command set a raw queue listing `formats` reports in printer-device-id."""
    unknown = [f for f in formats if f not in _RAW_COMMANDS]
    if unknown:
        raise ValueError(f"a raw queue cannot list {', '.join(unknown)} "
                         f"(may list: {', '.join(RAW_PASSTHROUGH_FORMATS)})")
    return tuple(dict.fromkeys(_RAW_COMMANDS[f] for f in formats if _RAW_COMMANDS[f]))


def raw_capabilities(formats: tuple[str, ...] = (OCTET_STREAM,)) -> Capabilities:
    """A raw queue's capabilities: it accepts exactly `formats` (a subset of
    RAW_PASSTHROUGH_FORMATS) and passes them through untouched.

    Only octet-stream by default: a raw queue cannot know what its printer takes, and one that
    advertised PDF or URF would hand a phone's PDF to a PCL printer as it is."""
    return Capabilities(
        make_and_model="ipp-gateway raw queue",
        manufacturer="ipp-gateway",
        model="raw queue",
        command_set=raw_command_set(formats),
        document_formats=tuple(dict.fromkeys(formats)),
        color=True,
        # Bytes pass through untouched: the gateway cannot duplex them (copies it can: the
        # document is sent again; the pages of a PDF it can pick, see `Raw`).
        duplex=False,
    )


class Raw(Driver):
    """Whatever the queue lists goes through untouched; the printer's configuration (not this
    class) says which formats those are."""

    family = "raw"
    native_formats = RAW_PASSTHROUGH_FORMATS
    convertible = RAW_PASSTHROUGH_FORMATS
    passes_through = True
    # What the document says is what prints: these can only be asked at their default.
    fixed_options = ("orientation-requested", "print-color-mode", "print-quality",
                     "print-scaling", "printer-resolution", "sides")

    def route(self, fmt: str) -> Plan:
        if fmt == PDF:
            return Plan(PDF, PDF, "pdf -> raw (ghostscript(pdfwrite) for page-ranges)",
                        _pdf_pages, reads_path=True)
        return passthrough_plan(fmt, "raw")

    def fixed(self, caps: Capabilities) -> tuple[str, ...]:
        # Pages are picked only out of a PDF, with Ghostscript.
        if PDF in caps.document_formats and ghostscript_available():
            return self.fixed_options
        return (*self.fixed_options, "page-ranges")

    def plan(self, fmt: str, caps: Capabilities) -> Plan | None:
        return self.route(fmt) if fmt in caps.document_formats else None

    def accepted_formats(self, caps: Capabilities) -> tuple[str, ...]:
        return caps.document_formats

    def honours(self, attribute: str, fmt: str, caps: Capabilities,
                options: PrintOptions) -> bool:
        # The media can only be right already (the document is not changed to fit it); copies
        # are the document sent again; portrait is the page as the document has it.
        if attribute == "copies":
            return True
        if attribute == "page-ranges":
            return fmt == PDF and ghostscript_available()
        if attribute == "orientation-requested":
            return options.orientation == PORTRAIT
        return attribute == "media" and super().honours(attribute, fmt, caps, options)


def _pdf_pages(context: Context) -> list[Stage]:
    """A PDF goes as it came, unless it is to print some pages only: then Ghostscript's
    pdfwrite keeps those (the pipeline does what the printer cannot be asked to)."""
    ranges = context.options.page_ranges
    if not ranges:
        return []
    job = GhostscriptJob(device="pdfwrite", fit_to_page=False, page_list=page_list(ranges),
                         extra=("-dAutoRotatePages=/None",))
    return [GhostscriptStage(job, context.input_path)]


DRIVERS = (Raw("raw", raw_capabilities()),)
