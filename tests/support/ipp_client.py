"""A tiny blocking IPP client for tests: our codec over http.client."""

from __future__ import annotations

import http.client
import socket

from gateway.ipp.enums import GroupTag, Operation, ValueTag
from gateway.ipp.model import Message
from gateway.ipp.reader import decode_message
from gateway.ipp.writer import encode_message, request


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
