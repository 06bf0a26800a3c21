"""Device URIs and the file transport's handling of device nodes."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from drivers.errors import UriError
from drivers.transport import JobInfo, open_transport
from drivers.uri import DeviceUri


def test_usb_hex_ids_are_not_a_port() -> None:
    uri = DeviceUri.parse("usb://04f9:027b?serial=A1&interface=0")
    assert uri.scheme == "usb" and uri.port is None
    assert uri.options == {"serial": "A1", "interface": "0"}
    with pytest.raises(UriError, match="bad port"):
        DeviceUri.parse("socket://printer:90x0")


def test_password_is_redacted() -> None:
    uri = DeviceUri.parse("lpd://alice:s3cret@host/queue")
    assert "s3cret" not in uri.redacted() and uri.username == "alice"


async def test_file_transport_writes_a_fifo_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "lp0"
    os.mkfifo(fifo)
    received: list[bytes] = []

    def reader() -> None:
        with open(fifo, "rb") as source:
            received.append(source.read())

    thread = threading.Thread(target=reader)
    thread.start()
    transport = open_transport(f"file://{fifo}")
    await transport.start_job(JobInfo(job_id=7))
    await transport.send_all(b"hello device")
    await transport.end_job()
    thread.join(timeout=10)
    assert received == [b"hello device"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lp0"]  # no .part, no rename
