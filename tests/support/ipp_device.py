"""A small IPP printer on loopback for the `ipp://` transport's tests, with faults on purpose.

Speaks HTTP/1.1 with our own request parser (`ippwire.http11`) and the IPP codec. It can be:
IPP/1.0-only (server-error-version-not-supported to 2.0 and 1.1), busy N times, behind HTTP
Basic or Digest (MD5, qop=auth) authentication, without Create-Job; it can go down (stop
listening) and come back on the same port. Each job is recorded (its operation attributes,
document-format, the IPP version it came with, and its data) and stays `processing` for
`process_seconds` before it is `completed`; Cancel-Job cancels it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import trio

from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.errors import IppProtocolError
from ippwire.http11 import (
    CLOSED,
    CONTINUE_RESPONSE,
    END_OF_BODY,
    NEED_DATA,
    HttpProtocolError,
    RequestHead,
    RequestParser,
)
from ippwire.model import Attribute, Group, Message, Value
from ippwire.reader import decode_message
from ippwire.writer import encode_message
from tests.peers.ippeveprinter import IppEvePrinter, start_private_bus
from tests.peers.procs import (
    LOOPBACK,
    find_program,
    free_port,
    spawn_logged,
    stop_process,
    wait_for_port,
)

REALM = "ipp-device"
_PARAM = re.compile(r'([A-Za-z0-9_-]+)=("(?:[^"\\]|\\.)*"|[^\s,]+)')


@dataclass
class DeviceJob:
    job_id: int
    name: str
    user: str
    document_format: str
    version: tuple[int, int]
    operations: list[str] = field(default_factory=list)  # "Create-Job", "Send-Document"...
    data: bytearray = field(default_factory=bytearray)
    complete: bool = False  # the whole document arrived
    state: JobState = JobState.PENDING
    finish_at: float = 0.0


@dataclass
class DeviceConfig:
    versions: tuple[tuple[int, int], ...] = ((1, 0), (1, 1), (2, 0))
    busy: int = 0  # answer server-error-busy to this many job requests
    auth: str | None = None  # "basic" or "digest": every request needs it
    user: str = "alice"
    password: str = "s3cret"
    create_job: bool = True
    formats: tuple[str, ...] = ("application/octet-stream", "application/postscript",
                                "application/vnd.hp-PCL")
    process_seconds: float = 0.0
    # Listed in document-format-supported but refused when sent (a device whose list lies):
    # answered client-error-document-format-not-supported.
    refuse_formats: tuple[str, ...] = ()
    accepting: bool = True


class IppDevice:
    def __init__(self, config: DeviceConfig | None = None) -> None:
        self.config = config or DeviceConfig()
        self.jobs: list[DeviceJob] = []
        self.requests: list[tuple[tuple[int, int], str]] = []  # (version, operation name)
        self.http_statuses: list[int] = []
        self.port = 0
        self._scope: trio.CancelScope | None = None
        self._nonces: set[str] = set()

    def uri(self, scheme: str = "ipp", credentials: str = "", query: str = "") -> str:
        who = f"{credentials}@" if credentials else ""
        return f"{scheme}://{who}{LOOPBACK}:{self.port}/ipp/print" + (
            f"?{query}" if query else "")

    def job_named(self, name: str) -> DeviceJob | None:
        return next((job for job in self.jobs if job.name == name), None)

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen (on the same port again after `down()`) until cancelled or taken down."""
        listeners = await trio.open_tcp_listeners(self.port, host=LOOPBACK)
        self.port = listeners[0].socket.getsockname()[1]
        with trio.CancelScope() as self._scope:
            task_status.started()
            await trio.serve_listeners(self._handle, listeners)

    def down(self) -> None:
        """Stop listening and drop open connections: connects are refused until `serve`."""
        if self._scope is not None:
            self._scope.cancel()

    # -- HTTP ------------------------------------------------------------------------------

    async def _handle(self, stream: trio.SocketStream) -> None:
        parser = RequestParser(max_head_bytes=64 * 1024)
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError,
                                 HttpProtocolError):
            async with stream:
                for _ in range(1000):  # requests per connection, bounded
                    head = await self._next_head(stream, parser)
                    if head is None:
                        return
                    if not await self._one_request(stream, parser, head):
                        return
                    parser.start_next_cycle()

    async def _next_head(self, stream: trio.SocketStream, parser: RequestParser
                         ) -> RequestHead | None:
        while True:
            event = parser.next_request()
            if event is CLOSED:
                return None
            if event is NEED_DATA:
                parser.receive(await stream.receive_some(65536))
                continue
            assert isinstance(event, RequestHead)
            return event

    async def _one_request(self, stream: trio.SocketStream, parser: RequestParser,
                           head: RequestHead) -> bool:
        """Answer one request; False when the connection is to close."""
        challenge = self._check_auth(head)
        if challenge is not None:
            self.http_statuses.append(401)
            await stream.send_all(
                b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: " + challenge.encode() +
                b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            return False
        if head.expects_continue:
            await stream.send_all(CONTINUE_RESPONSE)
        reader = _BodyReader()
        while True:
            piece = parser.next_body()
            if piece is END_OF_BODY:
                break
            if piece is NEED_DATA:
                data = await stream.receive_some(65536)
                if not data:
                    return False  # cut off mid-request: nothing happens, as on a printer
                parser.receive(data)
                continue
            assert isinstance(piece, bytes)
            reader.data += piece
        self.http_statuses.append(200)
        try:
            request, document = decode_message(bytes(reader.data))
        except IppProtocolError:
            await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                  b"Connection: close\r\n\r\n")
            return False
        body = encode_message(self._answer(request, document))
        await stream.send_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/ipp\r\n"
                              b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        return head.keep_alive

    def _check_auth(self, head: RequestHead) -> str | None:
        """None when the request may go on; else the WWW-Authenticate value to answer with."""
        kind = self.config.auth
        if kind is None:
            return None
        given = next((v.decode("latin-1") for k, v in head.headers if k == b"authorization"),
                     "")
        if kind == "basic":
            wanted = base64.b64encode(
                f"{self.config.user}:{self.config.password}".encode()).decode()
            return None if given == f"Basic {wanted}" else f'Basic realm="{REALM}"'
        if given.lower().startswith("digest ") and self._digest_ok(given[7:], head):
            return None
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        return f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def _digest_ok(self, params_text: str, head: RequestHead) -> bool:
        """RFC 7616 with MD5 and qop=auth, computed here on its own (not with the client's
        code) so the test checks the client against the RFC."""
        params = {k.lower(): v.strip('"') for k, v in _PARAM.findall(params_text)}
        if params.get("nonce") not in self._nonces or params.get("username") != self.config.user:
            return False
        if params.get("uri") != head.target.decode():
            return False

        def md5(text: str) -> str:
            return hashlib.md5(text.encode()).hexdigest()

        ha1 = md5(f"{self.config.user}:{REALM}:{self.config.password}")
        ha2 = md5(f"{head.method.decode()}:{params['uri']}")
        expected = md5(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:"
                       f"{params.get('cnonce', '')}:auth:{ha2}")
        return params.get("qop") == "auth" and params.get("response") == expected

    # -- IPP -------------------------------------------------------------------------------

    def _answer(self, request: Message, document: bytes) -> Message:
        self._advance_jobs()
        try:
            name = Operation(request.code).name
        except ValueError:
            name = f"0x{request.code:04x}"
        self.requests.append((request.version, name))
        if request.version not in self.config.versions:
            refusal = _response(request, Status.SERVER_ERROR_VERSION_NOT_SUPPORTED)
            refusal.version = max(self.config.versions)  # an old device answers in its own
            return refusal
        operation = request.code
        handlers = {
            Operation.GET_PRINTER_ATTRIBUTES: self._printer_attributes,
            Operation.PRINT_JOB: self._print_job,
            Operation.VALIDATE_JOB: lambda r, d: _response(r, Status.OK),
            Operation.GET_JOB_ATTRIBUTES: self._job_attributes,
            Operation.CANCEL_JOB: self._cancel_job,
        }
        if self.config.create_job:
            handlers[Operation.CREATE_JOB] = self._create_job
            handlers[Operation.SEND_DOCUMENT] = self._send_document
        handler = handlers.get(operation)  # type: ignore[call-overload]
        if handler is None:
            return _response(request, Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED)
        answer: Message = handler(request, document)
        return answer

    def _operations(self) -> list[Value]:
        ops = [Operation.PRINT_JOB, Operation.VALIDATE_JOB, Operation.CANCEL_JOB,
               Operation.GET_JOB_ATTRIBUTES, Operation.GET_PRINTER_ATTRIBUTES]
        if self.config.create_job:
            ops += [Operation.CREATE_JOB, Operation.SEND_DOCUMENT]
        return [int(op) for op in ops]

    def _printer_attributes(self, request: Message, _: bytes) -> Message:
        versions = [f"{a}.{b}" for a, b in self.config.versions]
        printer = Group(GroupTag.PRINTER, [
            Attribute.of("printer-uri-supported", ValueTag.URI, self.uri()),
            Attribute.of("printer-name", ValueTag.NAME, "ipp-device"),
            Attribute.of("printer-state", ValueTag.ENUM, 3),
            Attribute.of("printer-state-reasons", ValueTag.KEYWORD, "toner-low-report"),
            Attribute.of("printer-state-message", ValueTag.TEXT, "Toner is low."),
            Attribute.of("printer-is-accepting-jobs", ValueTag.BOOLEAN, self.config.accepting),
            Attribute.of("ipp-versions-supported", ValueTag.KEYWORD, *versions),
            Attribute.of("operations-supported", ValueTag.ENUM, *self._operations()),
            Attribute.of("document-format-supported", ValueTag.MIME_MEDIA_TYPE,
                         *self.config.formats),
            Attribute.of("printer-make-and-model", ValueTag.TEXT, "Test LaserJet 1.0"),
            Attribute.of("printer-device-id", ValueTag.TEXT,
                         "MFG:Test;MDL:LaserJet;CMD:PCL,POSTSCRIPT;"),
            Attribute.of("marker-names", ValueTag.NAME, "Black Toner", "Drum"),
            Attribute.of("marker-types", ValueTag.KEYWORD, "toner", "opc"),
            Attribute.of("marker-colors", ValueTag.NAME, "#000000", "none"),
            Attribute.of("marker-levels", ValueTag.INTEGER, 7, 80),
            Attribute.of("marker-low-levels", ValueTag.INTEGER, 10, 5),
            Attribute.of("marker-high-levels", ValueTag.INTEGER, 100, 100),
        ])
        answer = _response(request, Status.OK)
        answer.groups.append(printer)
        return answer

    def _busy(self) -> bool:
        if self.config.busy > 0:
            self.config.busy -= 1
            return True
        return False

    def _new_job(self, request: Message, operation: str) -> DeviceJob:
        op = request.operation_attributes
        job = DeviceJob(
            job_id=len(self.jobs) + 1,
            name=_str(op.get("job-name")) or "untitled",
            user=_str(op.get("requesting-user-name")),
            document_format=_str(op.get("document-format")),
            version=request.version, operations=[operation])
        self.jobs.append(job)
        return job

    def _print_job(self, request: Message, document: bytes) -> Message:
        if self._busy():
            return _response(request, Status.SERVER_ERROR_BUSY)
        if self._refused(request):
            return _response(request, Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED)
        job = self._new_job(request, "Print-Job")
        self._take_document(job, document)
        return self._job_answer(request, job)

    def _refused(self, request: Message) -> bool:
        fmt = _str(request.operation_attributes.get("document-format"))
        return fmt in self.config.refuse_formats

    def _create_job(self, request: Message, _: bytes) -> Message:
        if self._busy():
            return _response(request, Status.SERVER_ERROR_BUSY)
        return self._job_answer(request, self._new_job(request, "Create-Job"))

    def _send_document(self, request: Message, document: bytes) -> Message:
        job = self._find(request)
        if job is None:
            return _response(request, Status.CLIENT_ERROR_NOT_FOUND)
        if self._refused(request):
            return _response(request, Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED)
        job.operations.append("Send-Document")
        job.document_format = _str(request.operation_attributes.get("document-format"))
        self._take_document(job, document)
        return self._job_answer(request, job)

    def _take_document(self, job: DeviceJob, document: bytes) -> None:
        job.data += document
        job.complete = True
        job.state = JobState.PROCESSING
        job.finish_at = trio.current_time() + self.config.process_seconds
        self._advance_jobs()

    def _job_attributes(self, request: Message, _: bytes) -> Message:
        job = self._find(request)
        if job is None:
            return _response(request, Status.CLIENT_ERROR_NOT_FOUND)
        return self._job_answer(request, job)

    def _cancel_job(self, request: Message, _: bytes) -> Message:
        job = self._find(request)
        if job is None:
            return _response(request, Status.CLIENT_ERROR_NOT_FOUND)
        if job.state.is_terminal:
            return _response(request, Status.CLIENT_ERROR_NOT_POSSIBLE)
        job.state = JobState.CANCELED
        return _response(request, Status.OK)

    def _find(self, request: Message) -> DeviceJob | None:
        found = request.operation_attributes.get("job-id")
        job_id = found.value if found is not None else None
        return next((job for job in self.jobs if job.job_id == job_id), None)

    def _advance_jobs(self) -> None:
        now = trio.current_time()
        for job in self.jobs:
            if job.state == JobState.PROCESSING and now >= job.finish_at:
                job.state = JobState.COMPLETED

    def _job_answer(self, request: Message, job: DeviceJob) -> Message:
        reasons = {JobState.PENDING: "none", JobState.PROCESSING: "job-printing",
                   JobState.CANCELED: "job-canceled-by-user",
                   JobState.COMPLETED: "job-completed-successfully"}
        answer = _response(request, Status.OK)
        answer.groups.append(Group(GroupTag.JOB, [
            Attribute.of("job-id", ValueTag.INTEGER, job.job_id),
            Attribute.of("job-uri", ValueTag.URI, f"{self.uri()}/{job.job_id}"),
            Attribute.of("job-state", ValueTag.ENUM, int(job.state)),
            Attribute.of("job-state-reasons", ValueTag.KEYWORD,
                         reasons.get(job.state, "none")),
        ]))
        return answer


@dataclass
class _BodyReader:
    data: bytearray = field(default_factory=bytearray)


def _str(attribute: Attribute | None) -> str:
    return attribute.value if attribute is not None and isinstance(attribute.value, str) else ""


def _response(request: Message, status: Status) -> Message:
    return Message(request.version, int(status), request.request_id, [Group(GroupTag.OPERATION, [
        Attribute.of("attributes-charset", ValueTag.CHARSET, "utf-8"),
        Attribute.of("attributes-natural-language", ValueTag.NATURAL_LANGUAGE, "en"),
    ])])


# -- ippeveprinter as a PostScript-only printer ---------------------------------------------------

# ippeveprinter runs this on each job's spooled file ("<id>-<job-name>.<ext>"): a job whose name
# says "slow" stays processing for a while (so a cancel can reach it), any other ends at once.
_COMMAND = """#!/bin/sh
case "$1" in *slow*) sleep 8 ;; esac
exit 0
"""


@contextlib.contextmanager
def postscript_ippeveprinter(workdir: Path) -> Iterator[IppEvePrinter]:
    """ippeveprinter taking only application/postscript, keeping each job's file in `spool`."""
    workdir.mkdir(parents=True, exist_ok=True)
    command = workdir / "print.sh"
    command.write_text(_COMMAND)
    command.chmod(0o755)
    bus = start_private_bus(workdir)
    try:
        spool = workdir / "spool"
        spool.mkdir(exist_ok=True)
        log = workdir / "ippeveprinter.log"
        port = free_port()
        program = find_program("ippeveprinter") or "ippeveprinter"
        argv = [program, "-n", "localhost", "-p", str(port), "-r", "off", "-k",
                "-f", "application/postscript", "-d", str(spool), "-c", str(command),
                "ps-device"]
        proc = spawn_logged(argv, log, env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address))
        try:
            wait_for_port(proc, port, log)
            yield IppEvePrinter(proc, port, spool, log)
        finally:
            stop_process(proc)
    finally:
        bus.stop()
