"""IEEE 1284 device ids (`MFG:Acme;MDL:Laser 1;CMD:PJL,PCL;`): decoding and parsing.

USB printers answer GET_DEVICE_ID with a 2-byte length (big-endian, counting itself) and the
text. Some send the length little-endian; as CUPS does, the other byte order is tried when the
big-endian value cannot be right.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# Long and short spellings of the keys we use; values are looked up case-insensitively.
_ALIASES = {
    "manufacturer": ("MANUFACTURER", "MFG"),
    "model": ("MODEL", "MDL"),
    "command_set": ("COMMAND SET", "CMD"),
    "device_class": ("CLASS", "CLS"),
    "description": ("DESCRIPTION", "DES"),
    "serial_number": ("SERIALNUMBER", "SERN", "SN"),
}
_SMALLEST_USEFUL_LENGTH = 14  # below this a length prefix cannot hold MFG and MDL


@dataclass(frozen=True)
class DeviceId:
    """A parsed device id; `fields` keeps every key (upper-cased) with its raw value."""

    text: str
    fields: dict[str, str] = field(default_factory=dict)

    def value(self, key: str) -> str:
        for alias in _ALIASES.get(key, (key.upper(),)):
            if alias in self.fields:
                return self.fields[alias]
        return ""

    @property
    def manufacturer(self) -> str:
        return self.value("manufacturer")

    @property
    def model(self) -> str:
        return self.value("model")

    @property
    def command_set(self) -> tuple[str, ...]:
        return tuple(part.strip() for part in self.value("command_set").split(",") if part.strip())

    @property
    def device_class(self) -> str:
        return self.value("device_class")

    @property
    def description(self) -> str:
        return self.value("description")

    @property
    def serial_number(self) -> str:
        return self.value("serial_number")

    @property
    def make_and_model(self) -> str:
        """`Manufacturer Model`, without repeating a manufacturer the model already names,
        in full or short ("HP LaserJet 1220" from Hewlett-Packard, as CUPS shows it)."""
        make, model = self.manufacturer, self.model
        if make and model.lower().startswith(make.lower()):
            return model
        words = [word for word in make.replace("-", " ").split() if word]
        first = model.split(" ", 1)[0].lower()
        if words and first in (words[0].lower(), "".join(w[0] for w in words).lower()):
            return model
        return " ".join(part for part in (make, model) if part) or self.description

    def supports(self, language: str) -> bool:
        """Whether CMD lists `language` (PJL, PCL, POSTSCRIPT, ...), ignoring case."""
        wanted = language.upper()
        return any(entry.upper() == wanted for entry in self.command_set)


def parse_device_id(text: str) -> DeviceId:
    """Parse `KEY:value;KEY:value;...`; stray spaces, a missing last `;` and junk are tolerated."""
    fields: dict[str, str] = {}
    for item in text.split(";"):
        key, colon, value = item.partition(":")
        key = key.strip().upper()
        if colon and key and key not in fields:
            fields[key] = value.strip()
    return DeviceId(text=text.strip().strip("\x00"), fields=fields)


def decode_device_id_reply(reply: bytes) -> str:
    """The text of a GET_DEVICE_ID reply (length prefix removed, either byte order)."""
    if len(reply) < 2:
        return ""
    length = int.from_bytes(reply[:2], "big")
    if length > len(reply) or length < _SMALLEST_USEFUL_LENGTH:
        length = int.from_bytes(reply[:2], "little")
    if length > len(reply) or length < 2:
        length = len(reply)
    return reply[2:length].decode("latin-1").rstrip("\x00").strip()


def encode_device_id_reply(text: str) -> bytes:
    """The reply a printer sends for `text` (for simulated devices and tests)."""
    payload = text.encode("latin-1")
    return (len(payload) + 2).to_bytes(2, "big") + payload
