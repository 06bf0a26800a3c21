"""Our gateway as a subprocess, configured from a TOML file with several printers.

`tests.peers.gateway_proc.start_gateway` always passes `--printer`, which replaces the
printers of a `--config` file; this helper writes the `[[printer]]` tables itself and starts
`python -m gateway run --config FILE` alone, so each printer gets the driver, resolutions,
colour and duplex the test asks for.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.peers import REPO_ROOT
from tests.peers.procs import LOOPBACK, free_port, spawn_logged, stop_process, wait_for_port

START_TIMEOUT = 15.0


@dataclass(frozen=True)
class PrinterSpec:
    """One `[[printer]]` table; `device` "" prints into a file:// directory of the gateway."""

    name: str
    driver: str
    resolutions: tuple[int, ...] = (150,)
    color: bool | None = None
    duplex: bool | None = None
    media: tuple[str, ...] = ()
    device: str = ""


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(value)  # a TOML basic string or integer


def config_text(printers: Sequence[PrinterSpec], port: int, spool: Path, output: Path) -> str:
    lines = ["[server]", f"listen = {_toml_value((f'{LOOPBACK}:{port}',))}",
             f"spool = {_toml_value(str(spool))}", "log_level = \"debug\"", ""]
    for spec in printers:
        device = spec.device or f"{(output / spec.name).as_uri()}/"
        table: dict[str, object] = {"name": spec.name, "device": device, "driver": spec.driver,
                                    "resolutions": spec.resolutions, "color": spec.color,
                                    "duplex": spec.duplex, "media": spec.media}
        lines.append("[[printer]]")
        lines += [f"{key} = {_toml_value(value)}" for key, value in table.items()
                  if value is not None and value != ()]
        lines.append("")
    return "\n".join(lines)


@dataclass
class ConfiguredGateway:
    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    printers: tuple[PrinterSpec, ...]

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def log(self) -> Path:
        return self.workdir / "gateway.log"

    @property
    def output(self) -> Path:
        return self.workdir / "output"

    def printer_uri(self, name: str) -> str:
        return f"ipp://{LOOPBACK}:{self.port}/ipp/print/{name}"

    def output_file(self, printer: str, job_id: int) -> Path:
        """Where the file transport of `printer` puts job `job_id`."""
        return self.output / printer / f"job-{job_id:05d}.prn"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def memory_kb(self, field: str = "VmHWM") -> int:
        """VmHWM (peak resident set) or VmRSS of the gateway process, in kB. Ghostscript
        runs as a child process with its own accounting, so it is not included."""
        status = Path(f"/proc/{self.pid}/status").read_text()
        found = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
        assert found is not None, status
        return int(found[1])

    def stop(self) -> int:
        return stop_process(self.proc)


def start_configured_gateway(
    workdir: Path, printers: Sequence[PrinterSpec], timeout: float = START_TIMEOUT
) -> ConfiguredGateway:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = workdir / "gateway.toml"
    config.write_text(config_text(printers, port, workdir / "spool", workdir / "output"))
    argv = [sys.executable, "-m", "gateway", "run", "--config", str(config)]
    log = workdir / "gateway.log"
    proc = spawn_logged(argv, log, env=dict(os.environ, PYTHONUNBUFFERED="1"), cwd=REPO_ROOT)
    answered = False
    try:
        wait_for_port(proc, port, log, timeout)
        answered = True
    finally:
        if not answered:
            stop_process(proc)
    return ConfiguredGateway(proc, port, workdir, tuple(printers))


@contextlib.contextmanager
def running_configured_gateway(
    workdir: Path, printers: Sequence[PrinterSpec]
) -> Iterator[ConfiguredGateway]:
    gateway = start_configured_gateway(workdir, printers)
    try:
        yield gateway
    finally:
        gateway.stop()
