"""Issue 12, limits of the spool, against a real gateway process: unfinished jobs per user,
and a spool filesystem that is (nearly) full - a small tmpfs mounted as the spool, while the
printer's file: output stays on the normal disk."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from ippwire.enums import JobState, Operation, Status, ValueTag
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import AttributeSpec, encode_message, request
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.support.ipp_client import job_id_of, post
from tests.support.tmpfs import tmpfs

T = ValueTag
PRINTER = "office"
HELD: AttributeSpec = {"job-hold-until": (T.KEYWORD, "indefinite")}
TMPFS_MB = 40  # the gateway will not start on a spool with under 32 MB free (startup.py)


def send(gateway: GatewayProcess, operation: int, user: str, *,
         attrs: AttributeSpec | None = None, job_attrs: AttributeSpec | None = None,
         document: bytes = b"") -> Message:
    uri = f"ipp://127.0.0.1:{gateway.port}/ipp/print/{PRINTER}"
    message = request(operation, printer_uri=uri, user=user, attrs=attrs, job_attrs=job_attrs)
    status, body = post(gateway.port, encode_message(message) + document,
                        path=f"/ipp/print/{PRINTER}", timeout=60.0)
    assert status == 200, (status, body[:200])
    response, _ = decode_message(body)
    return response


def print_job(gateway: GatewayProcess, user: str, document: bytes,
              hold: bool = True) -> Message:
    return send(gateway, Operation.PRINT_JOB, user,
                attrs={"document-format": (T.MIME_MEDIA_TYPE, "application/octet-stream")},
                job_attrs=HELD if hold else None, document=document)


def job_id(response: Message) -> int:
    assert response.code == Status.OK, response
    return job_id_of(response)


def status_message(response: Message) -> str:
    attr = response.operation_attributes.get("status-message")
    return "" if attr is None else str(attr.value)


def job_states(gateway: GatewayProcess) -> dict[int, JobState]:
    """The jobs the spool holds, from their records on disk (each written before its job
    was answered, so what a client was told is there)."""
    states = {}
    for path in (gateway.spool / "jobs").glob("*.json"):
        record = json.loads(path.read_bytes())
        states[record["id"]] = JobState(record["state"])
    return states


def unfinished(gateway: GatewayProcess) -> set[int]:
    return {job for job, state in job_states(gateway).items() if not state.is_terminal}


def limits_gateway(work: Path, limits: str) -> GatewayProcess:
    return start_configured_gateway(work, [PrinterTable(PRINTER)],
                                    extra_toml=f"[limits]\n{limits}")


def test_fourth_job_of_a_user_is_refused_while_another_user_prints(tmp_path: Path) -> None:
    with limits_gateway(tmp_path / "gw", "max_jobs_per_user = 3\nmin_free_disk_mb = 0"
                        ) as gateway:
        ann = [job_id(print_job(gateway, "ann", b"ann %d" % i)) for i in range(2)]
        ann.append(job_id(send(gateway, Operation.CREATE_JOB, "ann")))  # open, no document
        for refused in (print_job(gateway, "ann", b"ann 4"),
                        send(gateway, Operation.CREATE_JOB, "ann")):
            assert refused.code == Status.SERVER_ERROR_TOO_MANY_JOBS, refused
            assert "limits.max_jobs_per_user" in status_message(refused)
        bob = job_id(print_job(gateway, "bob", b"bob 1"))
        assert unfinished(gateway) == {*ann, bob}
        assert sorted(p.name for p in (gateway.spool / "jobs").glob("*.doc")) == [
            f"{i:05d}.doc" for i in sorted((ann[0], ann[1], bob))]
        # A finished job makes room again.
        assert send(gateway, Operation.CANCEL_JOB, "ann",
                    attrs={"job-id": (T.INTEGER, ann[0])}).code == Status.OK
        job_id(print_job(gateway, "ann", b"ann 5"))


# -- a full spool -------------------------------------------------------------------------


def free_mb(path: Path) -> float:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize / (1 << 20)


def spool_files(gateway: GatewayProcess) -> list[str]:
    return sorted(p.name for p in (gateway.spool / "jobs").iterdir())


def wait_for(what: str, check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout:g} s")
        time.sleep(0.05)


def test_full_spool_refuses_new_jobs_and_keeps_accepted_ones(tmp_path: Path) -> None:
    work = tmp_path / "gw"
    with tmpfs(work / "spool", TMPFS_MB) as spool, \
            limits_gateway(work, "min_free_disk_mb = 2") as gateway:
        documents = {job_id(print_job(gateway, "ann", bytes([65 + i]) * 100_000)):
                     bytes([65 + i]) * 100_000 for i in range(2)}
        kept = sorted(documents)
        expected = sorted(f"{i:05d}.{ext}" for i in kept for ext in ("doc", "json"))
        assert spool_files(gateway) == expected
        assert free_mb(spool) > 2  # the floor is not reached yet ...

        # ... but this document does not fit: it is refused, and nothing of it stays.
        too_big = os.urandom((TMPFS_MB + 1) << 20)
        refused = print_job(gateway, "ann", too_big)
        assert refused.code == Status.SERVER_ERROR_TEMPORARY_ERROR, refused
        assert "No space left" in status_message(refused)
        wait_for("clean spool", lambda: spool_files(gateway) == expected)
        # Discarded, not kept as an aborted job: the client holds no job-id of it.
        assert job_states(gateway) == dict.fromkeys(kept, JobState.PENDING_HELD)

        # Under the floor: a new job is refused as busy before any byte is spooled.
        filler = spool / "filler"
        filler.write_bytes(b"\0" * int((free_mb(spool) - 1) * (1 << 20)))
        assert free_mb(spool) < 2
        for busy in (print_job(gateway, "bob", b"small"),
                     send(gateway, Operation.CREATE_JOB, "bob")):
            assert busy.code == Status.SERVER_ERROR_BUSY, busy
            assert "limits.min_free_disk_mb" in status_message(busy)
        assert spool_files(gateway) == expected

        # Room again: the jobs accepted before are all there, and print as sent.
        filler.unlink()
        for job in kept:
            assert send(gateway, Operation.RELEASE_JOB, "ann",
                        attrs={"job-id": (T.INTEGER, job)}).code == Status.OK
        for job in kept:
            wait_for(f"job {job} completed", lambda job=job:  # type: ignore[misc]
                     job_states(gateway).get(job) is JobState.COMPLETED, timeout=30)
            assert gateway.output_file(PRINTER, job).read_bytes() == documents[job]
        assert str(gateway.output_dir) not in str(spool)
        job_id(print_job(gateway, "bob", b"after", hold=False))
