"""`ipp-gateway jobs|cancel|hold|release|pause|resume|status` against a real gateway process,
each change checked over IPP with the tests' own client, not with the CLI itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.core.job import Job
from ippwire.enums import JobState, PrinterState
from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import (
    CONFIG_NAME,
    GatewayProcess,
    PrinterTable,
    start_configured_gateway,
)
from tests.peers.procs import free_port
from tests.support.ipp_client import job_status, printer_status, submit, wait_printer

RUN_CLI = "import sys, gateway.ctl; sys.exit(gateway.ctl.main(sys.argv[1:]))"
WAIT = 30.0


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    with start_configured_gateway(tmp_path / "gateway",
                                  [PrinterTable("front"), PrinterTable("back")]) as process:
        yield process


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", RUN_CLI, *argv], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=60)


def at(gateway: GatewayProcess, *argv: str, user: str = "operator"
       ) -> subprocess.CompletedProcess[str]:
    """The CLI told where the gateway is and which printers it has (lock or no lock)."""
    return cli(*argv, "--url", f"ipp://127.0.0.1:{gateway.port}",
               "--config", str(gateway.workdir / CONFIG_NAME), "--user", user)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout


def job_line(output: str, label: str) -> str:
    lines = [line for line in output.splitlines() if line.split()[:1] == [label]]
    assert len(lines) == 1, output
    return lines[0]


def paused_job(gateway: GatewayProcess) -> int:
    ok(at(gateway, "pause", "front"))
    wait_printer(gateway.port, "front", lambda s: s.state == PrinterState.STOPPED,
                 timeout=WAIT, what="front stopped")
    return submit(gateway.port, b"hello\n", printer="front", name="minutes.txt", user="alice")


def test_pause_stops_the_printer_and_its_job_waits_in_jobs(gateway: GatewayProcess) -> None:
    job_id = paused_job(gateway)
    assert "paused" in printer_status(gateway.port, "front").reasons
    assert job_status(gateway.port, job_id, "front").state == JobState.PENDING
    line = job_line(ok(at(gateway, "jobs", user="alice")), f"front-{job_id}")
    assert line.split()[1:3] == ["alice", "1024"]
    assert line.endswith("pending  minutes.txt")
    # Anyone else sees the job without its owner and name (job privacy, as CUPS's default).
    line = job_line(ok(at(gateway, "jobs")), f"front-{job_id}")
    assert line.split()[1:3] == ["-", "1024"]
    assert line.endswith("pending  -")
    assert ok(at(gateway, "jobs", "back")) == ""

    ok(at(gateway, "resume", "front"))
    snapshot = wait_printer(gateway.port, "front", lambda s: "paused" not in s.reasons,
                            timeout=WAIT, what="front resumed")
    assert snapshot.state != PrinterState.STOPPED


def test_hold_release_cancel_change_the_job(gateway: GatewayProcess) -> None:
    job_id = paused_job(gateway)
    ok(at(gateway, "hold", str(job_id)))  # a bare id: the CLI finds its printer
    assert job_status(gateway.port, job_id, "front").state == JobState.PENDING_HELD
    assert " held " in job_line(ok(at(gateway, "jobs", "front")), f"front-{job_id}")

    ok(at(gateway, "release", f"front-{job_id}"))
    assert job_status(gateway.port, job_id, "front").state == JobState.PENDING

    ok(at(gateway, "cancel", f"front-{job_id}"))
    assert job_status(gateway.port, job_id, "front").state == JobState.CANCELED
    assert ok(at(gateway, "jobs")) == ""
    line = job_line(ok(at(gateway, "jobs", "--completed")), f"front-{job_id}")
    assert " canceled " in line
    assert f"front-{job_id}" in ok(at(gateway, "jobs", "--all"))


def test_cancel_by_bare_id_on_the_second_printer(gateway: GatewayProcess) -> None:
    ok(at(gateway, "pause", "back"))
    job_id = submit(gateway.port, b"x", printer="back")
    ok(at(gateway, "cancel", str(job_id)))
    assert job_status(gateway.port, job_id, "back").state == JobState.CANCELED


def test_status_lists_every_printer(gateway: GatewayProcess) -> None:
    paused_job(gateway)
    lines = ok(at(gateway, "status")).splitlines()
    assert lines[0].startswith(f"gateway ipp://127.0.0.1:{gateway.port} (")
    assert f"spool {gateway.spool})" in lines[0]
    front = lines.index("printer front is stopped, 1 queued job; reasons: paused")
    assert lines[front + 1].startswith("\t")  # the printer-state-message
    assert "printer back is idle, 0 queued jobs" in lines


@pytest.mark.parametrize(("argv", "expected"), [
    (("cancel", "front-999"), "cancel front-999: client-error-not-found: job 999 does not exist"),
    (("hold", "999"), "hold 999: client-error-not-found: job 999 does not exist"),
    (("pause", "nosuch"), "pause nosuch: client-error-not-found: no printer at"),
])
def test_a_refusal_exits_1_with_the_ipp_status(gateway: GatewayProcess, argv: tuple[str, ...],
                                               expected: str) -> None:
    result = at(gateway, *argv)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"ipp-gateway: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1


def test_release_of_a_job_not_held_is_refused(gateway: GatewayProcess) -> None:
    job_id = paused_job(gateway)
    result = at(gateway, "release", f"front-{job_id}")
    assert result.returncode == 1
    assert "client-error-not-possible" in result.stderr
    assert job_status(gateway.port, job_id, "front").state == JobState.PENDING


def test_no_gateway_exits_2_naming_the_spool(tmp_path: Path) -> None:
    result = cli("status", "--spool", str(tmp_path))
    assert result.returncode == 2 and result.stdout == ""
    assert f"no gateway is running on spool {tmp_path}" in result.stderr


def test_an_unreachable_url_exits_2(tmp_path: Path) -> None:
    port = free_port()
    result = cli("jobs", "--spool", str(tmp_path), "--url", f"ipp://127.0.0.1:{port}")
    assert result.returncode == 2
    assert result.stderr == (f"ipp-gateway: cannot reach the gateway at ipp://127.0.0.1:{port}:"
                             " connection refused\n")


def test_the_running_gateway_is_found_through_its_spool(gateway: GatewayProcess) -> None:
    """No --url, no --config: the gateway's spool lock says where it listens."""
    lines = ok(cli("status", "--spool", str(gateway.spool))).splitlines()
    assert f"pid {gateway.pid}" in lines[0]
    assert "printer front is idle, 0 queued jobs" in lines
    assert "printer back is idle, 0 queued jobs" in lines


def write_record(spool: Path, job_id: int, printer: str) -> tuple[Path, Path]:
    job = Job(id=job_id, printer=printer, uuid=f"urn:uuid:{job_id}", name="old report",
              user="alice", state=JobState.PENDING, has_document=True, document_bytes=5)
    record, document = (spool / "jobs" / f"{job_id:05d}.{ext}" for ext in ("json", "doc"))
    record.write_text(json.dumps(job.to_record()))
    document.write_bytes(b"hello")
    return record, document


def test_orphans_are_listed_then_purged_alone(gateway: GatewayProcess) -> None:
    live = paused_job(gateway)  # paused: its record and document stay put
    live_files = [gateway.spool / "jobs" / f"{live:05d}.{ext}" for ext in ("json", "doc")]
    orphan = write_record(gateway.spool, 900, "gone")
    # Not known to the running gateway (written after it started), but its printer is served:
    # never an orphan, even when nothing but the gateway itself can say so.
    unknown_to_gateway = write_record(gateway.spool, 901, "back")

    listing = ok(at(gateway, "jobs", "--all"))
    assert ("orphaned: printer gone is not configured; they print again when it is, or "
            "`ipp-gateway jobs --purge-orphans` deletes them") in listing
    assert " pending  old report" in job_line(listing, "gone-900")
    assert "back-901" not in listing
    assert all(p.exists() for p in (*orphan, *unknown_to_gateway))

    # Without --config: the printers come from the gateway (lock or IPP), never guessed.
    purged = ok(cli("jobs", "--purge-orphans", "--spool", str(gateway.spool),
                    "--url", f"ipp://127.0.0.1:{gateway.port}"))
    assert f"deleted orphaned job gone-900: {orphan[0]}, {orphan[1]}" in purged
    assert not any(p.exists() for p in orphan)
    assert all(p.exists() for p in (*live_files, *unknown_to_gateway))
    assert job_status(gateway.port, live, "front").state == JobState.PENDING
    assert "orphaned" not in ok(at(gateway, "jobs", "--all"))


def test_a_stale_config_never_purges_a_served_printers_jobs(gateway: GatewayProcess,
                                                           tmp_path: Path) -> None:
    """The config file forgets `back` and the URL is not the lock's: the gateway itself is
    asked, printer by printer, before any job counts as orphaned."""
    back = write_record(gateway.spool, 901, "back")
    gone = write_record(gateway.spool, 902, "gone")
    stale = tmp_path / "stale.toml"
    stale.write_text(f'[server]\nspool = "{gateway.spool}"\n\n[[printer]]\nname = "front"\n'
                     f'device = "{(tmp_path / "out").as_uri()}/"\n')
    purged = ok(cli("jobs", "--purge-orphans", "--config", str(stale),
                    "--url", f"ipp://localhost:{gateway.port}"))
    assert purged.splitlines() == [f"deleted orphaned job gone-902: {gone[0]}, {gone[1]}"]
    assert all(p.exists() for p in back)
