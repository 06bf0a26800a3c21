"""A printer language as one object: `Driver`, the contract every language fulfils, with the rules
the languages share.

A `Driver` (raw, postscript, pcl5, ...) knows, for its language:

- `capabilities`: what a generic printer of that language can do (a printer's configuration
  changes them); `convertible`: the document formats it can print, its native ones included;
- `route(fmt)`: how a document of each format becomes its output, as a `Plan` built from the
  shared routes of `drivers.filters.planner` (pass through, the raster pipeline into its
  raster writer, the text formatter into its text writer) or from stages of its own;
- `wrap`: its job wrapper (PJL `ENTER LANGUAGE` where it has a `pjl_language` and the printer
  takes PJL);
- `honours`: which job options it cannot honour, for a format (the shared rules, narrowed);
- `collates`, `passes_through`: what the copy planning needs to know of it.

The network side asks it through `plan`, `accepted_formats`, `unsupported_options` and
`copy_plan` (also module functions below, for the `drivers` facade). The languages are listed
in `drivers.registry`, which says how to add one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import replace
from typing import ClassVar

from drivers.filters.planner import (
    Context,
    CopyPlan,
    Plan,
    converter,
    ghostscript_available,
)
from drivers.filters.stage import Stage, Wrapper
from drivers.model.capabilities import Capabilities, PrintOptions, page_rotation
from drivers.model.formats import (
    IMAGE_FORMATS,
    OCTET_STREAM,
    PDF,
    POSTSCRIPT,
    RASTER_FORMATS,
    TEXT,
)
from drivers.pjl import language_footer, language_header

# The IPP job-template attributes a language may be unable to honour, in the order they are
# reported (Validate-Job and the unsupported-attributes group).
OPTION_ATTRIBUTES = ("sides", "copies", "page-ranges", "orientation-requested",
                     "print-scaling", "print-color-mode", "media")


class Driver(ABC):
    """A printer language: what it prints, how, and what it cannot do.

    `name` is the `driver` setting of a printer; one class may make several drivers (PostScript
    level 3 and level 2), which share a `family`. `collates`: the language itself can print
    collated copies of a multi-page document (a copy count that repeats the whole document,
    not each page); where it cannot, the pipeline sends the document once per copy.
    `passes_through`: the document goes to the printer untouched (a raw queue): the gateway
    can apply no option to it, and makes copies by sending it once per copy, as CUPS backends
    do for raw queues. `fixed_options`: the IPP job-template attributes it can take only at
    their default value; the printer advertises that value alone in their `*-supported`.
    """

    family: ClassVar[str]
    native_formats: ClassVar[tuple[str, ...]]
    convertible: ClassVar[tuple[str, ...]]  # what it prints, native formats included
    collates: bool = False  # a class's default; a driver may say otherwise
    passes_through: ClassVar[bool] = False
    fixed_options: ClassVar[tuple[str, ...]] = ()
    # The `@PJL ENTER LANGUAGE=` name of its output; None: its jobs are never PJL-wrapped here.
    pjl_language: ClassVar[str | None] = None

    def __init__(self, name: str, capabilities: Capabilities) -> None:
        self.name = name
        self.capabilities = capabilities

    def __repr__(self) -> str:
        return f"<{type(self).__name__} driver {self.name!r}>"

    @classmethod
    def default_formats(cls) -> tuple[str, ...]:
        """document-format-supported for its default capabilities: auto-sensing first."""
        return (OCTET_STREAM, *cls.convertible)

    # ---- How a document prints ----------------------------------------------------------

    @abstractmethod
    def route(self, fmt: str) -> Plan | None:
        """The plan for `fmt`, one of `convertible` (None: cannot after all), before the job
        wrapper. Set `needs_ghostscript` on plans that may run it."""

    def plan(self, fmt: str, caps: Capabilities) -> Plan | None:
        """How to print `fmt` (a concrete format: sniff octet-stream first) on a printer with
        `caps`, job wrapper included; None if it cannot be printed there."""
        if fmt not in self.convertible or fmt not in caps.document_formats:
            return None
        chosen = self.route(fmt)
        if chosen is None or (chosen.needs_ghostscript and not ghostscript_available()):
            return None
        build = chosen.build
        return replace(chosen, build=lambda context: self.wrap(context, build(context)))

    def wrap(self, context: Context, stages: list[Stage]) -> list[Stage]:
        """The job wrapper around the stages' output: PJL ENTER LANGUAGE before, UEL after,
        where the language has a PJL name and the printer takes PJL."""
        if self.pjl_language is None or not context.caps.pjl:
            return stages
        head, tail = language_header(self.pjl_language), language_footer()
        return [*stages, converter("pjl", lambda _: Wrapper(head, tail), False)]

    def accepted_formats(self, caps: Capabilities) -> tuple[str, ...]:
        """document-format-supported: exactly the formats `plan` has a plan for."""
        allowed = [f for f in self.default_formats() if f in caps.document_formats]
        return tuple(f for f in allowed if f == OCTET_STREAM or self.plan(f, caps) is not None)

    # ---- Options ------------------------------------------------------------------------

    def fixed(self, caps: Capabilities) -> tuple[str, ...]:
        """The job-template attributes a printer with `caps` takes only at their default
        (`fixed_options`, and whatever its capabilities rule out): their *-supported lists
        that default alone ("page-ranges": page-ranges-supported is false)."""
        return self.fixed_options

    def unsupported_options(self, fmt: str, caps: Capabilities,
                            options: PrintOptions) -> list[str]:
        """IPP attributes of `options` this printer cannot honour for `fmt` (for Validate-Job
        and the unsupported-attributes group): never ignored silently."""
        default = PrintOptions()
        asked = {
            "sides": options.sides != default.sides,
            "copies": options.copies > 1,
            "page-ranges": bool(options.page_ranges),
            "orientation-requested": options.orientation != default.orientation,
            "print-scaling": options.print_scaling != default.print_scaling,
            "print-color-mode": options.color_mode != default.color_mode,
            "media": bool(options.media),
        }
        return [attribute for attribute in OPTION_ATTRIBUTES
                if asked[attribute] and not self.honours(attribute, fmt, caps, options)]

    def honours(self, attribute: str, fmt: str, caps: Capabilities,
                options: PrintOptions) -> bool:
        """Whether a document in `fmt` prints as `options` ask for `attribute` (one of
        OPTION_ATTRIBUTES, asked away from its default). The rules every language shares; a
        language narrows them by overriding this and asking `super()` for the rest."""
        if attribute == "sides":
            return caps.duplex
        if attribute == "page-ranges":
            return fmt not in IMAGE_FORMATS  # an image is one page
        if attribute == "orientation-requested":
            # PWG/URF pages come composed and turned by the client.
            return page_rotation(options) == 0 or fmt not in RASTER_FORMATS
        if attribute == "print-scaling":
            # Ghostscript fits pages (fit, auto, auto-fit) or leaves them (none): it cannot
            # fill. Text is flowed onto the page, which fits it at its natural size; cropping
            # it to fill the sheet would lose lines.
            return options.print_scaling != "fill" or fmt not in (PDF, POSTSCRIPT, TEXT)
        if attribute == "print-color-mode":
            return options.color_mode != "color" or caps.color
        if attribute == "media":
            return caps.media_size(options.media) is not None
        return True  # copies: every language here counts them or has them repeated

    # ---- Copies -------------------------------------------------------------------------

    def copy_plan(self, chosen: Plan, fmt: str, caps: Capabilities,
                  options: PrintOptions) -> CopyPlan:
        """Collated copies (multiple-document-handling) on every printer.

        The printer's own copy count is used where it gives the order asked for: uncollated
        copies (PCL 5 ESC&l#X, PCL XL PageCopies and PostScript /NumCopies all repeat each
        page), collated copies in a language that collates (PostScript level 3 /Collate), and a
        document of one page, whose two orders are the same. Otherwise collated copies are the
        document sent once per copy, and so are any copies of a document passed through. The
        page count is not known before converting (PDF, PostScript, text, PWG and URF, whose
        header counts a client may leave wrong), so only images and a page-ranges of one page
        count as one page; any other document is repeated, which is right whatever its
        length."""
        copies = options.copies
        once = replace(options, copies=1)
        if copies <= 1:
            return CopyPlan(1, options, 1)
        if self.passes_through:  # nothing in the document to set a count in: send it again
            return CopyPlan(copies, once, 1)
        one_page = self.single_page(fmt, caps, options)
        if chosen.repeats_for_copies:  # no copy count at all: the pipeline makes every copy
            if options.collate or one_page:
                return CopyPlan(copies, once, 1)
            return CopyPlan(1, options, 1)  # the plan repeats each page itself
        if options.collate and not one_page and not self.collates:
            return CopyPlan(copies, once, 1)
        return CopyPlan(1, options, copies)

    def single_page(self, fmt: str, caps: Capabilities, options: PrintOptions) -> bool:
        """Whether this document is known, before converting it, to print as one page."""
        if fmt in IMAGE_FORMATS:
            return True
        if not options.page_ranges or not self.honours("page-ranges", fmt, caps, options):
            return False
        pages: set[int] = set()
        for lo, hi in options.page_ranges:
            if hi - lo > 1:
                return False
            pages.update(range(lo, hi + 1))
        return len(pages) == 1


# The same questions as functions of a driver: what the `drivers` facade exports.


def plan(fmt: str, driver: Driver, caps: Capabilities) -> Plan | None:
    return driver.plan(fmt, caps)


def accepted_formats(driver: Driver, caps: Capabilities) -> tuple[str, ...]:
    return driver.accepted_formats(caps)


def unsupported_options(fmt: str, driver: Driver, caps: Capabilities,
                        options: PrintOptions) -> list[str]:
    return driver.unsupported_options(fmt, caps, options)


def copy_plan(chosen: Plan, fmt: str, driver: Driver, caps: Capabilities,
              options: PrintOptions) -> CopyPlan:
    return driver.copy_plan(chosen, fmt, caps, options)


def family(driver: Driver) -> str:
    """The language family ("postscript" for both levels; "raw" passes through). Prefer the
    driver's own attributes (`passes_through`) to comparing this."""
    return driver.family
