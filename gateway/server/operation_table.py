"""The IPP operations the gateway answers: one table, written out, operation -> handler.

The dispatcher (`operations.answer`) finds every handler here, and operations-supported is
derived from the same table (`OperationTable.supported`), so an operation is supported exactly
when it has a line below. Nothing registers itself by being imported; the handler modules do
not import this one (that would be a cycle).
"""

from __future__ import annotations

from gateway.core.system import System
from gateway.server import ops_jobs, ops_printer, ops_subscriptions
from gateway.server.operations import DocumentStream, Endpoint, OperationTable, answer
from ippwire.enums import Operation
from ippwire.model import Message

# The operation attributes each handler reads, beside the charset, language, target and
# requesting-user-name every operation takes (and job-uri/job-id for a job's operations).
_JOB_CREATION = frozenset({
    "job-name", "ipp-attribute-fidelity", "document-name", "compression", "document-format",
    "job-k-octets",
})
_SEND = frozenset({"last-document", "document-name", "compression", "document-format"})
ATTRIBUTES = {
    Operation.PRINT_JOB: _JOB_CREATION,
    Operation.VALIDATE_JOB: _JOB_CREATION,
    Operation.CREATE_JOB: _JOB_CREATION,
    Operation.SEND_DOCUMENT: _SEND,
    Operation.GET_JOB_ATTRIBUTES: frozenset({"requested-attributes"}),
    Operation.GET_JOBS: frozenset({"which-jobs", "my-jobs", "limit", "first-index", "job-ids",
                                   "requested-attributes"}),
    Operation.GET_PRINTER_ATTRIBUTES: frozenset({"requested-attributes", "document-format"}),
    Operation.CANCEL_MY_JOBS: frozenset({"job-ids"}),
    Operation.IDENTIFY_PRINTER: frozenset({"identify-actions", "message"}),
    Operation.CREATE_PRINTER_SUBSCRIPTIONS: ops_subscriptions.CREATE_PRINTER,
    Operation.CREATE_JOB_SUBSCRIPTIONS: ops_subscriptions.CREATE_JOB,
    Operation.GET_SUBSCRIPTION_ATTRIBUTES: ops_subscriptions.GET_ONE,
    Operation.GET_SUBSCRIPTIONS: ops_subscriptions.GET_ALL,
    Operation.RENEW_SUBSCRIPTION: ops_subscriptions.RENEW,
    Operation.CANCEL_SUBSCRIPTION: ops_subscriptions.ONE,
    Operation.GET_NOTIFICATIONS: ops_subscriptions.GET_NOTIFICATIONS,
}

OPERATIONS = OperationTable({
    Operation.PRINT_JOB: ops_jobs.print_job,
    Operation.VALIDATE_JOB: ops_jobs.validate_job,
    Operation.CREATE_JOB: ops_jobs.create_job,
    Operation.SEND_DOCUMENT: ops_jobs.send_document,
    Operation.CANCEL_JOB: ops_jobs.cancel_job,
    Operation.GET_JOB_ATTRIBUTES: ops_jobs.get_job_attributes,
    Operation.GET_JOBS: ops_jobs.get_jobs,
    Operation.GET_PRINTER_ATTRIBUTES: ops_printer.get_printer_attributes,
    Operation.HOLD_JOB: ops_jobs.hold_job,
    Operation.RELEASE_JOB: ops_jobs.release_job,
    Operation.PAUSE_PRINTER: ops_printer.pause_printer,
    Operation.RESUME_PRINTER: ops_printer.resume_printer,
    Operation.CANCEL_MY_JOBS: ops_jobs.cancel_my_jobs,
    Operation.CLOSE_JOB: ops_jobs.close_job,
    Operation.IDENTIFY_PRINTER: ops_printer.identify_printer,
    Operation.CREATE_PRINTER_SUBSCRIPTIONS: ops_subscriptions.create_printer_subscriptions,
    Operation.CREATE_JOB_SUBSCRIPTIONS: ops_subscriptions.create_job_subscriptions,
    Operation.GET_SUBSCRIPTION_ATTRIBUTES: ops_subscriptions.get_subscription_attributes,
    Operation.GET_SUBSCRIPTIONS: ops_subscriptions.get_subscriptions,
    Operation.RENEW_SUBSCRIPTION: ops_subscriptions.renew_subscription,
    Operation.CANCEL_SUBSCRIPTION: ops_subscriptions.cancel_subscription,
    Operation.GET_NOTIFICATIONS: ops_subscriptions.get_notifications,
}, ATTRIBUTES)


async def dispatch(system: System, endpoint: Endpoint, request: Message,
                   document: DocumentStream) -> bytes:
    """The encoded response to `request`, by the handler this table names for it."""
    return await answer(OPERATIONS, system, endpoint, request, document)
