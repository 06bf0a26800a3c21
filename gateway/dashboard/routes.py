"""The dashboard's HTTP side, on the IPP port: the page, its script and style, a JSON API
and the live WebSocket.

- `GET /` the page; `/dashboard.js`, `/dashboard.css` (files of this package, no build step,
  nothing from a CDN).
- `GET /api/state` the snapshot (gateway.dashboard.live), as the requester may see it.
- `GET /api/login` asks for HTTP Basic (401, or 426 over plain HTTP: passwords only over
  TLS) and answers the user and a session token (gateway.dashboard.session).
- `GET /api/live` the WebSocket feed.
- `POST /api/printers` (add), `POST /api/printers/NAME/edit|remove`, `GET /api/devices`,
  `POST /api/probe`: the printers form (administrators): gateway.config_edit changes the
  configuration file, then the gateway reloads as on SIGHUP.
- `POST /api/jobs/ID/cancel|hold|release` and `POST /api/printers/NAME/pause|resume|
  identify|test-page`: each is the IPP operation it names, dispatched in-process with the
  browser's credentials and address, so the operation policy, job privacy and the audit log
  are the ones IPP clients meet. An action needs a login and its token in `X-CSRF-Token`;
  a request whose Origin is another site is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Callable
from functools import cache
from pathlib import Path
from typing import Any

import trio

from drivers import DriverError, UriError
from drivers import devices as list_devices
from drivers import probe as probe_device
from gateway.audit import status_keyword
from gateway.authn import Authenticator, NotAuthenticated
from gateway.config_edit import EditError, add_printer, change_printer, remove_printer
from gateway.core.system import System
from gateway.dashboard.live import LiveFeed, snapshot
from gateway.dashboard.session import Sessions
from gateway.dashboard.testpage import test_page
from gateway.dashboard.view import Json, ServerInfo
from gateway.policy import Need, Outcome, decide
from gateway.privacy import Viewer
from gateway.server.http import Handler, HttpError, HttpRequest, HttpResponse, RequestBody
from gateway.server.operation_table import dispatch
from gateway.server.operations import Challenged, Endpoint
from gateway.server.ops_printer import accepted_formats
from gateway.server.router import Router
from gateway.server.websocket import websocket_route
from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import request as ipp_request

log = logging.getLogger("gateway.dashboard")

_JSON = (("Content-Type", "application/json"), ("Cache-Control", "no-store"))
STATIC = {"/": ("dashboard.html", "text/html; charset=utf-8"),
          "/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
          "/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}
JOB_ACTIONS = {"cancel": Operation.CANCEL_JOB, "hold": Operation.HOLD_JOB,
               "release": Operation.RELEASE_JOB}
PRINTER_ACTIONS = {"pause": Operation.PAUSE_PRINTER, "resume": Operation.RESUME_PRINTER,
                   "identify": Operation.IDENTIFY_PRINTER, "test-page": Operation.PRINT_JOB}
MAX_ACTION_BODY = 16 * 1024
PROBE_SECONDS = 10.0


STATIC_DIR = Path(__file__).parent / "static"


@cache
def static_file(name: str) -> bytes:
    return (STATIC_DIR / name).read_bytes()


# Read now, at import: the gateway imports every module before it hands itself to its
# unprivileged account (gateway.preload), which may not be able to read the installation.
for _name, _type in STATIC.values():
    static_file(_name)


class Dashboard:
    def __init__(self, system: System, authenticator: Authenticator,
                 server: Callable[[], ServerInfo], sessions: Sessions | None = None, *,
                 config_file: Path | None = None,
                 request_reload: Callable[[], None] | None = None) -> None:
        self.system = system
        self.config_file = config_file  # the printers form writes it, then asks for a reload
        self.request_reload = request_reload
        self.authenticator = authenticator
        self.server = server
        self.sessions = sessions or Sessions()
        self.live = LiveFeed(system, self.sessions, server, self._anonymous)

    def add_routes(self, router: Router) -> None:
        for path, (name, content_type) in STATIC.items():
            router.add(path, self._static(name, content_type))
        router.add("/api/state", self.state)
        router.add("/api/login", self.login)
        router.add("/api/live", websocket_route(self.live))
        router.add("/api/jobs/", self.job_action, methods=("POST",), prefix=True)
        router.add("/api/printers/", self.printer_action, methods=("POST",), prefix=True)
        router.add("/api/printers", self.add_printer, methods=("POST",))
        router.add("/api/devices", self.devices)
        router.add("/api/probe", self.probe, methods=("POST",))

    @staticmethod
    def _static(name: str, content_type: str) -> Handler:
        async def serve(request: HttpRequest, body: RequestBody) -> HttpResponse:
            return HttpResponse(200, (("Content-Type", content_type),
                                      ("Cache-Control", "no-cache")), static_file(name))
        return serve

    def _anonymous(self, request: HttpRequest) -> Viewer:
        return Viewer("anonymous")

    async def _viewer(self, request: HttpRequest) -> Viewer:
        """Who asks: a logged-in user when the request carries valid credentials."""
        try:
            return await self.authenticator.identify(
                authorization=request.header("authorization"),
                secure=request.scheme == "ipps", client=request.client,
                requested_user="anonymous")
        except NotAuthenticated as refusal:
            raise _challenge(refusal) from None

    async def state(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        viewer = await self._viewer(request)
        return _json(200, snapshot(self.system, viewer, self.server()))

    async def login(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        if not self.authenticator.enabled:
            return _json(409, {"error": "authentication is off: set [auth] enabled = true "
                                        "and add a user with ipp-gateway passwd"})
        viewer = await self._viewer(request)
        if not viewer.authenticated:
            raise _challenge(self.authenticator.challenge(
                "log in to act from the dashboard", secure=request.scheme == "ipps"))
        return _json(200, {"user": viewer.user, "admin": viewer.is_admin,
                           "token": self.sessions.issue(viewer)})

    async def job_action(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        job_id, verb = _two(request.path, "/api/jobs/")
        operation = JOB_ACTIONS.get(verb)
        job = self.system.jobs.get(int(job_id)) if job_id.isdigit() else None
        if operation is None or job is None:
            raise HttpError(404, "No such job or action")
        printer = self.system.printers.get(job.printer)
        if printer is None:
            raise HttpError(404, "No such printer")
        await self._check_action(request, body)
        message = ipp_request(operation, printer_uri=self._uri(request, printer.name),
                              user="anonymous", attrs={"job-id": (ValueTag.INTEGER, job.id)})
        return await self._run(request, message, b"")

    async def printer_action(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        name, verb = _two(request.path, "/api/printers/")
        if verb in ("edit", "remove"):
            return await self._edit_printer(request, body, name, verb)
        operation = PRINTER_ACTIONS.get(verb)
        printer = self.system.printers.get(name)
        if operation is None or printer is None:
            raise HttpError(404, "No such printer or action")
        await self._check_action(request, body)
        uri = self._uri(request, name)
        document = b""
        if operation is Operation.PRINT_JOB:
            page = test_page(printer.name, printer.capabilities.make_and_model,
                             accepted_formats(printer))
            if page is None:
                return _json(409, {"error": "this printer takes no format the gateway can "
                                            "make a test page in"})
            fmt, document = page
            message = ipp_request(operation, printer_uri=uri, user="anonymous", attrs={
                "job-name": (ValueTag.NAME, "Test page"),
                "document-format": (ValueTag.MIME_MEDIA_TYPE, fmt)})
        else:
            message = ipp_request(operation, printer_uri=uri, user="anonymous")
        return await self._run(request, message, document)

    def _uri(self, request: HttpRequest, printer: str) -> str:
        return f"ipp://localhost/ipp/print/{printer}"

    # -- the printers form: configuration changes, devices, probe (administrators) ---------

    async def add_printer(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        values = await self._admin_json(request, body)
        return await self._change_config(add_printer, values)

    async def _edit_printer(self, request: HttpRequest, body: RequestBody, name: str,
                            verb: str) -> HttpResponse:
        if name not in self.system.printers:
            raise HttpError(404, "No such printer")
        values = await self._admin_json(request, body)
        if verb == "remove":
            return await self._change_config(remove_printer, name)
        return await self._change_config(change_printer, name, values)

    async def _change_config(self, change: Callable[..., object], *args: object
                             ) -> HttpResponse:
        path = self.config_file
        if path is None or self.request_reload is None:
            return _json(409, {"error": "the gateway was started without a configuration "
                                        "file (--config): there is nothing to change"})
        try:
            await trio.to_thread.run_sync(change, path, *args)
        except EditError as error:
            return _json(400, {"error": str(error)})
        except OSError as error:
            return _json(409, {"error": f"cannot write {path}: {error.strerror} (the gateway's "
                                        f"account must be able to write it)"})
        first = args[0] if args else ""
        name = first if isinstance(first, str) else (
            str(first.get("name", "")) if isinstance(first, dict) else "")
        log.info("dashboard: %s %s; reloading", change.__name__.replace("_", " "), name)
        self.request_reload()
        return _json(202, {"status": "applying", "message": "saved; the gateway reloads"})

    async def devices(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        await self._require_admin(request)
        found = await list_devices()
        # Each with its 1284 id and the driver auto-setup would choose, and why (as
        # `ipp-gateway devices --json` lists them).
        return _json(200, {"devices": [d.as_json() for d in found]})

    async def probe(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        values = await self._admin_json(request, body)
        uri = values.get("uri")
        if not isinstance(uri, str) or not uri:
            return _json(400, {"error": "give the device URI to probe"})
        try:
            result = await probe_device(uri, timeout=PROBE_SECONDS)
        except (UriError, DriverError) as error:
            return _json(400, {"error": str(error)})
        status = result.status
        return _json(200, {
            "uri": result.uri, "ok": result.ok, "reachable": result.reachable,
            "error": result.error, "device_id": result.device_id or "",
            "reasons": list(status.reasons) if status is not None else [],
            "message": status.message if status is not None else ""})

    async def _require_admin(self, request: HttpRequest) -> Viewer:
        viewer = await self._viewer(request)
        decision = decide(Need.ADMIN, viewer, auth_enabled=self.authenticator.enabled)
        if decision.outcome is Outcome.CHALLENGE:
            raise _challenge(self.authenticator.challenge(decision.reason,
                                                          secure=request.scheme == "ipps"))
        if not decision.allowed:
            raise HttpError(403, decision.reason)
        return viewer

    async def _admin_json(self, request: HttpRequest, body: RequestBody) -> dict[str, Any]:
        """An administrator's action with a JSON object body (login, token, same site)."""
        text = await self._check_action(request, body)
        await self._require_admin(request)
        if not text.strip():
            return {}
        try:
            values = json.loads(text)
        except ValueError:
            raise HttpError(400, "The body is not JSON") from None
        if not isinstance(values, dict):
            raise HttpError(400, "The body must be a JSON object")
        return values

    async def _check_action(self, request: HttpRequest, body: RequestBody) -> str:
        origin = request.header("origin")
        if origin is not None and origin.rstrip("/").split("://")[-1] not in _own(request):
            raise HttpError(403, "Cross-site request refused")
        viewer = await self._viewer(request)
        if not viewer.authenticated:
            raise _challenge(self.authenticator.challenge(
                "log in to act from the dashboard", secure=request.scheme == "ipps"))
        if not self.sessions.matches(request.header("x-csrf-token"), viewer):
            raise HttpError(403, "Missing or wrong X-CSRF-Token: reload the page and log in")
        read = bytearray()
        while chunk := await body.receive_some(MAX_ACTION_BODY):
            read += chunk
            if len(read) > MAX_ACTION_BODY:
                raise HttpError(413, f"An action's body is at most {MAX_ACTION_BODY} bytes",
                                close=True)
        try:
            return read.decode("utf-8")
        except UnicodeDecodeError:
            raise HttpError(400, "The body is not UTF-8") from None

    async def _run(self, request: HttpRequest, message: Message, document: bytes
                   ) -> HttpResponse:
        async def stream() -> AsyncGenerator[bytes, None]:
            if document:
                yield document

        endpoint = Endpoint(request.host, request.port, request.scheme, request.client,
                            authorization=request.header("authorization"),
                            authenticator=self.authenticator)
        try:
            encoded = await dispatch(self.system, endpoint, message, stream)
        except Challenged as challenge:
            return _json(challenge.status, {"error": "log in first"}, challenge.headers)
        reply, _ = decode_message(encoded)
        status = Status(reply.code)
        text = reply.operation_attributes.get("status-message")
        answer: Json = {"status": status_keyword(status),
                        "message": str(text.value) if text is not None else ""}
        job = reply.group(GroupTag.JOB)
        if job is not None and job.get("job-id") is not None:
            answer["job"] = job.get("job-id").value  # type: ignore[union-attr]
        if status < 0x100:
            return _json(200, answer)
        http = 403 if status in (Status.CLIENT_ERROR_NOT_AUTHORIZED,
                                 Status.CLIENT_ERROR_FORBIDDEN) else 409
        return _json(http, {"error": answer["message"] or answer["status"], **answer})


def _two(path: str, prefix: str) -> tuple[str, str]:
    first, _, second = path[len(prefix):].strip("/").partition("/")
    if not first or not second or "/" in second:
        raise HttpError(404, "Not found")
    return first, second


def _own(request: HttpRequest) -> set[str]:
    host = f"[{request.host}]" if ":" in request.host else request.host
    return {f"{host}:{request.port}", host}


def _json(status: int, body: Json, headers: tuple[tuple[str, str], ...] | list[
        tuple[str, str]] = ()) -> HttpResponse:
    return HttpResponse(status, (*_JSON, *headers),
                        json.dumps(body, separators=(",", ":")).encode())


def _challenge(refusal: NotAuthenticated) -> HttpError:
    return HttpError(refusal.http_status, refusal.message, headers=refusal.headers)
