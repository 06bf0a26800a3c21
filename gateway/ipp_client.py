"""A small blocking IPP client for the command line: our codec over `http.client`.

The CLI sends a handful of short requests and exits, so a blocking connection per request is
simpler than Trio here and needs no dependency. Every failure to get an IPP answer at all
(refused connection, timeout, an HTTP error, bytes that do not decode) is one
`GatewayUnreachable` naming the URL; an IPP refusal is an ordinary answer with its status.
"""

from __future__ import annotations

import http.client
import itertools
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from gateway.authority import authority as authority_of
from gateway.authority import url
from gateway.ipp.enums import GroupTag, Status
from gateway.ipp.errors import IppProtocolError
from gateway.ipp.model import Attribute, Group, Message
from gateway.ipp.reader import decode_message
from gateway.ipp.writer import AttributeSpec, encode_message, request

DEFAULT_TIMEOUT = 30.0
IPP_PORT = 631
_SCHEMES = ("ipp", "http")


class GatewayUnreachable(Exception):
    """No IPP answer came back from the gateway (the message names the URL)."""


@dataclass(frozen=True)
class GatewayUrl:
    """Where the gateway listens: `ipp://HOST:PORT` (any path given is ignored)."""

    host: str
    port: int

    @property
    def authority(self) -> str:
        return authority_of(self.host, self.port)

    def __str__(self) -> str:
        return url("ipp", self.host, self.port)

    def printer_path(self, printer: str | None) -> str:
        # Quoted: a printer name read from a spool record may hold anything.
        return "/ipp/print" if printer is None else f"/ipp/print/{quote(printer, safe='')}"

    def printer_uri(self, printer: str | None) -> str:
        return url("ipp", self.host, self.port, self.printer_path(printer))

    @classmethod
    def parse(cls, text: str) -> GatewayUrl:
        """Raise ValueError with a sentence naming `text` if it is not ipp://HOST[:PORT]."""
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:  # an unclosed IPv6 bracket or a port that is not a number
            raise ValueError(f"{text!r} is not a URL like ipp://HOST:PORT") from None
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"{text!r} is not a URL like ipp://HOST:PORT")
        return cls(parts.hostname, port if port is not None else IPP_PORT)


@dataclass
class Answer:
    """An IPP response: its status, status-message and later groups."""

    message: Message

    @property
    def status(self) -> int:
        return self.message.code

    @property
    def ok(self) -> bool:
        return 0 <= self.message.code < 0x0100  # successful-ok*, as RFC 8011 groups them

    @property
    def status_name(self) -> str:
        try:
            return Status(self.status).name.lower().replace("_", "-")
        except ValueError:
            return f"status 0x{self.status:04x}"

    @property
    def status_message(self) -> str:
        attr = self.message.operation_attributes.get("status-message")
        return str(attr.value) if attr is not None and attr.value is not None else ""

    def describe(self) -> str:
        """`client-error-not-found: job 42 does not exist`, as one line."""
        text = self.status_message
        return f"{self.status_name}: {text}" if text else self.status_name

    def groups(self, tag: GroupTag) -> list[Group]:
        return self.message.groups_of(tag)

    def first(self, tag: GroupTag) -> Group:
        return next(iter(self.groups(tag)), Group(tag))


def value_of(group: Group, name: str) -> object:
    attr: Attribute | None = group.get(name)
    return None if attr is None else attr.value


class IppClient:
    def __init__(self, url: GatewayUrl, user: str, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.url = url
        self.user = user
        self.timeout = timeout
        self._request_ids = itertools.count(1)

    def call(self, operation: int, printer: str | None,
             attrs: AttributeSpec | None = None) -> Answer:
        """One request to `printer` (None = the default printer) and its decoded answer."""
        message = request(operation, next(self._request_ids),
                          printer_uri=self.url.printer_uri(printer), user=self.user, attrs=attrs)
        body = self._post(self.url.printer_path(printer), encode_message(message))
        try:
            response, _ = decode_message(body)
        except IppProtocolError as exc:
            raise GatewayUnreachable(f"{self.url} sent an answer that is not IPP ({exc})"
                                     ) from None
        return Answer(response)

    def _post(self, path: str, body: bytes) -> bytes:
        connection = http.client.HTTPConnection(self.url.host, self.url.port,
                                                timeout=self.timeout)
        try:
            connection.request("POST", path, body=body,
                               headers={"Content-Type": "application/ipp"})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayUnreachable(f"cannot reach the gateway at {self.url}: "
                                     f"{_reason(exc)}") from None
        finally:
            connection.close()
        if response.status != 200:
            raise GatewayUnreachable(f"{self.url} answered HTTP {response.status} "
                                     f"{response.reason}, not IPP")
        return data


def _reason(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
