"""`ipp-gateway pause|resume|cancel` with authentication on (issue 12): the real CLI as a
subprocess against a real gateway process. The CLI starts on plain http://127.0.0.1, follows
the gateway's 426 to TLS, pins the gateway's certificate from its spool, and logs in with the
password from IPP_GATEWAY_PASSWORD (or a terminal). Every effect is checked over IPP with the
tests' own clients, and no output ever holds a password."""

from __future__ import annotations

import json
import os
import pty
import select
import socket
import ssl
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway.certificates import make_self_signed
from gateway.passwords import PasswordFile
from gateway.tls import host_identity
from ippwire.enums import GroupTag, JobState, Operation, PrinterState, Status, ValueTag
from ippwire.writer import request
from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import (
    CONFIG_NAME,
    GatewayProcess,
    PrinterTable,
    start_configured_gateway,
)
from tests.peers.procs import LOOPBACK
from tests.support.ipp_client import job_status, printer_status, wait_printer
from tests.support.ipps_client import send

RUN_CLI = "import sys, gateway.ctl; sys.exit(gateway.ctl.main(sys.argv[1:]))"
# The same in a session of its own (start_new_session) that takes the terminal on its stdin as
# its controlling terminal first, as a login shell has one: getpass opens /dev/tty.
RUN_CLI_ON_TERMINAL = ("import fcntl, sys, termios, gateway.ctl; "
                       "fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                       "sys.exit(gateway.ctl.main(sys.argv[1:]))")
WAIT = 30.0
PASSWORD_ENV = "IPP_GATEWAY_PASSWORD"
USERS = {"alice": ("alice-pw-7d3", False), "bob": ("bob-pw-91c", False),
         "root-admin": ("admin-pw-5e2", True)}
HINT = "give --user NAME (password from IPP_GATEWAY_PASSWORD or asked on the terminal)"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Authentication on; each test pauses its own printer, so none sees another's state."""
    workdir = tmp_path_factory.mktemp("cli-login")
    passwords = PasswordFile(workdir / "spool" / "passwd")
    for user, (password, admin) in USERS.items():
        passwords.set(user, password, admin=admin)
    printers = [PrinterTable(name) for name in ("front", "back", "side", "spare", "jobs")]
    with start_configured_gateway(workdir, printers, log_level="info",
                                  extra_toml="[auth]\nenabled = true\n") as process:
        yield process


def environment(password: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_ENV}
    if password is not None:
        env[PASSWORD_ENV] = password
    return env


def cli(gateway: GatewayProcess, *argv: str, user: str, password: str | None,
        url: str | None = None) -> subprocess.CompletedProcess[str]:
    """The CLI as a script runs it: no terminal on stdin, the password (if any) in the
    environment, the gateway named by URL and its config (so its spool's certificate)."""
    result = subprocess.run(
        [sys.executable, "-c", RUN_CLI, *argv,
         "--url", url or f"ipp://{LOOPBACK}:{gateway.port}",
         "--config", str(gateway.workdir / CONFIG_NAME), "--user", user],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env=environment(password))
    for secret, _ in USERS.values():
        assert secret not in result.stdout + result.stderr
    return result


def as_user(gateway: GatewayProcess, user: str, *argv: str,
            url: str | None = None) -> subprocess.CompletedProcess[str]:
    return cli(gateway, *argv, user=user, password=USERS[user][0], url=url)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result
    return result.stdout


def refused(result: subprocess.CompletedProcess[str], code: int = 1) -> str:
    """The one line of a refusal, without the program's prefix."""
    assert result.returncode == code and result.stdout == "", result
    assert result.stderr.startswith("ipp-gateway: ") and result.stderr.count("\n") == 1, result
    return result.stderr.removeprefix("ipp-gateway: ").rstrip("\n")


def state_of(gateway: GatewayProcess, printer: str) -> PrinterState:
    return PrinterState(printer_status(gateway.port, printer).state)


def audited(gateway: GatewayProcess, operation: str) -> list[tuple[object, object]]:
    lines = [json.loads(line) for line in (gateway.spool / "audit.log").read_text().splitlines()]
    return [(line["user"], line["outcome"]) for line in lines
            if line["kind"] == "operation" and line["operation"] == operation]


def held_job(gateway: GatewayProcess, printer: str, user: str) -> int:
    """A job `user` made logged in, held at creation so that it stays for the test."""
    message = request(
        Operation.PRINT_JOB, printer_uri=f"ipps://{LOOPBACK}:{gateway.port}/ipp/print/{printer}",
        user=user, attrs={"document-format": (ValueTag.MIME_MEDIA_TYPE,
                                              "application/octet-stream")},
        job_attrs={"job-hold-until": (ValueTag.KEYWORD, "indefinite")})
    answer = send(gateway.port, f"/ipp/print/{printer}", message, b"held job",
                  credentials=(user, USERS[user][0]))
    assert answer.ipp_status == Status.OK and answer.message is not None, answer
    group = answer.message.group(GroupTag.JOB)
    job_id = None if group is None else group.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


def test_pause_without_a_password_says_how_to_log_in(gateway: GatewayProcess) -> None:
    line = refused(cli(gateway, "pause", "front", user="root-admin", password=None))
    assert line == (f"the gateway at ipps://{LOOPBACK}:{gateway.port} needs a login "
                    f"(this needs an administrator): {HINT}")
    assert state_of(gateway, "front") != PrinterState.STOPPED


def test_an_administrator_pauses_and_resumes(gateway: GatewayProcess) -> None:
    ok(as_user(gateway, "root-admin", "pause", "back"))
    assert state_of(gateway, "back") == PrinterState.STOPPED
    assert "paused" in printer_status(gateway.port, "back").reasons
    ok(as_user(gateway, "root-admin", "resume", "back"))
    resumed = wait_printer(gateway.port, "back", lambda s: "paused" not in s.reasons,
                           timeout=WAIT, what="back resumed")
    assert resumed.state != PrinterState.STOPPED
    # The gateway saw the administrator log in, not a loopback client without a name.
    assert ("root-admin", "successful-ok") in audited(gateway, "Pause-Printer")
    assert ("root-admin", "successful-ok") in audited(gateway, "Resume-Printer")


def test_a_user_who_is_not_an_administrator_is_not_authorized(gateway: GatewayProcess) -> None:
    line = refused(as_user(gateway, "bob", "pause", "side"))
    assert line == ("pause side: client-error-not-authorized: this needs an administrator "
                    "(logged in as bob)")
    assert state_of(gateway, "side") != PrinterState.STOPPED


def test_a_wrong_password_is_refused(gateway: GatewayProcess) -> None:
    line = refused(cli(gateway, "pause", "side", user="root-admin", password="not-it"))
    assert line == (f"the gateway at ipps://{LOOPBACK}:{gateway.port} refused the login of "
                    "'root-admin': wrong user name or password")
    assert state_of(gateway, "side") != PrinterState.STOPPED


def test_the_owner_cancels_her_job_with_her_password(gateway: GatewayProcess) -> None:
    job_id = held_job(gateway, "jobs", "alice")
    # Naming herself is not enough for a job she made logged in, and bob may not touch it.
    assert refused(cli(gateway, "cancel", f"jobs-{job_id}", user="alice", password=None)) \
        == (f"the gateway at ipps://{LOOPBACK}:{gateway.port} needs a login (only the job's "
            f"owner or an administrator may change it): {HINT}")
    assert refused(as_user(gateway, "bob", "cancel", f"jobs-{job_id}")) == (
        f"cancel jobs-{job_id}: client-error-not-authorized: only the job's owner or an "
        "administrator may change it (logged in as bob)")
    assert job_status(gateway.port, job_id, "jobs").state == JobState.PENDING_HELD

    ok(as_user(gateway, "alice", "cancel", str(job_id)))  # a bare id: found over IPP first
    assert job_status(gateway.port, job_id, "jobs").state == JobState.CANCELED


def test_status_needs_no_login(gateway: GatewayProcess) -> None:
    lines = ok(cli(gateway, "status", user="bob", password=None)).splitlines()
    assert "printer spare is idle, 0 queued jobs" in lines


def test_a_certificate_that_is_not_the_pinned_one_is_refused(gateway: GatewayProcess,
                                                             tmp_path: Path) -> None:
    other = tmp_path / "other.crt"
    other.write_bytes(make_self_signed(host_identity(), datetime.now(UTC))[0])
    result = as_user(gateway, "root-admin", "pause", "spare", "--certificate", str(other))
    line = refused(result, code=2)
    assert line.startswith(f"the gateway at ipps://{LOOPBACK}:{gateway.port} shows a TLS "
                           "certificate (SHA-256 ")
    assert f"that is not the one in {other}: not sending anything" in line
    assert state_of(gateway, "spare") != PrinterState.STOPPED


def test_without_a_certificate_file_loopback_is_trusted(gateway: GatewayProcess,
                                                       tmp_path: Path) -> None:
    """A user who may not read the spool: the gateway on loopback is taken as it is."""
    missing = tmp_path / "unreadable.crt"
    ok(as_user(gateway, "root-admin", "pause", "spare", "--certificate", str(missing)))
    assert state_of(gateway, "spare") == PrinterState.STOPPED
    ok(as_user(gateway, "root-admin", "resume", "spare", "--certificate", str(missing)))
    wait_printer(gateway.port, "spare", lambda s: "paused" not in s.reasons, timeout=WAIT,
                 what="spare resumed")


def test_the_password_can_be_typed_at_the_terminal(gateway: GatewayProcess) -> None:
    """stdin a terminal and no IPP_GATEWAY_PASSWORD: getpass asks, without echo."""
    password = USERS["root-admin"][0]
    master, slave = pty.openpty()
    argv = [sys.executable, "-c", RUN_CLI_ON_TERMINAL, "pause", "front", "--user", "root-admin",
            "--url", f"ipp://{LOOPBACK}:{gateway.port}",
            "--config", str(gateway.workdir / CONFIG_NAME)]
    process = subprocess.Popen(argv, cwd=REPO_ROOT, stdin=slave, stdout=slave, stderr=slave,
                               env=environment(None), start_new_session=True)
    os.close(slave)
    try:
        seen = _read_until(master, b"Password for root-admin: ")
        os.write(master, password.encode() + b"\n")
        assert process.wait(timeout=60) == 0, seen + _read_rest(master)
        seen += _read_rest(master)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        os.close(master)
    assert password.encode() not in seen  # not echoed
    assert state_of(gateway, "front") == PrinterState.STOPPED
    ok(as_user(gateway, "root-admin", "resume", "front"))


def _read_until(fd: int, marker: bytes, limit: int = 200) -> bytes:
    seen = b""
    for _ in range(limit):  # bounded: each round waits at most 5 s for output
        if marker in seen:
            return seen
        ready, _, _ = select.select([fd], [], [], 5.0)
        if not ready:
            break
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen += chunk
    raise AssertionError(f"no {marker!r} on the terminal; saw {seen!r}")


def _read_rest(fd: int) -> bytes:
    seen = b""
    for _ in range(100):
        ready, _, _ = select.select([fd], [], [], 0.5)
        if not ready:
            break
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
    return seen


# -- a gateway that is not on loopback --------------------------------------------------------


def non_loopback_address() -> str:
    """An address of this host that is not loopback (the route out), or skip."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.123", 9))  # no packet is sent for a UDP connect
            address = str(probe.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        pytest.skip("this host has no address but loopback")
    return address


class TlsListener:
    """A TLS server on a non-loopback address of this host, with `certificate`: it answers
    every request with HTTP 503 and records the bytes of what it was sent."""

    def __init__(self, address: str, certificate: Path, key: Path) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificate, key)
        self.sock = socket.create_server((address, 0))
        self.sock.settimeout(30.0)
        self.port = int(self.sock.getsockname()[1])
        self.received = b""
        self.connections = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        try:
            raw, _ = self.sock.accept()
        except OSError:
            return
        self.connections += 1
        raw.settimeout(10.0)
        try:
            with self.context.wrap_socket(raw, server_side=True) as tls:
                for _ in range(100):  # bounded: a request is a few hundred bytes
                    data = tls.recv(65536)
                    if not data:
                        break
                    self.received += data
                    if _whole_request(self.received):  # unread bytes would make close a reset
                        tls.sendall(b"HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n"
                                    b"Connection: close\r\n\r\n")
                        break
        except OSError:  # the client closed without a request, as it should when it refuses
            pass

    def close(self) -> None:
        self.sock.close()
        self._thread.join(timeout=30.0)
        assert not self._thread.is_alive()


def _whole_request(data: bytes) -> bool:
    head, found, body = data.partition(b"\r\n\r\n")
    if not found:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return True


@pytest.fixture
def remote(tmp_path: Path) -> Iterator[tuple[TlsListener, Path]]:
    address = non_loopback_address()
    pem, key = make_self_signed(host_identity(), datetime.now(UTC))
    (tmp_path / "remote.crt").write_bytes(pem)
    (tmp_path / "remote.key").write_bytes(key)
    listener = TlsListener(address, tmp_path / "remote.crt", tmp_path / "remote.key")
    try:
        yield listener, tmp_path / "remote.crt"
    finally:
        listener.close()


def remote_cli(listener: TlsListener, *argv: str) -> subprocess.CompletedProcess[str]:
    address = listener.sock.getsockname()[0]
    return subprocess.run(
        [sys.executable, "-c", RUN_CLI, "pause", "front", "--user", "root-admin",
         "--url", f"ipps://{address}:{listener.port}", "--spool", "/nonexistent", *argv],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        env=environment("remote-secret"))


def test_a_remote_gateway_without_its_certificate_is_refused(
        remote: tuple[TlsListener, Path]) -> None:
    listener, _ = remote
    result = remote_cli(listener)
    address = listener.sock.getsockname()[0]
    assert refused(result, code=2) == (
        f"cannot check the TLS certificate of the gateway at ipps://{address}:"
        f"{listener.port}: /nonexistent/tls/server.crt is not readable (no such file or "
        "directory); copy the gateway's <spool>/tls/server.crt here and pass it with "
        "--certificate FILE")
    listener.close()
    assert listener.connections == 1 and listener.received == b""  # not a byte of request


def test_a_remote_gateway_with_its_certificate_is_talked_to(
        remote: tuple[TlsListener, Path]) -> None:
    listener, certificate = remote
    result = remote_cli(listener, "--certificate", str(certificate))
    address = listener.sock.getsockname()[0]
    assert refused(result, code=2) == (f"ipps://{address}:{listener.port} answered HTTP 503 "
                                       "Busy, not IPP")
    listener.close()
    assert listener.received.startswith(b"POST /ipp/print/front HTTP/1.1\r\n")
    assert b"remote-secret" not in listener.received  # no credentials before a challenge
