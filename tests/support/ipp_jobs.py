"""A blocking IPP client bound to one named printer of a gateway: submit, validate, poll jobs.

Built on `tests.support.ipp_client.post` and our codec; attribute values come back as plain
Python lists keyed by name, which is what the tests compare.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.model import Group, Message, Value
from ippwire.reader import decode_message
from ippwire.writer import AttributeSpec, encode_message, request
from tests.support.ipp_client import post

T = ValueTag
Attrs = dict[str, list[Value]]
JOB_TIMEOUT = 90.0


def plain(group: Group | None) -> Attrs:
    return {} if group is None else {a.name: a.plain for a in group}


@dataclass
class Reply:
    """A decoded response: status, operation, job and unsupported groups as plain values."""

    message: Message
    status: int = field(init=False)
    operation: Attrs = field(init=False)
    job: Attrs = field(init=False)
    unsupported: Attrs = field(init=False)

    def __post_init__(self) -> None:
        self.status = self.message.code
        self.operation = plain(self.message.group(GroupTag.OPERATION))
        self.job = plain(self.message.group(GroupTag.JOB))
        self.unsupported = plain(self.message.group(GroupTag.UNSUPPORTED))

    @property
    def job_id(self) -> int:
        value = self.job.get("job-id", [None])[0]
        assert isinstance(value, int), self
        return value

    @property
    def status_message(self) -> str:
        return str(self.operation.get("status-message", [""])[0])


class IppPrinter:
    """One printer of a running gateway, addressed as `/ipp/print/NAME`."""

    def __init__(self, port: int, name: str) -> None:
        self.port, self.name = port, name
        self.path = f"/ipp/print/{name}"
        self.uri = f"ipp://127.0.0.1:{port}{self.path}"

    def send(self, operation: int, attrs: AttributeSpec | None = None,
             job_attrs: AttributeSpec | None = None, document: bytes = b"") -> Reply:
        message = request(operation, printer_uri=self.uri, attrs=attrs, job_attrs=job_attrs)
        status, body = post(self.port, encode_message(message) + document, path=self.path,
                            timeout=60.0)
        assert status == 200, (status, body[:200])
        response, _ = decode_message(body)
        return Reply(response)

    def print_job(self, document: bytes, fmt: str, job_attrs: AttributeSpec | None = None,
                  fidelity: bool | None = None, name: str = "gateway-pipeline",
                  compression: str | None = None) -> Reply:
        """Print-Job; with `compression`, `document` is sent as it is (already compressed)."""
        attrs = _job_operation_attrs(fmt, fidelity, name)
        if compression is not None:
            attrs["compression"] = (T.KEYWORD, compression)
        return self.send(Operation.PRINT_JOB, attrs, job_attrs, document)

    def validate_job(self, fmt: str, job_attrs: AttributeSpec | None = None,
                     fidelity: bool | None = None) -> Reply:
        return self.send(Operation.VALIDATE_JOB, _job_operation_attrs(fmt, fidelity, "v"),
                         job_attrs)

    def submit(self, document: bytes, fmt: str, job_attrs: AttributeSpec | None = None) -> int:
        """Print-Job that must be accepted as it is; returns the job id."""
        reply = self.print_job(document, fmt, job_attrs)
        assert reply.status == Status.OK, (hex(reply.status), reply.status_message)
        return reply.job_id

    def job(self, job_id: int) -> Attrs:
        reply = self.send(Operation.GET_JOB_ATTRIBUTES, {"job-id": (T.INTEGER, job_id)})
        assert reply.status == Status.OK, (hex(reply.status), reply.status_message)
        return reply.job

    def wait_done(self, job_id: int, timeout: float = JOB_TIMEOUT) -> Attrs:
        """The job's attributes once it is completed, aborted or canceled."""
        deadline = time.monotonic() + timeout
        while True:
            attrs = self.job(job_id)
            state = attrs["job-state"][0]
            assert isinstance(state, int), attrs
            if JobState(state).is_terminal:
                return attrs
            assert time.monotonic() < deadline, f"job {job_id} still {attrs}"
            time.sleep(0.1)

    def attributes(self, *names: str) -> Attrs:
        attrs: AttributeSpec = {"requested-attributes": (T.KEYWORD, list(names))} if names else {}
        reply = self.send(Operation.GET_PRINTER_ATTRIBUTES, attrs)
        assert reply.status == Status.OK, (hex(reply.status), reply.status_message)
        return plain(reply.message.group(GroupTag.PRINTER))


def _job_operation_attrs(fmt: str, fidelity: bool | None, name: str
                         ) -> dict[str, tuple[int, Value]]:
    attrs: dict[str, tuple[int, Value]] = {"job-name": (T.NAME, name),
                                          "document-format": (T.MIME_MEDIA_TYPE, fmt)}
    if fidelity is not None:
        attrs["ipp-attribute-fidelity"] = (T.BOOLEAN, fidelity)
    return attrs


def completed(attrs: Mapping[str, list[Value]]) -> bool:
    return attrs.get("job-state") == [JobState.COMPLETED]
