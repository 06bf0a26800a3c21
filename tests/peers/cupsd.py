"""A private cupsd on 127.0.0.1: the real driverless client for end-to-end print tests.

cupsd runs as root with its own ServerRoot, spool, cache, state and logs in one directory;
filters run as `lp`, so that directory (and its parents) must be world-searchable, which a
pytest tmp_path is not.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tests.peers.procs import (
    LOOPBACK,
    find_program,
    free_port,
    log_tail,
    spawn_logged,
    stop_process,
    wait_for_port,
)

if TYPE_CHECKING:
    from tests.peers.netns import NetNamespace

PROGRAMS = ("cupsd", "lpadmin", "lp", "lpstat")
CLIENT_TIMEOUT = 60.0

# JobPrivate*/SubscriptionPrivate* belong inside <Policy>: CUPS 2.4.2-3+deb12u10 refuses to
# start when they stand at the top level (earlier builds only logged it).
CUPSD_CONF = """LogLevel debug
MaxLogSize 0
Listen {host}:{port}
ServerName {host}
Browsing Off
BrowseLocalProtocols none
DefaultAuthType None
DefaultEncryption Never
WebInterface No
PreserveJobHistory Yes
<Location />
  Order allow,deny
  Allow all
</Location>
<Policy default>
  JobPrivateAccess all
  JobPrivateValues none
  SubscriptionPrivateAccess all
  <Limit All>
    Order deny,allow
    Allow all
  </Limit>
</Policy>
"""

CUPS_FILES_CONF = """ServerRoot {root}/etc
RequestRoot {root}/spool
TempDir {root}/spool/tmp
CacheDir {root}/cache
StateDir {root}/run
ErrorLog {root}/log/error_log
AccessLog {root}/log/access_log
PageLog {root}/log/page_log
User lp
Group lp
SystemGroup root
FileDevice No
"""
# A queue whose path is listed here needs a system account's password (Basic, checked by
# cupsd through PAM) for every request, as an old print server with a login does.
LOCKED_LOCATION = """<Location /printers/{queue}>
  AuthType Basic
  Require valid-user
  Order allow,deny
  Allow all
</Location>
"""
DEVICE_OUTPUT_DIR = "devices"
GENERIC_POSTSCRIPT_PPD = "drv:///sample.drv/generic.ppd"  # CUPS's "Generic PostScript Printer"
JOB_LINE = re.compile(r"^(?P<queue>\S+)-(?P<id>\d+)\s", re.MULTILINE)


class CupsError(RuntimeError):
    """A CUPS client command failed; the message carries cupsd's error log tail."""


@dataclass
class Cupsd:
    proc: subprocess.Popen[bytes]
    port: int
    root: Path
    netns: NetNamespace | None = None  # the network namespace it and its clients run in

    @property
    def server(self) -> str:
        return f"{LOOPBACK}:{self.port}"

    @property
    def error_log(self) -> Path:
        return self.root / "log" / "error_log"

    def ppd(self, queue: str) -> Path:
        return self.root / "etc" / "ppd" / f"{queue}.ppd"

    def client(self, *argv: str, timeout: float = CLIENT_TIMEOUT) -> str:
        """Run a CUPS client command against this cupsd; return its stdout."""
        env = dict(os.environ, CUPS_SERVER=self.server, LANG="C")
        program = find_program(argv[0]) or argv[0]
        if self.netns is not None:
            done = self.netns.run([program, *argv[1:]], env=env, timeout=timeout)
        else:
            done = subprocess.run([program, *argv[1:]], env=env, capture_output=True, text=True,
                                  timeout=timeout, check=False)
        if done.returncode != 0:
            raise CupsError(f"{argv} -> {done.returncode}: {done.stderr.strip()}\n"
                            f"{log_tail(self.error_log)}")
        return done.stdout

    def add_everywhere_queue(
        self, queue: str, device_uri: str, timeout: float = CLIENT_TIMEOUT
    ) -> Path:
        """`lpadmin -m everywhere`; CUPS builds the PPD from Get-Printer-Attributes."""
        self.client("lpadmin", "-p", queue, "-E", "-v", device_uri, "-m", "everywhere")
        # cupsd writes the PPD after lpadmin returns, and not at all (lpadmin still exits 0)
        # when the printer does not answer.
        ppd = self.ppd(queue)
        deadline = time.monotonic() + timeout
        while not ppd_complete(ppd):
            if time.monotonic() > deadline:
                raise CupsError(f"no PPD for {queue} at {ppd}:\n{log_tail(self.error_log)}")
            time.sleep(0.1)
        return ppd

    def submit(self, queue: str, document: Path) -> int:
        out = self.client("lp", "-d", queue, str(document))
        found = re.search(rf"request id is {re.escape(queue)}-(\d+)", out)
        if not found:
            raise CupsError(f"lp said {out!r}")
        return int(found[1])

    def job_ids(self, queue: str, which: str) -> set[int]:
        out = self.client("lpstat", "-W", which, "-o", queue)
        return {int(m["id"]) for m in JOB_LINE.finditer(out) if m["queue"] == queue}

    def wait_completed(self, queue: str, job_ids: set[int], timeout: float) -> set[int]:
        """Poll until every job is completed or time is up; return the completed ones."""
        deadline = time.monotonic() + timeout
        completed = self.job_ids(queue, "completed")
        while not job_ids <= completed and time.monotonic() < deadline:
            time.sleep(0.5)
            completed = self.job_ids(queue, "completed")
        return completed & job_ids

    def stop(self) -> None:
        stop_process(self.proc)

    def add_raw_queue(self, queue: str, device_uri: str) -> None:
        """A queue with no PPD: cupsd hands each document to the device's backend as it came
        (CUPS 2.4 warns that raw queues are deprecated, and still makes them)."""
        self.client("lpadmin", "-p", queue, "-E", "-v", device_uri)

    def add_device_queue(self, queue: str) -> Path:
        """An old PostScript print server's queue (CUPS's generic PostScript PPD) whose device
        is a file (start_cupsd(file_device=True)): each job's output, pstops's PostScript,
        replaces that file's content. Returns the file.

        Not a raw queue: cupsd completes a raw job to a file: device without writing it."""
        output = self.root / DEVICE_OUTPUT_DIR / f"{queue}.prn"
        # cupsd opens a file: device without O_CREAT ("could not open the output file").
        output.touch()
        shutil.chown(output, user="lp", group="lp")
        self.client("lpadmin", "-p", queue, "-E", "-v", output.as_uri(),
                    "-m", GENERIC_POSTSCRIPT_PPD)
        return output

    def printer_uri(self, queue: str, scheme: str = "ipp") -> str:
        """The queue as a device: ipp://127.0.0.1:PORT/printers/NAME, or http://... the same
        path, as an old print server is reached over HTTP."""
        return f"{scheme}://{self.server}/printers/{queue}"


def ppd_complete(ppd: Path) -> bool:
    try:
        text = ppd.read_text(errors="replace")
    except OSError:
        return False
    return text.startswith("*PPD-Adobe") and "*cupsFilter2" in text


def make_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="ipp-gateway-cupsd-", dir="/tmp"))
    root.chmod(0o755)
    for sub in ("etc/ppd", "spool/tmp", "cache", "run", "log", DEVICE_OUTPUT_DIR):
        (root / sub).mkdir(parents=True)
    # cupsd checks ownership of what it writes to and runs filters as lp.
    for sub in ("spool", "spool/tmp", "cache", "run"):
        shutil.chown(root / sub, group="lp")
        (root / sub).chmod(0o1770 if sub == "spool/tmp" else 0o770)
    return root


def start_cupsd(timeout: float = 20.0, netns: NetNamespace | None = None, *,
                file_device: bool = False, locked_queues: tuple[str, ...] = ()) -> Cupsd:
    """A private cupsd on 127.0.0.1; with `netns`, on that namespace's loopback, its backends
    (dnssd among them) and `client()` commands running there too, on its system bus.

    `file_device` lets queues print into files (`add_device_queue`); the queues named in
    `locked_queues` answer only requests with a system account's password (HTTP Basic;
    cupsd asks PAM's `cups` service, so cupsd must run as root to read /etc/shadow)."""
    root = make_root()
    port = free_port()
    etc = root / "etc"
    files_conf = CUPS_FILES_CONF.format(root=root)
    if file_device:
        files_conf = files_conf.replace("FileDevice No", "FileDevice Yes")
    if netns is not None and netns.bus_address is not None:
        # cupsd gives its backends a clean environment: the dnssd backend needs the bus.
        # SetEnv belongs in cups-files.conf (CUPS 2.4 only warns about it in cupsd.conf).
        files_conf += f"SetEnv DBUS_SYSTEM_BUS_ADDRESS {netns.bus_address}\n"
    locations = "".join(LOCKED_LOCATION.format(queue=queue) for queue in locked_queues)
    (etc / "cupsd.conf").write_text(CUPSD_CONF.format(host=LOOPBACK, port=port) + locations)
    (etc / "cups-files.conf").write_text(files_conf)
    argv = [find_program("cupsd") or "cupsd", "-f",
            "-c", str(etc / "cupsd.conf"), "-s", str(etc / "cups-files.conf")]
    log = root / "log" / "cupsd.out"
    proc = spawn_logged(argv, log) if netns is None else netns.spawn(argv, log)
    answered = False
    try:
        with netns.entered() if netns is not None else contextlib.nullcontext():
            wait_for_port(proc, port, root / "log" / "error_log", timeout)
        answered = True
    finally:
        if not answered:
            stop_process(proc)
    return Cupsd(proc, port, root, netns)


@contextlib.contextmanager
def running_cupsd(netns: NetNamespace | None = None, *, file_device: bool = False,
                  locked_queues: tuple[str, ...] = ()) -> Iterator[Cupsd]:
    cupsd = start_cupsd(netns=netns, file_device=file_device, locked_queues=locked_queues)
    try:
        yield cupsd
    finally:
        cupsd.stop()
        shutil.rmtree(cupsd.root, ignore_errors=True)


FILTER_LINE = re.compile(
    r'^\*cupsFilter2:\s*"(?P<source>\S+)\s+(?P<destination>\S+)\s+(?P<cost>\d+)\s+\S+"',
    re.MULTILINE,
)
PDF_FOR_PRINTER = "application/vnd.cups-pdf"  # pdftopdf's output, the PDF route's source


def expected_output_format(ppd_text: str, input_format: str) -> str:
    """The format CUPS sends an IPP Everywhere queue for `input_format`.

    The everywhere PPD lists `*cupsFilter2: "source destination cost filter"`: a source that
    is the input itself passes through; otherwise the document goes through pdftopdf when the
    printer takes PDF, or is rasterised to the cheapest remaining destination.
    """
    routes = [(int(m["cost"]), m["source"], m["destination"])
              for m in FILTER_LINE.finditer(ppd_text)]
    for wanted_source in (input_format, PDF_FOR_PRINTER):
        for _, source, destination in sorted(routes):
            if source == wanted_source:
                return destination
    if not routes:
        raise ValueError("the PPD has no *cupsFilter2 lines")
    return min(routes)[2]
