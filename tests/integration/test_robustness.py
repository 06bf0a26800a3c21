"""Bad input gets a clear answer and the gateway stays up (a real gateway process)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest

from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import Attribute
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers.gateway_proc import GatewayProcess, start_gateway
from tests.support.ipp_client import ipp, post, printer_state, printer_uri, raw_exchange

T = ValueTag


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("robust")
    config = workdir / "gw.toml"
    config.write_text("[server]\nmax_job_mb = 1\nread_timeout = 2\n")
    process = start_gateway(workdir, extra_args=["--config", str(config)])
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(autouse=True)
def still_serving(gateway: GatewayProcess) -> Iterator[None]:
    yield
    assert gateway.proc.poll() is None, "the gateway died"
    assert printer_state(gateway.port) in (3, 4, 5)
    assert "Traceback" not in gateway.log.read_text()


def gpa(port: int, **changes: object) -> bytes:
    return encode_message(request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=printer_uri(port)))


def ipp_status(body: bytes) -> int:
    response, _ = decode_message(body)
    return response.code


def test_truncated_request(gateway: GatewayProcess) -> None:
    status, body = post(gateway.port, gpa(gateway.port)[:30])
    assert status == 200 and ipp_status(body) == Status.CLIENT_ERROR_BAD_REQUEST


def test_garbage_bytes(gateway: GatewayProcess) -> None:
    status, body = post(gateway.port, b"\x02\x00\x00\x0b\x00\x00\x00\x07\x01\xff\xff\xff" * 9)
    assert status == 200 and ipp_status(body) == Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG
    assert b"name length 65535" in body
    status, body = post(gateway.port, b"\x02\x00\x00\x0b\x00\x00\x00\x07\x01\x0b\x00\x00")
    assert status == 200 and ipp_status(body) == Status.CLIENT_ERROR_BAD_REQUEST
    status, body = post(gateway.port, b"hi")
    assert status == 400 and b"Not an IPP request" in body


def test_wrong_version(gateway: GatewayProcess) -> None:
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=printer_uri(gateway.port),
                      version=(9, 9))
    assert ipp(gateway.port, message).code == Status.SERVER_ERROR_VERSION_NOT_SUPPORTED


def test_missing_charset(gateway: GatewayProcess) -> None:
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=printer_uri(gateway.port))
    del message.groups[0].attributes[0]
    assert ipp(gateway.port, message).code == Status.CLIENT_ERROR_BAD_REQUEST


def test_unknown_operation(gateway: GatewayProcess) -> None:
    message = request(0x3FFF, printer_uri=printer_uri(gateway.port))
    assert ipp(gateway.port, message).code == Status.SERVER_ERROR_OPERATION_NOT_SUPPORTED


def test_oversized_attribute_section(gateway: GatewayProcess) -> None:
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=printer_uri(gateway.port))
    message.groups[0].attributes += [Attribute.of(f"x-{i}", T.TEXT, "y" * 1000)
                                     for i in range(400)]
    status, body = post(gateway.port, encode_message(message))
    assert status == 200
    assert ipp_status(body) == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE


def test_oversized_document(gateway: GatewayProcess) -> None:
    documents_before = spooled_documents(gateway)
    message = request(Operation.PRINT_JOB, printer_uri=printer_uri(gateway.port),
                      attrs={"document-format": (T.MIME_MEDIA_TYPE, "text/plain")})
    status, body = post(gateway.port, encode_message(message) + b"x" * (2 << 20))
    assert status == 200
    response, _ = decode_message(body)
    assert response.code == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    assert "larger than 1 MB" in str(response.operation_attributes.get("status-message").value)  # type: ignore[union-attr]
    # The spool is left clean: no part of the refused document stays behind.
    assert spooled_documents(gateway) == documents_before


def spooled_documents(gateway: GatewayProcess) -> list[tuple[str, int]]:
    """The files beside the job records in the spool (documents, whole or partial)."""
    return sorted((path.name, path.stat().st_size) for path in (gateway.spool / "jobs").iterdir()
                  if path.suffix != ".json")


def test_client_stops_mid_body(gateway: GatewayProcess) -> None:
    message = request(Operation.PRINT_JOB, printer_uri=printer_uri(gateway.port),
                      attrs={"document-format": (T.MIME_MEDIA_TYPE, "text/plain"),
                             "job-name": (T.NAME, "interrupted")})
    head = encode_message(message)
    http_head = (b"POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/ipp\r\nContent-Length: %d\r\n\r\n"
                 % (len(head) + 100_000))
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(http_head + head + b"x" * 5000)
        time.sleep(0.3)
    # The Print-Job never got its answer: it leaves no job behind, not even an aborted one.
    deadline = time.monotonic() + 10
    while ("discarded, its request failed" not in gateway.log.read_text()
           and time.monotonic() < deadline):
        time.sleep(0.05)
    response = ipp(gateway.port, request(Operation.GET_JOBS, printer_uri=printer_uri(gateway.port),
                                         attrs={"which-jobs": (T.KEYWORD, "all")}))
    assert response.code == 0 and response.groups_of(GroupTag.JOB) == []
    assert list(gateway.output_dir.glob("job-*")) == []
    assert list((gateway.spool / "jobs").glob("*")) == []


def test_silent_client_gets_408(gateway: GatewayProcess) -> None:
    reply = raw_exchange(gateway.port, b"POST /ipp/print HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/ipp\r\nContent-Length: 500\r\n\r\n\x02\x00",
                         timeout=10)
    assert reply.startswith(b"HTTP/1.1 408")


def test_non_ipp_post(gateway: GatewayProcess) -> None:
    status, body = post(gateway.port, b"hello", content_type="text/plain")
    assert status == 400 and b"application/ipp" in body


def test_not_http_at_all(gateway: GatewayProcess) -> None:
    reply = raw_exchange(gateway.port, b"\x00\x03\x01\x02\x00garbage\r\n\r\n", half_close=True)
    assert reply.startswith(b"HTTP/1.1 400")


def test_broken_tls_is_closed_and_the_port_serves_on(gateway: GatewayProcess) -> None:
    # A first byte 0x16 is a TLS record: a broken handshake gets no HTTP answer, the
    # connection closes, and the next client is served.
    assert raw_exchange(gateway.port, b"\x16\x03\x01\x02\x00garbage\r\n\r\n",
                        half_close=True) == b""
    reply = raw_exchange(gateway.port, b"GET / HTTP/1.1\r\nHost: localhost\r\n"
                         b"Connection: close\r\n\r\n")
    assert reply.startswith(b"HTTP/1.1 200")


def _newest_job(port: int) -> int:
    response = ipp(port, request(Operation.GET_JOBS, printer_uri=printer_uri(port),
                                 attrs={"which-jobs": (T.KEYWORD, "all")}))
    ids = [g.get("job-id").value for g in response.groups_of(GroupTag.JOB)]  # type: ignore[union-attr]
    assert ids, "no job was created"
    newest = max(ids)  # type: ignore[type-var]
    assert isinstance(newest, int)
    return newest


def test_startup_log_names_the_raster_codec(gateway: GatewayProcess) -> None:
    # `make` builds the optional C codec; on this machine (a compiler is there) it must be
    # the one in use, and the log says so.
    assert "raster codec: C (drivers.filters._rastercodec)" in gateway.log.read_text()
