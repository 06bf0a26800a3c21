"""Issue 10, item 9: under systemd, log lines carry no second timestamp but a syslog priority,
and the gateway tells systemd when it is ready, reloading and stopping."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.sd_notify import notify
from tests.peers.gateway_proc import start_gateway

REPO = Path(__file__).resolve().parents[2]
LOG_A_LINE = ("from gateway import logs; import logging; logs.configure('info'); "
              "logging.getLogger('gateway.test').warning('hello %s', 'journal')")


def stderr_of(env: dict[str, str], journal: bool) -> str:
    """Run LOG_A_LINE with standard error on a pipe; with `journal`, JOURNAL_STREAM names
    that pipe as systemd would name the journal's stream."""
    read_end, write_end = os.pipe()
    try:
        if journal:
            status = os.fstat(write_end)
            env = {**env, "JOURNAL_STREAM": f"{status.st_dev}:{status.st_ino}"}
        subprocess.run([sys.executable, "-c", LOG_A_LINE], cwd=REPO, env=env, stderr=write_end,
                       check=True, timeout=30)
    finally:
        os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        return pipe.read().decode()


def test_journal_lines_have_a_priority_and_no_timestamp() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    assert stderr_of(env, journal=True) == "<4>WARNING gateway.test: hello journal\n"


def test_other_streams_keep_the_timestamp() -> None:
    env = {k: v for k, v in os.environ.items() if k != "JOURNAL_STREAM"}
    plain = stderr_of(env, journal=False)
    assert plain.endswith(" WARNING gateway.test: hello journal\n")
    assert plain[:4].isdigit()  # starts with the date
    # A JOURNAL_STREAM inherited from elsewhere (another file) does not count.
    assert stderr_of({**env, "JOURNAL_STREAM": "1:1"}, journal=False)[:4].isdigit()


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(30)
        monkeypatch.setenv("NOTIFY_SOCKET", str(path))
        yield sock


def test_notify_sends_one_datagram(notify_socket: socket.socket) -> None:
    assert notify("STATUS=testing")
    assert notify_socket.recv(4096) == b"STATUS=testing"


def test_notify_outside_systemd_does_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert not notify("READY=1")


def test_gateway_says_ready_reloading_and_stopping(notify_socket: socket.socket,
                                                   tmp_path: Path) -> None:
    gateway = start_gateway(tmp_path / "gw")
    with gateway:
        assert notify_socket.recv(4096) == b"READY=1"
        os.kill(gateway.pid, signal.SIGHUP)
        assert notify_socket.recv(4096) == b"RELOADING=1"
        assert notify_socket.recv(4096) == b"READY=1"
        os.kill(gateway.pid, signal.SIGTERM)
        assert notify_socket.recv(4096) == b"STOPPING=1"
        assert gateway.proc.wait(timeout=30) == 0
