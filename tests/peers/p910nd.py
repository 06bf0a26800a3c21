"""`p910nd` (Debian) on 127.0.0.1:910N with a FIFO sink that keeps one file per connection.

p910nd only listens on 9100+N for N in 0..2: the first N whose port is free is used. Its
readiness is checked in /proc/net/tcp, never by connecting (a connection is a print job).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.peers import REPO_ROOT
from tests.peers.procs import LOOPBACK, PeerError, listening, stop_process, wait_until
from tests.peers.require import INSTALL_HINT

P910ND = "/usr/sbin/p910nd"
LOCK_DIR = Path("/var/lock/p910nd")


@dataclass(frozen=True)
class SinkRecord:
    size: int
    sha256: str
    first_byte_ns: int
    last_byte_ns: int
    data: Path | None


@dataclass
class P910nd:
    hash_only: bool = False
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="ipp-gw-p910nd-")))
    number: int = -1
    daemon: subprocess.Popen[bytes] | None = None
    sink: subprocess.Popen[bytes] | None = None
    # The port's lock, held from start to stop: a test that takes its p910nd off the network
    # for a while (stop_daemon) must find its port free again, not taken by another test
    # process's p910nd (pytest-xdist runs several at once).
    port_lock: int | None = None

    @property
    def port(self) -> int:
        return 9100 + self.number

    @property
    def uri(self) -> str:
        return f"socket://{LOOPBACK}:{self.port}"

    @property
    def jobs_dir(self) -> Path:
        return self.root / "jobs"

    def start(self) -> None:
        if not os.path.exists(P910ND):
            raise PeerError("needs p910nd (Debian package p910nd)")
        LOCK_DIR.mkdir(parents=True, exist_ok=True)
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        fifo = self.root / "device"
        os.mkfifo(fifo)
        self._start_sink(fifo)
        for blocking in (False, True):  # a free port at once, else wait for this worker's
            for number in self._port_order():
                if not self._lock_port(number, blocking):
                    continue
                if not listening(9100 + number) and self._start_daemon(fifo, number):
                    return
                self._unlock_port()
                if blocking:
                    break
        self.stop()
        raise PeerError("p910nd: ports 9100-9102 are all taken")

    @staticmethod
    def _port_order() -> list[int]:
        """This test process's own port first (gw0 -> 9100, gw1 -> 9101, ...), then the rest."""
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
        first = int(worker) % 3 if worker.isdigit() else 0
        return [first, *(n for n in range(3) if n != first)]

    def _lock_port(self, number: int, blocking: bool) -> bool:
        fd = os.open(LOCK_DIR / f"port-{9100 + number}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            return False
        self.port_lock = fd
        return True

    def _unlock_port(self) -> None:
        if self.port_lock is not None:
            os.close(self.port_lock)  # closing releases the flock
            self.port_lock = None

    def _start_sink(self, fifo: Path) -> None:
        args = [sys.executable, "-m", "tests.peers.fifo_sink", str(fifo),
                str(self.jobs_dir)] + (["--hash-only"] if self.hash_only else [])
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        self.sink = subprocess.Popen(args, cwd=REPO_ROOT, env=env)

    def _start_daemon(self, fifo: Path, number: int) -> bool:
        with open(self.root / f"p910nd-{number}.log", "ab") as log:
            self.daemon = subprocess.Popen(
                [P910ND, "-d", "-f", str(fifo), "-i", LOOPBACK, str(number)],
                stdout=log, stderr=subprocess.STDOUT,
            )
        self.number = number
        try:
            wait_until(lambda: listening(9100 + number) or self.daemon_exited(), 5, "p910nd")
        except PeerError:
            return False
        return not self.daemon_exited()

    def stop_daemon(self) -> None:
        """Take the printer off the network (connections refused); the sink stays."""
        if self.daemon is not None:
            stop_process(self.daemon)
        wait_until(lambda: not listening(self.port), 5, "p910nd to stop listening")

    def start_daemon(self) -> None:
        """Back on the network, on the same port."""
        if not self._start_daemon(self.root / "device", self.number):
            raise PeerError(f"p910nd did not come back on port {self.port}")

    def daemon_exited(self) -> bool:
        return self.daemon is None or self.daemon.poll() is not None

    def stop(self) -> None:
        for proc in (self.daemon, self.sink):
            if proc is not None:
                stop_process(proc)
        self.daemon = self.sink = None
        self._unlock_port()
        shutil.rmtree(self.root, ignore_errors=True)

    def records(self) -> list[SinkRecord]:
        return [self._record(path) for path in sorted(self.jobs_dir.glob("job-*.json"))]

    def _record(self, path: Path) -> SinkRecord:
        fields = json.loads(path.read_text())
        data = path.with_suffix(".data")
        return SinkRecord(
            fields["size"], fields["sha256"], fields["first_byte_ns"], fields["last_byte_ns"],
            data if data.exists() else None,
        )

    def wait_record(self, index: int, timeout: float = 10.0) -> SinkRecord:
        """The `index`-th connection's record (1-based), once p910nd closed the device."""
        path = self.jobs_dir / f"job-{index:04d}.json"
        wait_until(path.exists, timeout, f"{path.name} from the p910nd sink")
        return self._record(path)


@contextlib.contextmanager
def running_p910nd(hash_only: bool = False) -> Iterator[P910nd]:
    """A started p910nd for the block; the test skips, saying why, where it cannot run.
    `hash_only`: the sink keeps the size and sha256 of each connection, not its bytes."""
    if not os.path.exists(P910ND):
        pytest.skip(f"needs p910nd (Debian package p910nd); {INSTALL_HINT}")
    server = P910nd(hash_only=hash_only)
    try:
        server.start()
        yield server
    finally:
        server.stop()
