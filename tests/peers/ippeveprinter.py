"""ippeveprinter, the PWG reference IPP Everywhere printer, with the private D-Bus it needs."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.peers.procs import (
    LOOPBACK,
    PeerError,
    find_program,
    free_port,
    log_tail,
    spawn_logged,
    stop_process,
    wait_for_port,
)

FORMATS = "application/pdf,image/jpeg,image/pwg-raster,image/urf,application/octet-stream"
# Without a command ippeveprinter "prints" each job for 5-15 s of simulated time; /bin/true
# makes its jobs finish as soon as they are received, as our file transport does.
INSTANT_COMMAND = "/bin/true"

DBUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_type="method_return"/>
    <allow send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="signal"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
  </policy>
</busconfig>
"""


@dataclass
class PrivateBus:
    """A dbus-daemon of our own: ippeveprinter refuses to start without a system bus."""

    proc: subprocess.Popen[bytes]
    socket: Path

    @property
    def address(self) -> str:
        return f"unix:path={self.socket}"

    def stop(self) -> None:
        stop_process(self.proc)


@dataclass
class IppEvePrinter:
    proc: subprocess.Popen[bytes]
    port: int
    spool: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def printer_uri(self) -> str:
        return f"ipp://{LOOPBACK}:{self.port}/ipp/print"

    def stop(self) -> int:
        return stop_process(self.proc)

    def kept_documents(self) -> dict[int, Path]:
        """The documents it kept (started with `keep`), by its job-id. It writes each as the
        data arrives into `JOBID-JOBNAME.EXT` in its spool directory, EXT from the format
        (ps, pdf, pwg, jpg, urf; else prn); with a print command it also makes an (empty)
        `JOBID-JOBNAME.prn` for the command's output, which is not the document."""
        kept: dict[int, Path] = {}
        for path in sorted(self.spool.iterdir(), key=lambda path: path.suffix == ".prn"):
            job_id, dash, _ = path.name.partition("-")
            if dash and job_id.isdigit() and path.is_file():
                kept.setdefault(int(job_id), path)
        return kept

    def wait_kept(self, job_id: int, size: int | None = None, timeout: float = 30.0) -> bytes:
        """The document of job `job_id` once its file exists (and holds `size` bytes when
        given); PeerError after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            path = self.kept_documents().get(job_id)
            if path is not None and (size is None or path.stat().st_size >= size):
                return path.read_bytes()
            if time.monotonic() > deadline:
                raise PeerError(f"ippeveprinter kept no document of job {job_id} "
                                f"({size} bytes) in {self.spool}:\n{log_tail(self.log)}")
            time.sleep(0.01)


def processing_command(workdir: Path, seconds: float) -> str:
    """A print command (`-c`) that keeps each job processing for `seconds`, as a printer
    takes time to print: the device's job can be watched, and canceled, meanwhile.
    ippeveprinter (CUPS 2.4) lets the command run to its end even when the job is canceled,
    and shows job-state canceled only then: `seconds` bounds how long a cancel takes."""
    script = workdir / f"print-{seconds:g}s.sh"
    workdir.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/bin/sh\nexec sleep {seconds:g}\n")
    script.chmod(0o755)
    return str(script)


def start_private_bus(workdir: Path, timeout: float = 10.0) -> PrivateBus:
    workdir.mkdir(parents=True, exist_ok=True)
    socket = workdir / "dbus.sock"
    config = workdir / "dbus.conf"
    config.write_text(DBUS_CONFIG.format(socket=socket))
    log = workdir / "dbus.log"
    daemon = find_program("dbus-daemon") or "dbus-daemon"
    proc = spawn_logged([daemon, f"--config-file={config}", "--nofork"], log)
    deadline = time.monotonic() + timeout
    while not socket.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise PeerError(f"dbus-daemon did not start:\n{log_tail(log)}")
        time.sleep(0.02)
    return PrivateBus(proc, socket)


def start_ippeveprinter(
    workdir: Path,
    bus: PrivateBus,
    *,
    port: int | None = None,
    command: str | None = INSTANT_COMMAND,
    name: str = "ippeveprinter",
    formats: str = FORMATS,
    spool: Path | None = None,
    keep: bool = False,
) -> IppEvePrinter:
    """`formats` is what it accepts (`-f`), `spool` where it writes each job's document
    (`-d`), `keep` whether it keeps them there after printing (`-k`): see `kept_documents`."""
    spool = spool if spool is not None else workdir / "ippeveprinter-spool"
    spool.mkdir(parents=True, exist_ok=True)
    log = workdir / "ippeveprinter.log"
    chosen_port = port if port is not None else free_port()
    program = find_program("ippeveprinter") or "ippeveprinter"
    # "-n 127.0.0.1" makes it exit; "localhost" binds 127.0.0.1 and ::1.
    argv = [program, "-n", "localhost", "-p", str(chosen_port), "-r", "off",
            "-f", formats, "-d", str(spool)]
    if keep:
        argv.append("-k")
    if command is not None:
        argv += ["-c", command]
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=bus.address)
    proc = spawn_logged([*argv, name], log, env=env)
    answered = False
    try:
        wait_for_port(proc, chosen_port, log)
        answered = True
    finally:
        if not answered:
            stop_process(proc)
    return IppEvePrinter(proc, chosen_port, spool, log)


@contextlib.contextmanager
def running_ippeveprinter(
    workdir: Path,
    *,
    command: str | None = INSTANT_COMMAND,
    formats: str = FORMATS,
    keep: bool = False,
) -> Iterator[IppEvePrinter]:
    bus = start_private_bus(workdir)
    try:
        printer = start_ippeveprinter(workdir, bus, command=command, formats=formats,
                                      keep=keep)
        try:
            yield printer
        finally:
            printer.stop()
    finally:
        bus.stop()
