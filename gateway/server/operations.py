"""IPP operations: validate a request in the order RFC 8011 and CUPS use, then one function each.

Handlers get a `Call` (the request, its target printer, the requesting user and the document
stream) and return a `Reply`; refusals are raised as `IppError` and become an IPP status with
a status-message and, where it applies, the unsupported-attributes group.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from urllib.parse import unquote, urlsplit

from gateway.core.job import InvalidTransition, Job, JobEvent
from gateway.core.printer import Printer
from gateway.core.system import System
from gateway.errors import BadRequest, IppError, NotFound, NotPossible
from gateway.ipp.enums import GroupTag, JobState, Operation, Status, ValueTag
from gateway.ipp.model import Attribute, Group, Message
from gateway.ipp.writer import encode_attribute

log = logging.getLogger("gateway.ipp")
T = ValueTag

DocumentStream = Callable[[], AsyncGenerator[bytes, None]]


@dataclass
class Endpoint:
    """How the client reached us: builds the URIs we answer with."""

    host: str
    port: int
    scheme: str = "ipp"

    def printer_uri(self, system: System, printer: Printer) -> str:
        authority = f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"
        return f"{self.scheme}://{authority}{system.printer_path(printer)}"


@dataclass
class Call:
    system: System
    endpoint: Endpoint
    request: Message
    operation_group: Group
    document: DocumentStream
    printer: Printer | None = None
    user: str = "anonymous"

    def attr(self, name: str) -> Attribute | None:
        return self.operation_group.get(name)

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


Handler = Callable[[Call], Awaitable[Reply]]
HANDLERS: dict[int, Handler] = {}
JOB_OPERATIONS = frozenset({
    Operation.SEND_DOCUMENT, Operation.CANCEL_JOB, Operation.GET_JOB_ATTRIBUTES,
    Operation.HOLD_JOB, Operation.RELEASE_JOB, Operation.CLOSE_JOB,
})


def handles(operation: Operation) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        HANDLERS[operation] = handler
        return handler

    return register


def response_version(request: Message) -> tuple[int, int]:
    return (2, 0) if request.version[0] >= 2 else (1, 1)


async def dispatch(system: System, endpoint: Endpoint, request: Message,
                   document: DocumentStream) -> bytes:
    language = _natural_language(request)
    try:
        reply = await _dispatch(system, endpoint, request, document)
    except IppError as error:
        reply = Reply(error.status, error.message, error.unsupported)
        log.info("%s from request %d: %s (%s)", _operation_name(request.code),
                 request.request_id, error.status.name.lower(), error.message)
    return encode_reply(reply, response_version(request), request.request_id, language)


def encode_reply(reply: Reply, version: tuple[int, int], request_id: int,
                 language: str = "en") -> bytes:
    pieces = [struct.pack(">bbHi", version[0], version[1], int(reply.status), request_id),
              _operation_prefix(language)]
    if reply.message:
        pieces.append(encode_attribute(Attribute.of("status-message", T.TEXT,
                                                    reply.message[:255])))
    groups = list(reply.groups)
    if reply.unsupported:
        groups.insert(0, (GroupTag.UNSUPPORTED, list(reply.unsupported)))
    for tag, items in groups:
        pieces.append(bytes([tag]))
        pieces += [item if isinstance(item, bytes) else encode_attribute(item) for item in items]
    pieces.append(bytes([GroupTag.END]))
    return b"".join(pieces)


@lru_cache(maxsize=32)  # bounded: the language comes from the client
def _operation_prefix(language: str) -> bytes:
    return bytes([GroupTag.OPERATION]) + encode_attribute(
        Attribute.of("attributes-charset", T.CHARSET, "utf-8")) + encode_attribute(
        Attribute.of("attributes-natural-language", T.NATURAL_LANGUAGE, language))


def _natural_language(request: Message) -> str:
    group = request.operation_attributes
    if group.attributes[1:2] and group.attributes[1].name == "attributes-natural-language":
        value = group.attributes[1].value
        if isinstance(value, str) and value:
            return value
    return "en"


def _operation_name(code: int) -> str:
    try:
        return Operation(code).name.replace("_", "-").title()
    except ValueError:
        return f"operation 0x{code:04x}"


async def _dispatch(system: System, endpoint: Endpoint, request: Message,
                    document: DocumentStream) -> Reply:
    if request.version[0] not in (1, 2):
        raise IppError(Status.SERVER_ERROR_VERSION_NOT_SUPPORTED,
                       f"IPP version {request.version[0]}.{request.version[1]} is not supported")
    if request.request_id < 1:
        raise BadRequest("request-id must be 1 or more")
    _check_groups(request)
    group = request.operation_attributes
    _check_charset(group)
    handler = HANDLERS.get(request.code)
    if handler is None:
        raise IppError(Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED,
                       f"{_operation_name(request.code)} is not supported")
    call = Call(system, endpoint, request, group, document)
    call.user = _requesting_user(group)
    _resolve_target(call, request.code)
    return await handler(call)


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


def _check_charset(group: Group) -> None:
    attrs = group.attributes
    if len(attrs) < 2 or attrs[0].name != "attributes-charset" or (
            attrs[1].name != "attributes-natural-language"):
        raise BadRequest("attributes-charset and attributes-natural-language must come first")
    charset, language = attrs[0], attrs[1]
    if charset.tag != T.CHARSET or len(charset.values) != 1:
        raise BadRequest("attributes-charset must be one charset value")
    if language.tag != T.NATURAL_LANGUAGE or len(language.values) != 1:
        raise BadRequest("attributes-natural-language must be one naturalLanguage value")
    if str(charset.value).lower() not in ("utf-8", "us-ascii"):
        raise IppError(Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
                       f"charset {charset.value!r} is not supported (use utf-8)", [charset])


def _requesting_user(group: Group) -> str:
    attr = group.get("requesting-user-name")
    if attr is not None and attr.tag in (T.NAME, T.NAME_WITH_LANGUAGE):
        value = attr.value
        text = value if isinstance(value, str) else getattr(value, "text", "")
        if text:
            return str(text)[:255]
    return "anonymous"


def _uri_path(attr: Attribute, name: str) -> str:
    if attr.tag != T.URI or len(attr.values) != 1 or not isinstance(attr.value, str):
        raise BadRequest(f"{name} must be a single uri")
    parts = urlsplit(attr.value)
    if parts.scheme not in ("ipp", "ipps", "http", "https"):
        raise BadRequest(f"{name} {attr.value!r} is not an ipp:// URI")
    return unquote(parts.path)


def _resolve_target(call: Call, operation: int) -> None:
    printer_attr = call.attr("printer-uri")
    job_attr = call.attr("job-uri")
    if operation in JOB_OPERATIONS and printer_attr is None and job_attr is not None:
        path = _uri_path(job_attr, "job-uri")
        printer_path, _, job_id = path.rstrip("/").rpartition("/")
        call.printer = call.system.printer_for_path(printer_path)
        if call.printer is None or not job_id.isdigit():
            raise NotFound(f"no job at {job_attr.value!s}")
        call.operation_group.add(Attribute.of("job-id", T.INTEGER, int(job_id)))
        return
    if printer_attr is None:
        raise BadRequest("missing printer-uri" + (" or job-uri" if operation in JOB_OPERATIONS
                                                  else ""))
    path = _uri_path(printer_attr, "printer-uri")
    call.printer = call.system.printer_for_path(path)
    if call.printer is None:
        raise NotFound(f"no printer at {path}")


def target_job(call: Call) -> Job:
    attr = call.attr("job-id")
    if attr is None:
        raise BadRequest("missing job-id (or job-uri)")
    if attr.tag != T.INTEGER or len(attr.values) != 1 or not isinstance(attr.value, int):
        raise BadRequest("job-id must be one integer")
    job = call.system.jobs.get(attr.value)
    if job is None or job.printer != call.require_printer().name:
        raise NotFound(f"job {attr.value} does not exist")
    return job


def requested_attributes(call: Call, default: tuple[str, ...]) -> set[str]:
    attr = call.attr("requested-attributes")
    if attr is None:
        return set(default)
    if any(tag != T.KEYWORD for tag, _ in attr.values):
        raise IppError(Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                       "requested-attributes must be keywords", [attr])
    return {str(v) for v in attr.plain}


def apply_job_event(job: Job, event: JobEvent, *reasons: str) -> None:
    try:
        job.apply(event, *reasons)
    except InvalidTransition as exc:
        raise NotPossible(str(exc)) from None


def not_terminal(job: Job) -> None:
    if job.state.is_terminal:
        raise NotPossible(f"job {job.id} is already {job.state.name.lower()}")


def job_state_is(job: Job, *states: JobState) -> bool:
    return job.state in states
