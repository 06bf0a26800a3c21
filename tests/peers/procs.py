"""Process plumbing for every real peer: finding programs, free ports, readiness, stopping by PID.

Two ways to see that a peer is ready, because connecting is not always harmless:
`wait_for_port` connects (fine for HTTP/IPP servers), `listening` reads /proc/net/tcp and never
connects (a connection to p910nd is a print job). Two ways to stop one: `stop_process` for a
child we started (it is reaped), `kill_pid` for a process we only know by PID (a daemon that
forked away from us, such as BSD lpd).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Peers live in sbin directories that a non-login PATH may lack.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)


class PeerError(RuntimeError):
    """A peer did not start or misbehaved; the message says what and where to look (for a
    process that died, the tail of its log)."""


def find_program(name: str) -> str | None:
    return shutil.which(name, path=SEARCH_PATH)


def missing_programs(*names: str) -> list[str]:
    return [name for name in names if find_program(name) is None]


def is_root() -> bool:
    return os.geteuid() == 0


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_answers(port: int, host: str = LOOPBACK) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def listening(port: int) -> bool:
    """Whether some socket listens on 127.0.0.1:port, without connecting to it."""
    wanted = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        for line in table:
            fields = line.split()
            if len(fields) > 3 and fields[1] == wanted and fields[3] == "0A":  # 0A: LISTEN
                return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until it holds; PeerError naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise PeerError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for_port(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 15.0
) -> None:
    """Return once `port` accepts a connection; PeerError if `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerError(f"{proc.args!r} exited with {proc.returncode}:\n{log_tail(log)}")
        if port_answers(port):
            return
        time.sleep(0.05)
    raise PeerError(f"{proc.args!r} did not answer on port {port}:\n{log_tail(log)}")


def spawn_logged(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr appended to `log` and stdin closed."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            env=env, cwd=cwd,
        )


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError):
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append(int(entry.name))
    return found


def kill_pid(pid: int, grace: float = 3.0) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds; a zombie counts as gone."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
    """SIGTERM by PID, then SIGKILL after `grace` seconds; reap it and return its status."""
    if proc.poll() is None:  # not reaped yet, so its PID cannot have been reused
        kill_pid(proc.pid, grace)
    return proc.wait(timeout=grace)
