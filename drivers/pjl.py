"""Printer Job Language, sans-I/O: the job wrapper we send and the status the printer returns.

Replies are ASCII blocks ended by a form feed (`@PJL INFO STATUS` / `@PJL USTATUS DEVICE`, then
`CODE=40021`, `DISPLAY="..."`, `ONLINE=FALSE`). `CODE` is what we map; `DISPLAY` is localised
and only shown. Anything that is not PJL on the back channel (PostScript `%%[ ... ]%%`
messages, junk) is skipped.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

log = logging.getLogger("drivers.pjl")

UEL = b"\x1b%-12345X"
_MAX_BLOCK = 64 * 1024  # a reply block longer than this is junk, not PJL
_MAX_NAME = 80


def quote(text: str) -> str:
    """A PJL string value: printable ASCII, no double quotes, bounded length."""
    cleaned = "".join(ch if 32 <= ord(ch) < 127 and ch != '"' else "_" for ch in text)
    return cleaned[:_MAX_NAME]


def job_header(job_name: str, *, user: str = "", ask_status: bool = False) -> bytes:
    """UEL, `@PJL JOB NAME=...` and, for a back channel, status requests; no ENTER LANGUAGE.

    The printer language (and its ENTER LANGUAGE line) is the driver's business: the data that
    follows may itself start with a UEL and its own PJL header.
    """
    lines = [f'@PJL JOB NAME="{quote(job_name)}"']
    if user:
        lines.append(f'@PJL SET USERNAME="{quote(user)}"')
    if ask_status:
        lines += ["@PJL USTATUS DEVICE=ON", "@PJL USTATUS JOB=ON", "@PJL INFO STATUS"]
    return UEL + b"@PJL\r\n" + "".join(line + "\r\n" for line in lines).encode("ascii")


def job_footer(job_name: str) -> bytes:
    return UEL + f'@PJL EOJ NAME="{quote(job_name)}"\r\n'.encode("ascii") + UEL


STATUS_QUERY = UEL + b"@PJL\r\n@PJL INFO STATUS\r\n" + UEL
ID_QUERY = UEL + b"@PJL\r\n@PJL INFO ID\r\n" + UEL


def language_header(language: str) -> bytes:
    """Switch the printer to `language` (PCL, POSTSCRIPT ...) for the data that follows.

    A driver wraps its own data with this when the printer speaks PJL; the transport's
    `job_header`/`job_footer` (AppSocket `pjl=on`) nest around it, UEL to UEL."""
    return UEL + b"@PJL\r\n@PJL ENTER LANGUAGE=" + language.encode("ascii") + b"\r\n"


def language_footer() -> bytes:
    """Back to PJL: the printer resets and ends the language's job."""
    return UEL


@dataclass(frozen=True)
class PjlMessage:
    """One reply block: `header` is e.g. "INFO STATUS" or "USTATUS DEVICE"."""

    header: str
    fields: dict[str, str] = field(default_factory=dict)
    lines: tuple[str, ...] = ()


class PjlReplyParser:
    """Feed back-channel bytes, get whole PJL reply blocks; memory stays bounded."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes | bytearray | memoryview) -> list[PjlMessage]:
        self._buffer += data
        messages: list[PjlMessage] = []
        while (end := self._buffer.find(b"\x0c")) >= 0:
            block = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            message = parse_block(block)
            if message is not None:
                messages.append(message)
        if len(self._buffer) > _MAX_BLOCK:
            log.warning("PJL back channel: %d bytes without a form feed dropped", len(self._buffer))
            self._buffer.clear()
        return messages


def parse_block(block: bytes) -> PjlMessage | None:
    text = block.decode("latin-1")
    start = text.find("@PJL")
    if start < 0:
        return None
    lines = [line.strip() for line in text[start:].replace("\r", "").split("\n")]
    header = lines[0][4:].strip().upper()
    fields: dict[str, str] = {}
    rest = tuple(line for line in lines[1:] if line)
    for line in rest:
        key, equals, value = line.partition("=")
        if equals:
            fields[key.strip().upper()] = value.strip().strip('"')
    return PjlMessage(header=header, fields=fields, lines=rest)


@dataclass(frozen=True)
class PjlStatus:
    """A device status report: the code, the panel text and what it means in IPP terms."""

    code: int
    display: str = ""
    online: bool | None = None
    reasons: frozenset[str] = frozenset()


def status_from_message(message: PjlMessage) -> PjlStatus | None:
    """The device status carried by INFO STATUS or USTATUS DEVICE, if any."""
    if message.header not in ("INFO STATUS", "USTATUS DEVICE"):
        return None
    try:
        code = int(message.fields.get("CODE", ""))
    except ValueError:
        return None
    online_text = message.fields.get("ONLINE", "").upper()
    online = {"TRUE": True, "FALSE": False}.get(online_text)
    reasons = set(reasons_for_code(code))
    if online is False:
        reasons.add("offline-report")
    return PjlStatus(code, message.fields.get("DISPLAY", ""), online, frozenset(reasons))


# Exact codes first, then (low, high) ranges; the first match wins.
_EXACT_CODES: dict[int, tuple[str, ...]] = {
    10002: ("offline-report",),
    10006: ("toner-low-report",),
    35078: (),  # power save
    40010: ("marker-supply-missing-error",),
    40021: ("door-open-error",),
    40022: ("media-jam-error",),
    40038: ("toner-low-report",),
}
_CODE_RANGES: tuple[tuple[int, int, tuple[str, ...]], ...] = (
    (10000, 10999, ()),  # informational: ready, warming up, processing...
    (11000, 11999, ("media-empty-report",)),  # a tray is empty, another one still feeds
    (12000, 12999, ("input-tray-missing-report",)),
    (15000, 15999, ("output-area-full-error",)),
    (20000, 29999, ()),  # our own PJL had an error: nothing wrong with the printer
    (30000, 30999, ("other-warning",)),
    (32000, 32999, ()),
    (35000, 35999, ("other-report",)),
    (41000, 41999, ("media-empty-error", "media-needed-error")),
    (42000, 42999, ("media-jam-error",)),
    (44000, 44999, ("media-jam-error",)),
    (40000, 49999, ("other-error",)),
    (50000, 59999, ("other-error",)),
)


def reasons_for_code(code: int) -> frozenset[str]:
    """printer-state-reasons (with their severity suffix) for a PJL status code."""
    if code in _EXACT_CODES:
        return frozenset(_EXACT_CODES[code])
    for low, high, reasons in _CODE_RANGES:
        if low <= code <= high:
            return frozenset(reasons)
    return frozenset({"other-report"})


# -- what a printer says about itself: INFO ID and INFO CONFIG --------------------------------

# Asked together on one connection: the replies come back as two blocks, each ended by a form
# feed, in this order.
SETUP_QUERY = UEL + b"@PJL\r\n@PJL INFO ID\r\n@PJL INFO CONFIG\r\n" + UEL
_SECTION = re.compile(
    r"^(?P<name>[A-Z][A-Z0-9 _-]*?)\s*\[\s*(?P<count>\d+)\s+(?P<kind>[A-Z]+)\s*\]", re.IGNORECASE)
_MAX_ENTRIES = 64  # a section claiming more is junk


def model_from_info_id(message: PjlMessage) -> str:
    """The model an `@PJL INFO ID` reply names (`"HP LaserJet 4000"`, quotes or not); ""
    for any other block."""
    if message.header != "INFO ID" or not message.lines:
        return ""
    return message.lines[0].strip().strip('"').strip()[:_MAX_NAME]


def config_sections(message: PjlMessage) -> dict[str, tuple[str, ...]]:
    """The enumerated sections of an `@PJL INFO CONFIG` reply: `LANGUAGES [2 ENUMERATED]`
    followed by its entries (indented in the reply; the count says how many lines belong to
    it, since the block's lines arrive stripped), keyed by the upper-cased section name."""
    if message.header != "INFO CONFIG":
        return {}
    sections: dict[str, tuple[str, ...]] = {}
    lines = list(message.lines)
    index = 0
    while index < len(lines):
        match = _SECTION.match(lines[index])
        index += 1
        if match is None:
            continue  # MEMORY=..., DISPLAY LINES=...: settings, not sections
        count = min(int(match["count"]), _MAX_ENTRIES)
        entries: list[str] = []
        # The count bounds the section; a following header ends it early (a short reply).
        while (len(entries) < count and index < len(lines) and "=" not in lines[index]
               and not _SECTION.match(lines[index])):
            entries.append(lines[index])
            index += 1
        sections[match["name"].strip().upper()] = tuple(entries)
    return sections


def languages_from_config(message: PjlMessage) -> tuple[str, ...]:
    """The printer languages an `@PJL INFO CONFIG` reply lists (PCL, POSTSCRIPT, ...), each
    entry whole: "PCL XL" must not become "PCL"."""
    return tuple(entry for entry in config_sections(message).get("LANGUAGES", ()) if entry)
