"""Our gateway as a subprocess: `python -m gateway run` on 127.0.0.1 with a file printer."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers import REPO_ROOT
from tests.peers.procs import LOOPBACK, free_port, spawn_logged, stop_process, wait_for_port

START_TIMEOUT = 15.0


@dataclass
class GatewayProcess:
    """A running gateway; `output_dir` receives one `job-NNNNN.prn` per printed job."""

    proc: subprocess.Popen[bytes]
    port: int
    spool: Path
    output_dir: Path
    log: Path
    printer_name: str

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def printer_uri(self) -> str:
        """The default printer, as clients that know nothing else address it."""
        return f"ipp://{LOOPBACK}:{self.port}/ipp/print"

    @property
    def named_printer_uri(self) -> str:
        return f"{self.printer_uri}/{self.printer_name}"

    def output_files(self) -> list[Path]:
        return sorted(self.output_dir.glob("job-*.prn"))

    def stop(self) -> int:
        return stop_process(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to clean up."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


def gateway_argv(
    port: int, spool: Path, output_dir: Path, printer_name: str, extra_args: Sequence[str]
) -> list[str]:
    # A --config names its own printers; --printer would replace them all.
    printer = [] if "--config" in extra_args and "[[printer]]" in _config_text(extra_args) else [
        "--printer", f"{printer_name}={output_dir.as_uri()}/"]
    return [
        sys.executable, "-m", "gateway", "run",
        "--listen", f"{LOOPBACK}:{port}",
        "--spool", str(spool),
        *printer,
        *extra_args,
    ]


def _config_text(extra_args: Sequence[str]) -> str:
    path = Path(extra_args[list(extra_args).index("--config") + 1])
    return path.read_text()


def start_gateway(
    workdir: Path,
    *,
    port: int | None = None,
    printer_name: str = "default",
    extra_args: Sequence[str] = (),
    timeout: float = START_TIMEOUT,
) -> GatewayProcess:
    """Start (or restart, reusing `workdir`'s spool and output) and wait until it answers."""
    spool = workdir / "spool"
    output_dir = workdir / "output"
    log = workdir / "gateway.log"
    for directory in (spool, output_dir):
        directory.mkdir(parents=True, exist_ok=True)
    chosen_port = port if port is not None else free_port()
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    argv = gateway_argv(chosen_port, spool, output_dir, printer_name, extra_args)
    proc = spawn_logged(argv, log, env=env, cwd=REPO_ROOT)
    answered = False
    try:
        wait_for_port(proc, chosen_port, log, timeout)
        answered = True
    finally:
        if not answered:
            stop_process(proc)
    return GatewayProcess(proc, chosen_port, spool, output_dir, log, printer_name)


@contextlib.contextmanager
def running_gateway(
    workdir: Path, *, printer_name: str = "default", extra_args: Sequence[str] = ()
) -> Iterator[GatewayProcess]:
    gateway = start_gateway(workdir, printer_name=printer_name, extra_args=extra_args)
    try:
        yield gateway
    finally:
        gateway.stop()
