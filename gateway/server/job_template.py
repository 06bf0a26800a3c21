"""Job template attributes: check what a client asks against the printer's Capabilities.

`check_template` returns the accepted values (JSON-able, stored in the job record) and the
attributes to report in the unsupported group. Nothing unsupported is ever silently ignored:
it is either refused (fidelity true) or reported (status successful-ok-ignored-...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from drivers import Capabilities
from gateway.server import values
from gateway.server.values import INT32_MAX, BadValue
from ippwire.enums import ValueTag
from ippwire.model import Attribute, Collection, IntRange, Resolution

T = ValueTag
JsonValue = Any

MARGINS = ("media-bottom-margin", "media-left-margin", "media-right-margin", "media-top-margin")
MEDIA_COL_KEYWORDS = ("media-size-name", "media-source", "media-type")
SIZE_TOLERANCE = 100  # hundredths of mm, as CUPS matches a media-size to a named size


@dataclass
class TemplateCheck:
    accepted: dict[str, JsonValue]
    unsupported: list[Attribute]


def _keyword(allowed: Callable[[Capabilities], tuple[str, ...]]
             ) -> Callable[[Attribute, Capabilities], JsonValue]:
    def check(attr: Attribute, caps: Capabilities) -> JsonValue:
        return values.single_keyword(attr, allowed(caps), names=True)

    return check


def _integer_in(low: Callable[[Capabilities], int], high: Callable[[Capabilities], int]
                ) -> Callable[[Attribute, Capabilities], JsonValue]:
    def check(attr: Attribute, caps: Capabilities) -> JsonValue:
        return values.single_integer(attr, low(caps), high(caps))

    return check


def _quality(attr: Attribute, caps: Capabilities) -> JsonValue:
    return values.single_enum(attr, caps.print_qualities)


def _media(attr: Attribute, caps: Capabilities) -> JsonValue:
    size = caps.media_size(values.single_keyword(attr, names=True))
    if size is None:
        raise BadValue("no such media")
    return size.name


def _media_col(attr: Attribute, caps: Capabilities) -> JsonValue:
    accepted: dict[str, JsonValue] = {}
    for member in values.single_collection(attr):
        if member.name == "media-size":
            accepted["media-size-name"] = _media_size(values.single_collection(member), caps)
        elif member.name == "media-size-name":
            accepted["media-size-name"] = _media(member, caps)
        elif member.name == "media-source":
            accepted["media-source"] = values.single_keyword(
                member, (*caps.media_sources, "auto"), names=True)
        elif member.name == "media-type":
            accepted["media-type"] = values.single_keyword(
                member, (*caps.media_types, "auto"), names=True)
        elif member.name in MARGINS:
            accepted[member.name] = values.single_integer(member, 0, INT32_MAX)
        else:
            raise BadValue(f"media-col member {member.name!r} is not supported")
    return accepted


def _media_size(size: Collection, caps: Capabilities) -> str:
    x, y = size.get("x-dimension"), size.get("y-dimension")
    if x is None or y is None or len(size) != 2:
        raise BadValue("media-size needs x-dimension and y-dimension")
    width, height = values.single_integer(x, 1), values.single_integer(y, 1)
    match = next((m for m in caps.media if abs(m.width - width) <= SIZE_TOLERANCE
                  and abs(m.height - height) <= SIZE_TOLERANCE), None)
    if match is None:
        raise BadValue(f"no media of {width}x{height}")
    return match.name


def _resolution(attr: Attribute, caps: Capabilities) -> JsonValue:
    value = values.single_resolution(attr)
    if value.units != 3 or value.x != value.y or value.x not in caps.resolutions:
        raise BadValue(f"resolution {value.x}x{value.y} is not supported")
    return value.x


def _page_ranges(attr: Attribute, caps: Capabilities) -> JsonValue:
    ranges = values.ranges(attr, 1, INT32_MAX)
    for (_, upper), (lower, _) in pairwise(ranges):
        if lower <= upper:
            raise BadValue("page-ranges overlap or are out of order")
    if not caps.page_ranges:
        raise BadValue("page-ranges are not supported")
    return [list(r) for r in ranges]


# What an override may hold (overrides-supported): the pages and documents it applies to, and
# no attribute to change there, because none can be changed for some pages only.
OVERRIDE_SELECTORS = ("document-numbers", "pages")


def _overrides(attr: Attribute, caps: Capabilities) -> JsonValue:
    """PWG 5100.6 overrides: each collection names its pages (and documents) and nothing
    else; an override that would change an attribute is not supported. One that only
    selects changes nothing, so it is accepted and not stored (None)."""
    for override in values.collections(attr):
        if override.get("pages") is None:
            raise BadValue("an override needs pages")
        for member in override:
            if member.name not in OVERRIDE_SELECTORS:
                raise BadValue(f"{member.name!r} cannot be overridden")
            ranges = values.ranges(member, 1, INT32_MAX)
            if member.name == "document-numbers" and not any(lo <= 1 <= hi for lo, hi in ranges):
                raise BadValue("a job has one document: document-numbers must include 1")
    return None


def _finishings(attr: Attribute, caps: Capabilities) -> JsonValue:
    values.enums(attr, (3,))
    return 3


def _orientation(attr: Attribute, caps: Capabilities) -> JsonValue:
    return values.single_enum(attr, (3, 4, 5, 6))


CHECKS: dict[str, Callable[[Attribute, Capabilities], JsonValue]] = {
    "copies": _integer_in(lambda c: 1, lambda c: c.copies_max),
    "finishings": _finishings,
    "job-hold-until": _keyword(lambda c: ("no-hold", "indefinite")),
    "job-priority": _integer_in(lambda c: 1, lambda c: 100),
    "job-sheets": _keyword(lambda c: ("none",)),
    "media": _media,
    "media-col": _media_col,
    "multiple-document-handling": _keyword(lambda c: (
        "separate-documents-uncollated-copies", "separate-documents-collated-copies")),
    "number-up": _integer_in(lambda c: 1, lambda c: 1),
    "orientation-requested": _orientation,
    "output-bin": _keyword(lambda c: ("face-down",)),
    "overrides": _overrides,
    "page-ranges": _page_ranges,
    "print-color-mode": _keyword(lambda c: c.color_modes),
    "print-content-optimize": _keyword(lambda c: ("auto",)),
    "print-quality": _quality,
    "print-rendering-intent": _keyword(lambda c: ("auto",)),
    "print-scaling": _keyword(lambda c: ("auto", "auto-fit", "fill", "fit", "none")),
    "printer-resolution": _resolution,
    "sides": _keyword(lambda c: c.sides),
}


# The -default each attribute a driver may fix (Driver.fixed_options) is fixed at, as
# gateway.server.attributes advertises it.
FIXED_DEFAULTS: dict[str, Callable[[Capabilities], JsonValue]] = {
    "orientation-requested": lambda c: 3,
    "page-ranges": lambda c: None,  # no default: none is supported
    "print-color-mode": lambda c: "auto",
    "print-quality": lambda c: 4,
    "print-scaling": lambda c: "auto",
    "printer-resolution": lambda c: c.default_resolution,
    "sides": lambda c: "one-sided",
}


def check_template(job_group: list[Attribute], caps: Capabilities,
                   fixed: tuple[str, ...] = ()) -> TemplateCheck:
    """The job's template attributes checked against `caps`; those in `fixed` (the driver's
    `fixed`) are supported only at their default."""
    accepted: dict[str, JsonValue] = {}
    unsupported: list[Attribute] = []
    for attr in job_group:
        check = CHECKS.get(attr.name)
        if check is None:
            unsupported.append(Attribute.of(attr.name, T.UNSUPPORTED))
            continue
        if values.single_out_of_band(attr) is not None:
            continue  # e.g. 'default': use the printer default
        try:
            value = check(attr, caps)
            if attr.name in fixed and value != FIXED_DEFAULTS[attr.name](caps):
                raise BadValue(f"{attr.name} can only be its default")
        except BadValue:
            unsupported.append(attr)
            continue
        if value is not None:
            accepted[attr.name] = value
    return TemplateCheck(accepted, unsupported)


def template_attributes(template: dict[str, JsonValue]) -> list[Attribute]:
    """Job attributes for the template values a job was created with. A value this version
    would not have accepted (a record written by an older one) raises ValueError or
    TypeError: `template_attribute` one at a time lets a listing leave out just that one."""
    return [template_attribute(name, value) for name, value in template.items()]


def template_attribute(name: str, value: JsonValue) -> Attribute:
    integer = values.integer
    if name in ("copies", "job-priority", "number-up"):
        return Attribute.of(name, T.INTEGER, integer(T.INTEGER, value, 1))
    if name in ("print-quality", "orientation-requested", "finishings"):
        return Attribute.of(name, T.ENUM, integer(T.ENUM, value, 1, tags=(T.ENUM,)))
    if name == "printer-resolution":
        dpi = integer(T.INTEGER, value, 1)
        return Attribute.of(name, T.RESOLUTION, Resolution(dpi, dpi))
    if name == "page-ranges":
        return Attribute.of(name, T.RANGE_OF_INTEGER, *[
            IntRange(*values.range_of_integer(T.RANGE_OF_INTEGER, IntRange(lo, hi), 1))
            for lo, hi in value])
    if name == "media-col":
        return Attribute.of(name, T.BEGIN_COLLECTION, _stored_media_col(value))
    return Attribute.of(name, T.KEYWORD, values.keyword(T.KEYWORD, value))


def _stored_media_col(value: JsonValue) -> Collection:
    if not isinstance(value, dict):
        raise TypeError(f"media-col is a {type(value).__name__}")
    members = []
    for key, member in value.items():
        if key in MARGINS:
            members.append(Attribute.of(key, T.INTEGER,
                                        values.integer(T.INTEGER, member, 0, INT32_MAX)))
        elif key in MEDIA_COL_KEYWORDS:
            members.append(Attribute.of(key, T.KEYWORD, values.keyword(T.KEYWORD, member)))
        else:
            raise ValueError(f"media-col member {key!r} is unknown")
    return Collection(members)
