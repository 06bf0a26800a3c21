"""Our gateway as a subprocess: `python -m gateway run` on 127.0.0.1.

Two ways to start it, one process class:

- `start_gateway`: one file printer from the command line (`--printer NAME=file://...`),
  optionally with a `--config` of server settings;
- `start_configured_gateway`: a TOML file written from `PrinterTable`s (`write_config`) and
  `python -m gateway run --config FILE` alone, since a `--printer` would replace the
  configuration's printers.

Either way the gateway's files are under its work directory: `spool/`, `output/` (what file
devices print into) and `gateway.log`. With `usb_control` (a CONTROL.json path) the gateway runs
behind simulated USB printers that follow that file (tests/support/usb_sim_launcher.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tests.peers import REPO_ROOT
from tests.peers.procs import LOOPBACK, free_port, spawn_logged, stop_process, wait_for_port

if TYPE_CHECKING:
    from tests.peers.netns import NetNamespace

START_TIMEOUT = 15.0
CONFIG_NAME = "gateway.toml"
LOG_NAME = "gateway.log"
# What the tests' raw queues pass through: every format the pipeline tests send. (A raw queue
# passes only application/octet-stream unless its config lists more.)
RAW_TEST_FORMATS = ("application/pdf", "application/postscript", "image/jpeg", "image/png",
                    "image/pwg-raster", "image/urf", "text/plain", "application/octet-stream")
# As root the gateway hands itself to `lp` after binding; the tests' work directories are
# root's (0700 under /tmp/pytest-of-root), so they keep root unless a test asks otherwise.
TEST_USER = "root" if os.geteuid() == 0 else None


@dataclass(frozen=True)
class PrinterTable:
    """One `[[printer]]` table. Keys left at None or () are not written (the gateway's default
    applies), so `status_interval` None means the gateway's 30 s and `resolutions` () the
    driver's own; `device` "" prints into the file:// directory `output/NAME/`. `extra` adds
    further keys as they are (strings, numbers, booleans, tuples)."""

    name: str
    driver: str = "raw"
    device: str = ""
    status_interval: float | None = None
    resolutions: tuple[int, ...] = (150,)
    color: bool | None = None
    duplex: bool | None = None
    media: tuple[str, ...] = ()
    pjl: bool | None = None
    extra: Mapping[str, object] = field(default_factory=dict, hash=False)

    @classmethod
    def on_device(cls, name: str, device: str, status_interval: float = 0.0,
                  driver: str = "raw") -> PrinterTable:
        """A queue printing to `device` at the driver's resolutions, status polling off
        unless asked for: what the transport tests run."""
        return cls(name, driver, device=device, status_interval=status_interval, resolutions=())

    def table(self, output: Path) -> dict[str, object]:
        device = self.device or f"{(output / self.name).as_uri()}/"
        keys: dict[str, object] = {
            "name": self.name, "device": device, "driver": self.driver,
            "status_interval": self.status_interval, "resolutions": self.resolutions,
            "color": self.color, "duplex": self.duplex, "media": self.media, "pjl": self.pjl,
            "formats": RAW_TEST_FORMATS if self.driver == "raw" else None,
            **self.extra}
        return {key: value for key, value in keys.items() if value is not None and value != ()}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    return json.dumps(value)  # a TOML basic string, integer or float


def write_config(workdir: Path, port: int, printers: Sequence[PrinterTable], *,
                 log_level: str = "debug", user: str | None = TEST_USER,
                 listen_host: str = LOOPBACK, extra_toml: str = "") -> Path:
    """`workdir/gateway.toml`: listen on `listen_host:port`, spool and output under
    `workdir`; `extra_toml` (further tables, such as `[dnssd]`) follows `[server]`."""
    spool = workdir / "spool"
    spool.mkdir(parents=True, exist_ok=True)
    lines = ["[server]", f"listen = {_toml_value((f'{listen_host}:{port}',))}",
             f"spool = {_toml_value(str(spool))}", f"log_level = {_toml_value(log_level)}"]
    if user is not None:
        lines.append(f"user = {_toml_value(user)}")
    lines.append("")
    if extra_toml:
        lines += [extra_toml.strip(), ""]
    for printer in printers:
        lines.append("[[printer]]")
        lines += [f"{key} = {_toml_value(value)}"
                  for key, value in printer.table(workdir / "output").items()]
        lines.append("")
    path = workdir / CONFIG_NAME
    path.write_text("\n".join(lines))
    return path


_ATTEMPT = r"^(\S+ \S+) INFO gateway.printer: .* job {}: printing \(attempt (\d+)\)"


@dataclass
class GatewayProcess:
    """A running gateway. `printers` are the tables of its configuration (empty for the
    command-line printer, which prints straight into `output_dir`)."""

    proc: subprocess.Popen[bytes]
    port: int
    workdir: Path
    printer_name: str = "default"  # the default printer: --printer's or the config's first
    printers: tuple[PrinterTable, ...] = ()
    netns: NetNamespace | None = None  # the network namespace it runs in; None: the host's

    def __enter__(self) -> GatewayProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def spool(self) -> Path:
        return self.workdir / "spool"

    @property
    def output_dir(self) -> Path:
        return self.workdir / "output"

    @property
    def log(self) -> Path:
        return self.workdir / LOG_NAME

    @property
    def printer_uri(self) -> str:
        """The default printer, as clients that know nothing else address it."""
        return f"ipp://{LOOPBACK}:{self.port}/ipp/print"

    @property
    def named_printer_uri(self) -> str:
        return f"{self.printer_uri}/{self.printer_name}"

    def printer_output(self, printer: str | None = None) -> Path:
        """The directory a file printer (default: the default printer) writes jobs into."""
        return self.output_dir / (printer or self.printer_name) if self.printers \
            else self.output_dir

    def output_file(self, printer: str | None, job_id: int) -> Path:
        """Where the file transport of `printer` puts job `job_id`."""
        return self.printer_output(printer) / f"job-{job_id:05d}.prn"

    def output_files(self, printer: str | None = None) -> list[Path]:
        return sorted(self.printer_output(printer).glob("job-*.prn"))

    def attempt_times(self, job_id: int) -> list[datetime]:
        """When each attempt to print the job started, from the log's INFO lines."""
        return [datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
                for stamp, _ in self._attempts(job_id)]

    def attempts(self, job_id: int) -> int:
        """How often the worker has started printing the job, from the log."""
        return max((int(number) for _, number in self._attempts(job_id)), default=0)

    def _attempts(self, job_id: int) -> list[tuple[str, str]]:
        return re.findall(_ATTEMPT.format(job_id), self.log.read_text(), re.MULTILINE)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def memory_kb(self, field: str = "VmHWM") -> int:
        """VmHWM (peak resident set) or VmRSS of the gateway process, in kB. Ghostscript
        runs as a child process with its own accounting, so it is not included."""
        return proc_status_kb(self.pid, field)

    def stop(self) -> int:
        return stop_process(self.proc)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no chance to clean up."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=5)


def proc_status_kb(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status: VmRSS, VmHWM, ..."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(rf"^{field}:\s+(\d+) kB$", status, re.MULTILINE)
    assert found is not None, status
    return int(found[1])


def gateway_argv(
    port: int, spool: Path, output_dir: Path, printer_name: str, extra_args: Sequence[str]
) -> list[str]:
    # A --config names its own printers; --printer would replace them all.
    printer = [] if "--config" in extra_args and "[[printer]]" in _config_text(extra_args) else [
        "--printer",
        f"{printer_name}={output_dir.as_uri()}/,driver=raw,formats={','.join(RAW_TEST_FORMATS)}"]
    user = ["--user", TEST_USER] if TEST_USER is not None and "--user" not in extra_args else []
    return [
        sys.executable, "-m", "gateway", "run",
        "--listen", f"{LOOPBACK}:{port}",
        "--spool", str(spool),
        *printer,
        *user,
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
    """Start (or restart, reusing `workdir`'s spool and output) with the file printer
    `printer_name` on the command line, and wait until it answers."""
    for directory in (workdir / "spool", workdir / "output"):
        directory.mkdir(parents=True, exist_ok=True)
    chosen_port = port if port is not None else free_port()
    argv = gateway_argv(chosen_port, workdir / "spool", workdir / "output", printer_name,
                        extra_args)
    return _launch(argv, chosen_port, workdir, printer_name, (), timeout)


def gateway_command(usb_control: Path | None = None) -> list[str]:
    """`python -m gateway`, or, with `usb_control`, the same command behind the simulated USB
    printers that CONTROL.json file lists (tests/support/usb_sim_launcher.py)."""
    if usb_control is None:
        return [sys.executable, "-m", "gateway"]
    return [sys.executable, "-m", "tests.support.usb_sim_launcher", str(usb_control), "--"]


def start_configured_gateway(
    workdir: Path,
    printers: Sequence[PrinterTable],
    *,
    log_level: str = "debug",
    timeout: float = START_TIMEOUT,
    netns: NetNamespace | None = None,
    extra_toml: str = "",
    env: Mapping[str, str] | None = None,
    usb_control: Path | None = None,
) -> GatewayProcess:
    """Start `python -m gateway run --config` with `printers` (the first is the default) and
    wait until it answers. Use it as a context manager to stop it at the end.

    With `netns` it runs inside that network namespace (`ip netns exec`), listening on all of
    its addresses, and is awaited from inside it; `extra_toml` adds tables to the config and
    `env` variables to its environment; `usb_control` runs it behind simulated USB printers
    (see `gateway_command`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config = write_config(workdir, port, printers, log_level=log_level,
                          listen_host="*" if netns is not None else LOOPBACK,
                          extra_toml=extra_toml)
    argv = [*gateway_command(usb_control), "run", "--config", str(config)]
    return _launch(argv, port, workdir, printers[0].name, tuple(printers), timeout,
                   netns=netns, env=env)


def _launch(argv: list[str], port: int, workdir: Path, printer_name: str,
            printers: tuple[PrinterTable, ...], timeout: float,
            netns: NetNamespace | None = None,
            env: Mapping[str, str] | None = None) -> GatewayProcess:
    log = workdir / LOG_NAME
    if netns is None:  # nothing multicasts on this machine's own network: DNS-SD stays off
        argv = [*argv, "--no-dnssd"]
    environment = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    if netns is None:
        proc = spawn_logged(argv, log, env=environment, cwd=REPO_ROOT)
    else:
        proc = netns.spawn(argv, log, env=environment, cwd=REPO_ROOT)
    answered = False
    try:
        with netns.entered() if netns is not None else contextlib.nullcontext():
            wait_for_port(proc, port, log, timeout)
            wait_until_serving(port, timeout)
        answered = True
    finally:
        if not answered:
            stop_process(proc)
    return GatewayProcess(proc, port, workdir, printer_name, printers, netns)


def wait_until_serving(port: int, timeout: float) -> None:
    """Until the gateway answers HTTP. The kernel accepts connections from the moment the
    port is bound, before the gateway has read its spool and hands itself to its user: a test
    that changes the spool then would race with the gateway's start."""
    import http.client

    deadline = time.monotonic() + timeout
    while True:
        connection = http.client.HTTPConnection(LOOPBACK, port, timeout=timeout)
        try:
            connection.request("GET", "/")
            connection.getresponse().read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
        finally:
            connection.close()


def start_command_line(workdir: Path, args: Sequence[str], *, printer_name: str = "default",
                       as_test_user: bool = True, timeout: float = START_TIMEOUT,
                       usb_control: Path | None = None) -> GatewayProcess:
    """`python -m gateway run --listen 127.0.0.1:PORT --spool workdir/spool ARGS` exactly as a
    person would type it (no raw formats added), and wait until it answers. As root it runs
    as root (`--user root`) unless `as_test_user` is False: then it hands itself to lp.
    `usb_control` runs it behind simulated USB printers (see `gateway_command`)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    user = ["--user", TEST_USER] if as_test_user and TEST_USER is not None else []
    argv = [*gateway_command(usb_control), "run", "--listen", f"{LOOPBACK}:{port}",
            "--spool", str(workdir / "spool"), *user, *args]
    return _launch(argv, port, workdir, printer_name, (), timeout)
