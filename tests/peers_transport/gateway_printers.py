"""Our gateway as a subprocess serving printers from a TOML file, for the transport tests.

`tests.peers.gateway_proc.start_gateway` always adds `--printer default=file://...`, and a
`--printer` on the command line replaces the configuration's printers; so this helper writes
the whole configuration (listen address, spool, `[[printer]]` tables) and runs
`python -m gateway run --config FILE` alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import START_TIMEOUT, GatewayProcess
from tests.peers.procs import LOOPBACK, free_port, spawn_logged, stop_process, wait_for_port
from tests.support.ipp_client import StateSnapshot, job_status, printer_status

POLL = 0.05


@dataclass(frozen=True)
class PrinterEntry:
    """One `[[printer]]` table: a queue named `name` printing raw to `device`."""

    name: str
    device: str
    status_interval: float = 0.0
    driver: str = "raw"
    extra: dict[str, str] = field(default_factory=dict)

    def toml(self) -> str:
        # JSON string literals are valid TOML basic strings for the values used here.
        lines = ["[[printer]]", f"name = {json.dumps(self.name)}",
                 f"device = {json.dumps(self.device)}", f"driver = {json.dumps(self.driver)}",
                 f"status_interval = {self.status_interval!r}"]
        lines += [f"{key} = {json.dumps(value)}" for key, value in self.extra.items()]
        return "\n".join(lines) + "\n"


def write_config(workdir: Path, port: int, printers: Sequence[PrinterEntry]) -> Path:
    spool = workdir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    text = (f"[server]\nlisten = [{json.dumps(f'{LOOPBACK}:{port}')}]\n"
            f"spool = {json.dumps(str(spool))}\nlog_level = \"info\"\n\n")
    text += "\n".join(entry.toml() for entry in printers)
    path = workdir / "gateway.toml"
    path.write_text(text)
    return path


def start_configured_gateway(
    workdir: Path, printers: Sequence[PrinterEntry], *, timeout: float = START_TIMEOUT
) -> GatewayProcess:
    """Start `ipp-gateway run --config` with `printers` (the first is the default printer)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(workdir, port, printers)
    log = workdir / "gateway.log"
    argv = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
    proc = spawn_logged(argv, log, env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=REPO_ROOT)
    answered = False
    try:
        wait_for_port(proc, port, log, timeout)
        answered = True
    finally:
        if not answered:
            stop_process(proc)
    return GatewayProcess(proc, port, workdir / "spool", workdir / "output", log,
                          printers[0].name)


@contextlib.contextmanager
def configured_gateway(workdir: Path, printers: Sequence[PrinterEntry]) -> Iterator[GatewayProcess]:
    gateway = start_configured_gateway(workdir, printers)
    try:
        yield gateway
    finally:
        gateway.stop()


def vm_rss(pid: int) -> int:
    """Resident memory of process `pid` in bytes (VmRSS from /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise ValueError(f"/proc/{pid}/status has no VmRSS line")


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
