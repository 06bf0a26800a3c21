"""Issue 9, finding 8: documents from the network are never parsed as root. Started as root,
the gateway binds its port, then runs as `lp`; Ghostscript runs as `lp` too (seen with ps)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ippwire.enums import JobState, Operation, ValueTag
from tests.peers.gateway_proc import GatewayProcess, start_command_line
from tests.peers.procs import missing_programs
from tests.support.ipp_client import wait_job
from tests.support.ipp_jobs import IppPrinter

# A PostScript job that keeps Ghostscript busy until it is cancelled.
ENDLESS_PS = b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\n{ } loop\nshowpage\n%%EOF\n"
SEEN_TIMEOUT = 30.0


@pytest.fixture
def shared_workdir() -> Iterator[Path]:
    """A work directory `lp` can reach (pytest's own are root's, mode 0700)."""
    if os.geteuid() != 0:
        pytest.skip("needs root: the hand-over to lp is what is tested")
    try:
        pwd.getpwnam("lp")
    except KeyError:
        pytest.skip("needs the lp account")
    if missing_programs("gs", "ps"):
        pytest.skip("needs gs and ps")
    path = Path(tempfile.mkdtemp(prefix="ipp-gw-privsep-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, pending = [], [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            found.append(child)
            pending.append(child)
    return found


def ps_user_and_command(pid: int) -> tuple[str, str]:
    out = subprocess.run(["ps", "-o", "user=,comm=", "-p", str(pid)], capture_output=True,
                         text=True, check=False).stdout.split()
    return (out[0], out[1]) if len(out) == 2 else ("", "")


def wait_for_ghostscript(gateway: GatewayProcess) -> int:
    deadline = time.monotonic() + SEEN_TIMEOUT
    while time.monotonic() < deadline:
        for pid in descendants(gateway.pid):
            if ps_user_and_command(pid)[1] == "gs":
                return pid
        time.sleep(0.05)
    raise AssertionError(f"no Ghostscript under the gateway:\n{gateway.log.read_text()}")


def test_conversion_runs_as_the_unprivileged_user(shared_workdir: Path) -> None:
    spool = shared_workdir / "spool"
    device = f"{(spool / 'out').as_uri()}/"
    with start_command_line(shared_workdir, ["--printer", f"laser={device},driver=pcl5"],
                            printer_name="laser", as_test_user=False) as gateway:
        # The port answers (the kernel accepts) from the moment it is bound, just before the
        # hand-over: wait for the log line that follows it.
        deadline = time.monotonic() + SEEN_TIMEOUT
        while "ports bound; running as user lp" not in gateway.log.read_text():
            assert gateway.alive() and time.monotonic() < deadline, gateway.log.read_text()
            time.sleep(0.05)
        assert ps_user_and_command(gateway.pid)[0] == "lp"
        printer = IppPrinter(gateway.port, "laser")
        job_id = printer.print_job(ENDLESS_PS, "application/postscript").job_id
        gs = wait_for_ghostscript(gateway)
        assert ps_user_and_command(gs)[0] == "lp"
        capabilities = Path(f"/proc/{gs}/status").read_text()
        assert "CapEff:\t0000000000000000" in capabilities, capabilities
        canceled = printer.send(Operation.CANCEL_JOB, {"job-id": (ValueTag.INTEGER, job_id)})
        assert canceled.status == 0
        wait_job(gateway.port, job_id, "laser", lambda s: s.state == JobState.CANCELED,
                 timeout=10, what="canceled job")
        # The spool the gateway made is lp's, and so is what it writes into it.
        assert spool.stat().st_uid == pwd.getpwnam("lp").pw_uid
        ok = printer.print_job(b"plain text prints as lp\n", "text/plain").job_id
        wait_job(gateway.port, ok, "laser", lambda s: s.state == JobState.COMPLETED,
                 timeout=60, what="completed text job")
        outputs = list((spool / "out").glob("job-*.prn"))
        assert [p.stat().st_uid for p in outputs] == [pwd.getpwnam("lp").pw_uid]
    log = gateway.log.read_text()
    assert "Traceback" not in log, log[log.index("Traceback") - 300:][:3000]
