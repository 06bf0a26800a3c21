"""Choosing a driver from what a printer says it speaks, and a printer name from its model.

Pure: no trio, no socket. The languages come from an IEEE 1284 device id's `CMD:` list (USB,
usblp) or from PJL `INFO CONFIG`'s `LANGUAGES` section (port 9100); `choose_driver` maps them to
one of our drivers in this order of preference (`PREFERENCE`):

1. `postscript`: POSTSCRIPT, PS, "POSTSCRIPT LEVEL 3", PS3, and the PostScript clones printers
   name instead: Brother's BR-Script (BR-SCRIPT, BR-SCRIPT3) and Kyocera's KPDL (a PostScript 3
   emulation). `postscript2` instead when every PostScript token names level 2 ("POSTSCRIPT
   LEVEL 2", PS2, BR-SCRIPT2). The printer rasterises itself, at its own resolution.
2. `pclxl`: PCLXL, "PCL XL", and PCL6 / "PCL 6". HP's own ids spell it PCLXL (the LaserJet 4050
   says `CMD:PJL,MLC,PCL,PCLXL,POSTSCRIPT`); PCL 6 is the name HP and the clone makers market
   PCL XL under, and other makers' ids use it.
3. `pcl5`: PCL, PCL5, PCL5E, PCL5C. HPGL2 alone is not PCL (a plotter language), nor are PCL3
   and PCL3GUI (inkjet dialects): they are not recognised.
4. ESC/P, an addition to the issue's list, for Epson dot-matrix printers and compatibles:
   `escp2` for ESCPL2 / ESCP2 / "ESC/P2" (Epson's own ids say ESCPL2), `escp-24pin` for ESCP24
   and a bare ESC/P (24-pin is the common ESC/P printer today), `escp-9pin` for ESCP9 (the
   9-pin id PAPPL's sample ESC/P driver matches).
5. `text`: TXT, TEXT, ASCII; and the fallback when nothing is recognised, which the reason says.

Tokens are compared without case, spaces, hyphens, slashes or dots: "PCL XL", "pclxl" and
"PCL-XL" are one token. Within a family the first token listed decides which one is named.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from drivers.ieee1284 import parse_device_id

# Driver names, best first. Each must be registered in drivers.registry (a unit test checks).
PREFERENCE: tuple[str, ...] = (
    "postscript", "postscript2", "pclxl", "pcl5", "escp2", "escp-24pin", "escp-9pin", "text",
)
FALLBACK = "text"

# What people call each driver's language, for the reason.
_FAMILY_NAMES = {
    "postscript": "PostScript",
    "postscript2": "PostScript level 2",
    "pclxl": "PCL XL",
    "pcl5": "PCL 5",
    "escp2": "ESC/P 2",
    "escp-24pin": "ESC/P (24-pin)",
    "escp-9pin": "ESC/P (9-pin)",
    "text": "plain text",
}

# Normalised token -> driver. Level-2 PostScript tokens are resolved below.
_TOKENS: dict[str, str] = {
    **dict.fromkeys(("POSTSCRIPT", "PS", "POSTSCRIPTLEVEL3", "POSTSCRIPT3", "PS3",
                     "POSTSCRIPTLEVEL3EMULATION", "BRSCRIPT", "BRSCRIPT3", "KPDL", "KPDL3"),
                    "postscript"),
    **dict.fromkeys(("POSTSCRIPTLEVEL2", "POSTSCRIPT2", "PS2", "BRSCRIPT2", "KPDL2"),
                    "postscript2"),
    **dict.fromkeys(("PCLXL", "PCL6", "PCL6ENHANCED"), "pclxl"),
    **dict.fromkeys(("PCL", "PCL5", "PCL5E", "PCL5C"), "pcl5"),
    **dict.fromkeys(("ESCPL2", "ESCP2"), "escp2"),
    **dict.fromkeys(("ESCP24", "ESCP"), "escp-24pin"),
    **dict.fromkeys(("ESCP9",), "escp-9pin"),
    **dict.fromkeys(("TXT", "TEXT", "ASCII"), "text"),
}
_IGNORED = re.compile(r"[\s\-_/.]+")

_NAME_LIMIT = 127  # gateway.config.NAME_PATTERN: a first character and 126 more
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class DriverChoice:
    driver: str  # a registered driver name (drivers.registry)
    language: str  # the language token that decided it ("POSTSCRIPT"), "" when none did
    reason: str  # one sentence for people: why this driver


def normalise(token: str) -> str:
    """The comparable form of a language token: upper case, no spaces or punctuation."""
    return _IGNORED.sub("", token).upper()


def driver_for_token(token: str) -> str | None:
    """The driver one language token means, or None when it is not one we print."""
    return _TOKENS.get(normalise(token))


def choose_driver(languages: Sequence[str], *, source: str = "the device id") -> DriverChoice:
    """The best driver for a printer that names `languages`; `source` says where they came from
    ("the device id", "PJL INFO CONFIG") for the reason."""
    listed = [token.strip() for token in languages if token.strip()]
    found: dict[str, str] = {}  # driver -> the first token naming it
    for token in listed:
        driver = driver_for_token(token)
        if driver is not None:
            found.setdefault(driver, token)
    # Level 2 only when nothing says more: a plain POSTSCRIPT beside PS2 is taken as level 3.
    if "postscript" in found and "postscript2" in found:
        del found["postscript2"]
    if not found:
        named = f" ({', '.join(listed)})" if listed else ""
        what = "no printer language we know" if listed else "no printer language"
        return DriverChoice(FALLBACK, "", f"{source} names {what}{named}: plain text is the "
                                          "fallback; set the driver by hand if it prints more")
    ranked = sorted(found, key=PREFERENCE.index)
    best, token = ranked[0], found[ranked[0]]
    family = _FAMILY_NAMES[best]
    if len(ranked) == 1:
        why = f"{family} is the only language it names that we print"
    else:
        others = ", ".join(found[driver] for driver in ranked[1:])
        why = f"{family} is preferred over {others}"
    return DriverChoice(best, token, f"{source} lists {token}: {why}")


def choice_for_device_id(device_id: str) -> DriverChoice:
    """The driver for a printer from its IEEE 1284 device id's `CMD:` (COMMAND SET) list."""
    return choose_driver(parse_device_id(device_id).command_set, source="the device id")


def printer_name(make_and_model: str, taken: Collection[str] = ()) -> str:
    """A printer name for gateway.config from a model: "Acme Laser 1" -> "Acme_Laser_1".

    Accents are dropped, other characters become "_"; "" gives "Printer". A name in `taken`
    (compared without case, as the gateway's URIs are) gets "_2", "_3", ... added.
    """
    folded = unicodedata.normalize("NFKD", make_and_model)
    ascii_text = "".join(ch for ch in folded if not unicodedata.combining(ch))
    base = _NAME_BAD.sub("_", ascii_text).strip("_.-") or "Printer"
    base = base[:_NAME_LIMIT]
    used = {name.lower() for name in taken}
    if base.lower() not in used:
        return base
    # At most len(used) names can be taken, so one of the first len(used) + 1 suffixes is free.
    for number in range(2, len(used) + 3):
        suffix = f"_{number}"
        candidate = base[: _NAME_LIMIT - len(suffix)] + suffix
        if candidate.lower() not in used:
            return candidate
    raise AssertionError("unreachable: more names taken than were given")
