"""`python -m drivers send/probe/devices` and the discovery functions behind them."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from drivers import discovery
from drivers.testing import payload
from drivers.transports import usbprinter
from tests.peers_transport.fake_lpd import FakeLpd, LpdFaults
from tests.peers_transport.fake_socket import FakeSocketPeer
from tests.peers_transport.usb_sim import SimBackend, SimPrinter

REPO = Path(__file__).resolve().parents[2]


async def drivers_cli(*args: str) -> tuple[int, str, str]:
    result = await trio.run_process(
        [sys.executable, "-m", "drivers", *args], cwd=REPO, capture_stdout=True,
        capture_stderr=True, check=False,
    )
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture
async def peers() -> AsyncIterator[tuple[FakeSocketPeer, FakeLpd]]:
    socket_peer, lpd_peer = FakeSocketPeer(), FakeLpd(LpdFaults(queue_state=b"no entries\n"))
    async with trio.open_nursery() as nursery:
        await nursery.start(socket_peer.serve)
        await nursery.start(lpd_peer.serve)
        yield socket_peer, lpd_peer
        nursery.cancel_scope.cancel()


async def test_send_a_file_with_no_ipp(
    peers: tuple[FakeSocketPeer, FakeLpd], tmp_path: Path
) -> None:
    socket_peer, lpd_peer = peers
    document = tmp_path / "page.pcl"
    document.write_bytes(payload(300_000, 1))
    status, out, _ = await drivers_cli("send", socket_peer.uri, str(document))
    assert status == 0 and out.startswith("sent 300000 bytes to socket://")
    assert socket_peer.complete_jobs == [document.read_bytes()]
    status, _, _ = await drivers_cli("send", lpd_peer.uri, str(document), "--user", "frank",
                                     "--job-id", "77")
    assert status == 0 and bytes(lpd_peer.completed[0].data) == document.read_bytes()
    assert b"Pfrank\nJpage.pcl\nldfA077" in lpd_peer.completed[0].control


async def test_send_failures_say_what_next(tmp_path: Path) -> None:
    document = tmp_path / "x.txt"
    document.write_bytes(b"x")
    status, _, err = await drivers_cli("send", "socket://127.0.0.1:9?contimeout=1", str(document))
    assert status == 1 and "(retry, connecting-to-device)" in err
    status, _, err = await drivers_cli("send", "nosuch://x", str(document))
    assert status == 2 and "no transport for scheme 'nosuch'" in err


async def test_probe_and_devices(peers: tuple[FakeSocketPeer, FakeLpd]) -> None:
    socket_peer, lpd_peer = peers
    status, out, _ = await drivers_cli("probe", lpd_peer.uri)
    assert status == 0 and "reachable:  yes" in out and "Remote queue empty." in out
    status, out, _ = await drivers_cli("probe", socket_peer.uri)
    assert status == 0 and "accepts connections" in out
    assert socket_peer.connections and not socket_peer.connections[0].data  # nothing printed
    status, out, _ = await drivers_cli("probe", "socket://127.0.0.1:9?contimeout=1")
    assert status == 1 and "reachable:  no" in out
    status, out, _ = await drivers_cli("devices")
    assert status == 0 and out.strip()


async def test_discovery_lists_usb_printers_with_their_ids() -> None:
    printer = SimPrinter(product=0x2015, serial="XY12")
    usbprinter.use_backend(SimBackend(printer))
    try:
        found = [d for d in await discovery.devices() if d.kind == "usb"]
        assert [(d.uri, d.name) for d in found] == [("usb://04f9:2015?serial=XY12", "Acme Laser 1")]
        assert "CMD:PJL,PCL,POSTSCRIPT" in found[0].device_id
        assert printer.kernel_driver and not printer.claimed  # given back to usblp
        result = await discovery.probe(found[0].uri)
        assert result.reachable and result.device_id == printer.device_id
        lines = discovery.describe_probe(result)
        assert "model:      Acme Laser 1" in lines and "reasons:    none" in lines
    finally:
        usbprinter.use_backend(None)
