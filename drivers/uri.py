"""Device URIs: `scheme://[user@]host[:port]/path?key=value&...` and `serial:/dev/tty...`.

`DeviceUri` only splits the text. What the options mean is each transport's business: its
settings are read through one `UriOptions`, which knows every option that transport reads and
refuses any other (a misspelt option must not be ignored until the first job).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from drivers.errors import UriError

# CUPS backends spell switches on/off, and accept yes/no and true/false as well: so do we,
# for every switch of every transport (one reader below), and the error says so.
TRUE_WORDS = ("on", "yes", "true", "1")
FALSE_WORDS = ("off", "no", "false", "0")
SWITCH_WORDS = "on or off (yes/no, true/false and 1/0 are accepted too)"
MAX_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True)
class DeviceUri:
    scheme: str
    host: str = ""
    port: int | None = None
    path: str = ""
    options: dict[str, str] = field(default_factory=dict)
    username: str = ""
    password: str = ""
    raw: str = ""

    @classmethod
    def parse(cls, text: str) -> DeviceUri:
        try:
            parts = urlsplit(text)
        except ValueError as exc:  # an unclosed IPv6 bracket, for one
            raise UriError(f"device URI {text!r}: {exc}") from None
        if not parts.scheme:
            raise UriError(f"device URI {text!r} has no scheme (expected e.g. socket://host:9100)")
        try:
            port = parts.port
        except ValueError as exc:
            if parts.scheme.lower() != "usb":
                raise UriError(f"device URI {text!r}: bad port ({exc})") from None
            port = None  # usb://VENDOR:PRODUCT: hex ids, not a port; the transport reads `raw`
        options: dict[str, str] = {}
        # Option names are compared without case, as CUPS backends do; a name given twice is
        # refused rather than one of the two silently winning.
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            name = key.strip().lower()
            if name in options:
                raise UriError(f"device URI {_redact(text, parts.password)!r}: option {name!r} "
                               "is given twice")
            options[name] = value
        return cls(
            scheme=parts.scheme.lower(),
            host=unquote(parts.hostname or ""),
            port=port,
            path=unquote(parts.path),
            options=options,
            username=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            raw=text,
        )

    def redacted(self) -> str:
        """The URI for logs: the password is never printed."""
        return _redact(self.raw, self.password)

    @property
    def host_port(self) -> str:
        """`host:port` as people write it, an IPv6 address in brackets; '' without a host."""
        return host_port(self.host, self.port) if self.host else ""


def _redact(raw: str, password: str | None) -> str:
    if not password:
        return raw
    return raw.replace(":" + quote(unquote(password), safe="") + "@", ":***@").replace(
        ":" + unquote(password) + "@", ":***@").replace(":" + password + "@", ":***@")


def host_port(host: str, port: int | None) -> str:
    """`127.0.0.1:9100`, `[::1]:9100`, `printer:515`: an address in words, never a tuple."""
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


class UriOptions:
    """Reads one transport's options from a device URI, each with its rules.

    Every read names a valid option; `finish()` then refuses any option in the URI that no
    read asked for, naming it and listing the valid ones. Being the only reader, it is the one
    source of truth for `check_device_uri`, the constructor and `probe`.
    """

    def __init__(self, uri: DeviceUri, form: str) -> None:
        self.uri = uri
        self.form = form  # how the scheme is written in messages: "socket://", "serial:"
        self._valid: list[str] = []

    def error(self, text: str) -> UriError:
        return UriError(f"{self.uri.redacted()}: {text}")

    def _get(self, key: str) -> str | None:
        self._valid.append(key)
        return self.uri.options.get(key)

    def text(self, key: str, default: str) -> str:
        value = self._get(key)
        return default if value is None else value

    def choice(self, key: str, default: str, allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        value = self.text(key, default).lower()
        if value not in allowed:
            raise self.error(f"{key}={value!r} is not one of {', '.join(allowed)}")
        return value

    def integer(self, key: str, default: int, *, low: int = 0, high: int = 2**31 - 1) -> int:
        value = self.optional_integer(key, low=low, high=high)
        return default if value is None else value

    def optional_integer(self, key: str, *, low: int = 0, high: int = 2**31 - 1) -> int | None:
        text = self._get(key)
        if text is None:
            return None
        # int() takes "²" and "٣" and " 5": a URI holds ASCII digits only.
        if not (text.isascii() and text.isdigit()):
            raise self.error(f"{key}={text!r} is not a whole number")
        value = int(text)
        if not low <= value <= high:
            raise self.error(f"{key}={value} is outside {low}..{high}")
        return value

    def switch(self, key: str, default: bool) -> bool:
        text = self._get(key)
        if text is None:
            return default
        value = _switch_value(text)
        if value is None:
            raise self.error(f"{key}={text!r} is not {SWITCH_WORDS}")
        return value

    def seconds(self, key: str, default: float, *, on: float | None = None) -> float:
        """A duration in seconds, fractions allowed, 0..1 week (0 means "no limit" where that
        fits). With `on`, a switch word may stand for it: on = `on` seconds, off = 0."""
        text = self._get(key)
        if text is None:
            return default
        if on is not None and (switched := _switch_value(text)) is not None:
            return on if switched else 0.0
        try:
            value = float(text) if text.strip().isascii() else float("nan")
        except ValueError:
            value = float("nan")
        if not 0 <= value <= MAX_SECONDS:  # also false for nan and inf
            either = f"{SWITCH_WORDS}, or " if on is not None else ""
            raise self.error(f"{key}={text!r} is not {either}a number of seconds "
                             f"from 0 to {MAX_SECONDS}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.uri.options) - set(self._valid))
        if not unknown:
            return
        valid = ", ".join(sorted(set(self._valid))) or "none: it takes no options"
        which = "unknown option" + ("s" if len(unknown) > 1 else "")
        raise self.error(f"{', '.join(unknown)}: {which} for {self.form} (valid: {valid})")


def _switch_value(text: str) -> bool | None:
    lowered = text.strip().lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    return None
