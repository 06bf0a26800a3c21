"""SIGHUP applies a changed configuration in place (issue 14, "reload without restart").

A real gateway process with three printers is reconfigured while one of them prints: one
printer is added, the printing one gets another device, one is removed. The status page and
Get-Printer-Attributes show the change; the job in flight finishes on the device it started
on, whole, and the next job goes to the new device; the configuration file, edited through
gateway.config_edit, keeps every byte outside the tables it changed.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway import config_edit
from ippwire.enums import JobState, Operation, Status
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK
from tests.support.ipp_client import submit, wait_job
from tests.support.ipp_jobs import IppPrinter

DOCUMENT = bytes(range(256)) * (16 * 1024)  # 4 MB: more than loopback buffers hold
TIMEOUT = 60.0


class GatedSink:
    """A port-9100 device that accepts a job but takes none of its bytes until `open()`,
    then reads each connection to its end and keeps what came."""

    def __init__(self) -> None:
        self._server = socket.create_server((LOOPBACK, 0))
        self.port = self._server.getsockname()[1]
        self.gate = threading.Event()
        self.connected = threading.Event()
        self._closing = threading.Event()
        self.jobs: list[bytes] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._server.settimeout(0.1)  # closing a socket does not wake accept(): look often
        while not self._closing.is_set():
            try:
                connection, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                self.connected.set()
                self.gate.wait(TIMEOUT)
                connection.settimeout(TIMEOUT)
                received = bytearray()
                while chunk := connection.recv(65536):
                    received += chunk
                self.jobs.append(bytes(received))

    def close(self) -> None:
        self._closing.set()
        self.gate.set()
        self._thread.join(TIMEOUT)
        self._server.close()


@pytest.fixture
def sink() -> Iterator[GatedSink]:
    made = GatedSink()
    try:
        yield made
    finally:
        made.close()


def _wait_for_log(gateway: GatewayProcess, text: str) -> None:
    deadline = time.monotonic() + TIMEOUT
    while text not in gateway.log.read_text():
        assert gateway.alive(), gateway.log.read_text()[-3000:]
        assert time.monotonic() < deadline, f"no {text!r} in the log"
        time.sleep(0.05)


def _dashboard_printers(port: int) -> list[str]:
    """The printers the dashboard's state shows (loopback is its administrator here)."""
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/api/state", timeout=10) as response:
        state = json.loads(response.read())
    return [printer["name"] for printer in state["printers"]]


COMMENTED = """# The office gateway: comments and layout are kept by edits.
[server]
listen = ["{listen}"]   # loopback only
spool = "{spool}"
user = "root"
log_level = "debug"

# --- printers ---------------------------------------------------------------------------
[[printer]]
name = "office"      # the main one
device = "{office_device}"
driver = "raw"
formats = ["application/octet-stream"]
status_interval = 0

# The one that is going away.
[[printer]]
name = "annex"
device = "{annex_device}"
driver = "raw"
formats = ["application/octet-stream"]
"""


def test_sighup_adds_changes_and_removes_in_place(tmp_path: Path, sink: GatedSink) -> None:
    work = tmp_path / "gw"
    with start_configured_gateway(work, [PrinterTable("office")]) as gateway:
        config = work / "gateway.toml"
        listen = f"{LOOPBACK}:{gateway.port}"
        output = work / "output"
        text = COMMENTED.format(listen=listen, spool=work / "spool",
                                office_device=f"socket://{LOOPBACK}:{sink.port}",
                                annex_device=f"{(output / 'annex').as_uri()}/")
        config.write_text(text)
        os.kill(gateway.pid, signal.SIGHUP)
        _wait_for_log(gateway, "reloaded: 2 printer(s)")

        # A job in flight on "office": its device takes nothing yet.
        job_id = submit(gateway.port, DOCUMENT, printer="office")
        wait_job(gateway.port, job_id, "office",
                 lambda s: s.state == JobState.PROCESSING, timeout=TIMEOUT, what="printing")
        assert sink.connected.wait(TIMEOUT)

        # Change office's device, add "lobby", remove "annex"; then SIGHUP.
        new_device = f"{(output / 'office-new').as_uri()}/"
        config_edit.change_printer(config, "office", {"device": new_device})
        lobby_device = f"{(output / 'lobby').as_uri()}/"
        config_edit.add_printer(config, {"name": "lobby", "device": lobby_device,
                                         "driver": "text"})
        config_edit.remove_printer(config, "annex")
        edited = config.read_text()
        os.kill(gateway.pid, signal.SIGHUP)
        _wait_for_log(gateway, "reloaded: 2 printer(s) (added: lobby; changed: office; "
                      "removed: annex)")

        assert sorted(_dashboard_printers(gateway.port)) == ["lobby", "office"]
        lobby = IppPrinter(gateway.port, "lobby")
        reply = lobby.send(Operation.GET_PRINTER_ATTRIBUTES)
        assert reply.status == Status.OK
        assert IppPrinter(gateway.port, "annex").send(
            Operation.GET_PRINTER_ATTRIBUTES).status == Status.CLIENT_ERROR_NOT_FOUND

        # The job in flight was not restarted: it finishes on the old device, whole.
        assert wait_job(gateway.port, job_id, "office", lambda s: True, timeout=5,
                        what="a state").state == JobState.PROCESSING
        sink.gate.set()
        wait_job(gateway.port, job_id, "office", lambda s: s.state == JobState.COMPLETED,
                 timeout=TIMEOUT, what="completed")
        deadline = time.monotonic() + TIMEOUT
        while not sink.jobs:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sink.jobs == [DOCUMENT]
        assert not (output / "office-new").exists() or not any(
            (output / "office-new").iterdir())

        # The next job goes to the new device.
        second = submit(gateway.port, b"after the reload\n", printer="office")
        wait_job(gateway.port, second, "office", lambda s: s.state == JobState.COMPLETED,
                 timeout=TIMEOUT, what="completed")
        assert [p.read_bytes() for p in (output / "office-new").iterdir()] == [
            b"after the reload\n"]
        assert len(sink.jobs) == 1
        log = gateway.log.read_text()
    assert "Traceback" not in log
    assert f"job {job_id}: printing (attempt 1)" in log
    assert f"job {job_id}: printing (attempt 2)" not in log

    # Outside the tables the edits touched, the file is the same, byte for byte: the office
    # table's one changed line, the annex table gone, the lobby table after what was there.
    office_device = f"socket://{LOOPBACK}:{sink.port}"
    kept, annex = text.split('[[printer]]\nname = "annex"')
    expected = kept.replace(f'device = "{office_device}"', f'device = "{new_device}"')
    expected += (f'[[printer]]\nname = "lobby"\ndevice = "{lobby_device}"\n'
                 'driver = "text"\n')
    assert annex.count("[[printer]]") == 0
    assert edited == expected
