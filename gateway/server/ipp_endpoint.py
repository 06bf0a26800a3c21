"""The IPP application the HTTP layer serves: body bytes -> IppReader -> operations."""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from gateway import __version__ as VERSION
from gateway.authn import Authenticator, password_file
from gateway.core.system import PRINT_PATH, System
from gateway.dashboard.routes import Dashboard
from gateway.dashboard.session import Sessions
from gateway.dashboard.view import ServerInfo
from gateway.passwords import PasswordFile
from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server.http import HttpError, HttpRequest, HttpResponse, RequestBody, Takeover
from gateway.server.operation_table import dispatch
from gateway.server.operations import Challenged, Endpoint, Reply, encode_reply, printable
from gateway.server.router import IPP_HEADERS, Router, ipp_post
from gateway.server.web import add_web_routes
from ippwire.enums import Status
from ippwire.errors import IppProtocolError
from ippwire.header import HEADER
from ippwire.model import Message
from ippwire.reader import NEED_DATA, DocumentData, EndOfDocument, IppReader, Limits
from ippwire.reader import RequestReceived as IppRequestReceived

if TYPE_CHECKING:  # the module (and prometheus-client) loads only where metrics are kept
    from gateway.metrics import Metrics

log = logging.getLogger("gateway.ipp")
# What may stand in a URI authority we build from the Host header (IPv6 comes unbracketed,
# a zone id after "%"): anything else would make every URI in the answer unencodable.
_HOST = re.compile(r"[A-Za-z0-9._~%:!$&'()*+,;=-]{1,255}")


class IppApp:
    """The gateway's `HttpApp`: its `router` serves IPP (POST application/ipp) on every
    printer path, and the pages (gateway.server.web). With `tls_upgrade` (TLS on) it takes
    RFC 2817 upgrades to TLS on every path (gateway.server.router). With `metrics` it
    serves GET /metrics and counts every request (gateway.metrics)."""

    def __init__(self, system: System, limits: Limits | None = None, *,
                 tls_upgrade: Callable[[HttpRequest], Takeover] | None = None,
                 authenticator: Authenticator | None = None,
                 server_info: Callable[[], ServerInfo] | None = None,
                 sessions: Sessions | None = None, config_file: Path | None = None,
                 request_reload: Callable[[], None] | None = None,
                 metrics: Metrics | None = None) -> None:
        self.system = system
        self.metrics = metrics
        self.limits = limits or Limits()
        # Who sent each request (gateway.authn); the system's [auth] and password file
        # unless the caller keeps one across reloads (its per-address backoff).
        self.authenticator = authenticator or Authenticator(
            system.config.auth, PasswordFile(password_file(system.config.spool)))
        self.router = Router(tls_upgrade=tls_upgrade)
        post = ipp_post(self.handle_ipp)
        self.router.add(PRINT_PATH, post, methods=("POST",))
        self.router.add(PRINT_PATH + "/", post, methods=("POST",), prefix=True)
        add_web_routes(self.router, system, metrics)
        self.dashboard = Dashboard(
            system, self.authenticator,
            server_info or (lambda: ServerInfo(VERSION, auth_enabled=system.config.auth.enabled)),
            sessions, config_file=config_file, request_reload=request_reload)
        self.dashboard.add_routes(self.router)
        # The app is its router: no hop per request, but the one that counts them.
        self.handle = self.router.handle if metrics is None else metrics.counting(
            self.router.handle)

    async def handle_ipp(self, request: HttpRequest, body: RequestBody) -> bytes | HttpResponse:
        if not _HOST.fullmatch(request.host) or not 0 <= request.port <= 0xFFFF:
            raise HttpError(400, "Invalid Host header", close=True)
        reader = IppReader(self.limits)
        head = bytearray()

        async def pull() -> None:
            data = await body.receive_some()
            if len(head) < HEADER.size:
                head.extend(data[: HEADER.size - len(head)])
            if data:
                reader.feed(data)
            else:
                reader.end_of_input()

        try:
            message = await _read_request(reader, pull)
        except IppProtocolError as error:
            return self._counted(head, _protocol_error_reply(bytes(head), error, request))

        def document() -> AsyncGenerator[bytes, None]:
            return _read_document(reader, pull)

        endpoint = Endpoint(request.host, request.port, request.scheme, request.client,
                            authorization=request.header("authorization"),
                            authenticator=self.authenticator)
        try:
            return self._counted(head, await dispatch(self.system, endpoint, message, document))
        except IppProtocolError as error:  # broken bytes inside the document stream
            return self._counted(head, _protocol_error_reply(bytes(head), error, request))
        except Challenged as challenge:  # 401 (log in) or 426 (TLS first), IPP body too
            return HttpResponse(challenge.status, [*challenge.headers, *IPP_HEADERS],
                                self._counted(head, challenge.body))

    def _counted(self, head: bytearray, answer: bytes) -> bytes:
        """`answer`, counted by the request's operation and the answer's IPP status."""
        if self.metrics is not None:
            self.metrics.ipp_answered(bytes(head), answer)
        return answer


async def _read_request(reader: IppReader, pull: Callable[[], Awaitable[None]]) -> Message:
    while True:
        event = reader.next_event()
        if event is NEED_DATA:
            await pull()
        elif isinstance(event, IppRequestReceived):
            return event.message
        else:  # pragma: no cover - the reader yields the request before anything else
            raise IppProtocolError("document data before the request")


async def _read_document(reader: IppReader, pull: Callable[[], Awaitable[None]]
                         ) -> AsyncGenerator[bytes, None]:
    while True:
        event = reader.next_event()
        if event is NEED_DATA:
            await pull()
        elif isinstance(event, DocumentData):
            yield event.data
        elif isinstance(event, EndOfDocument):
            return


def _protocol_error_reply(head: bytes, error: IppProtocolError, request: HttpRequest) -> bytes:
    """Answer broken IPP with an IPP error when its header was readable, else HTTP 400."""
    CLIENT_LOG_LIMITER.log(log, logging.INFO, client_key(request.client),
                           "%s: bad IPP request: %s", request.client, printable(error.message))
    if len(head) < HEADER.size:
        raise HttpError(400, f"Not an IPP request: {error.message}", close=True)
    major, _minor, _, request_id = HEADER.unpack(head)
    version = (2, 0) if major >= 2 else (1, 1)
    status = error.status if major in (1, 2) else Status.SERVER_ERROR_VERSION_NOT_SUPPORTED
    return encode_reply(Reply(status, error.message), version, request_id)
