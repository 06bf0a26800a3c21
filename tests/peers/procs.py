"""Process plumbing shared by the peer helpers: free ports, readiness, stopping by PID."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

LOOPBACK = "127.0.0.1"
# Peers live in sbin directories that a non-login PATH may lack.
SEARCH_PATH = os.pathsep.join(
    [os.environ.get("PATH", ""), "/usr/local/sbin", "/usr/sbin", "/sbin"]
)


class PeerStartError(RuntimeError):
    """A peer process exited or never answered; the message carries its log tail."""


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


def log_tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def wait_for_port(
    proc: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 15.0
) -> None:
    """Return once `port` accepts a connection; raise if `proc` dies or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise PeerStartError(
                f"{proc.args!r} exited with {proc.returncode}:\n{log_tail(log)}"
            )
        if port_answers(port):
            return
        time.sleep(0.05)
    raise PeerStartError(f"{proc.args!r} did not answer on port {port}:\n{log_tail(log)}")


def stop_process(proc: subprocess.Popen[bytes], grace: float = 5.0) -> int:
    """SIGTERM by PID, then SIGKILL after `grace` seconds; return the exit status."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=grace)
    return proc.returncode


def spawn_logged(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start `argv` with stdout and stderr appended to `log` and stdin closed."""
    with log.open("ab") as sink:
        return subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT,
            env=env, cwd=cwd,
        )
