"""kill -9 while jobs are pending and while one prints: after a restart every job completes
and the file transport holds each document exactly once, byte-identical."""

from __future__ import annotations

import hashlib
import http.client
import time
from collections.abc import Iterator
from pathlib import Path

from ippwire.enums import GroupTag, JobState, Operation, PrinterState, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers.gateway_proc import GatewayProcess, start_gateway
from tests.support.ipp_client import ipp, job_state, print_job, printer_state, printer_uri

T = ValueTag
BIG_BLOCK = 1 << 20
BIG_BLOCKS = 256


def big_document_blocks(seed: bytes) -> Iterator[bytes]:
    block = hashlib.sha256(seed).digest() * (BIG_BLOCK // 32)
    for index in range(BIG_BLOCKS):
        yield index.to_bytes(8, "big") + block[8:]


def wait_until(predicate: object, timeout: float, what: str) -> None:
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def all_completed(gateway: GatewayProcess, job_ids: list[int], timeout: float = 60) -> None:
    wait_until(lambda: all(job_state(gateway.port, j) == JobState.COMPLETED for j in job_ids),
               timeout, f"jobs {job_ids} to complete")


def test_pending_jobs_survive_kill_9(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path)
    try:
        pause = request(Operation.PAUSE_PRINTER, printer_uri=printer_uri(gateway.port))
        assert ipp(gateway.port, pause).code == 0
        documents = {}
        for n in range(3):
            data = f"%!PS job {n}\n".encode() + bytes([n]) * (50_000 * (n + 1))
            documents[print_job(gateway.port, data, "application/postscript")] = data
        assert all(job_state(gateway.port, j) == JobState.PENDING for j in documents)
        gateway.kill()
        gateway = start_gateway(tmp_path, port=gateway.port)
        # Still paused after the restart (an operator's pause outlives it), jobs still pending.
        assert printer_state(gateway.port) == PrinterState.STOPPED
        time.sleep(0.5)
        assert all(job_state(gateway.port, j) == JobState.PENDING for j in documents)
        resume = request(Operation.RESUME_PRINTER, printer_uri=printer_uri(gateway.port))
        assert ipp(gateway.port, resume).code == 0
        all_completed(gateway, list(documents))
        outputs = gateway.output_files()
        assert [p.name for p in outputs] == [f"job-{j:05d}.prn" for j in sorted(documents)]
        for job_id, data in documents.items():
            assert (gateway.output_dir / f"job-{job_id:05d}.prn").read_bytes() == data
    finally:
        gateway.stop()


def submit_streaming(port: int, blocks: Iterator[bytes]) -> int:
    head = encode_message(request(Operation.PRINT_JOB, printer_uri=printer_uri(port), attrs={
        "document-format": (T.MIME_MEDIA_TYPE, "application/octet-stream")}))
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        body = iter([head, *blocks])
        connection.request("POST", "/ipp/print", body=body, encode_chunked=True,
                           headers={"Content-Type": "application/ipp",
                                    "Transfer-Encoding": "chunked"})
        response, _ = decode_message(connection.getresponse().read())
    finally:
        connection.close()
    assert response.code == 0, response
    job = response.group(GroupTag.JOB)
    assert job is not None
    job_id = job.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


def test_printing_job_survives_kill_9(tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path)
    try:
        expected = hashlib.sha256()
        for block in big_document_blocks(b"big"):
            expected.update(block)
        small = print_job(gateway.port, b"%PDF-1.4 small first", "application/pdf")
        all_completed(gateway, [small])
        job_id = submit_streaming(gateway.port, big_document_blocks(b"big"))
        partial = gateway.output_dir / f"job-{job_id:05d}.prn.part"
        # Kill it mid-transfer: processing (on disk too: the store writes the change within
        # a round), with part of the document already delivered.
        wait_until(lambda: partial.exists() and partial.stat().st_size > 0
                   and job_state_after_restart(tmp_path, gateway.port, job_id)
                   is JobState.PROCESSING, 60, "the big job to start printing")
        gateway.kill()
        assert job_state_after_restart(tmp_path, gateway.port, job_id) in (
            JobState.PENDING, JobState.PROCESSING, JobState.COMPLETED)
        gateway = start_gateway(tmp_path, port=gateway.port)
        all_completed(gateway, [small, job_id], timeout=120)
        assert [p.name for p in gateway.output_files()] == [
            f"job-{small:05d}.prn", f"job-{job_id:05d}.prn"]
        assert not partial.exists()
        digest = hashlib.sha256()
        with open(gateway.output_dir / f"job-{job_id:05d}.prn", "rb") as output:
            while chunk := output.read(BIG_BLOCK):
                digest.update(chunk)
        assert digest.hexdigest() == expected.hexdigest()
        assert f"job {job_id}: resumed after restart" in gateway.log.read_text()
    finally:
        gateway.stop()


def job_state_after_restart(workdir: Path, port: int, job_id: int) -> JobState:
    """The state the spool recorded at the kill (read without the server)."""
    import json

    record = json.loads((workdir / "spool" / "jobs" / f"{job_id:05d}.json").read_text())
    return JobState(record["state"])
