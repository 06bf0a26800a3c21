"""Device URIs and the file transport's handling of device nodes."""

from __future__ import annotations

import errno
import os
import stat
import threading
from pathlib import Path

import pytest
import trio

from drivers.errors import Outcome, TransportError, UriError
from drivers.transport import JobInfo, open_transport
from drivers.transports import file as file_transport
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
    names = sorted(p.name for p in await trio.Path(tmp_path).iterdir())
    assert names == ["lp0"]  # no .part, no rename


async def test_file_transport_writes_a_character_device_in_place() -> None:
    """The usblp node (`file:///dev/usb/lp0`) is a character device, as /dev/null is: written
    in place, never replaced by a renamed regular file."""
    before = os.stat("/dev/null")
    transport = open_transport("file:///dev/null")
    await transport.start_job(JobInfo(job_id=8))
    await transport.send_all(b"x" * 100_000)
    await transport.end_job()
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert after.st_ino == before.st_ino and not await trio.Path("/dev/null.part").exists()


async def test_a_device_that_refuses_data_stops_the_printer() -> None:
    """/dev/full fails every write with ENOSPC, which waiting does not cure: a TransportError
    naming the device, the printer stops (no silent loss). A device that went away (EIO,
    ENODEV, ENXIO, as usblp says when the printer is switched off) is waited for instead."""
    transport = open_transport("file:///dev/full")
    await transport.start_job(JobInfo(job_id=9))
    with pytest.raises(TransportError) as caught:
        await transport.send_all(b"y" * 100_000)
        await transport.end_job()
    assert caught.value.outcome is Outcome.STOP_PRINTER and "/dev/full" in caught.value.message
    await transport.abort_job()
    assert stat.S_ISCHR(os.stat("/dev/full").st_mode)
    for code in (errno.EIO, errno.ENODEV, errno.ENXIO):
        gone = file_transport._failure("writing /dev/usb/lp0", OSError(code, "gone"), True)
        assert (gone.outcome, gone.reason) == (Outcome.RETRY, "offline")
    regular = file_transport._failure("writing /srv/out", OSError(errno.EIO, "I/O"), False)
    assert regular.outcome is Outcome.STOP_PRINTER


async def test_a_missing_device_node_waits_and_is_never_created() -> None:
    """`file:///dev/usb/lp0` with the printer off: udev has removed the node. The job waits
    (RETRY, offline); no regular file takes the node's place."""
    missing = trio.Path("/dev/ipp-gateway-test-lp9")
    assert not await missing.exists()
    with pytest.raises(TransportError) as caught:
        await open_transport(f"file://{missing}").start_job(JobInfo(job_id=10))
    assert caught.value.outcome is Outcome.RETRY and caught.value.reason == "offline"
    assert not await missing.exists()
    assert not await missing.with_name(missing.name + ".part").exists()
