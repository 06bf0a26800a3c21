"""`ipp://`, `ipps://`, `http://`, `https://` — an IPP printer or print server as the device.

`ipp://[user:password@]host[:631]/path?...` (ipps: TLS; http/https the same protocol on ports
80/443, for paths such as `http://server/printers/NAME/.printer`). A job goes:

1. Get-Printer-Attributes, at IPP/2.0, then 1.1, then 1.0 while the device answers
   server-error-version-not-supported or bad-request (the version that worked is kept for
   the transport's later requests); a device not accepting jobs is retried later.
2. Create-Job, where the device has Create-Job and Send-Document; else nothing yet.
3. The first data opens Send-Document (last-document) or Print-Job and streams the document
   (chunked, behind Expect: 100-continue), with document-format the format of the bytes: the
   driver's output the pipeline names (`set_document_format`), else the job's.
4. `end_job` ends the document, reads the device's answer, and then mirrors the device's job
   (Get-Job-Attributes every `poll` s) until it is completed (return), canceled or aborted
   (CANCEL with the device's reasons). Once the device holds the document it is never sent
   again: a device gone meanwhile is polled on with backoff up to `_MIRROR_FAILURES` times,
   and then the job counts as printed, with a log line.

Options: `contimeout=` (seconds to connect, default 30), `timeout=` (seconds for the answer to
a small request, default 30; 0 = no limit for either; the document and its answer wait as long
as the device takes), `poll=` (seconds between job polls, default 1), `waitjob=on|off` (mirror
the device's job, default on, as CUPS's `waitjob`), `version=1.0|1.1|2.0` (no negotiation:
this version only).

The outcome policy: connection failures and busy devices retry; credentials the device wants
and we lack, or refuses, hold the job; a document format the device refuses cancels it (the
issue's "convert and resend once" needs the printer worker to choose another format: not here).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NoReturn

import trio

from drivers.errors import FormatRefused, Outcome, TransportError, UriError
from drivers.ippcaps import DeviceCapabilities, capabilities_from_attributes
from drivers.model.formats import OCTET_STREAM, canonical_format
from drivers.transport import (
    DeviceStatus,
    JobInfo,
    Supply,
    Transport,
    bad_uri,
    register_transport,
)
from drivers.transports import tcp
from drivers.transports.ipp_connection import (
    Authenticator,
    AuthRefused,
    EarlyAnswer,
    Endpoint,
    HttpStatusError,
    IppConnection,
    Upload,
    reasons_text,
)
from drivers.uri import DeviceUri, UriOptions, host_port
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.http_auth import Credentials
from ippwire.model import Attribute, Message, Value
from ippwire.writer import AttributeSpec, request

log = logging.getLogger("drivers.ipp")

DEFAULT_PORTS = {"ipp": 631, "ipps": 631, "http": 80, "https": 443}
VERSIONS = ((2, 0), (1, 1), (1, 0))
_ABORT_WAIT = 0.8  # Cancel-Job within the one-second cancel budget of every transport
_MIRROR_FAILURES = 10  # polls in a row the device may miss before the job counts as printed
_MIRROR_BACKOFF_MAX = 30.0
_NAME_MAX = 255  # name(MAX) in IPP
_RETRY_STATUSES = frozenset({
    Status.SERVER_ERROR_BUSY, Status.SERVER_ERROR_NOT_ACCEPTING_JOBS,
    Status.SERVER_ERROR_SERVICE_UNAVAILABLE, Status.SERVER_ERROR_TEMPORARY_ERROR,
    Status.SERVER_ERROR_TOO_MANY_JOBS,
})
_AUTH_STATUSES = frozenset({
    Status.CLIENT_ERROR_NOT_AUTHENTICATED, Status.CLIENT_ERROR_NOT_AUTHORIZED,
    Status.CLIENT_ERROR_FORBIDDEN,
})
# What a job needs to know before it starts (the whole set is tens of kilobytes to decode
# from a printer that lists every media; CUPS's ipp backend asks for a list too).
_START_ATTRIBUTES = (
    "ipp-versions-supported", "operations-supported", "document-format-supported",
    "printer-is-accepting-jobs", "printer-state", "printer-state-reasons",
)
_STATUS_ATTRIBUTES = (
    "printer-state", "printer-state-reasons", "printer-state-message",
    "printer-is-accepting-jobs", "marker-names", "marker-types", "marker-colors",
    "marker-levels", "marker-low-levels", "marker-high-levels", "printer-supply",
    "printer-supply-description",
)
_JOB_ATTRIBUTES = ("job-state", "job-state-reasons", "job-state-message",
                   "job-impressions-completed")


@dataclass(frozen=True)
class IppSettings:
    scheme: str
    host: str
    port: int
    target: str
    printer_uri: str
    contimeout: float = 30.0
    timeout: float = 30.0
    poll: float = 1.0
    waitjob: bool = True
    version: tuple[int, int] | None = None

    @classmethod
    def from_uri(cls, uri: DeviceUri) -> IppSettings:
        """The one reader of ipp/ipps/http/https URIs (see drivers.uri.UriOptions)."""
        options = UriOptions(uri, f"{uri.scheme}://")
        host, port = tcp.address(options, DEFAULT_PORTS[uri.scheme])
        target = uri.path or "/"
        version_text = options.choice("version", "", ("", "1.0", "1.1", "2.0"))
        settings = cls(
            scheme=uri.scheme, host=host, port=port, target=target,
            # The URI the device knows itself by: no credentials, no options of ours.
            printer_uri=f"{uri.scheme}://{host_port(host, uri.port)}{target}",
            contimeout=options.seconds("contimeout", 30.0) or math.inf,
            timeout=options.seconds("timeout", 30.0) or math.inf,
            poll=max(0.05, options.seconds("poll", 1.0)),
            waitjob=options.switch("waitjob", True),
            version=_version(version_text) if version_text else None,
        )
        options.finish()
        return settings

    @property
    def tls(self) -> bool:
        return self.scheme in ("ipps", "https")


def _version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@dataclass
class _DeviceJob:
    job_id: int | None = None  # the device's job-id, once it gave one
    accepted: bool = False  # the device holds the whole document


@register_transport("ipp", "ipps", "http", "https")
class IppTransport(Transport):
    scheme = "ipp"

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> IppSettings:
        return IppSettings.from_uri(uri)

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        try:
            self.settings = IppSettings.from_uri(uri)
        except UriError as exc:
            raise bad_uri(exc) from exc
        s = self.settings
        self._label = f"{s.scheme} {host_port(s.host, s.port)}{s.target}"
        credentials = Credentials(uri.username, uri.password) if uri.username else None
        self._auth = Authenticator(credentials)
        self._endpoint = Endpoint(s.host, s.port, s.tls, s.target, self._label,
                                  contimeout=s.contimeout, timeout=s.timeout)
        self._version: tuple[int, int] | None = s.version
        self._request_id = 0
        self._connection: IppConnection | None = None
        self._upload: Upload | None = None
        self._job: JobInfo | None = None
        self._device_job = _DeviceJob()
        self._caps: DeviceCapabilities | None = None
        self._output_format: str | None = None

    def set_document_format(self, fmt: str) -> None:
        self._output_format = fmt

    # -- the job -------------------------------------------------------------------------

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        self._job, self._device_job, self._output_format = job, _DeviceJob(), None
        self._connection = IppConnection(self._endpoint, self._auth)
        try:
            attributes = await self._printer_attributes(self._connection, _START_ATTRIBUTES)
            self._caps = caps = capabilities_from_attributes(attributes)
            accepting = _first(attributes, "printer-is-accepting-jobs")
            if accepting is False:
                raise TransportError(f"{self._label}: the device is not accepting jobs",
                                     Outcome.RETRY, reason="other")
            if caps.create_job:
                created = await self._call(self._connection, Operation.CREATE_JOB,
                                           self._job_attributes(job), "Create-Job")
                job_id = _first(created, "job-id")
                if not isinstance(job_id, int):
                    raise TransportError(f"{self._label}: Create-Job gave no job-id",
                                         reason="other")
                self._device_job.job_id = job_id
                log.info("%s: job %d is the device's job %d", self._label, job.job_id, job_id)
            elif self._auth.credentials is not None and self._auth.challenge is None and \
                    int(Operation.VALIDATE_JOB) in caps.operations:
                # Learn the device's challenge with a small request: a streamed Print-Job
                # refused for want of credentials would have to be sent again.
                await self._call(self._connection, Operation.VALIDATE_JOB,
                                 self._job_attributes(job), "Validate-Job", check=False)
        except BaseException:
            await self.abort_job()
            raise

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        upload = self._upload or await self._open_upload()
        try:
            await upload.send(data)
        except EarlyAnswer as answer:
            await self._failed(self._refusal(answer.message, self._document_operation()))
        except TransportError as exc:
            await self._failed(exc)

    async def end_job(self) -> None:
        job = self._job
        if job is None:
            return
        done = False
        try:
            upload = self._upload or await self._open_upload()
            operation = self._document_operation()
            try:
                response = await upload.finish()
            except TransportError as exc:
                await self._failed(exc)
            self._upload = None
            if response.code >= 0x0100:
                await self._failed(self._refusal(response, operation))
            self._device_job.accepted = True
            job_id = _first(response, "job-id")
            if self._device_job.job_id is None and isinstance(job_id, int):
                self._device_job.job_id = job_id
            log.info("%s: job %d: the device accepted the document (its job %s)", self._label,
                     job.job_id, self._device_job.job_id)
            if self.settings.waitjob and self._device_job.job_id is not None:
                await self._mirror(job, self._device_job.job_id)
            done = True
        except TransportError:
            done = True
            raise
        finally:
            # Cancelled (the job was cancelled here): abort_job still needs the device's job.
            if done:
                await self._close()
                self._job, self._device_job = None, _DeviceJob()

    async def abort_job(self) -> None:
        """Drop the document on its way (the device discards an unfinished request) and
        cancel the device's job, if it has one that may still print."""
        device_job, job = self._device_job, self._job
        await self._close()
        self._job, self._device_job = None, _DeviceJob()
        if device_job.job_id is None or job is None:
            return
        connection = IppConnection(self._endpoint, self._auth)
        with trio.CancelScope(shield=True) as scope:
            scope.deadline = trio.current_time() + _ABORT_WAIT
            try:
                answer = await self._call(
                    connection, Operation.CANCEL_JOB,
                    {"job-id": (ValueTag.INTEGER, device_job.job_id)}, "Cancel-Job",
                    check=False, user=job.user, by_job=True)
                log.info("%s: job %d: Cancel-Job on the device's job %d: %s", self._label,
                         job.job_id, device_job.job_id, _status_name(answer.code))
            except TransportError as exc:
                log.warning("%s: job %d: cannot cancel the device's job %d: %s", self._label,
                            job.job_id, device_job.job_id, exc.message)
            finally:
                await connection.aclose()
        if scope.cancelled_caught:
            log.warning("%s: job %d: no answer to Cancel-Job within %g s", self._label,
                        job.job_id, _ABORT_WAIT)

    async def _open_upload(self) -> Upload:
        job, connection = self._job, self._connection
        if job is None or connection is None:
            raise TransportError(f"{self._label}: send_all without start_job",
                                 Outcome.RETRY_CURRENT)
        fmt = self._document_format(job)
        attrs: dict[str, tuple[int, Value | list[Value]]] = {}
        if self._device_job.job_id is not None:
            operation = Operation.SEND_DOCUMENT
            attrs["job-id"] = (ValueTag.INTEGER, self._device_job.job_id)
            attrs["document-format"] = (ValueTag.MIME_MEDIA_TYPE, fmt)
            attrs["last-document"] = (ValueTag.BOOLEAN, True)
        else:
            operation = Operation.PRINT_JOB
            attrs.update(self._job_attributes(job))
            attrs["document-format"] = (ValueTag.MIME_MEDIA_TYPE, fmt)
        message = self._request(operation, attrs, user=job.user,
                                by_job=operation == Operation.SEND_DOCUMENT)
        try:
            self._upload = await connection.open_upload(message)
        except TransportError as exc:
            await self._failed(exc)
        log.info("%s: job %d: %s as %s", self._label, job.job_id,
                 _operation_name(operation), fmt)
        return self._upload

    def _document_operation(self) -> str:
        return "Send-Document" if self._device_job.job_id is not None else "Print-Job"

    def _document_format(self, job: JobInfo) -> str:
        """The format of the bytes, spelt as the device spells it; application/octet-stream
        (the device senses it) for a format the device does not list, where it takes that."""
        fmt = self._format_of(job)
        listed = self._caps.formats if self._caps is not None else ()
        if not listed:
            return fmt
        by_name = {canonical_format(f).lower(): f for f in listed}
        if (spelt := by_name.get(canonical_format(fmt).lower())) is not None:
            return spelt
        if OCTET_STREAM in by_name:
            log.info("%s: the device does not list %s: sent as %s", self._label, fmt,
                     OCTET_STREAM)
            return OCTET_STREAM
        return fmt

    def _format_of(self, job: JobInfo) -> str:
        """The format of the bytes: the driver's output, or for a raw pass-through (whose
        output is "whatever came") the job's own format."""
        fmt = self._output_format or job.document_format
        return job.document_format if fmt == OCTET_STREAM else fmt

    def _job_attributes(self, job: JobInfo) -> AttributeSpec:
        return {"job-name": (ValueTag.NAME, job.job_name[:_NAME_MAX] or "untitled")}

    async def _failed(self, error: TransportError) -> NoReturn:
        """A job that failed before the device held it: cancel what the device has of it
        (a created job would sit there, empty), leave the transport closed, raise."""
        await self.abort_job()
        raise error

    def _refusal(self, response: Message, operation: str) -> TransportError:
        """The TransportError for the device's refusal of `operation`."""
        status = response.code
        message = _status_message(response)
        said = f"{self._label}: {operation}: {_status_name(status)}" + (
            f" ({message})" if message else "")
        if status in _RETRY_STATUSES:
            return TransportError(said, Outcome.RETRY, reason="other")
        if status in _AUTH_STATUSES:
            return AuthRefused(f"{self._label}: the device refused our credentials "
                               f"({_status_name(status)})", reason="other")
        if status == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED or (
                status == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
                and _unsupported(response, "document-format")):
            fmt = self._format_of(self._job) if self._job else "the document's format"
            sent = self._document_format(self._job) if self._job else fmt
            return FormatRefused(
                f"{self._label}: the device does not print {fmt}"
                + (f" (sent as {sent} for it to sense)" if sent != fmt else ""),
                accepted=self._caps.formats if self._caps is not None else ())
        return TransportError(said, Outcome.RETRY, reason="other")

    # -- mirroring the device's job -------------------------------------------------------

    async def _mirror(self, job: JobInfo, device_id: int) -> None:
        """Follow the device's job to its end. Never raises for the device being gone: the
        device holds the document, and sending it again would print it twice."""
        failures = 0
        wait = self.settings.poll
        last: tuple[int, tuple[str, ...]] | None = None
        while True:
            await trio.sleep(wait)
            connection = self._connection or IppConnection(self._endpoint, self._auth)
            self._connection = connection
            try:
                answer = await self._call(
                    connection, Operation.GET_JOB_ATTRIBUTES,
                    {"job-id": (ValueTag.INTEGER, device_id),
                     "requested-attributes": (ValueTag.KEYWORD, list(_JOB_ATTRIBUTES))},
                    "Get-Job-Attributes", check=False, user=job.user, by_job=True)
            except AuthRefused:
                raise
            except TransportError as exc:
                await self._close_connection()
                failures += 1
                if failures >= _MIRROR_FAILURES:
                    log.warning("%s: job %d: the device stopped answering (%s); it holds the "
                                "document: counted as printed", self._label, job.job_id,
                                exc.message)
                    return
                wait = min(_MIRROR_BACKOFF_MAX, self.settings.poll * 2 ** failures)
                continue
            failures, wait = 0, self.settings.poll
            if answer.code == Status.CLIENT_ERROR_NOT_FOUND:
                log.info("%s: job %d: the device no longer knows its job %d: done",
                         self._label, job.job_id, device_id)
                return
            if answer.code >= 0x0100:
                log.warning("%s: job %d: Get-Job-Attributes: %s; counted as printed",
                            self._label, job.job_id, _status_name(answer.code))
                return
            seen = self._job_state(answer, job, device_id, last)
            if seen is None:
                return
            last = seen

    def _job_state(self, answer: Message, job: JobInfo, device_id: int,
                   last: tuple[int, tuple[str, ...]] | None
                   ) -> tuple[int, tuple[str, ...]] | None:
        """What a Get-Job-Attributes answer says: None once the device's job completed,
        TransportError(CANCEL) if it was canceled or aborted there, else the state seen."""
        state = _first(answer, "job-state", GroupTag.JOB)
        reasons = tuple(str(v) for v in _values(answer, "job-state-reasons", GroupTag.JOB))
        if not isinstance(state, int):
            return last
        if (state, reasons) != last:
            log.info("%s: job %d: the device's job %d is %s (%s)", self._label, job.job_id,
                     device_id, _state_name(state), reasons_text(reasons))
        if state == JobState.COMPLETED:
            return None
        if state in (JobState.CANCELED, JobState.ABORTED):
            message = _text(_first(answer, "job-state-message", GroupTag.JOB))
            raise TransportError(
                f"{self._label}: the device {_state_name(state)} the job "
                f"({reasons_text(reasons)})" + (f": {message}" if message else ""),
                Outcome.CANCEL, reason="other")
        return state, reasons

    # -- status ---------------------------------------------------------------------------

    async def query_status(self) -> DeviceStatus | None:
        """The device's state reasons, message and supplies, on a connection of its own (a
        job may be streaming on the other)."""
        connection = IppConnection(self._endpoint, self._auth)
        try:
            answer = await self._printer_attributes(connection, _STATUS_ATTRIBUTES)
        except TransportError as exc:
            return DeviceStatus(frozenset({"offline-report"}), exc.message, online=False)
        finally:
            await connection.aclose()
        reasons = frozenset(str(v) for v in _values(answer, "printer-state-reasons")
                            if isinstance(v, str) and v != "none")
        message = _first(answer, "printer-state-message")
        return DeviceStatus(reasons, _text(message), online=True,
                            supplies=supplies_from_attributes(answer))

    async def printer_attributes(self) -> Message:
        """Every attribute the device gives (Get-Printer-Attributes, all): what set-up reads
        its capabilities from (drivers.ippcaps). Raises TransportError."""
        connection = IppConnection(self._endpoint, self._auth)
        try:
            return await self._printer_attributes(connection)
        finally:
            await connection.aclose()

    async def device_id(self) -> str | None:
        connection = IppConnection(self._endpoint, self._auth)
        try:
            answer = await self._printer_attributes(connection, ("printer-device-id",))
        except TransportError:
            return None
        finally:
            await connection.aclose()
        value = _text(_first(answer, "printer-device-id"))
        return value or None

    # -- requests -------------------------------------------------------------------------

    async def _printer_attributes(self, connection: IppConnection,
                                  requested: Sequence[str] = ()) -> Message:
        """Get-Printer-Attributes, negotiating the version down the first time."""
        attrs: AttributeSpec = {"requested-attributes": (ValueTag.KEYWORD, list(requested))} \
            if requested else {}
        if self._version is not None:
            return await self._call(connection, Operation.GET_PRINTER_ATTRIBUTES, attrs,
                                    "Get-Printer-Attributes")
        last: TransportError | None = None
        for version in VERSIONS:
            message = self._request(Operation.GET_PRINTER_ATTRIBUTES, attrs, version=version)
            try:
                answer = await connection.call(message)
            except AuthRefused:
                raise
            except HttpStatusError as exc:
                # An old device may answer an unknown version with HTTP 400 and close.
                if exc.status != 400:
                    raise
                last = exc
                await connection.aclose()
                continue
            if answer.code == Status.SERVER_ERROR_VERSION_NOT_SUPPORTED or (
                    answer.code == Status.CLIENT_ERROR_BAD_REQUEST and version > (1, 0)):
                last = self._refusal(answer, "Get-Printer-Attributes")
                continue
            if answer.code >= 0x0100:
                raise self._refusal(answer, "Get-Printer-Attributes")
            self._version = _listed_version(answer, version)
            log.info("%s: the device speaks IPP/%d.%d", self._label, *self._version)
            return answer
        assert last is not None
        raise TransportError(f"{self._label}: no IPP version the device takes "
                             f"({last.message})", Outcome.RETRY, reason="other")

    async def _call(self, connection: IppConnection, operation: Operation,
                    attrs: AttributeSpec, what: str, *, check: bool = True,
                    user: str | None = None, by_job: bool = False) -> Message:
        message = self._request(operation, attrs, user=user, by_job=by_job)
        answer = await connection.call(message)
        if check and answer.code >= 0x0100:
            raise self._refusal(answer, what)
        return answer

    def _request(self, operation: Operation, attrs: AttributeSpec, *,
                 version: tuple[int, int] | None = None, user: str | None = None,
                 by_job: bool = False) -> Message:
        self._request_id = self._request_id % 0x7FFFFFFF + 1
        # job-id goes right after printer-uri (RFC 8011 4.3.1 wants the target first).
        ordered: dict[str, tuple[int, Value | list[Value]]] = {}
        if by_job and "job-id" in attrs:
            ordered["job-id"] = attrs["job-id"]
        ordered.update(attrs)
        who = user if user is not None else (self._job.user if self._job else "anonymous")
        return request(operation, self._request_id,
                       version=version or self._version or VERSIONS[0],
                       printer_uri=self.settings.printer_uri,
                       user=who[:_NAME_MAX] or "anonymous", attrs=ordered)

    async def _close_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()

    async def _close(self) -> None:
        self._upload = None
        await self._close_connection()


# -- reading answers --------------------------------------------------------------------------


def _attribute(message: Message, name: str, group: int | None = None) -> Attribute | None:
    for candidate in message.groups:
        if group is not None and candidate.tag != group:
            continue
        if candidate.tag == GroupTag.OPERATION and group is None and name not in (
                "status-message", "job-id"):
            continue
        found = candidate.get(name)
        if found is not None and not found.is_out_of_band:
            return found
    return None


def _first(message: Message, name: str, group: int | None = None) -> Value:
    found = _attribute(message, name, group)
    return None if found is None else found.value


def _values(message: Message, name: str, group: int | None = None) -> list[Value]:
    found = _attribute(message, name, group)
    return [] if found is None else found.plain


def _text(value: Value) -> str:
    if isinstance(value, str):
        return value
    text = getattr(value, "text", None)
    if isinstance(text, str):
        return text
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return ""


def _unsupported(response: Message, name: str) -> bool:
    """Whether the device's unsupported-attributes group names `name` (ippeveprinter refuses
    a format so, rather than with client-error-document-format-not-supported)."""
    return any(name in group for group in response.groups_of(GroupTag.UNSUPPORTED))


def _status_message(response: Message) -> str:
    found = response.operation_attributes.get("status-message")
    return _text(found.value) if found is not None else ""


def _status_name(code: int) -> str:
    try:
        return Status(code).name.lower().replace("_", "-")
    except ValueError:
        return f"status 0x{code:04x}"


def _operation_name(operation: Operation) -> str:
    return "-".join(word.capitalize() for word in operation.name.split("_"))


def _state_name(state: int) -> str:
    try:
        return JobState(state).name.lower().replace("_", "-")
    except ValueError:
        return f"state {state}"


def _listed_version(answer: Message, used: tuple[int, int]) -> tuple[int, int]:
    """The version to speak from now: the one that worked, lowered to the highest the device
    lists in ipp-versions-supported (some answer 2.0 requests yet handle only 1.1 well)."""
    listed = []
    for value in _values(answer, "ipp-versions-supported"):
        if isinstance(value, str) and value in ("1.0", "1.1", "2.0"):
            listed.append(_version(value))
    fitting = [v for v in listed if v <= used]
    return max(fitting) if fitting else used


def supplies_from_attributes(answer: Message) -> tuple[Supply, ...]:
    """The device's supplies from marker-* (lists of equal length; none if they disagree),
    else from printer-supply (PWG 5100.13 `type=...;level=...;` strings) with
    printer-supply-description for their names."""
    names = [_text(v) for v in _values(answer, "marker-names")]
    if names:
        kinds = [_text(v) for v in _values(answer, "marker-types")]
        colors = [_text(v) for v in _values(answer, "marker-colors")]
        levels = _ints(_values(answer, "marker-levels"))
        lows = _ints(_values(answer, "marker-low-levels")) or [0] * len(names)
        highs = _ints(_values(answer, "marker-high-levels")) or [100] * len(names)
        if all(len(x) == len(names) for x in (kinds, colors, levels, lows, highs)):
            return tuple(Supply(*row) for row in zip(names, kinds, colors, levels, lows, highs,
                                                     strict=True))
        return ()
    supplies = []
    descriptions = [_text(v) for v in _values(answer, "printer-supply-description")]
    for index, raw in enumerate(_values(answer, "printer-supply")):
        fields = dict(part.split("=", 1) for part in _text(raw).split(";") if "=" in part)
        try:
            level = int(fields.get("level", "-2"))
            high = int(fields.get("maxcapacity", "100"))
        except ValueError:
            continue
        if high > 0 and high != 100 and level >= 0:
            level = level * 100 // high  # levels in the device's units: a percentage here
        name = descriptions[index] if index < len(descriptions) else fields.get("type", "")
        supplies.append(Supply(name=name, kind=_supply_kind(fields.get("type", "")),
                               color=fields.get("colorantname", "none"), level=level))
    return tuple(supplies)


def _ints(values: list[Value]) -> list[int]:
    return [v for v in values if isinstance(v, int) and not isinstance(v, bool)]


def _supply_kind(printer_mib_type: str) -> str:
    """RFC 3805 prtMarkerSuppliesType ("tonerCartridge") to a marker-types keyword."""
    words = {"toner": "toner", "tonerCartridge": "toner-cartridge", "ink": "ink",
             "inkCartridge": "ink-cartridge", "wasteToner": "waste-toner",
             "wasteInk": "waste-ink", "opc": "opc", "developer": "developer",
             "fuser": "fuser", "transferUnit": "transfer-unit", "staples": "staples"}
    return words.get(printer_mib_type, printer_mib_type.lower() or "other")

