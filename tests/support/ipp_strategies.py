"""Hypothesis strategies for IPP: every kind of wire value (collections nested to a chosen
depth), attributes, groups and whole messages, as the codec must round-trip them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache

from hypothesis import strategies as st

from ippwire.enums import GroupTag
from ippwire.model import (
    Attribute,
    Collection,
    Group,
    IntRange,
    Message,
    Resolution,
    StringWithLanguage,
    Value,
)

INT32 = st.integers(-(2**31), 2**31 - 1)
ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
NAMES = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)
UTC_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _wire_precision(moment: datetime, zone: timezone) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 100_000 * 100_000, tzinfo=zone)


DATE_TIMES = st.builds(_wire_precision, st.datetimes(), UTC_OFFSETS)
LANGUAGE_STRINGS = st.builds(StringWithLanguage, st.text(max_size=16), ASCII)
OUT_OF_BAND_TAGS = st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x1F])
OPAQUE_TAGS = st.sampled_from([0x20, 0x24, 0x2F, 0x38, 0x40, 0x43, 0x4B, 0x5F, 0x60, 0x7F, 0xFF])
STRING_TAGS = st.sampled_from([0x41, 0x42])
ASCII_TAGS = st.sampled_from([0x44, 0x45, 0x46, 0x47, 0x48, 0x49])

PLAIN_VALUES: st.SearchStrategy[tuple[int, Value]] = st.one_of(
    st.tuples(st.sampled_from([0x21, 0x23]), INT32),
    st.tuples(st.just(0x22), st.booleans()),
    st.tuples(st.just(0x30), st.binary(max_size=16)),
    st.tuples(st.just(0x31), DATE_TIMES),
    st.tuples(st.just(0x32), st.builds(Resolution, INT32, INT32, st.integers(-128, 127))),
    st.tuples(st.just(0x33), st.builds(IntRange, INT32, INT32)),
    st.tuples(st.sampled_from([0x35, 0x36]), LANGUAGE_STRINGS),
    st.tuples(STRING_TAGS, st.text(max_size=16)),
    st.tuples(ASCII_TAGS, ASCII),
    st.tuples(OUT_OF_BAND_TAGS, st.none()),
    st.tuples(OPAQUE_TAGS, st.binary(max_size=16)),
)


@cache
def values(depth: int) -> st.SearchStrategy[tuple[int, Value]]:
    """Plain values, or collections nested up to `depth` levels."""
    if depth == 0:
        return PLAIN_VALUES
    members = st.lists(attributes(depth - 1), max_size=3, unique_by=lambda a: a.name)
    return st.one_of(PLAIN_VALUES, st.tuples(st.just(0x34), members.map(Collection)))


@cache
def attributes(depth: int) -> st.SearchStrategy[Attribute]:
    return st.builds(Attribute, NAMES, st.lists(values(depth), min_size=1, max_size=3))


GROUP_TAGS = st.sampled_from([tag for tag in GroupTag if tag != GroupTag.END])
GROUPS = st.builds(Group, GROUP_TAGS, st.lists(attributes(3), max_size=4))
MESSAGES = st.builds(
    Message,
    # Every header field is signed on the wire (RFC 8010 3.1.1, ippwire.header).
    st.tuples(st.integers(-128, 127), st.integers(-128, 127)),
    st.integers(-(2**15), 2**15 - 1),
    INT32,  # request-id is signed on the wire
    st.lists(GROUPS, max_size=3),
)
DOCUMENTS = st.binary(max_size=64)
