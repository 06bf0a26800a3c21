"""One HTTP/1.1 connection to an IPP device, carrying IPP requests: the Trio shell around
ippwire's HTTP client framing (`ippwire.http_client`) and IPP codec.

Not a transport itself (it registers no scheme): `drivers.transports.ipp` drives it.

- TLS (ipps://, https://) checks no certificate: a printer's certificate is self-signed, and
  its name is whatever the factory chose, so there is nothing to check it against. The
  connection is encrypted, not authenticated (as CUPS's ipp backend does by default).
- A small request goes whole, with Content-Length. A document streams with chunked framing
  behind `Expect: 100-continue`: the head and the IPP attributes go first, then the
  document after the device's 100 Continue, or after `CONTINUE_WAIT` seconds of silence (old
  devices never send one), as libcups does; a final answer instead (401, 426, an error)
  means nothing of the document left (that connection is closed, as its body was cut).
- HTTP 401 is answered once per challenge with the device URI's user:password (Basic or
  Digest, `ippwire.http_auth`); the challenge is then answered up front on every request, so a
  document never goes out to be refused. A 401 to our answer means the device refused the
  credentials: `AuthRefused` (HOLD). The password is never logged.
- HTTP 426 (Upgrade Required) reconnects with TLS on the same port: CUPS and our gateway
  take TLS on their IPP port, and RFC 2817's in-place upgrade is all but unused.
- The connection is kept alive between requests where the device allows it; a kept
  connection the device closed while idle is reopened once, for a request not yet answered.
"""

from __future__ import annotations

import logging
import math
import ssl
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from drivers.errors import Outcome, TransportError, os_reason
from drivers.transports import tcp
from drivers.uri import host_port
from ippwire.errors import IppProtocolError
from ippwire.http_auth import Challenge, Credentials, parse_challenges, preferred
from ippwire.http_client import (
    LAST_CHUNK,
    Body,
    End,
    Head,
    HttpResponseError,
    Interim,
    NeedData,
    ResponseHead,
    ResponseParser,
    encode_chunk,
    encode_request,
)
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message

log = logging.getLogger("drivers.ipp")

CONTINUE_WAIT = 1.0  # as libcups: the IPP attributes go first, then up to 1 s for 100
_EARLY_ANSWER_WAIT = 1.0  # after a send failed: how long to look for the device's reason
_READ = 64 * 1024
_MAX_RESPONSE = 4 << 20  # an IPP response is attributes only: a few KB, Get-Jobs some 100s
_CONTENT_TYPE = ("Content-Type", "application/ipp")


class HttpStatusError(TransportError):
    """The device answered an IPP request with an HTTP error (not 401/426, handled here)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message, Outcome.RETRY, reason="other")
        self.status = status


class AuthRefused(TransportError):
    """The device wants credentials we do not have, or refused ours: the job is held."""

    outcome = Outcome.HOLD


@dataclass(frozen=True)
class Endpoint:
    """Where a device's IPP lives and how patient to be with it."""

    host: str
    port: int
    tls: bool
    target: str  # the HTTP request target: "/ipp/print", "/printers/NAME/.printer"
    label: str  # for messages: "ipp 192.168.1.9:631/ipp/print", never a password
    contimeout: float = 30.0
    timeout: float = 30.0  # for the answer to a small request; a document's waits as long

    @property
    def host_header(self) -> str:
        return host_port(self.host, self.port)


class Authenticator:
    """The credentials for one device and the challenge it last made, shared by every
    connection of a transport: once learnt, a challenge is answered up front."""

    def __init__(self, credentials: Credentials | None) -> None:
        self.credentials = credentials
        self.challenge: Challenge | None = None

    def headers(self, method: str, target: str) -> list[tuple[str, str]]:
        if self.credentials is None or self.challenge is None:
            return []
        return [("Authorization",
                 self.credentials.authorization(self.challenge, method, target))]

    def learn(self, head: ResponseHead, answered: bool, label: str) -> None:
        """Take a 401's challenge for the next try; AuthRefused when trying again cannot help:
        no credentials, no scheme we speak, or our answer to it was refused (a Digest
        `stale=true` only asks for the same credentials with a fresh nonce)."""
        challenges = parse_challenges(head.header_values("www-authenticate"))
        chosen = preferred(challenges)
        schemes = ", ".join(sorted({c.scheme for c in challenges})) or "none"
        if self.credentials is None:
            raise AuthRefused(f"{label}: the device requires authentication ({schemes}) and "
                              "the device URI has no user:password", reason="other")
        if chosen is None:
            raise AuthRefused(f"{label}: the device asks for authentication we do not speak "
                              f"({schemes})", reason="other")
        stale = chosen.params.get("stale", "").lower() == "true"
        if answered and not stale:
            raise AuthRefused(f"{label}: the device refused our credentials", reason="other")
        self.challenge = chosen
        log.info("%s: authenticating with %s", label, chosen.scheme)


def _tls_context() -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # self-signed printer certificates: see the module doc
    return context


@dataclass
class _Asked:
    """What one request was already asked to do again."""

    answered: bool = False  # a challenge answered
    upgraded: bool = False  # moved to TLS


class IppConnection:
    def __init__(self, endpoint: Endpoint, auth: Authenticator) -> None:
        self.endpoint = endpoint
        self.auth = auth
        self._tls = endpoint.tls
        self._stream: trio.abc.Stream | None = None
        self._parser = ResponseParser(max_body_bytes=_MAX_RESPONSE)
        self._reused = False  # the open stream already carried a request
        self._eof = False  # the device closed its side of the open stream

    @property
    def label(self) -> str:
        return self.endpoint.label

    # -- whole requests -------------------------------------------------------------------

    async def call(self, message: Message) -> Message:
        """Send one IPP request with Content-Length and return the device's IPP response."""
        body = encode_message(message)
        asked = _Asked()
        for _ in range(4):  # a reconnect, a challenge, a TLS upgrade: each happens once
            headers = self.auth.headers("POST", self.endpoint.target)
            head, data = await self._exchange(body, headers)
            if await self._ask_again(head, headers, asked):
                continue
            return self._ipp_response(head, data, bool(headers))
        raise TransportError(f"{self.label}: the device keeps asking again", reason="other")

    async def _exchange(self, body: bytes, headers: list[tuple[str, str]]
                        ) -> tuple[ResponseHead, bytes]:
        request_head = encode_request(
            "POST", self.endpoint.target, self.endpoint.host_header,
            [_CONTENT_TYPE, *headers], content_length=len(body))
        for attempt in range(2):
            stream = await self._connected()
            reused = self._reused
            self._reused = True
            try:
                await self._send(stream, request_head + body)
                return await self._response(self.endpoint.timeout)
            except _Unanswered as exc:
                await self.aclose()
                if reused and attempt == 0:
                    continue  # the device closed a kept connection while it was idle
                raise lost(self.label, exc.cause) from exc.cause
        raise AssertionError("unreachable")

    async def _ask_again(self, head: ResponseHead, headers: list[tuple[str, str]],
                         asked: _Asked) -> bool:
        """Whether the request goes again: a challenge learnt (401; a second one after our
        answer is a refusal) or TLS taken on (426, once)."""
        if head.status == 401:
            self.auth.learn(head, bool(headers) and asked.answered, self.label)
            asked.answered = True
            return True
        if head.status == 426 and not self._tls and not asked.upgraded:
            await self._upgrade()
            asked.upgraded = True
            return True
        return False

    def _ipp_response(self, head: ResponseHead, data: bytes, authenticated: bool) -> Message:
        if head.status == 401:
            raise AuthRefused(f"{self.label}: the device refused our credentials",
                              reason="other")
        if head.status == 403 and authenticated:
            raise AuthRefused(f"{self.label}: the device refused our credentials (HTTP 403)",
                              reason="other")
        if head.status != 200:
            raise HttpStatusError(f"{self.label}: the device answered HTTP {head.status} "
                                  f"{head.reason}".rstrip(), head.status)
        try:
            message, _ = decode_message(data)
        except IppProtocolError as exc:
            raise TransportError(f"{self.label}: a malformed IPP response ({exc.message})",
                                 reason="other") from exc
        return message

    # -- a streamed document ---------------------------------------------------------------

    async def open_upload(self, message: Message) -> Upload:
        """Start a request whose body streams: the IPP attributes of `message`, then whatever
        `Upload.send` is given. Nothing of the document has left when this raises."""
        attributes = encode_message(message)
        asked = _Asked()
        for _ in range(4):
            headers = self.auth.headers("POST", self.endpoint.target)
            request_head = encode_request(
                "POST", self.endpoint.target, self.endpoint.host_header,
                [_CONTENT_TYPE, *headers], chunked=True, expect_continue=True)
            stream = await self._connected()
            reused = self._reused
            self._reused = True
            try:
                # The attributes go with the head: ippeveprinter says 100 Continue only once
                # it has read them (cupsd after the head), as libcups's client sends them.
                await self._send(stream, request_head + encode_chunk(attributes))
                final = await self._await_continue()
            except _Unanswered as exc:
                await self.aclose()
                if reused:
                    continue
                raise lost(self.label, exc.cause) from exc.cause
            if final is None:
                return Upload(self, stream)
            head, data = final
            await self.aclose()  # our body was cut short: the connection cannot be reused
            if await self._ask_again(head, headers, asked):
                continue
            # A final answer before any body: the device refused the request outright (an
            # IPP error needs the attributes, so this is an HTTP error).
            self._ipp_response(head, data, bool(headers))
            raise TransportError(f"{self.label}: the device answered before the document",
                                 reason="other")
        raise TransportError(f"{self.label}: the device keeps asking again", reason="other")

    async def _await_continue(self) -> tuple[ResponseHead, bytes] | None:
        """None once the body may go (100 Continue, or silence); else the final response the
        device gave instead."""
        with trio.move_on_after(CONTINUE_WAIT):
            event = await self._next_event()
            if isinstance(event, Interim):
                return None
            assert isinstance(event, Head)
            data = await self._rest_of_body(self.endpoint.timeout)
            return event.head, data
        return None

    # -- plumbing ------------------------------------------------------------------------

    async def _connected(self) -> trio.abc.Stream:
        if self._stream is not None:
            return self._stream
        e = self.endpoint
        stream: trio.abc.Stream = await tcp.connect(e.host, e.port, timeout=e.contimeout,
                                                    what=e.label)
        if self._tls:
            tls = trio.SSLStream(stream, _tls_context(), server_hostname=e.host)
            try:
                with trio.fail_after(e.contimeout):
                    await tls.do_handshake()
            except trio.TooSlowError:
                await trio.aclose_forcefully(tls)
                raise TransportError(f"{e.label}: no TLS handshake after {e.contimeout:g} s",
                                     reason="connecting-to-device") from None
            except trio.BrokenResourceError as exc:
                await trio.aclose_forcefully(tls)
                raise TransportError(f"{e.label}: TLS handshake failed ({os_reason(exc)})",
                                     reason="connecting-to-device") from exc
            stream = tls
        self._stream = stream
        self._parser = ResponseParser(max_body_bytes=_MAX_RESPONSE)
        self._eof = False
        self._reused = False
        return stream

    async def _upgrade(self) -> None:
        log.info("%s: the device requires TLS (HTTP 426): reconnecting with TLS", self.label)
        await self.aclose()
        self._tls = True

    async def _send(self, stream: trio.abc.Stream, data: bytes | bytearray | memoryview) -> None:
        try:
            await stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise _Unanswered(exc) from exc

    async def _next_event(self) -> Interim | Head | Body | End:
        stream = self._stream
        if stream is None:
            raise _Unanswered(trio.ClosedResourceError("not connected"))
        while True:
            try:
                event = self._parser.next_event()
            except HttpResponseError as exc:
                await self.aclose()
                raise TransportError(f"{self.label}: a malformed HTTP response ({exc})",
                                     reason="other") from exc
            if not isinstance(event, NeedData):
                return event
            if self._eof:
                raise _Unanswered(ConnectionResetError("the device closed the connection"))
            try:
                data = await stream.receive_some(_READ)
            except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
                raise _Unanswered(exc) from exc
            if not data:
                self._eof = True
                if self._parser.response is None:
                    raise _Unanswered(ConnectionResetError("the device closed the connection"))
            self._parser.receive(bytes(data))

    async def _response(self, timeout: float) -> tuple[ResponseHead, bytes]:  # noqa: ASYNC109
        """The final response to the request just sent (100 Continue skipped)."""
        try:
            with trio.fail_after(timeout):
                while True:
                    event = await self._next_event()
                    if isinstance(event, Head):
                        break
            data = await self._rest_of_body(timeout)
        except trio.TooSlowError:
            await self.aclose()
            raise TransportError(f"{self.label}: no answer after {timeout:g} s",
                                 reason="timed-out") from None
        return event.head, data

    async def _rest_of_body(self, timeout: float) -> bytes:  # noqa: ASYNC109
        pieces: list[bytes] = []
        head = self._parser.response
        with trio.fail_after(timeout):
            while True:
                try:
                    event = await self._next_event()
                except _Unanswered as exc:
                    await self.aclose()
                    raise lost(self.label, exc.cause) from exc.cause
                if isinstance(event, Body):
                    pieces.append(event.data)
                elif isinstance(event, End):
                    break
        if head is not None and head.keep_alive:
            self._parser.start_next()
        else:
            await self.aclose()
        return b"".join(pieces)

    async def aclose(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            await trio.aclose_forcefully(stream)


class Upload:
    """A document on its way, in chunks; `finish` ends it and returns the device's answer."""

    def __init__(self, connection: IppConnection, stream: trio.abc.Stream) -> None:
        self._connection = connection
        self._stream = stream

    async def send(self, data: bytes | bytearray | memoryview) -> None:
        if not memoryview(data).nbytes:
            return  # an empty chunk would end the body
        await self._send(encode_chunk(data))

    async def finish(self, wait: float = math.inf) -> Message:
        """Send the last chunk and wait (up to `wait` s: a device that prints as it reads
        answers only at the end) for the IPP response."""
        await self._send(LAST_CHUNK)
        connection = self._connection
        try:
            head, data = await connection._response(wait)
        except _Unanswered as exc:
            await connection.aclose()
            raise lost(connection.label, exc.cause) from exc.cause
        return connection._ipp_response(head, data, bool(connection.auth.challenge))

    async def _send(self, data: bytes | bytearray | memoryview) -> None:
        connection = self._connection
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            # The device may have answered and closed (an error, a 401 it gave late): its
            # answer says why better than "connection lost".
            early: tuple[ResponseHead, bytes] | None = None
            with trio.move_on_after(_EARLY_ANSWER_WAIT):
                try:
                    early = await connection._response(_EARLY_ANSWER_WAIT)
                except (_Unanswered, TransportError):
                    early = None
            await connection.aclose()
            if early is not None:
                head, body = early
                message = connection._ipp_response(head, body, bool(connection.auth.challenge))
                raise EarlyAnswer(message) from exc
            raise lost(connection.label, exc) from exc


class EarlyAnswer(Exception):
    """The device answered (and stopped reading) before the whole document was sent: the
    caller reads its IPP status; the document was not accepted."""

    def __init__(self, message: Message) -> None:
        super().__init__("the device answered before the end of the document")
        self.message = message


class _Unanswered(Exception):
    """The connection broke before a response head: the request may be tried again."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


def lost(label: str, exc: BaseException) -> TransportError:
    return TransportError(f"{label}: connection lost ({os_reason(exc)})", Outcome.RETRY,
                          reason="offline")


def reasons_text(values: Sequence[str]) -> str:
    return ", ".join(v for v in values if v and v != "none") or "none"
