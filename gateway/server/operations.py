"""IPP operations: validate a request in the order RFC 8011 and CUPS use, then one function each.

Which function answers which operation is one explicit `OperationTable`, written out in
gateway.server.operation_table and handed to `answer`; nothing registers itself on import.
Handlers get a `Call` (the request, its target printer, the requesting user and the document
stream) and return a `Reply`; refusals are raised as `IppError` and become an IPP status with
a status-message and, where it applies, the unsupported-attributes group. Every value a handler
reads comes through `gateway.server.values` (`Call.value`), so a hostile value is a refusal,
never an exception from deep inside.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeVar

from gateway import audit
from gateway.authn import Authenticator, NotAuthenticated, address_of, is_loopback
from gateway.authority import url
from gateway.core.job import InvalidTransition, Job, JobEvent
from gateway.core.printer import Printer
from gateway.core.system import System
from gateway.errors import BadRequest, IppError, NotFound, NotPossible
from gateway.policy import NEEDS, JobOwner, Need, Outcome, decide
from gateway.privacy import Viewer
from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server import values
from gateway.server.values import INT32_MAX, BadValue
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.header import write_header
from ippwire.model import Attribute, Group, Message
from ippwire.writer import encode_attribute

log = logging.getLogger("gateway.ipp")
T = ValueTag
V = TypeVar("V")
UNSUPPORTED = Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED

DocumentStream = Callable[[], AsyncGenerator[bytes, None]]


@dataclass
class Endpoint:
    """How the client reached us: builds the URIs we answer with; `client` ("ip:port") keys
    the rate limit of the log lines its requests cause."""

    host: str
    port: int
    scheme: str = "ipp"
    client: str = ""  # "" for a request made in this process (trusted, as loopback is)
    authorization: str | None = None  # the Authorization header, when sent
    authenticator: Authenticator | None = None

    @property
    def secure(self) -> bool:
        """Whether the request came over TLS (ipps, or a connection upgraded to TLS)."""
        return self.scheme == "ipps"

    def printer_uri(self, system: System, printer: Printer) -> str:
        return url(self.scheme, self.host, self.port, system.printer_path(printer))


@dataclass
class Call:
    system: System
    endpoint: Endpoint
    request: Message
    operation_group: Group
    document: DocumentStream
    operations: OperationTable  # the table that dispatched it (operations-supported)
    printer: Printer | None = None
    user: str = "anonymous"  # the viewer's name: the job owner of a job it makes
    job_id: int | None = None  # from job-uri, when the request named its job that way
    viewer: Viewer = field(default_factory=lambda: Viewer("anonymous"))

    @property
    def auth_enabled(self) -> bool:
        authenticator = self.endpoint.authenticator
        return authenticator is not None and authenticator.enabled

    def attr(self, name: str) -> Attribute | None:
        return self.operation_group.get(name)

    def value(self, name: str, read: Callable[[Attribute], V],
              status: Status = UNSUPPORTED) -> V | None:
        """Operation attribute `name` read by one of `values`' readers, None when absent; a
        bad value is refused with `status` and the attribute in the unsupported group."""
        attr = self.attr(name)
        if attr is None:
            return None
        try:
            return read(attr)
        except BadValue as error:
            raise IppError(status, f"{name}: {error}", [attr]) from None

    def job_group(self) -> list[Attribute]:
        group = self.request.group(GroupTag.JOB)
        return list(group) if group is not None else []

    def require_printer(self) -> Printer:
        if self.printer is None:
            raise BadRequest("missing printer-uri")
        return self.printer

    def printer_uri(self) -> str:
        return self.endpoint.printer_uri(self.system, self.require_printer())


@dataclass
class Reply:
    status: Status = Status.OK
    message: str | None = None
    unsupported: list[Attribute] = field(default_factory=list)
    # Later groups: (group tag, attributes or pre-encoded attribute bytes)
    groups: list[tuple[GroupTag, list[Attribute | bytes]]] = field(default_factory=list)
    # More operation attributes, after status-message (Get-Notifications' notify-get-interval)
    operation: list[Attribute] = field(default_factory=list)


Handler = Callable[[Call], Awaitable[Reply]]


class Challenged(Exception):
    """A request that must log in first: the HTTP status (401 or 426), its headers, and
    the encoded IPP response (client-error-not-authenticated) to send with them."""

    def __init__(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        super().__init__(status)
        self.status = status
        self.headers = headers
        self.body = body


JOB_OPERATIONS = frozenset({
    Operation.SEND_DOCUMENT, Operation.CANCEL_JOB, Operation.GET_JOB_ATTRIBUTES,
    Operation.HOLD_JOB, Operation.RELEASE_JOB, Operation.CLOSE_JOB,
})

# The operation attributes every request carries (RFC 8011 4.1.4, 4.1.5) or may carry.
COMMON_OPERATION_ATTRIBUTES = frozenset({
    "attributes-charset", "attributes-natural-language", "printer-uri", "requesting-user-name",
})
JOB_TARGET_ATTRIBUTES = frozenset({"job-uri", "job-id"})


class OperationTable(Mapping[int, Handler]):
    """Operation -> the handler that answers it; `supported` is operations-supported.
    `attributes` names, per operation, the operation attributes its handler reads beside the
    common ones: any other one a request carries is ignored and returned in the unsupported
    group (RFC 8011 4.1.7)."""

    def __init__(self, handlers: Mapping[Operation, Handler],
                 attributes: Mapping[Operation, frozenset[str]] | None = None) -> None:
        self._handlers: dict[int, Handler] = {int(op): h for op, h in handlers.items()}
        self.supported: tuple[int, ...] = tuple(sorted(self._handlers))
        known = attributes or {}
        self.attributes: dict[int, frozenset[str]] = {
            int(op): COMMON_OPERATION_ATTRIBUTES | known.get(op, frozenset())
            | (JOB_TARGET_ATTRIBUTES if op in JOB_OPERATIONS else frozenset())
            for op in handlers}

    def unsupported(self, code: int, group: Group) -> list[Attribute]:
        """The operation attributes of `group` operation `code` does not support."""
        known = self.attributes.get(code, COMMON_OPERATION_ATTRIBUTES)
        return [attr for attr in group if attr.name not in known]

    def __getitem__(self, code: int) -> Handler:
        return self._handlers[code]

    def __iter__(self) -> Iterator[int]:
        return iter(self._handlers)

    def __len__(self) -> int:
        return len(self._handlers)


def response_version(request: Message) -> tuple[int, int]:
    return (2, 0) if request.version[0] >= 2 else (1, 1)


async def answer(table: OperationTable, system: System, endpoint: Endpoint, request: Message,
                 document: DocumentStream) -> bytes:
    """The encoded response to `request`, by the handler `table` names for its operation.
    Raises `Challenged` when the request must authenticate first."""
    language = _natural_language(request)
    identified: list[Viewer] = []  # who sent it, once known: the audit names a login
    try:
        reply = await _dispatch(table, system, endpoint, request, document, identified)
        # What the request changed is on disk before it is answered (the store writes in
        # a thread; a request that changed nothing does not wait).
        await system.store.flushed()
    except IppError as error:
        await _flush_after_refusal(system)
        reply = Reply(error.status, error.message, error.unsupported)
        CLIENT_LOG_LIMITER.log(
            log, logging.INFO, client_key(endpoint.client), "%s: %s from request %d: %s (%s)",
            endpoint.client or "client", _operation_name(request.code), request.request_id,
            error.status.name.lower(), printable(error.message))
    except OSError as error:  # the spool: disk full, read-only, I/O error
        failure = spool_error(error, f"{_operation_name(request.code)} failed")
        reply = Reply(failure.status, failure.message)
    except NotAuthenticated as error:
        await _flush_after_refusal(system)
        reply = Reply(Status.CLIENT_ERROR_NOT_AUTHENTICATED, error.message)
        audit.ipp_request(system, request, endpoint.client, reply.status, reply.message,
                          user=_logged_in(identified))
        raise Challenged(error.http_status, error.headers, encode_reply(
            reply, response_version(request), request.request_id, language)) from None
    audit.ipp_request(system, request, endpoint.client, reply.status, reply.message,
                      user=_logged_in(identified))
    return encode_reply(reply, response_version(request), request.request_id, language)


def _logged_in(identified: list[Viewer]) -> str | None:
    """The authenticated user of a request, None when it did not log in."""
    return identified[0].user if identified and identified[0].authenticated else None


async def _flush_after_refusal(system: System) -> None:
    """A refused request may have discarded a job it created: that is written before the
    refusal goes out too (and a spool that fails here was already reported once)."""
    try:
        await system.store.flushed()
    except OSError as error:
        log.debug("spool: still cannot write after a refusal (%s)", error.strerror or error)


def spool_error(error: OSError, what: str) -> IppError:
    """An OSError of the spool as the IPP status a client can act on, with one log line
    naming the cause (and the path, which the client is not told)."""
    transient = error.errno in (errno.ENOSPC, errno.EDQUOT)
    status = Status.SERVER_ERROR_TEMPORARY_ERROR if transient \
        else Status.SERVER_ERROR_INTERNAL_ERROR
    cause = error.strerror or type(error).__name__
    log.error("%s: the spool failed: %s%s", what, cause,
              f" ({error.filename})" if error.filename else "")
    return IppError(status, f"the print spool cannot store the request: {cause}")


def encode_reply(reply: Reply, version: tuple[int, int], request_id: int,
                 language: str = "en") -> bytes:
    try:
        header = write_header(version[0], version[1], int(reply.status), request_id)
    except ValueError:  # a request-id no request can carry: only a message built in-process
        header = write_header(version[0], version[1], int(reply.status), 0)
    pieces = [header, _operation_prefix(language)]
    if reply.message:
        pieces.append(encode_attribute(Attribute.of(
            "status-message", T.TEXT, values.text(T.TEXT, printable(reply.message), 255))))
    pieces += [encode_attribute(attr) for attr in reply.operation]
    groups = list(reply.groups)
    if reply.unsupported:
        groups.insert(0, (GroupTag.UNSUPPORTED, [_echo(a) for a in reply.unsupported]))
    for tag, items in groups:
        pieces.append(bytes([tag]))
        pieces += [item if isinstance(item, bytes) else encode_attribute(item) for item in items]
    pieces.append(bytes([GroupTag.END]))
    return b"".join(pieces)


def prepared(reply: Reply) -> Reply:
    """The same reply with every attribute encoded now: a handler that commits something
    (a job) calls this first, so that answering can no longer fail once it has."""
    groups: list[tuple[GroupTag, list[Attribute | bytes]]] = []
    if reply.unsupported:
        groups.append((GroupTag.UNSUPPORTED, [_echo(a) for a in reply.unsupported]))
    for tag, items in reply.groups:
        groups.append((tag, [item if isinstance(item, bytes) else encode_attribute(item)
                             for item in items]))
    message = reply.message
    if message:
        encode_attribute(Attribute.of("status-message", T.TEXT,
                                      values.text(T.TEXT, printable(message), 255)))
    return Reply(reply.status, message, [], groups, list(reply.operation))


def _echo(attr: Attribute) -> bytes:
    """A client's attribute as the unsupported group echoes it. What came off the wire always
    encodes again; a value built in this process might not, and is then echoed as the
    out-of-band 'unsupported' rather than failing the answer."""
    try:
        return encode_attribute(attr)
    except (ValueError, TypeError):
        return encode_attribute(Attribute.of(attr.name, T.UNSUPPORTED))


def printable(text: str) -> str:
    """`text` with control characters escaped: for log lines and status-message, which a
    client's values can reach."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@lru_cache(maxsize=32)  # bounded: the language comes from the client
def _operation_prefix(language: str) -> bytes:
    return bytes([GroupTag.OPERATION]) + encode_attribute(
        Attribute.of("attributes-charset", T.CHARSET, "utf-8")) + encode_attribute(
        Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, language))


def _natural_language(request: Message) -> str:
    """The language to answer in: the request's, when it is one, else "en"."""
    group = request.operation_attributes
    if group.attributes[1:2] and group.attributes[1].name == "attributes-natural-language":
        try:
            return values.single_natural_language(group.attributes[1])
        except BadValue:
            pass
    return "en"


def _operation_name(code: int) -> str:
    try:
        return Operation(code).name.replace("_", "-").title()
    except ValueError:  # as the client wrote it: a negative code is one with its top bit set
        return f"operation 0x{code & 0xFFFF:04x}"


async def _dispatch(table: OperationTable, system: System, endpoint: Endpoint,
                    request: Message, document: DocumentStream,
                    identified: list[Viewer]) -> Reply:
    if request.version[0] not in (1, 2):
        raise IppError(Status.SERVER_ERROR_VERSION_NOT_SUPPORTED,
                       f"IPP version {request.version[0]}.{request.version[1]} is not supported")
    if not 1 <= request.request_id <= INT32_MAX:
        raise BadRequest("request-id must be 1 to 2147483647")
    _check_groups(request)
    group = request.operation_attributes
    _check_charset(group)
    handler = table.get(request.code)
    if handler is None:
        raise IppError(Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                       f"{_operation_name(request.code)} is not supported")
    call = Call(system, endpoint, request, group, document, table)
    call.user = _requesting_user(call)
    _resolve_target(call, request.code)
    call.viewer = await _identify(call)
    identified.append(call.viewer)
    call.user = call.viewer.user
    _authorize(call, request.code)
    ignored = table.unsupported(request.code, group)
    reply = await handler(call)
    return with_ignored(reply, ignored) if ignored else reply


def with_ignored(reply: Reply, ignored: list[Attribute]) -> Reply:
    """`reply` also telling of operation attributes that were ignored: RFC 8011 4.1.7 has the
    Printer ignore an operation attribute it does not support, return it in the unsupported
    group and answer successful-ok-ignored-or-substituted-attributes."""
    if reply.status not in (Status.OK, Status.OK_IGNORED_OR_SUBSTITUTED):
        return reply  # a conflicting-attributes success, say, keeps its own status
    names = ", ".join(a.name for a in ignored)
    message = f"{reply.message}; ignored: {names}" if reply.message else f"ignored: {names}"
    groups = list(reply.groups)
    if groups and groups[0][0] == GroupTag.UNSUPPORTED:  # `prepared` moved them there
        groups[0] = (GroupTag.UNSUPPORTED, [*groups[0][1], *[_echo(a) for a in ignored]])
        return Reply(Status.OK_IGNORED_OR_SUBSTITUTED, message, list(reply.unsupported), groups,
                     reply.operation)
    return Reply(Status.OK_IGNORED_OR_SUBSTITUTED, message, [*reply.unsupported, *ignored],
                 groups, reply.operation)


def _check_groups(request: Message) -> None:
    if not request.groups or request.groups[0].tag != GroupTag.OPERATION:
        raise BadRequest("the request has no operation attributes group")
    last = 0
    for group in request.groups:
        if group.tag < last:
            raise BadRequest("attribute groups are out of order")
        last = group.tag
    if len(request.groups_of(GroupTag.OPERATION)) > 1:
        raise BadRequest("more than one operation attributes group")
    for group in request.groups:
        _check_unique(group)


def _check_unique(group: Group) -> None:
    """RFC 8010 3.1.3: an attribute occurs at most once in a group; which of two values
    the client meant cannot be guessed, so the request is refused."""
    seen: set[str] = set()
    for attr in group:
        if attr.name in seen:
            raise BadRequest(f"{attr.name} occurs more than once in one group")
        seen.add(attr.name)


def _check_charset(group: Group) -> None:
    attrs = group.attributes
    if len(attrs) < 2 or attrs[0].name != "attributes-charset" or (
            attrs[1].name != "attributes-natural-language"):
        raise BadRequest("attributes-charset and attributes-natural-language must come first")
    charset, language = attrs[0], attrs[1]
    try:
        name = values.single_charset(charset)
    except BadValue as error:
        raise BadRequest(f"attributes-charset: {error}") from None
    try:
        values.single_natural_language(language)
    except BadValue as error:
        raise BadRequest(f"attributes-natural-language: {error}") from None
    if name not in ("utf-8", "us-ascii"):
        raise IppError(Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
                       f"charset {name!r} is not supported (use utf-8)", [charset])


def _requesting_user(call: Call) -> str:
    user = call.value("requesting-user-name", values.single_name,
                      Status.CLIENT_ERROR_BAD_REQUEST)
    return user or "anonymous"


async def _identify(call: Call) -> Viewer:
    """Who sent the request (gateway.authn); without an authenticator (a dispatcher used
    in-process, by tests and tools) as with authentication off."""
    endpoint = call.endpoint
    if endpoint.authenticator is None:
        local = bool(endpoint.client) and is_loopback(address_of(endpoint.client))
        return Viewer(call.user, is_admin=local)
    return await endpoint.authenticator.identify(
        authorization=endpoint.authorization, secure=endpoint.secure,
        client=endpoint.client, requested_user=call.user)


def _authorize(call: Call, operation: int) -> None:
    """The operation policy (gateway.policy), before the handler runs."""
    need = NEEDS.get(operation, Need.NOTHING)
    if need is Need.NOTHING:
        return
    printer = call.require_printer()
    owner = None
    if need is Need.OWNER:
        job = target_job(call)
        owner = JobOwner(job.user, job.user_authenticated)
    decision = decide(need, call.viewer, auth_enabled=call.auth_enabled,
                      print_by=printer.config.print_by, owner=owner)
    if decision.allowed:
        return
    log.info("printer %s: %s refused to %s (%s): %s", printer.name,
             _operation_name(operation), printable(call.viewer.user),
             call.endpoint.client or "in-process", decision.reason)
    if decision.outcome is Outcome.CHALLENGE and call.endpoint.authenticator is not None:
        raise call.endpoint.authenticator.challenge(decision.reason,
                                                    secure=call.endpoint.secure)
    raise IppError(Status.CLIENT_ERROR_NOT_AUTHORIZED, decision.reason)


def _uri(call: Call, name: str) -> values.Uri | None:
    return call.value(name, values.single_uri, Status.CLIENT_ERROR_BAD_REQUEST)


def _resolve_target(call: Call, operation: int) -> None:
    printer_uri = _uri(call, "printer-uri")
    job_uri = _uri(call, "job-uri") if operation in JOB_OPERATIONS else None
    if printer_uri is None and job_uri is not None:
        printer_path, _, job_id = job_uri.path.rstrip("/").rpartition("/")
        call.printer = call.system.printer_for_path(printer_path)
        try:
            call.job_id = values.ascii_number(job_id)
        except BadValue:
            call.printer = None
        if call.printer is None:
            raise NotFound(f"no job at {job_uri.path}")
        return
    if printer_uri is None:
        raise BadRequest("missing printer-uri" + (" or job-uri" if operation in JOB_OPERATIONS
                                                  else ""))
    call.printer = call.system.printer_for_path(printer_uri.path)
    if call.printer is None:
        raise NotFound(f"no printer at {printer_uri.path}")


def target_job(call: Call) -> Job:
    job_id = call.job_id
    if job_id is None:
        # Not one integer: the target is malformed (4.1.5). An integer below 1 is well formed
        # but names no job, as a job-uri ending in /0 does.
        job_id = call.value("job-id", values.single_integer, Status.CLIENT_ERROR_BAD_REQUEST)
    if job_id is None:
        raise BadRequest("missing job-id (or job-uri)")
    job = call.system.jobs.get(job_id) if job_id >= 1 else None
    if job is None or job.printer != call.require_printer().name:
        raise NotFound(f"job {job_id} does not exist")
    return job


def requested_attributes(call: Call, default: tuple[str, ...]) -> set[str]:
    requested = call.value("requested-attributes", values.keywords)
    return set(default) if requested is None else set(requested)


def apply_job_event(system: System, job: Job, event: JobEvent, *reasons: str,
                    hold_until: str) -> None:
    """A job change an operation asks for, through the store; a change the job's state does
    not allow is client-error-not-possible."""
    try:
        system.store.transition(job, event, *reasons, hold_until=hold_until)
    except InvalidTransition as exc:
        raise NotPossible(str(exc)) from None


def not_terminal(job: Job) -> None:
    if job.state.is_terminal:
        raise NotPossible(f"job {job.id} is already {job.state.name.lower()}")


def job_state_is(job: Job, *states: JobState) -> bool:
    return job.state in states
