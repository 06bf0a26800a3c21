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
) -> IppEvePrinter:
    spool = workdir / "ippeveprinter-spool"
    spool.mkdir(parents=True, exist_ok=True)
    log = workdir / "ippeveprinter.log"
    chosen_port = port if port is not None else free_port()
    program = find_program("ippeveprinter") or "ippeveprinter"
    # "-n 127.0.0.1" makes it exit; "localhost" binds 127.0.0.1 and ::1.
    argv = [program, "-n", "localhost", "-p", str(chosen_port), "-r", "off",
            "-f", FORMATS, "-d", str(spool)]
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
def running_ippeveprinter(workdir: Path) -> Iterator[IppEvePrinter]:
    bus = start_private_bus(workdir)
    try:
        printer = start_ippeveprinter(workdir, bus)
        try:
            yield printer
        finally:
            printer.stop()
    finally:
        bus.stop()
