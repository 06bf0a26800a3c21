"""Job template attributes: check what a client asks against the printer's Capabilities.

`check_template` returns the accepted values (JSON-able, stored in the job record) and the
attributes to report in the unsupported group. Nothing unsupported is ever silently ignored:
it is either refused (fidelity true) or reported (status successful-ok-ignored-...).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from drivers.driver import Capabilities
from gateway.ipp.enums import ValueTag
from gateway.ipp.model import Attribute, Collection, IntRange, Resolution, Value

T = ValueTag
JsonValue = Any


@dataclass
class TemplateCheck:
    accepted: dict[str, JsonValue]
    unsupported: list[Attribute]


def _single(attr: Attribute, tag: int) -> Value:
    if len(attr.values) != 1 or attr.tag != tag:
        raise ValueError
    return attr.value


def _keyword(allowed: Callable[[Capabilities], tuple[str, ...]]
             ) -> Callable[[Attribute, Capabilities], JsonValue]:
    def check(attr: Attribute, caps: Capabilities) -> JsonValue:
        if len(attr.values) != 1 or attr.tag not in (T.KEYWORD, T.NAME):
            raise ValueError
        value = attr.value
        if value not in allowed(caps):
            raise ValueError
        return value

    return check


def _integer_in(low: Callable[[Capabilities], int], high: Callable[[Capabilities], int],
                tag: int = T.INTEGER) -> Callable[[Attribute, Capabilities], JsonValue]:
    def check(attr: Attribute, caps: Capabilities) -> JsonValue:
        value = _single(attr, tag)
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError
        if not low(caps) <= value <= high(caps):
            raise ValueError
        return value

    return check


def _quality(attr: Attribute, caps: Capabilities) -> JsonValue:
    value = _single(attr, T.ENUM)
    if value not in caps.print_qualities:
        raise ValueError
    return value


def _media(attr: Attribute, caps: Capabilities) -> JsonValue:
    if len(attr.values) != 1 or attr.tag not in (T.KEYWORD, T.NAME):
        raise ValueError
    size = caps.media_size(str(attr.value))
    if size is None:
        raise ValueError
    return size.name


def _media_col(attr: Attribute, caps: Capabilities) -> JsonValue:
    value = _single(attr, T.BEGIN_COLLECTION)
    if not isinstance(value, Collection):
        raise ValueError
    accepted: dict[str, JsonValue] = {}
    for member in value:
        if member.name == "media-size":
            size = member.value
            if not isinstance(size, Collection):
                raise ValueError
            x, y = size.get("x-dimension"), size.get("y-dimension")
            if x is None or y is None:
                raise ValueError
            match = next((m for m in caps.media
                          if abs(m.width - int(x.value or 0)) <= 100  # type: ignore[arg-type]
                          and abs(m.height - int(y.value or 0)) <= 100), None)  # type: ignore[arg-type]
            if match is None:
                raise ValueError
            accepted["media-size-name"] = match.name
        elif member.name == "media-size-name":
            size_name = caps.media_size(str(member.value))
            if size_name is None:
                raise ValueError
            accepted["media-size-name"] = size_name.name
        elif member.name == "media-source":
            if member.value not in (*caps.media_sources, "auto"):
                raise ValueError
            accepted["media-source"] = member.value
        elif member.name == "media-type":
            if member.value not in (*caps.media_types, "auto"):
                raise ValueError
            accepted["media-type"] = member.value
        elif member.name.endswith("-margin"):
            if not isinstance(member.value, int):
                raise ValueError
            accepted[member.name] = member.value
        else:
            raise ValueError
    return accepted


def _resolution(attr: Attribute, caps: Capabilities) -> JsonValue:
    value = _single(attr, T.RESOLUTION)
    if not isinstance(value, Resolution) or value.units != 3 or value.x != value.y:
        raise ValueError
    if value.x not in caps.resolutions:
        raise ValueError
    return value.x


def _page_ranges(attr: Attribute, caps: Capabilities) -> JsonValue:
    ranges: list[list[int]] = []
    last = 0
    for tag, value in attr.values:
        if tag != T.RANGE_OF_INTEGER or not isinstance(value, IntRange):
            raise ValueError
        if value.lower < 1 or value.upper < value.lower or value.lower <= last:
            raise ValueError
        ranges.append([value.lower, value.upper])
        last = value.upper
    if not caps.page_ranges:
        raise ValueError
    return ranges


def _finishings(attr: Attribute, caps: Capabilities) -> JsonValue:
    if any(tag != T.ENUM or value != 3 for tag, value in attr.values):
        raise ValueError
    return 3


def _orientation(attr: Attribute, caps: Capabilities) -> JsonValue:
    value = _single(attr, T.ENUM)
    if value not in (3, 4, 5, 6):
        raise ValueError
    return value


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
    "page-ranges": _page_ranges,
    "print-color-mode": _keyword(lambda c: c.color_modes),
    "print-content-optimize": _keyword(lambda c: ("auto",)),
    "print-quality": _quality,
    "print-rendering-intent": _keyword(lambda c: ("auto",)),
    "print-scaling": _keyword(lambda c: ("auto", "auto-fit", "fill", "fit", "none")),
    "printer-resolution": _resolution,
    "sides": _keyword(lambda c: c.sides),
}


def check_template(job_group: list[Attribute], caps: Capabilities) -> TemplateCheck:
    accepted: dict[str, JsonValue] = {}
    unsupported: list[Attribute] = []
    for attr in job_group:
        check = CHECKS.get(attr.name)
        if check is None:
            unsupported.append(Attribute.of(attr.name, T.UNSUPPORTED))
            continue
        if attr.is_out_of_band:
            continue  # e.g. 'default': use the printer default
        try:
            accepted[attr.name] = check(attr, caps)
        except (ValueError, TypeError):
            unsupported.append(attr)
    return TemplateCheck(accepted, unsupported)


def template_attributes(template: dict[str, JsonValue]) -> list[Attribute]:
    """Job attributes for the template values a job was created with."""
    out: list[Attribute] = []
    for name, value in template.items():
        if name in ("copies", "job-priority", "number-up"):
            out.append(Attribute.of(name, T.INTEGER, int(value)))
        elif name in ("print-quality", "orientation-requested", "finishings"):
            out.append(Attribute.of(name, T.ENUM, int(value)))
        elif name == "printer-resolution":
            out.append(Attribute.of(name, T.RESOLUTION, Resolution(int(value), int(value))))
        elif name == "page-ranges":
            out.append(Attribute.of(name, T.RANGE_OF_INTEGER,
                                    *[IntRange(lo, hi) for lo, hi in value]))
        elif name == "media-col":
            members = [Attribute.of(k, T.INTEGER if isinstance(v, int) else T.KEYWORD, v)
                       for k, v in value.items()]
            out.append(Attribute.of(name, T.BEGIN_COLLECTION, Collection(members)))
        else:
            out.append(Attribute.of(name, T.KEYWORD, str(value)))
    return out
