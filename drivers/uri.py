"""Device URIs: `scheme://[user@]host[:port]/path?key=value&...` and `serial:/dev/tty...`."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from drivers.errors import UriError


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
        parts = urlsplit(text)
        if not parts.scheme:
            raise UriError(f"device URI {text!r} has no scheme (expected e.g. socket://host:9100)")
        try:
            port = parts.port
        except ValueError as exc:
            if parts.scheme.lower() != "usb":
                raise UriError(f"device URI {text!r}: bad port ({exc})") from None
            port = None  # usb://VENDOR:PRODUCT: hex ids, not a port; the transport reads `raw`
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
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

    def option(self, key: str, default: str) -> str:
        return self.options.get(key, default)

    def int_option(self, key: str, default: int, *, low: int = 0, high: int = 2**31 - 1) -> int:
        text = self.options.get(key)
        if text is None:
            return default
        try:
            value = int(text)
        except ValueError:
            raise UriError(f"{self.redacted()}: {key}={text!r} is not a whole number") from None
        if not low <= value <= high:
            raise UriError(f"{self.redacted()}: {key}={value} is outside {low}..{high}")
        return value

    def choice_option(self, key: str, default: str, allowed: tuple[str, ...]) -> str:
        value = self.options.get(key, default).lower()
        if value not in allowed:
            raise UriError(
                f"{self.redacted()}: {key}={value!r} is not one of {', '.join(allowed)}"
            )
        return value

    def bool_option(self, key: str, default: bool) -> bool:
        text = self.options.get(key)
        if text is None:
            return default
        lowered = text.lower()
        if lowered in ("1", "on", "yes", "true"):
            return True
        if lowered in ("0", "off", "no", "false"):
            return False
        raise UriError(f"{self.redacted()}: {key}={text!r} is not on/off")

    def redacted(self) -> str:
        """The URI for logs: the password is never printed."""
        if not self.password:
            return self.raw
        return self.raw.replace(":" + quote(self.password, safe="") + "@", ":***@").replace(
            ":" + self.password + "@", ":***@"
        )
