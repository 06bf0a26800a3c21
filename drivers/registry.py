"""The printer languages, registered explicitly: one module each under `drivers.languages`, listed
once below. Nothing registers itself by being imported.

How to add a language (say ESC/P, in `drivers/languages/escp.py`):

1. Write the module. It imports only from below it: `drivers.driver` (the `Driver` base),
   `drivers.filters.planner` (plans and the shared routes), `drivers.filters.*` (readers,
   stages, the text formatter), `drivers.model.*` (formats, capabilities, the raster model,
   PackBits), `drivers.errors`, `drivers.pjl`. It defines:

   - its writers: a raster writer fulfilling `drivers.model.raster.RasterSink` (`accepts`,
     `start_job`, `start_page`, `write_rows`, `end_page`, `end_job`, each returning bytes),
     and/or a text writer fulfilling `drivers.filters.text.TextWriter` (`start_job`,
     `page(lines)`, `end_job`), made per job from (options, caps[, layout]);
   - a `Driver` subclass with class attributes `family`, `native_formats`, `convertible`
     (every format it prints, native included: `(*DOCUMENT_FORMATS, PCL)` for PCL 5, just
     `DOCUMENT_FORMATS` for ESC/P, which has no native format), and, when
     they apply, `collates`, `pjl_language` (its `@PJL ENTER LANGUAGE=` name; None: no PJL
     wrapper) and `passes_through`;
   - its `route(fmt)`: for each format, a plan from `drivers.filters.planner` —
     `passthrough_plan(fmt, name)` for its native format; `raster_plan(fmt, output, name,
     make_raster_writer)` for PDF, PostScript, PWG, URF, JPEG and PNG (the shared raster
     pipeline into its raster writer, at the job's square `PrintOptions.dpi`, or at the
     (x, y) dpi its `resolution=` callable picks, e.g. 120x72 on a 9-pin printer;
     `render=` says whether Ghostscript halftones PDF/PostScript to 1 bit or leaves gray or
     RGB to our dither); `text_plan(output, name, make_text_writer)` for text/plain (our
     formatter: page size, margins, wrapping, form feeds, page-ranges, into its text
     writer); or a `Plan` of its own stages (`converter`, `ghostscript_job`,
     `ghostscript_stage`). Set `needs_ghostscript=True` on a plan of its own that runs it;
   - `honours(attribute, fmt, caps, options)`, overridden only for what it cannot do beyond
     the shared rules (return False for those, `super().honours(...)` for the rest);
   - `DRIVERS`: a tuple of its instances, `Driver(name, capabilities)`, capabilities built
     with `document_formats=<class>.default_formats()`.

2. Register it: add the module to the import line below and to `_LANGUAGES` (the one
   registration; nothing else in the tree changes).

3. Test it by decoding its output back (see tests/unit/test_languages_pcl.py); the planner
   tests (tests/unit/test_filters_planner.py) run over every registered driver, and
   tests/unit/test_driver_languages.py has a small language written this way.
"""

from __future__ import annotations

from drivers.driver import Driver
from drivers.languages import escp, pcl, pclxl, postscript, raw, text

# Every language module, once; each gives its drivers as `DRIVERS`.
_LANGUAGES = (raw, postscript, pcl, pclxl, text, escp)

DRIVERS: dict[str, Driver] = {
    driver.name: driver for language in _LANGUAGES for driver in language.DRIVERS
}


def driver_names() -> list[str]:
    return sorted(DRIVERS)


def get_driver(name: str) -> Driver:
    try:
        return DRIVERS[name]
    except KeyError:
        raise KeyError(f"unknown driver {name!r} (known: {', '.join(driver_names())})") from None


def pjl_drivers() -> list[str]:
    """The drivers whose jobs a `pjl` printer setting can wrap: those whose output has a PJL
    language name (PCL 5, PostScript). Raw passes bytes untouched; PCL XL gets its PJL header
    from Ghostscript."""
    return [name for name in driver_names() if DRIVERS[name].pjl_language is not None]
