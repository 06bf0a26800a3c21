"""IPP messages as plain data: order kept, every value carries its syntax tag.

An attribute is a name plus one or more `(tag, value)` pairs, so a 1setOf may mix syntaxes
where IPP allows it (integer with rangeOfInteger, keyword with name). Python types by tag:

| tag                                   | Python value                     |
|---------------------------------------|----------------------------------|
| integer, enum                         | int                              |
| boolean                               | bool                             |
| octetString, extension, unknown tags  | bytes                            |
| dateTime                              | datetime (timezone-aware)        |
| resolution / rangeOfInteger           | Resolution / IntRange            |
| begCollection                         | Collection                       |
| textWithLanguage / nameWithLanguage   | StringWithLanguage               |
| text, name, keyword, uri, charset ... | str                              |
| out-of-band (unknown, no-value, ...)  | None                             |
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Union

from ippwire.enums import GroupTag


@dataclass(frozen=True)
class Resolution:
    x: int
    y: int
    units: int = 3  # 3 = dots per inch, 4 = dots per centimetre


@dataclass(frozen=True)
class IntRange:
    lower: int
    upper: int


@dataclass(frozen=True)
class StringWithLanguage:
    text: str
    language: str


Value = Union[
    int, bool, bytes, str, datetime, Resolution, IntRange, StringWithLanguage, "Collection", None
]


@dataclass
class Attribute:
    name: str
    values: list[tuple[int, Value]]

    @classmethod
    def of(cls, name: str, tag: int, *values: Value) -> Attribute:
        """One syntax for every value; out-of-band tags take no values."""
        if not values and 0x10 <= tag <= 0x1F:  # also unassigned out-of-band tags
            return cls(name, [(tag, None)])
        return cls(name, [(tag, v) for v in values])

    @property
    def tag(self) -> int:
        return self.values[0][0]

    @property
    def value(self) -> Value:
        return self.values[0][1]

    @property
    def plain(self) -> list[Value]:
        return [v for _, v in self.values]

    @property
    def is_out_of_band(self) -> bool:
        return 0x10 <= self.tag <= 0x1F


class Collection:
    """An ordered collection value: member attributes by name."""

    def __init__(self, members: Iterable[Attribute] = ()) -> None:
        self._members: dict[str, Attribute] = {}
        for member in members:
            self.add(member)

    def add(self, member: Attribute) -> None:
        self._members[member.name] = member

    def get(self, name: str) -> Attribute | None:
        return self._members.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._members

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self._members.values())

    def __len__(self) -> int:
        return len(self._members)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collection) and list(self) == list(other)

    def __repr__(self) -> str:
        return f"Collection({list(self)!r})"


@dataclass
class Group:
    tag: int
    attributes: list[Attribute] = field(default_factory=list)

    def get(self, name: str) -> Attribute | None:
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        return None

    def add(self, attribute: Attribute) -> None:
        self.attributes.append(attribute)

    def __contains__(self, name: object) -> bool:
        return any(a.name == name for a in self.attributes)

    def __iter__(self) -> Iterator[Attribute]:
        return iter(self.attributes)

    def __len__(self) -> int:
        return len(self.attributes)


@dataclass
class Message:
    """A request (code = operation-id) or a response (code = status-code)."""

    version: tuple[int, int]
    code: int
    request_id: int
    groups: list[Group] = field(default_factory=list)

    def group(self, tag: int) -> Group | None:
        for group in self.groups:
            if group.tag == tag:
                return group
        return None

    def groups_of(self, tag: int) -> list[Group]:
        return [g for g in self.groups if g.tag == tag]

    @property
    def operation_attributes(self) -> Group:
        return self.group(GroupTag.OPERATION) or Group(GroupTag.OPERATION)
