"""A small blocking IPP client for the command line: our codec over `http.client`.

The CLI sends a handful of short requests and exits, so a blocking connection per request is
simpler than Trio here and needs no dependency. Every failure to get an IPP answer at all
(refused connection, timeout, an HTTP error, bytes that do not decode, a certificate we may
not trust) is one `GatewayUnreachable` naming the URL; an IPP refusal is an ordinary answer
with its status.

Logging in follows the gateway (gateway.authn): a request is first sent as the URL says,
without credentials. A 426 (or a 401 over plain HTTP) moves the client to TLS on the same
host and port, and a 401 over TLS makes it ask its password source once and send Basic
credentials; from then on every request goes over TLS with them. Credentials never travel
over plain HTTP, and a refused login is `LoginFailed`, a login we cannot give `LoginNeeded`.

The gateway's certificate is self-signed, so the usual CA check cannot apply: the client pins
it, comparing the certificate the server shows with the one in the file it is given (the
gateway's `<spool>/tls/server.crt`, or a copy). Without a readable file it accepts the
certificate unchecked only when the peer it reached is a loopback address (the gateway on
this very host); any other peer is refused before a byte of the request is sent.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ipaddress
import itertools
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from gateway.authority import authority as authority_of
from gateway.authority import url
from ippwire.enums import GroupTag, Status
from ippwire.errors import IppProtocolError
from ippwire.model import Attribute, Group, Message
from ippwire.reader import decode_message
from ippwire.writer import AttributeSpec, encode_message, request

log = logging.getLogger("gateway.ctl")

DEFAULT_TIMEOUT = 30.0
IPP_PORT = 631
_SCHEMES = {"ipp": False, "http": False, "ipps": True, "https": True}  # -> over TLS
# Plain, then TLS, then TLS with credentials: a gateway that asks for more is not followed.
_MAX_ROUNDS = 3
_PEM_BEGIN = "-----BEGIN CERTIFICATE-----"
_PEM_END = "-----END CERTIFICATE-----"

PasswordSource = Callable[[], str | None]


class GatewayUnreachable(Exception):
    """No IPP answer came back from the gateway (the message names the URL)."""


class UntrustedGateway(GatewayUnreachable):
    """The gateway's TLS certificate could not be checked, or is not the pinned one."""


class LoginNeeded(Exception):
    """The gateway asks for a login and the client has no password to give."""

    def __init__(self, where: str, reason: str) -> None:
        super().__init__(f"the gateway at {where} needs a login"
                         + (f" ({reason})" if reason else ""))
        self.reason = reason


class LoginFailed(Exception):
    """The gateway refused the user name and password the client sent."""


@dataclass(frozen=True)
class GatewayUrl:
    """Where the gateway listens: `ipp://HOST:PORT`, or `ipps://` to start over TLS (any
    path given is ignored)."""

    host: str
    port: int
    tls: bool = False

    @property
    def authority(self) -> str:
        return authority_of(self.host, self.port)

    @property
    def scheme(self) -> str:
        return "ipps" if self.tls else "ipp"

    def __str__(self) -> str:
        return url(self.scheme, self.host, self.port)

    def over_tls(self) -> GatewayUrl:
        return GatewayUrl(self.host, self.port, tls=True)

    def printer_path(self, printer: str | None) -> str:
        # Quoted: a printer name read from a spool record may hold anything.
        return "/ipp/print" if printer is None else f"/ipp/print/{quote(printer, safe='')}"

    def printer_uri(self, printer: str | None) -> str:
        return url(self.scheme, self.host, self.port, self.printer_path(printer))

    @classmethod
    def parse(cls, text: str) -> GatewayUrl:
        """Raise ValueError with a sentence naming `text` if it is not ipp[s]://HOST[:PORT]."""
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:  # an unclosed IPv6 bracket or a port that is not a number
            raise ValueError(f"{text!r} is not a URL like ipp://HOST:PORT") from None
        if parts.scheme not in _SCHEMES or not parts.hostname:
            raise ValueError(f"{text!r} is not a URL like ipp://HOST:PORT")
        return cls(parts.hostname, port if port is not None else IPP_PORT,
                   tls=_SCHEMES[parts.scheme])


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


@dataclass(frozen=True)
class _Reply:
    status: int
    reason: str
    content_type: str
    body: bytes


class IppClient:
    """Requests to one gateway as `user`. `password` is asked (at most once) when the
    gateway wants a login; `certificate` is the PEM file its TLS certificate is pinned to."""

    def __init__(self, url: GatewayUrl, user: str, timeout: float = DEFAULT_TIMEOUT, *,
                 password: PasswordSource | None = None,
                 certificate: Path | None = None) -> None:
        self.url = url
        self.user = user
        self.timeout = timeout
        self._password = password
        self._certificate = certificate
        self._pinned: bytes | None = None
        self._pin_problem = ""
        self._pin_read = False
        self._tls = url.tls
        self._authorization: str | None = None  # the Basic value, once a login was asked
        self._request_ids = itertools.count(1)

    @property
    def logged_in(self) -> bool:
        """Whether requests now carry credentials (the gateway asked for a login)."""
        return self._authorization is not None

    @property
    def where(self) -> GatewayUrl:
        """The URL requests go to now: over TLS once the gateway asked for it."""
        return self.url.over_tls() if self._tls else self.url

    def call(self, operation: int, printer: str | None,
             attrs: AttributeSpec | None = None) -> Answer:
        """One request to `printer` (None = the default printer) and its decoded answer.
        Raises GatewayUnreachable, LoginNeeded or LoginFailed."""
        for _ in range(_MAX_ROUNDS):
            where = self.where
            message = request(operation, next(self._request_ids),
                              printer_uri=where.printer_uri(printer), user=self.user,
                              attrs=attrs)
            reply = self._post(where.printer_path(printer), encode_message(message))
            if reply.status == 200:
                return Answer(self._decode(reply.body))
            if reply.status == 426 or (reply.status == 401 and not self._tls):
                if self._tls:
                    break  # already over TLS: nothing further to upgrade to
                log.debug("%s asks for TLS (HTTP %d): trying %s", self.url, reply.status,
                          self.url.over_tls())
                self._tls = True
                continue
            if reply.status == 401:
                if self._authorization is not None:
                    raise LoginFailed(f"the gateway at {where} refused the login of "
                                      f"{self.user!r}: {self._reason(reply) or 'wrong password'}")
                password = self._password() if self._password is not None else None
                if not password:
                    raise LoginNeeded(str(where), self._reason(reply))
                self._authorization = basic_authorization(self.user, password)
                continue
            break
        raise GatewayUnreachable(f"{self.where} answered HTTP {reply.status} {reply.reason}, "
                                 "not IPP")

    def _decode(self, body: bytes) -> Message:
        try:
            response, _ = decode_message(body)
        except IppProtocolError as exc:
            raise GatewayUnreachable(f"{self.where} sent an answer that is not IPP ({exc})"
                                     ) from None
        return response

    @staticmethod
    def _reason(reply: _Reply) -> str:
        """The status-message of a refusal's IPP body, if it has one."""
        if not reply.content_type.startswith("application/ipp"):
            return ""
        try:
            return Answer(decode_message(reply.body)[0]).status_message
        except IppProtocolError:
            return ""

    def _post(self, path: str, body: bytes) -> _Reply:
        headers = {"Content-Type": "application/ipp"}
        if self._authorization is not None and self._tls:
            headers["Authorization"] = self._authorization
        connection = self._connect()
        try:
            connection.request("POST", path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            raise GatewayUnreachable(f"cannot reach the gateway at {self.where}: "
                                     f"{_reason(exc)}") from None
        finally:
            connection.close()
        return _Reply(response.status, response.reason,
                      response.getheader("Content-Type", ""), data)

    def _connect(self) -> http.client.HTTPConnection:
        """A connection, already open and, over TLS, with the peer's certificate checked
        (before any request, so that credentials go only to the gateway we mean)."""
        connection: http.client.HTTPConnection
        if self._tls:
            connection = http.client.HTTPSConnection(self.url.host, self.url.port,
                                                     timeout=self.timeout,
                                                     context=_client_context())
        else:
            connection = http.client.HTTPConnection(self.url.host, self.url.port,
                                                    timeout=self.timeout)
        try:
            connection.connect()
            if isinstance(connection.sock, ssl.SSLSocket):
                self._check_peer(connection.sock)
        except (OSError, http.client.HTTPException) as exc:
            connection.close()
            raise GatewayUnreachable(f"cannot reach the gateway at {self.where}: "
                                     f"{_reason(exc)}") from None
        except UntrustedGateway:
            connection.close()
            raise
        return connection

    def _check_peer(self, sock: ssl.SSLSocket) -> None:
        shown = sock.getpeercert(binary_form=True) or b""
        pinned = self._pinned_certificate()
        if pinned is not None:
            if shown != pinned:
                raise UntrustedGateway(
                    f"the gateway at {self.where} shows a TLS certificate (SHA-256 "
                    f"{_fingerprint(shown)}) that is not the one in {self._certificate}: "
                    "not sending anything; if it is the right gateway, pass its current "
                    "certificate (its <spool>/tls/server.crt) with --certificate FILE")
            return
        if _is_loopback(sock.getpeername()[0]):
            # The gateway on this very host: reaching loopback is proof enough of the peer.
            log.debug("%s: certificate not checked (%s); the peer is on loopback", self.where,
                      self._pin_problem)
            return
        raise UntrustedGateway(
            f"cannot check the TLS certificate of the gateway at {self.where}: "
            f"{self._pin_problem}; copy the gateway's <spool>/tls/server.crt here and pass "
            "it with --certificate FILE")

    def _pinned_certificate(self) -> bytes | None:
        """The DER of the first certificate in the pinned file; None (and why, in
        `_pin_problem`) when there is no such file to read."""
        if not self._pin_read:
            self._pin_read = True
            if self._certificate is None:
                self._pin_problem = "no certificate file to compare it with"
            else:
                try:
                    self._pinned = first_certificate(self._certificate.read_text("ascii"))
                except (OSError, UnicodeDecodeError) as exc:
                    self._pin_problem = f"{self._certificate} is not readable ({_reason(exc)})"
                except ValueError as exc:
                    self._pin_problem = f"{self._certificate}: {exc}"
        return self._pinned


def first_certificate(pem: str) -> bytes:
    """The DER bytes of the first certificate in PEM text (a configured file may hold a
    chain after it). Raises ValueError."""
    start = pem.find(_PEM_BEGIN)
    end = pem.find(_PEM_END, start)
    if start < 0 or end < 0:
        raise ValueError("no PEM certificate in it")
    try:
        return base64.b64decode("".join(pem[start + len(_PEM_BEGIN):end].split()),
                                validate=True)
    except ValueError:
        raise ValueError("its PEM certificate is not base64") from None


def basic_authorization(user: str, password: str) -> str:
    """The `Authorization` value for HTTP Basic (RFC 7617, UTF-8 as gateway.authn reads)."""
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def _client_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # No CA vouches for a self-signed certificate: _check_peer pins it instead, before the
    # request is sent.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _is_loopback(address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        return parsed.ipv4_mapped.is_loopback
    return parsed.is_loopback


def _fingerprint(der: bytes) -> str:
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def _reason(exc: Exception) -> str:
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed ({exc.reason or exc})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__
