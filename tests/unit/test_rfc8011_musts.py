"""What RFC 8011 sections 4.1-4.3 (and PWG 5100.14, for the operations it adds) say a Printer
MUST check in a request, one test (or one parametrized case) each, sent through the real
dispatcher with codec bytes and no socket.

Section numbers are RFC 8011's: 4.1.1 required parameters, 4.1.2 operation and request ids,
4.1.3 request operation attributes, 4.1.4 charset and natural language, 4.1.5 operation
targets, 4.1.7 unsupported attributes, 4.1.8 versions, 4.1.9 job creation operations; 4.2.x
the Printer operations, 4.3.x the Job operations. RFC 8010 is the encoding.

Checklist (E = enforced before this audit, F = fixed by it, N = not enforced, with why):

Common (every operation in operation_table.OPERATIONS)
  C1  E  4.1.8    a major version other than 1 or 2 -> server-error-version-not-supported
  C2  E  4.1.8    1.1 and 2.0 requests are both accepted
  C3  E  4.1.2    request-id 0 (outside 1..2^31-1) -> client-error-bad-request
  C4  E  4.1.3    no operation attributes group (header then end tag) -> client-error-bad-request
  C5  E  RFC 8010 3.1.2  attribute groups out of order, or the operation group twice -> bad-request
  C6  F  RFC 8010 3.1.3 / 4.1.3  an attribute repeated within one group -> client-error-bad-request
  C7  E  4.1.4.1  attributes-charset missing -> client-error-bad-request
  C8  E  4.1.4.1  attributes-natural-language missing -> client-error-bad-request
  C9  E  4.1.4.1  the two not first, or not in that order -> client-error-bad-request
  C10 E  4.1.4.1  attributes-charset not a charset value (wrong tag) -> client-error-bad-request
  C11 E  4.1.4.1  a charset the Printer does not support -> client-error-charset-not-supported,
                  attributes-charset in the unsupported group
  C12 E  4.1.4.1  utf-8 and us-ascii are accepted
  C13 E  4.1.4.1  a natural language the Printer does not have is accepted, not refused
  C14 E  4.1.5    a Printer operation without printer-uri -> client-error-bad-request
  C15 E  4.1.5    a Job operation with neither job-uri nor printer-uri -> client-error-bad-request
  C16 E  4.1.5    a Job operation with printer-uri and no job-id -> client-error-bad-request
  C17 E  4.1.5    printer-uri naming no printer -> client-error-not-found
  C18 F  4.1.5    job-id naming no job (unknown, another printer's, or <1) -> client-error-not-found
                  (job-id 0 or negative was a bad-request; now not-found, as for a job-uri)
  C19 E  4.1.5    job-id not an integer -> client-error-bad-request (the target is malformed)
  C20 E  4.1.5    the job-uri form names the job for every Job operation
  C21 E  4.2.1.1  requesting-user-name that is not a single name -> client-error-bad-request
                  (as cupsd; the RFC leaves the status open, bad-request is the one CUPS uses)
  C22 E  4.1.7    an unsupported operation attribute is ignored and returned in the
                  unsupported group with successful-ok-ignored-or-substituted-attributes
                  (it is echoed with the client's values; the RFC's out-of-band 'unsupported'
                  is used for unknown Job Template attributes, see J4)
  C23 E  4.1.7    a Job Template attribute sent in the operation group is such an attribute
  C24 E  4.2.x    an operation the Printer does not support (Print-URI, Send-URI, Purge-Jobs,
                  Restart-Job, any unknown id) -> server-error-operation-not-supported
  C25 E  4.1.7    a supported operation attribute with the wrong syntax or an unsupported value
                  -> client-error-attributes-or-values-not-supported, the attribute in the
                  unsupported group (one case per attribute per operation that reads it)

Job creation: Print-Job 4.2.1, Validate-Job 4.2.3, Create-Job 4.2.4 (PWG 5100.14: Validate-Job
and Create-Job check exactly what Print-Job checks)
  J1  E  4.2.1.1  document-format not supported -> client-error-document-format-not-supported,
                  document-format in the unsupported group
  J2  F  4.2.1.1  compression not supported -> client-error-compression-not-supported;
                  compression that is not a keyword -> attributes-or-values-not-supported
                  (it was compression-not-supported for both)
  J3  E  4.1.9    ipp-attribute-fidelity true and an unsupported Job Template value -> refused
                  with client-error-attributes-or-values-not-supported, the attribute in the
                  unsupported group, no job created
  J4  E  4.1.9    fidelity false (or absent): accepted with
                  successful-ok-ignored-or-substituted-attributes, the attribute in the
                  unsupported group; an unknown one with the out-of-band 'unsupported'
  J5  E  4.2.1.1  job-k-octets above job-k-octets-supported -> client-error-request-entity-too-large
  J6  F  4.2.1.1  job-k-octets that is not an integer -> attributes-or-values-not-supported
                  (it was bad-request)
  J7  E  4.2.1.1  job-name absent: the Printer makes one, from document-name where sent
  J8  E  4.2.1.1  requesting-user-name becomes job-originating-user-name
  J9  F  4.2.3    Validate-Job checks compression as Print-Job does (a supported compression
                  was refused because Validate-Job carries no data)
  J10 E  4.2.3    Validate-Job creates no job

Printer operations
  P1  F  4.2.5.1  Get-Printer-Attributes with a document-format not in document-format-supported
                  -> client-error-document-format-not-supported (it was answered)
  P2  E  4.2.5.1  requested-attributes: unknown names are ignored, not an error
  P3  E  4.2.6.1  Get-Jobs which-jobs unsupported -> attributes-or-values-not-supported, which-jobs
                  in the unsupported group (in C25 too)
  P4  E  4.2.6.1  Get-Jobs limit, first-index < 1, my-jobs not a boolean -> (C25)
  P5  E  4.2.6.1  Get-Jobs without requested-attributes answers job-id and job-uri only
  P6  E  4.2.7/8  Pause-Printer, Resume-Printer need their target (C14)

Job operations
  O1  E  4.3.1.1  Send-Document without last-document -> client-error-bad-request
  O2  E  4.3.1    Send-Document to a job not waiting for documents (Print-Job's, or after
                  last-document or Close-Job) -> client-error-not-possible
  O3  F  4.3.1    Send-Document to a canceled or aborted job -> client-error-not-possible (it was
                  server-error-job-canceled, which RFC 8011 defines for a job canceled while its
                  data is being sent; cupsd and ippeveprinter answer not-possible)
  O4  E  4.3.1.1  Send-Document checks document-format and compression as Print-Job does
  O5  E  4.3.3    Cancel-Job on a completed, canceled or aborted job -> client-error-not-possible
  O6  E  4.3.4.1  Get-Job-Attributes requested-attributes not keywords -> (C25)
  O7  E  4.3.5    Hold-Job on a job that is not pending (processing, completed) -> not-possible
  O8  E  4.3.6    Release-Job on a job that is not held -> client-error-not-possible
  O9  E  PWG 5100.11  Close-Job on a job not open for documents -> client-error-not-possible
  O10 E  PWG 5100.11  Cancel-My-Jobs job-ids naming jobs that are not the user's -> not-possible
  O11 E  PWG 5100.13  Identify-Printer identify-actions unsupported -> (C25)

Counts: 52 checks; 45 enforced before, 7 fixed here (C6, C18, J2, J6, J9, P1, O3), none left
unenforced. Deliberately not checked: the order of printer-uri/job-uri/job-id after the
natural language (4.1.5 binds the client; refusing would lose CUPS-era clients, as cupsd and
ippeveprinter also accept any order).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS
from gateway.config import Config, PrinterConfig
from gateway.core.job import JobEvent
from gateway.core.system import System
from gateway.server.operation_table import OPERATIONS
from gateway.server.operations import JOB_OPERATIONS
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.model import Attribute, Group, Message
from ippwire.writer import request
from tests.support.ipp_dispatch import call, job_attr, op_attr

T = ValueTag
S = Status
URI = "ipp://localhost:8631/ipp/print"
OFFICE = f"{URI}/office"
LASER = f"{URI}/laser"
BAD = S.CLIENT_ERROR_BAD_REQUEST
UNSUPPORTED = S.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
PDF = b"%PDF-1.4 audit"
Spec = Mapping[str, tuple[int, Any]]

SUPPORTED = [Operation(code) for code in OPERATIONS.supported]
PRINTER_OPS = [op for op in SUPPORTED if op not in JOB_OPERATIONS]
JOB_OPS = [op for op in SUPPORTED if op in JOB_OPERATIONS]
CREATION_OPS = [Operation.PRINT_JOB, Operation.VALIDATE_JOB, Operation.CREATE_JOB]


@pytest.fixture
def system(tmp_path: Path) -> System:
    out = tmp_path / "out"
    return System(Config(spool=tmp_path / "spool", printers=(
        PrinterConfig("office", f"file://{out}/", formats=RAW_PASSTHROUGH_FORMATS),
        PrinterConfig("laser", f"file://{out}/laser/", driver="postscript")),
        multiple_operation_timeout=60))


def op_request(operation: int, attrs: Spec | None = None, job_attrs: Spec | None = None, *,
               uri: str | None = OFFICE, job_id: int | None = None) -> Message:
    spec: dict[str, tuple[int, Any]] = {} if job_id is None else {
        "job-id": (T.INTEGER, job_id)}
    if operation == Operation.SEND_DOCUMENT:
        spec["last-document"] = (T.BOOLEAN, True)
    return request(operation, printer_uri=uri, attrs={**spec, **(attrs or {})},
                   job_attrs=job_attrs)


def unsupported_names(response: Message) -> list[str]:
    group = response.group(GroupTag.UNSUPPORTED)
    return [] if group is None else [a.name for a in group]


def message_of(response: Message) -> str:
    attr = op_attr(response, "status-message")
    return "" if attr is None else str(attr.value)


def refused(response: Message, status: Status, *unsupported: str) -> None:
    assert response.code == status, (Status(response.code).name, message_of(response))
    for name in unsupported:
        assert name in unsupported_names(response), unsupported_names(response)


async def new_job(system: System, uri: str = OFFICE) -> int:
    response = await call(system, request(Operation.CREATE_JOB, printer_uri=uri))
    assert response.code == S.OK
    job_id = job_attr(response, "job-id")
    assert isinstance(job_id, int)
    return job_id


async def printed_job(system: System) -> int:
    response = await call(system, op_request(Operation.PRINT_JOB, {
        "document-format": (T.MIME_MEDIA_TYPE, "application/pdf")}), PDF)
    assert response.code == S.OK
    job_id = job_attr(response, "job-id")
    assert isinstance(job_id, int)
    return job_id


async def job_request(system: System, operation: Operation, attrs: Spec | None = None
                      ) -> Message:
    """A request for `operation` on a job it may act on: an open Create-Job job, or for
    Release-Job a held one."""
    if operation == Operation.RELEASE_JOB:
        job_id = await printed_job(system)
        held = await call(system, op_request(Operation.HOLD_JOB, job_id=job_id))
        assert held.code == S.OK
    else:
        job_id = await new_job(system)
    return op_request(operation, attrs, job_id=job_id)


SUBSCRIPTION_OPS = frozenset({
    Operation.CREATE_PRINTER_SUBSCRIPTIONS, Operation.CREATE_JOB_SUBSCRIPTIONS,
    Operation.GET_SUBSCRIPTION_ATTRIBUTES, Operation.GET_SUBSCRIPTIONS,
    Operation.RENEW_SUBSCRIPTION, Operation.CANCEL_SUBSCRIPTION, Operation.GET_NOTIFICATIONS,
})


def with_template(message: Message) -> Message:
    message.groups.append(Group(GroupTag.SUBSCRIPTION, [
        Attribute.of("notify-pull-method", T.KEYWORD, "ippget")]))
    return message


async def subscription_request(system: System, operation: Operation) -> Message:
    """A request for a subscription operation that succeeds: a subscription template to
    make one, or a subscription (made here) to act on."""
    if operation == Operation.CREATE_PRINTER_SUBSCRIPTIONS:
        return with_template(op_request(operation))
    if operation == Operation.CREATE_JOB_SUBSCRIPTIONS:
        job_id = await new_job(system)
        return with_template(op_request(operation, {"notify-job-id": (T.INTEGER, job_id)}))
    if operation == Operation.GET_SUBSCRIPTIONS:
        return op_request(operation)
    made = await call(system, with_template(op_request(Operation.CREATE_PRINTER_SUBSCRIPTIONS)))
    group = made.group(GroupTag.SUBSCRIPTION)
    assert made.code == S.OK and group is not None, message_of(made)
    subscription = group.get("notify-subscription-id")
    assert subscription is not None
    name = "notify-subscription-ids" if operation == Operation.GET_NOTIFICATIONS \
        else "notify-subscription-id"
    return op_request(operation, {name: (T.INTEGER, subscription.value)})


async def any_request(system: System, operation: Operation) -> Message:
    if operation in JOB_OPERATIONS:
        return await job_request(system, operation)
    if operation in SUBSCRIPTION_OPS:
        return await subscription_request(system, operation)
    return op_request(operation)


# -- C1-C13: the header, the groups, charset and language, for every operation --------------


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c1_unsupported_major_version(system: System, operation: Operation) -> None:
    message = await any_request(system, operation)
    for version in ((3, 0), (0, 9)):
        message.version = version
        refused(await call(system, message), S.SERVER_ERROR_VERSION_NOT_SUPPORTED)


@pytest.mark.parametrize("version", [(1, 1), (2, 0)])
async def test_c2_versions_1_1_and_2_0_accepted(system: System, version: tuple[int, int]
                                                ) -> None:
    message = op_request(Operation.GET_PRINTER_ATTRIBUTES)
    message.version = version
    response = await call(system, message)
    assert response.code == S.OK and response.version == version


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c3_request_id_zero(system: System, operation: Operation) -> None:
    message = await any_request(system, operation)
    message.request_id = 0
    refused(await call(system, message, PDF), BAD)
    made_a_job = operation in JOB_OPERATIONS or operation == Operation.CREATE_JOB_SUBSCRIPTIONS
    assert len(system.jobs) == (1 if made_a_job else 0)


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c4_no_operation_group(system: System, operation: Operation) -> None:
    refused(await call(system, Message((2, 0), operation, 1, [])), BAD)


@pytest.mark.parametrize("order", [
    [GroupTag.JOB, GroupTag.OPERATION],
    [GroupTag.OPERATION, GroupTag.PRINTER, GroupTag.JOB],
    [GroupTag.OPERATION, GroupTag.JOB, GroupTag.OPERATION]])
@pytest.mark.parametrize("operation", CREATION_OPS, ids=lambda op: op.name)
async def test_c5_groups_out_of_order(system: System, operation: Operation,
                                      order: list[GroupTag]) -> None:
    operation_group = op_request(operation, PDF_FORMAT).groups[0]
    groups = [operation_group if tag == GroupTag.OPERATION
              else Group(tag, [Attribute.of("copies", T.INTEGER, 1)]) for tag in order]
    refused(await call(system, Message((2, 0), operation, 1, groups), PDF), BAD)
    assert not system.jobs


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c6_an_operation_attribute_repeated_is_a_bad_request(
        system: System, operation: Operation) -> None:
    message = await any_request(system, operation)
    message.groups[0].add(Attribute.of("requesting-user-name", T.NAME, "again"))
    refused(await call(system, message, PDF), BAD)
    assert "requesting-user-name" in message_of(await call(system, message, PDF))


@pytest.mark.parametrize("operation", CREATION_OPS, ids=lambda op: op.name)
async def test_c6_a_job_attribute_repeated_is_a_bad_request(system: System,
                                                            operation: Operation) -> None:
    message = op_request(operation, job_attrs={"copies": (T.INTEGER, 1)})
    message.groups[1].add(Attribute.of("copies", T.INTEGER, 2))
    refused(await call(system, message, PDF), BAD)
    assert not system.jobs


def without(message: Message, name: str) -> Message:
    message.groups[0].attributes = [a for a in message.groups[0] if a.name != name]
    return message


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
@pytest.mark.parametrize("missing", ["attributes-charset", "attributes-natural-language"])
async def test_c7_c8_charset_or_language_missing(system: System, operation: Operation,
                                                 missing: str) -> None:
    message = without(await any_request(system, operation), missing)
    refused(await call(system, message, PDF), BAD)


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c9_charset_and_language_not_first_or_swapped(system: System,
                                                            operation: Operation) -> None:
    message = await any_request(system, operation)
    attrs = message.groups[0].attributes
    attrs[0], attrs[1] = attrs[1], attrs[0]
    refused(await call(system, message, PDF), BAD)
    attrs[0], attrs[1] = attrs[1], attrs[0]
    attrs.insert(0, attrs.pop(2))  # the target first
    refused(await call(system, message, PDF), BAD)


@pytest.mark.parametrize("value", [(T.KEYWORD, "utf-8"), (T.TEXT, "utf-8"),
                                   (T.CHARSET, "utf 8")])
async def test_c10_charset_of_the_wrong_syntax(system: System, value: tuple[int, str]) -> None:
    message = op_request(Operation.GET_PRINTER_ATTRIBUTES)
    message.groups[0].attributes[0] = Attribute("attributes-charset", [value])
    refused(await call(system, message), BAD)


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c11_unsupported_charset(system: System, operation: Operation) -> None:
    message = await any_request(system, operation)
    message.groups[0].attributes[0] = Attribute.of("attributes-charset", T.CHARSET, "iso-8859-1")
    refused(await call(system, message, PDF), S.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
            "attributes-charset")


@pytest.mark.parametrize("charset", ["utf-8", "us-ascii", "UTF-8"])
async def test_c12_utf8_and_us_ascii_accepted(system: System, charset: str) -> None:
    message = op_request(Operation.GET_PRINTER_ATTRIBUTES)
    message.groups[0].attributes[0] = Attribute.of("attributes-charset", T.CHARSET, charset)
    assert (await call(system, message)).code == S.OK


async def test_c13_a_natural_language_the_printer_lacks_is_accepted(system: System) -> None:
    message = op_request(Operation.PRINT_JOB, {
        "document-format": (T.MIME_MEDIA_TYPE, "application/pdf")})
    message.groups[0].attributes[1] = Attribute.of("attributes-natural-language",
                                                   T.NATURAL_LANGUAGE, "tlh-Latn")
    assert (await call(system, message, PDF)).code == S.OK


# -- C14-C21: targets and the requesting user ------------------------------------------------


@pytest.mark.parametrize("operation", PRINTER_OPS, ids=lambda op: op.name)
async def test_c14_printer_operation_without_printer_uri(system: System,
                                                         operation: Operation) -> None:
    refused(await call(system, op_request(operation, uri=None), PDF), BAD)
    assert not system.jobs


@pytest.mark.parametrize("operation", JOB_OPS, ids=lambda op: op.name)
async def test_c15_job_operation_without_any_target(system: System,
                                                    operation: Operation) -> None:
    job_id = await new_job(system)
    refused(await call(system, op_request(operation, uri=None, job_id=job_id), PDF), BAD)


@pytest.mark.parametrize("operation", JOB_OPS, ids=lambda op: op.name)
async def test_c16_job_operation_with_printer_uri_and_no_job_id(system: System,
                                                                operation: Operation) -> None:
    await new_job(system)
    refused(await call(system, op_request(operation), PDF), BAD)


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c17_printer_uri_naming_no_printer(system: System, operation: Operation) -> None:
    message = await any_request(system, operation)
    message.groups[0].attributes[2] = Attribute.of("printer-uri", T.URI, f"{URI}/nowhere")
    refused(await call(system, message, PDF), S.CLIENT_ERROR_NOT_FOUND)


@pytest.mark.parametrize("operation", JOB_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("job_id", [999, 0, -5, "laser"])
async def test_c18_job_id_naming_no_job(system: System, operation: Operation,
                                        job_id: int | str) -> None:
    await new_job(system)
    if job_id == "laser":  # a job that exists, on another printer
        job_id = await new_job(system, LASER)
    refused(await call(system, op_request(operation, job_id=int(job_id)), PDF),
            S.CLIENT_ERROR_NOT_FOUND)


@pytest.mark.parametrize("operation", JOB_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("value", [(T.TEXT, "1"), (T.ENUM, 1), (T.INTEGER, [1, 1])])
async def test_c19_job_id_that_is_not_one_integer(system: System, operation: Operation,
                                                  value: tuple[int, Any]) -> None:
    await new_job(system)
    refused(await call(system, op_request(operation, {"job-id": value}), PDF), BAD)


@pytest.mark.parametrize("operation", JOB_OPS, ids=lambda op: op.name)
async def test_c20_job_uri_names_the_job(system: System, operation: Operation) -> None:
    message = without(without(await job_request(system, operation), "printer-uri"), "job-id")
    job_id = max(system.jobs)
    message.groups[0].add(Attribute.of("job-uri", T.URI, f"{OFFICE}/{job_id}"))
    response = await call(system, message, PDF)
    assert response.code == S.OK, message_of(response)
    missing = op_request(operation, {"job-uri": (T.URI, f"{OFFICE}/{job_id + 50}")}, uri=None)
    refused(await call(system, missing, PDF), S.CLIENT_ERROR_NOT_FOUND)


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
@pytest.mark.parametrize("value", [(T.KEYWORD, "alice"), (T.INTEGER, 7),
                                   (T.NAME, ["alice", "bob"]), (T.NAME, "a\x00b")])
async def test_c21_requesting_user_name_not_one_name(system: System, operation: Operation,
                                                     value: tuple[int, Any]) -> None:
    message = without(await any_request(system, operation), "requesting-user-name")
    tag, plain = value
    listed = plain if isinstance(plain, list) else [plain]
    message.groups[0].add(Attribute("requesting-user-name", [(tag, v) for v in listed]))
    refused(await call(system, message, PDF), BAD)


# -- C22-C25: unsupported operations and attributes -----------------------------------------


@pytest.mark.parametrize("operation", SUPPORTED, ids=lambda op: op.name)
async def test_c22_unsupported_operation_attribute_is_ignored_and_returned(
        system: System, operation: Operation) -> None:
    message = await any_request(system, operation)
    message.groups[0].add(Attribute.of("x-frobnicate", T.KEYWORD, "on"))
    response = await call(system, message, PDF)
    refused(response, S.OK_IGNORED_OR_SUBSTITUTED, "x-frobnicate")


@pytest.mark.parametrize("operation", CREATION_OPS, ids=lambda op: op.name)
async def test_c23_job_template_attribute_in_the_operation_group(
        system: System, operation: Operation) -> None:
    message = op_request(operation, {"copies": (T.INTEGER, 2)})
    response = await call(system, message, PDF)
    refused(response, S.OK_IGNORED_OR_SUBSTITUTED, "copies")
    for job in system.jobs.values():
        assert "copies" not in job.template


@pytest.mark.parametrize("code", [Operation.PRINT_URI, Operation.SEND_URI, 0x0012, 0x000E,
                                  0x0013, 0x4002, 0x7FFF])
async def test_c24_unsupported_operation(system: System, code: int) -> None:
    assert code not in OPERATIONS.supported
    refused(await call(system, op_request(code, job_id=1)), S.SERVER_ERROR_OPERATION_NOT_SUPPORTED)


# (operation, attribute, a value of the wrong syntax or an unsupported value): C25.
WRONG_VALUES: list[tuple[Operation, str, tuple[int, Any]]] = [
    *[(op, "job-name", (T.INTEGER, 5)) for op in CREATION_OPS],
    *[(op, "document-name", (T.KEYWORD, "report")) for op in CREATION_OPS],
    *[(op, "ipp-attribute-fidelity", (T.KEYWORD, "true")) for op in CREATION_OPS],
    *[(op, "document-format", (T.KEYWORD, "application/pdf")) for op in CREATION_OPS],
    *[(op, "compression", (T.NAME, "gzip")) for op in CREATION_OPS],
    *[(op, "job-k-octets", (T.TEXT, "12")) for op in CREATION_OPS],
    (Operation.SEND_DOCUMENT, "last-document", (T.INTEGER, 1)),
    (Operation.SEND_DOCUMENT, "document-format", (T.TEXT, "application/pdf")),
    (Operation.SEND_DOCUMENT, "compression", (T.INTEGER, 1)),
    (Operation.SEND_DOCUMENT, "document-name", (T.INTEGER, 1)),
    (Operation.GET_PRINTER_ATTRIBUTES, "requested-attributes", (T.NAME, "all")),
    (Operation.GET_PRINTER_ATTRIBUTES, "document-format", (T.TEXT, "application/pdf")),
    (Operation.GET_JOB_ATTRIBUTES, "requested-attributes", (T.INTEGER, 1)),
    (Operation.GET_JOBS, "requested-attributes", (T.TEXT, "job-id")),
    (Operation.GET_JOBS, "which-jobs", (T.KEYWORD, "sometimes")),
    (Operation.GET_JOBS, "which-jobs", (T.NAME, "all")),
    (Operation.GET_JOBS, "limit", (T.KEYWORD, "ten")),
    (Operation.GET_JOBS, "limit", (T.INTEGER, 0)),
    (Operation.GET_JOBS, "first-index", (T.INTEGER, 0)),
    (Operation.GET_JOBS, "first-index", (T.TEXT, "1")),
    (Operation.GET_JOBS, "my-jobs", (T.KEYWORD, "true")),
    (Operation.GET_JOBS, "job-ids", (T.INTEGER, 0)),
    (Operation.CANCEL_MY_JOBS, "job-ids", (T.KEYWORD, "1")),
    (Operation.IDENTIFY_PRINTER, "identify-actions", (T.KEYWORD, "dance")),
    (Operation.IDENTIFY_PRINTER, "identify-actions", (T.NAME, "sound")),
    (Operation.IDENTIFY_PRINTER, "message", (T.INTEGER, 3)),
]


@pytest.mark.parametrize(("operation", "name", "value"), WRONG_VALUES,
                         ids=[f"{op.name}-{name}-{T(v[0]).name}" for op, name, v in WRONG_VALUES])
async def test_c25_wrong_syntax_or_value_of_a_supported_operation_attribute(
        system: System, operation: Operation, name: str, value: tuple[int, Any]) -> None:
    assert name in OPERATIONS.attributes[operation]
    if operation in JOB_OPERATIONS:
        message = without(await job_request(system, operation), name)
        message.groups[0].add(Attribute(name, [value]))
    else:
        message = op_request(operation, {"document-format": (T.MIME_MEDIA_TYPE, "application/pdf"),
                                         name: value} if operation in CREATION_OPS
                             else {name: value})
    before = len(system.jobs)
    refused(await call(system, message, PDF), UNSUPPORTED, name)
    assert len(system.jobs) == before


# -- J1-J10: Print-Job, Validate-Job and Create-Job check the same things --------------------


PDF_FORMAT: Spec = {"document-format": (T.MIME_MEDIA_TYPE, "application/pdf")}
# (operation attributes, job attributes, status, attribute in the unsupported group)
CREATION_REFUSALS: list[tuple[str, Spec, Spec, Status, str]] = [
    ("J1-format", {"document-format": (T.MIME_MEDIA_TYPE, "x-unheard/of")}, {},
     S.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "document-format"),
    ("J2-compression", {**PDF_FORMAT, "compression": (T.KEYWORD, "lzw")}, {},
     S.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED, "compression"),
    ("J3-fidelity-value", {**PDF_FORMAT, "ipp-attribute-fidelity": (T.BOOLEAN, True)},
     {"copies": (T.INTEGER, 5000)}, UNSUPPORTED, "copies"),
    ("J3-fidelity-syntax", {**PDF_FORMAT, "ipp-attribute-fidelity": (T.BOOLEAN, True)},
     {"sides": (T.INTEGER, 1)}, UNSUPPORTED, "sides"),
    ("J3-fidelity-unknown", {**PDF_FORMAT, "ipp-attribute-fidelity": (T.BOOLEAN, True)},
     {"x-frobnicate": (T.KEYWORD, "on")}, UNSUPPORTED, "x-frobnicate"),
    ("J5-size", {**PDF_FORMAT, "job-k-octets": (T.INTEGER, 2**31 - 1)}, {},
     S.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE, "job-k-octets"),
    ("J6-size-syntax", {**PDF_FORMAT, "job-k-octets": (T.INTEGER, -1)}, {}, UNSUPPORTED,
     "job-k-octets"),
]


@pytest.mark.parametrize("operation", CREATION_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize(("case", "attrs", "job_attrs", "status", "name"), CREATION_REFUSALS,
                         ids=[c[0] for c in CREATION_REFUSALS])
async def test_j1_to_j6_job_creation_refusals(system: System, operation: Operation, case: str,
                                              attrs: Spec, job_attrs: Spec, status: Status,
                                              name: str) -> None:
    response = await call(system, op_request(operation, attrs, job_attrs or None), PDF)
    refused(response, status, name)
    assert not system.jobs
    if case == "J3-fidelity-unknown":
        unsupported = response.group(GroupTag.UNSUPPORTED)
        assert unsupported is not None
        attr = unsupported.get("x-frobnicate")
        assert attr is not None and attr.tag == T.UNSUPPORTED


@pytest.mark.parametrize("operation", CREATION_OPS, ids=lambda op: op.name)
@pytest.mark.parametrize("fidelity", [False, None])
async def test_j4_without_fidelity_unsupported_values_are_reported(
        system: System, operation: Operation, fidelity: bool | None) -> None:
    attrs: dict[str, tuple[int, Any]] = dict(PDF_FORMAT)
    if fidelity is not None:
        attrs["ipp-attribute-fidelity"] = (T.BOOLEAN, fidelity)
    response = await call(system, op_request(operation, attrs, {
        "copies": (T.INTEGER, 5000), "sides": (T.KEYWORD, "one-sided"),
        "x-frobnicate": (T.KEYWORD, "on")}), PDF)
    refused(response, S.OK_IGNORED_OR_SUBSTITUTED, "copies", "x-frobnicate")
    assert "sides" not in unsupported_names(response)
    if operation == Operation.VALIDATE_JOB:  # J10
        assert not system.jobs
    else:
        (job,) = system.jobs.values()
        assert job.template == {"sides": "one-sided"}


@pytest.mark.parametrize(("attrs", "expected"), [
    ({"document-name": (T.NAME, "report.pdf")}, "report.pdf"),
    ({"job-name": (T.NAME, "mine"), "document-name": (T.NAME, "report.pdf")}, "mine"),
    ({}, None)])
async def test_j7_job_name_made_when_absent(system: System, attrs: Spec,
                                            expected: str | None) -> None:
    response = await call(system, op_request(Operation.PRINT_JOB, {**PDF_FORMAT, **attrs}), PDF)
    assert response.code == S.OK
    (job,) = system.jobs.values()
    assert job.name == (expected or "Untitled")


async def test_j8_requesting_user_name_is_the_originating_user(system: System) -> None:
    message = without(op_request(Operation.PRINT_JOB, PDF_FORMAT), "requesting-user-name")
    message.groups[0].add(Attribute.of("requesting-user-name", T.NAME, "alice"))
    job_id = job_attr(await call(system, message, PDF), "job-id")
    assert isinstance(job_id, int)
    # Asked by alice: to anyone else it is private (gateway.privacy).
    query = without(op_request(Operation.GET_JOB_ATTRIBUTES, {
        "requested-attributes": (T.KEYWORD, "job-originating-user-name")}, job_id=job_id),
        "requesting-user-name")
    query.groups[0].add(Attribute.of("requesting-user-name", T.NAME, "alice"))
    response = await call(system, query)
    assert job_attr(response, "job-originating-user-name") == "alice"


@pytest.mark.parametrize("compression", ["none", "gzip", "deflate"])
async def test_j9_validate_job_accepts_what_print_job_accepts(system: System,
                                                              compression: str) -> None:
    attrs = {**PDF_FORMAT, "compression": (T.KEYWORD, compression)}
    response = await call(system, op_request(Operation.VALIDATE_JOB, attrs))
    assert response.code == S.OK, message_of(response)
    assert not system.jobs


# -- P1-P5: Printer operations ---------------------------------------------------------------


@pytest.mark.parametrize("printer", [OFFICE, LASER])
async def test_p1_get_printer_attributes_unsupported_document_format(system: System,
                                                                     printer: str) -> None:
    response = await call(system, op_request(Operation.GET_PRINTER_ATTRIBUTES, {
        "document-format": (T.MIME_MEDIA_TYPE, "x-unheard/of")}, uri=printer))
    refused(response, S.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "document-format")
    for fmt in ("application/pdf", "application/octet-stream"):
        response = await call(system, op_request(Operation.GET_PRINTER_ATTRIBUTES, {
            "document-format": (T.MIME_MEDIA_TYPE, fmt)}, uri=printer))
        assert response.code == S.OK, message_of(response)


async def test_p2_unknown_requested_attributes_are_ignored(system: System) -> None:
    response = await call(system, op_request(Operation.GET_PRINTER_ATTRIBUTES, {
        "requested-attributes": (T.KEYWORD, ["printer-state", "x-no-such-attribute"])}))
    assert response.code == S.OK
    group = response.group(GroupTag.PRINTER)
    assert group is not None and [a.name for a in group] == ["printer-state"]


async def test_p5_get_jobs_default_attributes(system: System) -> None:
    await printed_job(system)
    response = await call(system, op_request(Operation.GET_JOBS))
    assert response.code == S.OK
    (group,) = response.groups_of(GroupTag.JOB)
    assert sorted(a.name for a in group) == ["job-id", "job-uri"]


# -- O1-O11: Job operations ------------------------------------------------------------------


async def test_o1_send_document_without_last_document(system: System) -> None:
    job_id = await new_job(system)
    message = without(op_request(Operation.SEND_DOCUMENT, job_id=job_id), "last-document")
    refused(await call(system, message, PDF), BAD)


async def closed_job(system: System, how: str) -> int:
    if how == "print-job":
        return await printed_job(system)
    job_id = await new_job(system)
    if how == "last-document":
        sent = await call(system, op_request(Operation.SEND_DOCUMENT, PDF_FORMAT,
                                             job_id=job_id), PDF)
        assert sent.code == S.OK
    elif how == "close-job":
        await call(system, op_request(Operation.SEND_DOCUMENT, {
            **PDF_FORMAT, "last-document": (T.BOOLEAN, False)}, job_id=job_id), PDF)
        assert (await call(system, op_request(Operation.CLOSE_JOB, job_id=job_id))
                ).code == S.OK
    else:
        event = {"canceled": JobEvent.CANCEL, "aborted": JobEvent.ABORT}[how]
        system.store.transition(system.jobs[job_id], event, "job-canceled-by-user")
    return job_id


@pytest.mark.parametrize("how", ["print-job", "last-document", "close-job", "canceled",
                                 "aborted"])
async def test_o2_o3_send_document_to_a_job_not_waiting(system: System, how: str) -> None:
    job_id = await closed_job(system, how)
    response = await call(system, op_request(Operation.SEND_DOCUMENT, PDF_FORMAT,
                                             job_id=job_id), PDF)
    refused(response, S.CLIENT_ERROR_NOT_POSSIBLE)


@pytest.mark.parametrize(("attrs", "status", "name"), [
    ({"document-format": (T.MIME_MEDIA_TYPE, "x-unheard/of")},
     S.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED, "document-format"),
    ({"compression": (T.KEYWORD, "lzw")}, S.CLIENT_ERROR_COMPRESSION_NOT_SUPPORTED,
     "compression")])
async def test_o4_send_document_checks_format_and_compression(
        system: System, attrs: Spec, status: Status, name: str) -> None:
    job_id = await new_job(system)
    refused(await call(system, op_request(Operation.SEND_DOCUMENT, attrs, job_id=job_id), PDF),
            status, name)


async def finished_job(system: System, state: JobState) -> int:
    job_id = await printed_job(system)
    job = system.jobs[job_id]
    if state is JobState.COMPLETED:
        system.store.transition(job, JobEvent.START)
        system.store.transition(job, JobEvent.COMPLETE, "job-completed-successfully")
    elif state is JobState.PROCESSING:
        system.store.transition(job, JobEvent.START)
    else:
        system.store.transition(job, JobEvent.CANCEL if state is JobState.CANCELED
                                else JobEvent.ABORT, "aborted-by-system")
    assert job.state is state
    return job_id


@pytest.mark.parametrize("state", [JobState.COMPLETED, JobState.CANCELED, JobState.ABORTED])
async def test_o5_cancel_job_on_a_finished_job(system: System, state: JobState) -> None:
    job_id = await finished_job(system, state)
    refused(await call(system, op_request(Operation.CANCEL_JOB, job_id=job_id)),
            S.CLIENT_ERROR_NOT_POSSIBLE)


@pytest.mark.parametrize("state", [JobState.PROCESSING, JobState.COMPLETED, JobState.CANCELED])
async def test_o7_hold_job_on_a_job_that_is_not_pending(system: System, state: JobState) -> None:
    job_id = await finished_job(system, state)
    refused(await call(system, op_request(Operation.HOLD_JOB, job_id=job_id)),
            S.CLIENT_ERROR_NOT_POSSIBLE)
    assert system.jobs[job_id].state is state


@pytest.mark.parametrize("state", [JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED,
                                   JobState.PENDING_HELD])
async def test_o8_release_job_on_a_job_that_is_not_held(system: System, state: JobState) -> None:
    if state is JobState.PENDING:
        job_id = await printed_job(system)
    elif state is JobState.PENDING_HELD:  # held only because its documents are still coming
        job_id = await new_job(system)
    else:
        job_id = await finished_job(system, state)
    refused(await call(system, op_request(Operation.RELEASE_JOB, job_id=job_id)),
            S.CLIENT_ERROR_NOT_POSSIBLE)


@pytest.mark.parametrize("how", ["print-job", "last-document", "canceled"])
async def test_o9_close_job_on_a_job_not_open(system: System, how: str) -> None:
    job_id = await closed_job(system, how)
    refused(await call(system, op_request(Operation.CLOSE_JOB, job_id=job_id)),
            S.CLIENT_ERROR_NOT_POSSIBLE)


async def test_o10_cancel_my_jobs_with_someone_elses_job(system: System) -> None:
    job_id = await printed_job(system)
    message = without(op_request(Operation.CANCEL_MY_JOBS, {"job-ids": (T.INTEGER, job_id)}),
                      "requesting-user-name")
    message.groups[0].add(Attribute.of("requesting-user-name", T.NAME, "mallory"))
    # From another host: not an administrator, who could cancel it (gateway.policy).
    refused(await call(system, message, client="192.0.2.9:1"), S.CLIENT_ERROR_NOT_POSSIBLE)
    assert system.jobs[job_id].state is JobState.PENDING
