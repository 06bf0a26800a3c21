"""Service instance names: the one a printer wants, the ones it falls back to on a conflict,
and the record of the names chosen, kept across restarts (`<spool>/dnssd.json`).

Pure (no trio, no files): the advertiser reads and writes the record.

A printer whose name was taken on the network is "NAME (2)" (then "(3)", ...), as PAPPL does;
the next start begins with the name it ended up with, so a client that added it finds it
again, for as long as its wanted name (its info or name) stays the same.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from gateway.dnssd.txt import MAX_INSTANCE_BYTES, truncate_utf8

NUMBERED = re.compile(r"^(?P<base>.*) \((?P<n>[0-9]+)\)$")
MAX_NUMBER = 999


@dataclass(frozen=True, slots=True)
class ChosenName:
    wanted: str  # the name the printer asks for (its info or its name)
    chosen: str  # the name it is registered under


def numbered(wanted: str, number: int) -> str:
    """`wanted`, or "wanted (N)" from N = 2 on, cut so that the whole fits a DNS label."""
    if number <= 1:
        return truncate_utf8(wanted, MAX_INSTANCE_BYTES)
    suffix = f" ({number})"
    return truncate_utf8(wanted, MAX_INSTANCE_BYTES - len(suffix)) + suffix


def number_of(wanted: str, name: str) -> int:
    """Which of `wanted`'s names `name` is: 1 for itself, N for "wanted (N)", 0 for none."""
    if name == numbered(wanted, 1):
        return 1
    match = NUMBERED.match(name)
    if match is not None:
        number = int(match["n"])
        if 2 <= number <= MAX_NUMBER and numbered(wanted, number) == name:
            return number
    return 0


def next_name(wanted: str, current: str) -> str | None:
    """The name to try after `current` was taken; None once the numbers run out."""
    number = max(number_of(wanted, current), 1) + 1
    return numbered(wanted, number) if number <= MAX_NUMBER else None


def first_name(wanted: str, kept: ChosenName | None) -> str:
    """The name to register first: the one kept from the last run if the printer still
    wants the same name, else the wanted name itself."""
    if kept is not None and kept.wanted == wanted and number_of(wanted, kept.chosen):
        return kept.chosen
    return numbered(wanted, 1)


def load_names(text: str) -> dict[str, ChosenName]:
    """The record as written by `dump_names`; anything unreadable counts as no record (the
    worst outcome is a printer that starts over from its wanted name)."""
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    names: dict[str, ChosenName] = {}
    for printer, entry in data.items():
        if (isinstance(entry, dict) and isinstance(entry.get("wanted"), str)
                and isinstance(entry.get("chosen"), str)):
            names[printer] = ChosenName(entry["wanted"], entry["chosen"])
    return names


def dump_names(names: dict[str, ChosenName]) -> str:
    return json.dumps({printer: {"wanted": name.wanted, "chosen": name.chosen}
                       for printer, name in sorted(names.items())},
                      indent=2, ensure_ascii=False) + "\n"
