"""A tiny blocking IPP client for tests: our codec over http.client."""

from __future__ import annotations

import http.client
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from ippwire.enums import GroupTag, Operation, ValueTag
from ippwire.model import Group, Message, Value
from ippwire.reader import decode_message
from ippwire.writer import AttributeSpec, encode_message, request


def post(port: int, body: bytes, *, path: str = "/ipp/print", timeout: float = 30.0,
         content_type: str = "application/ipp") -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def ipp(port: int, message: Message, document: bytes = b"") -> Message:
    status, body = post(port, encode_message(message) + document)
    assert status == 200, (status, body[:200])
    response, _ = decode_message(body)
    return response


def printer_uri(port: int) -> str:
    return f"ipp://127.0.0.1:{port}/ipp/print"


def print_job(port: int, document: bytes, fmt: str = "application/octet-stream",
              name: str = "test") -> int:
    response = ipp(port, request(Operation.PRINT_JOB, printer_uri=printer_uri(port), attrs={
        "job-name": (ValueTag.NAME, name), "document-format": (ValueTag.MIME_MEDIA_TYPE, fmt)}),
        document)
    assert response.code == 0, response
    group = response.group(GroupTag.JOB)
    assert group is not None
    job_id = group.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


def job_state(port: int, job_id: int) -> int:
    response = ipp(port, request(Operation.GET_JOB_ATTRIBUTES, printer_uri=printer_uri(port),
                                 attrs={"job-id": (ValueTag.INTEGER, job_id),
                                        "requested-attributes": (ValueTag.KEYWORD, "job-state")}))
    group = response.group(GroupTag.JOB)
    assert group is not None, response
    state = group.get("job-state")
    assert state is not None and isinstance(state.value, int)
    return state.value


def printer_state(port: int) -> int:
    response = ipp(port, request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=printer_uri(port),
                                 attrs={"requested-attributes": (ValueTag.KEYWORD,
                                                                 "printer-state")}))
    group = response.group(GroupTag.PRINTER)
    assert group is not None, response
    state = group.get("printer-state")
    assert state is not None and isinstance(state.value, int)
    return state.value


def raw_exchange(port: int, data: bytes, *, timeout: float = 10.0,
                 half_close: bool = False) -> bytes:
    """Send raw bytes, read until the server closes or `timeout`; returns what came back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


# -- named printers, streamed documents, state snapshots ---------------------------------------
# (The helpers above address the default printer at /ipp/print; these take a printer name.)

STREAM_BLOCK = 64 * 1024


def printer_path(printer: str | None = None) -> str:
    return "/ipp/print" if printer is None else f"/ipp/print/{printer}"


def ipp_to(port: int, printer: str | None, message: Message, document: bytes = b"",
           *, timeout: float = 30.0) -> Message:
    """One request to `printer` (None = the default printer); fails unless HTTP 200."""
    status, body = post(port, encode_message(message) + document, path=printer_path(printer),
                        timeout=timeout)
    assert status == 200, (status, body[:200])
    response, _ = decode_message(body)
    return response


def _printer_request(port: int, printer: str | None, operation: int, user: str,
                     attrs: AttributeSpec) -> Message:
    uri = f"ipp://127.0.0.1:{port}{printer_path(printer)}"
    return request(operation, printer_uri=uri, user=user, attrs=attrs)


def _file_blocks(head: bytes, path: Path) -> Iterator[bytes]:
    yield head
    with open(path, "rb") as source:
        while block := source.read(STREAM_BLOCK):
            yield block


def submit(port: int, document: bytes | Path, *, printer: str | None = None,
           name: str = "test", user: str = "test", fmt: str = "application/octet-stream",
           timeout: float = 120.0) -> int:
    """Print-Job; a Path is streamed from disk (with its Content-Length), never read whole."""
    head = encode_message(_printer_request(port, printer, Operation.PRINT_JOB, user, {
        "job-name": (ValueTag.NAME, name), "document-format": (ValueTag.MIME_MEDIA_TYPE, fmt)}))
    if isinstance(document, bytes):
        body: bytes | Iterator[bytes] = head + document
        length = len(head) + len(document)
    else:
        body, length = _file_blocks(head, document), len(head) + document.stat().st_size
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("POST", printer_path(printer), body=body, headers={
            "Content-Type": "application/ipp", "Content-Length": str(length)})
        response = connection.getresponse()
        status, reply = response.status, response.read()
    finally:
        connection.close()
    assert status == 200, (status, reply[:200])
    decoded, _ = decode_message(reply)
    assert decoded.code == 0, decoded
    return job_id_of(decoded)


def job_id_of(response: Message) -> int:
    """The job-id a job-creating response carries (a failure if it carries none)."""
    group = response.group(GroupTag.JOB)
    assert group is not None, response
    job_id = group.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


@dataclass(frozen=True)
class StateSnapshot:
    """A printer's or a job's state enum, state-reasons keywords and state-message."""

    state: int
    reasons: tuple[str, ...]
    message: str


def _snapshot(group: Group | None, prefix: str) -> StateSnapshot:
    assert group is not None
    state, reasons, message = (group.get(f"{prefix}-state{suffix}")
                               for suffix in ("", "-reasons", "-message"))
    assert state is not None and isinstance(state.value, int)
    return StateSnapshot(state.value, tuple(str(v) for v in reasons.plain) if reasons else (),
                         str(message.value) if message is not None else "")


def printer_status(port: int, printer: str | None = None, *, timeout: float = 30.0
                   ) -> StateSnapshot:
    """Get-Printer-Attributes for printer-state, -reasons and -message."""
    wanted: list[Value] = ["printer-state", "printer-state-reasons", "printer-state-message"]
    response = ipp_to(port, printer, _printer_request(
        port, printer, Operation.GET_PRINTER_ATTRIBUTES, "test",
        {"requested-attributes": (ValueTag.KEYWORD, wanted)}), timeout=timeout)
    assert response.code == 0, response
    return _snapshot(response.group(GroupTag.PRINTER), "printer")


def job_status(port: int, job_id: int, printer: str | None = None) -> StateSnapshot:
    """Get-Job-Attributes for job-state, -reasons and -message."""
    wanted: list[Value] = ["job-state", "job-state-reasons", "job-state-message"]
    response = ipp_to(port, printer, _printer_request(
        port, printer, Operation.GET_JOB_ATTRIBUTES, "test",
        {"job-id": (ValueTag.INTEGER, job_id), "requested-attributes": (ValueTag.KEYWORD,
                                                                        wanted)}))
    assert response.code == 0, response
    return _snapshot(response.group(GroupTag.JOB), "job")


def cancel(port: int, job_id: int, printer: str | None = None, user: str = "test") -> int:
    """Cancel-Job; returns the IPP status code."""
    response = ipp_to(port, printer, _printer_request(
        port, printer, Operation.CANCEL_JOB, user, {"job-id": (ValueTag.INTEGER, job_id)}))
    return response.code


# -- waiting for a state over IPP ---------------------------------------------------------------

POLL = 0.05


def wait_printer(port: int, printer: str, check: Callable[[StateSnapshot], bool], *,
                 timeout: float, what: str) -> StateSnapshot:
    """Poll Get-Printer-Attributes until `check` holds; every answer must come promptly."""
    return _wait(lambda: printer_status(port, printer, timeout=5.0), check, timeout, what)


def wait_job(port: int, job_id: int, printer: str, check: Callable[[StateSnapshot], bool], *,
             timeout: float, what: str) -> StateSnapshot:
    return _wait(lambda: job_status(port, job_id, printer), check, timeout, what)


def _wait(read: Callable[[], StateSnapshot], check: Callable[[StateSnapshot], bool],
          timeout: float, what: str) -> StateSnapshot:
    deadline = time.monotonic() + timeout
    while not check(snapshot := read()):
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s; last seen {snapshot}")
        time.sleep(POLL)
    return snapshot
