"""The setup probe (`ipp-gateway add`'s): real sockets on loopback, a PJL printer, LPD servers,
a refused port and black holes; and the USB and file devices it asks through discovery."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from drivers.netprobe import LPD_QUEUES, describe_setup, probe_target
from drivers.pjl import UEL
from drivers.transports import usbprinter
from tests.peers.procs import LOOPBACK, free_port
from tests.support.fake_lpd import FakeLpd
from tests.support.pjl_peer import PjlPeer, QueueLpd
from tests.support.serving import serving
from tests.support.usb_sim import SimBackend, SimPrinter

REPO = Path(__file__).resolve().parents[2]


async def test_a_pjl_printer_on_host_port_gets_its_best_language() -> None:
    async with serving(PjlPeer(languages=("PCL", "PCLXL", "POSTSCRIPT"))) as peer:
        result = await probe_target(peer.address, timeout=5)
    assert result.ok and result.error == ""
    assert result.device_uri == f"socket://{peer.address}"
    assert result.make_and_model == "HP LaserJet 4000"
    assert result.choice is not None and result.choice.driver == "postscript"
    assert result.choice.reason == ("PJL INFO CONFIG lists POSTSCRIPT: PostScript is preferred "
                                    "over PCLXL, PCL")
    # One connection, asked exactly INFO ID and INFO CONFIG between UELs: nothing to print.
    assert peer.received == [UEL + b"@PJL\r\n@PJL INFO ID\r\n@PJL INFO CONFIG\r\n" + UEL]
    lines = describe_setup(result)
    assert f"device uri: socket://{peer.address}" in lines
    assert "driver:     postscript (" + result.choice.reason + ")" in lines
    assert any("answered PJL: model 'HP LaserJet 4000'; languages PCL, PCLXL, POSTSCRIPT"
               in line for line in lines)


async def test_languages_pick_pcl_xl_then_pcl5_and_a_uri_is_kept() -> None:
    async with serving(PjlPeer(model="Acme Laser 6", languages=("PCL", "PCL XL"))) as peer:
        xl = await probe_target(f"socket://{peer.address}?waiteof=false", timeout=5)
    assert xl.ok and xl.choice is not None and xl.choice.driver == "pclxl"
    assert xl.device_uri == f"socket://{peer.address}?waiteof=false"  # as given, options too
    async with serving(PjlPeer(languages=("PCL",))) as peer:
        pcl = await probe_target(peer.address, timeout=5)
    assert pcl.choice is not None and pcl.choice.driver == "pcl5"


async def test_a_bare_host_tries_9100_first() -> None:
    async with serving(PjlPeer()) as peer, serving(FakeLpd()) as lpd:
        result = await probe_target(LOOPBACK, timeout=5, raw_port=peer.port, lpd_port=lpd.port)
    assert result.ok and result.device_uri == f"socket://{peer.address}"
    assert result.choice is not None and result.choice.driver == "postscript"
    assert lpd.queue_requests == []  # 9100 answered: LPD was not asked


async def test_a_bare_host_whose_9100_refuses_is_tried_as_lpd() -> None:
    closed = free_port()
    async with serving(FakeLpd()) as lpd:
        result = await probe_target(LOOPBACK, timeout=5, raw_port=closed, lpd_port=lpd.port)
    assert result.ok, result
    assert result.device_uri == f"lpd://{LOOPBACK}:{lpd.port}/lp"
    assert result.choice is not None and result.choice.driver == "postscript"
    assert "guess" in result.choice.reason and "--driver" in result.choice.reason
    assert result.findings[0] == f"port {closed}: refused the connection"


async def test_lpd_uri_without_a_queue_tries_the_usual_names() -> None:
    async with serving(QueueLpd(("PASSTHRU",))) as lpd:
        result = await probe_target(f"lpd://{LOOPBACK}:{lpd.port}/", timeout=5,
                                    raw_port=free_port())
    assert result.ok and result.device_uri == f"lpd://{LOOPBACK}:{lpd.port}/PASSTHRU"
    assert lpd.queue_requests == [b"\x03lp", b"\x03raw", b"\x03PASSTHRU"]
    assert f"port {lpd.port} (LPD): queue 'lp': unknown to the server" in "\n".join(
        result.findings)


async def test_lpd_with_pjl_on_the_same_host_uses_its_languages() -> None:
    async with serving(FakeLpd()) as lpd, serving(PjlPeer(languages=("PCL",))) as peer:
        result = await probe_target(f"{LOOPBACK}:{lpd.port}", timeout=5, raw_port=peer.port,
                                    lpd_port=lpd.port)
    assert result.ok and result.device_uri == f"lpd://{LOOPBACK}:{lpd.port}/lp"
    assert result.choice is not None and result.choice.driver == "pcl5"
    assert result.choice.reason.startswith(f"PJL INFO CONFIG on port {peer.port} lists PCL")
    assert result.make_and_model == "HP LaserJet 4000"


async def test_a_given_lpd_queue_is_checked_and_kept() -> None:
    async with serving(FakeLpd()) as lpd:
        result = await probe_target(f"lpd://{LOOPBACK}:{lpd.port}/office?banner=on",
                                    timeout=5, raw_port=free_port())
    assert result.ok and result.device_uri == f"lpd://{LOOPBACK}:{lpd.port}/office?banner=on"
    assert lpd.queue_requests == [b"\x03office"]
    async with serving(QueueLpd(())) as lpd:
        unknown = await probe_target(f"lpd://{LOOPBACK}:{lpd.port}/office", timeout=5,
                                     raw_port=free_port())
    assert not unknown.ok and unknown.device_uri == ""
    assert unknown.error == (f"lpd://{LOOPBACK}:{lpd.port}/office: the LPD server on port "
                             f"{lpd.port} has no queue office; give one as "
                             f"lpd://HOST:{lpd.port}/QUEUE")


async def test_an_lpd_server_with_none_of_the_usual_queues() -> None:
    async with serving(QueueLpd(("elsewhere",))) as lpd:
        result = await probe_target(f"lpd://{LOOPBACK}:{lpd.port}/", timeout=5,
                                    raw_port=free_port())
    assert not result.ok and "has no queue " + ", ".join(LPD_QUEUES) in result.error
    assert len(lpd.queue_requests) == len(LPD_QUEUES)


async def test_a_dead_host_says_what_was_tried() -> None:
    raw, lpd = free_port(), free_port()
    result = await probe_target(LOOPBACK, timeout=2, raw_port=raw, lpd_port=lpd)
    assert not result.ok and result.device_uri == "" and result.choice is None
    assert result.error == (f"{LOOPBACK}: nothing answered: port {raw} refused the connection; "
                            f"port {lpd} refused the connection")
    assert "error:      " + result.error in describe_setup(result)
    refused = await probe_target(f"{LOOPBACK}:{raw}", timeout=2)
    assert refused.error == f"{LOOPBACK}:{raw}: nothing answered: port {raw} refused the connection"


async def test_a_name_that_does_not_resolve() -> None:
    result = await probe_target("no-such-printer.invalid", timeout=2)
    assert not result.ok
    # "does not resolve (...)", or "did not resolve in time" where the resolver is slow.
    assert result.error.startswith("no-such-printer.invalid: the name 'no-such-printer.invalid' ")
    assert "resolve" in result.error


async def test_a_black_hole_on_9100_is_usable_with_the_fallback() -> None:
    async with serving(PjlPeer(silent=True)) as hole:
        result = await probe_target(hole.address, timeout=2)
    assert result.ok and result.device_uri == f"socket://{hole.address}"
    assert result.choice is not None and result.choice.driver == "text"
    assert result.choice.reason.startswith(f"port {hole.port} accepted the connection but "
                                           "answered no PJL query")
    assert any("answered no PJL query" in finding for finding in result.findings)
    assert hole.received and hole.received[0].startswith(UEL)


async def test_a_black_hole_lpd_fails_within_the_timeout() -> None:
    async with serving(PjlPeer(silent=True)) as hole:
        result = await probe_target(f"lpd://{hole.address}/", timeout=2, raw_port=free_port())
    assert not result.ok and result.device_uri == ""
    assert result.error == (f"lpd://{hole.address}/: nothing answered: port {hole.port} "
                            "accepted the connection but sent no queue state")


async def test_usb_and_file_devices_are_asked_for_their_id(tmp_path: Path) -> None:
    printer = SimPrinter(product=0x2015, serial="XY12")
    usbprinter.use_backend(SimBackend(printer))
    try:
        result = await probe_target("usb://04f9:2015?serial=XY12", timeout=5)
    finally:
        usbprinter.use_backend(None)
    assert result.ok and result.device_uri == "usb://04f9:2015?serial=XY12"
    assert result.device_id == printer.device_id and result.make_and_model == "Acme Laser 1"
    assert result.choice is not None and result.choice.driver == "postscript"
    assert result.choice.reason.startswith("the device id lists POSTSCRIPT")
    target = f"file://{tmp_path}/out/"
    (tmp_path / "out").mkdir()
    local = await probe_target(target, timeout=5)
    assert local.ok and local.device_id == "" and local.choice is not None
    assert local.choice.driver == "text" and "sends no device id" in local.choice.reason


async def test_python_m_drivers_setup() -> None:
    async with serving(PjlPeer(languages=("PCL", "PCLXL"))) as peer:
        done = await trio.run_process(
            [sys.executable, "-m", "drivers", "setup", peer.address, "--timeout", "5"],
            cwd=REPO, capture_stdout=True, capture_stderr=True, check=False)
    out = done.stdout.decode()
    assert done.returncode == 0, done.stderr
    assert f"device uri: socket://{peer.address}" in out and "driver:     pclxl (" in out
    bad = await trio.run_process([sys.executable, "-m", "drivers", "setup", "host:port"],
                                 cwd=REPO, capture_stdout=True, capture_stderr=True, check=False)
    assert bad.returncode == 2 and bad.stderr.decode().startswith("error: target 'host:port'")
