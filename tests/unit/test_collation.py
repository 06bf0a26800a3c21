"""Collation (multiple-document-handling): which copies the printer makes and which the
pipeline makes by sending the document again, and the line printer's page repeater."""

from __future__ import annotations

from dataclasses import replace

import pytest

from drivers.driver import copy_plan, plan
from drivers.errors import ConversionError
from drivers.filters.planner import Context
from drivers.languages.text import MAX_REPEATED_PAGE, PageCopies
from drivers.model.capabilities import PrintOptions
from drivers.registry import get_driver
from gateway.core.job import options_from_template

PDF, TEXT, JPEG, URF = "application/pdf", "text/plain", "image/jpeg", "image/urf"


@pytest.mark.parametrize("template, collate", [
    ({}, True),  # the default we advertise
    ({"multiple-document-handling": "separate-documents-collated-copies"}, True),
    ({"multiple-document-handling": "separate-documents-uncollated-copies"}, False),
])
def test_job_template_sets_collation(template: dict[str, str], collate: bool) -> None:
    assert options_from_template({"copies": 2, **template}).collate is collate


@pytest.mark.parametrize("name, fmt, options, passes, copies, copies_each", [
    # PCL 5 and PCL XL copy each page in turn: collated copies are the document sent again.
    ("pcl5", PDF, PrintOptions(copies=3), 3, 1, 1),
    ("pcl5", PDF, PrintOptions(copies=3, collate=False), 1, 3, 3),
    ("pclxl", URF, PrintOptions(copies=3), 3, 1, 1),
    ("pclxl", PDF, PrintOptions(copies=3, collate=False), 1, 3, 3),
    # One page: both orders are the same, the printer counts.
    ("pcl5", JPEG, PrintOptions(copies=3), 1, 3, 3),
    ("pcl5", PDF, PrintOptions(copies=3, page_ranges=((2, 2),)), 1, 3, 3),
    ("pcl5", PDF, PrintOptions(copies=3, page_ranges=((2, 2), (2, 2))), 1, 3, 3),
    ("pcl5", PDF, PrintOptions(copies=3, page_ranges=((2, 3),)), 3, 1, 1),
    ("pcl5", PDF, PrintOptions(copies=3, page_ranges=((1, 1), (3, 3))), 3, 1, 1),
    # PostScript level 3 collates (/Collate); level 2 cannot say it.
    ("postscript", PDF, PrintOptions(copies=3), 1, 3, 3),
    ("postscript", TEXT, PrintOptions(copies=3, collate=False), 1, 3, 3),
    ("postscript2", PDF, PrintOptions(copies=3), 3, 1, 1),
    ("postscript2", PDF, PrintOptions(copies=3, collate=False), 1, 3, 3),
    ("postscript2", JPEG, PrintOptions(copies=3), 1, 3, 3),
    # A line printer counts no copies: the document again (collated), or each page again.
    ("text", TEXT, PrintOptions(copies=3), 3, 1, 1),
    ("text", TEXT, PrintOptions(copies=3, collate=False), 1, 3, 1),
    ("text", PDF, PrintOptions(copies=3, collate=False), 1, 3, 1),
    ("text", PDF, PrintOptions(copies=3, collate=False, page_ranges=((4, 4),)), 3, 1, 1),
    # Page ranges are not applied to text on a line printer: no page count from them.
    ("text", TEXT, PrintOptions(copies=3, collate=False, page_ranges=((4, 4),)), 1, 3, 1),
    ("pcl5", PDF, PrintOptions(copies=1), 1, 1, 1),
    ("raw", PDF, PrintOptions(copies=2), 2, 1, 1),  # sent once per copy
])
def test_copy_plan(name: str, fmt: str, options: PrintOptions, passes: int, copies: int,
                   copies_each: int) -> None:
    driver = get_driver(name)
    caps = driver.capabilities.with_changes(document_formats=(fmt,))
    chosen = plan(fmt, driver, caps)
    assert chosen is not None
    made = copy_plan(chosen, fmt, driver, caps, options)
    assert (made.passes, made.options.copies, made.copies_each) == (passes, copies, copies_each)
    assert made.options == replace(options, copies=copies)


@pytest.mark.parametrize("fmt", [TEXT, PDF])
@pytest.mark.parametrize("collate, repeater", [(True, False), (False, True)])
def test_line_printer_plans_repeat_pages_only_for_uncollated_copies(
    fmt: str, collate: bool, repeater: bool
) -> None:
    driver = get_driver("text")
    chosen = plan(fmt, driver, driver.capabilities)
    assert chosen is not None
    stages = chosen.stages(Context(driver, driver.capabilities,
                                   PrintOptions(copies=2, collate=collate)))
    assert (stages[-1].name == "page-copies") is repeater
    once = chosen.stages(Context(driver, driver.capabilities, PrintOptions(collate=False)))
    assert all(stage.name != "page-copies" for stage in once)


def _run(converter: PageCopies, data: bytes, chunk: int) -> bytes:
    out = b""
    for start in range(0, len(data), chunk):
        out += b"".join(converter.feed(data[start : start + chunk]))
    return out + b"".join(converter.finish())


@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_page_copies_repeats_each_page_in_turn(chunk: int) -> None:
    counted: list[None] = []
    converter = PageCopies(2, lambda: counted.append(None))
    out = _run(converter, b"one\r\n\ftwo\r\n\f\fthree", chunk)
    assert out.split(b"\f") == [b"one\r\n", b"one\r\n", b"two\r\n", b"two\r\n", b"", b"",
                                b"three", b"three", b""]
    assert len(counted) == 8  # every page sent is counted


def test_page_copies_refuses_a_page_it_cannot_hold() -> None:
    converter = PageCopies(2, lambda: None)
    assert list(converter.feed(b"x" * MAX_REPEATED_PAGE)) == []
    with pytest.raises(ConversionError, match="uncollated copies"):
        list(converter.feed(b"x"))
