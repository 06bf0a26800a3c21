"""Process and port plumbing for the transport peers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

LOOPBACK = "127.0.0.1"


class PeerError(RuntimeError):
    """A peer did not start or misbehaved; the message says what and where to look."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        port: int = sock.getsockname()[1]
        return port


def listening(port: int) -> bool:
    """Whether some socket listens on 127.0.0.1:port, without connecting to it.

    Connecting would count as a print job for p910nd.
    """
    wanted = f"0100007F:{port:04X}"
    for table in ("/proc/net/tcp",):
        with open(table) as lines:
            for line in lines:
                fields = line.split()
                if len(fields) > 3 and fields[1] == wanted and fields[3] == "0A":
                    return True
    return False


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise PeerError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def alive(pid: int) -> bool:
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
