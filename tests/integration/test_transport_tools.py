"""`python -m drivers send/probe/devices` and the discovery functions behind them."""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio
from serial.tools import list_ports
from serial.tools.list_ports_common import ListPortInfo

from drivers import discovery
from drivers.ieee1284 import encode_device_id_reply
from drivers.testing import payload
from drivers.transports import usbprinter
from gateway import cli as gateway_cli
from tests.peers.documents import VECTOR_PAGE
from tests.peers.p910nd import P910nd, running_p910nd
from tests.peers.require import require_programs
from tests.support.fake_lpd import FakeLpd, LpdFaults
from tests.support.fake_socket import FakeSocketPeer
from tests.support.serving import serving
from tests.support.usb_sim import SimBackend, SimPrinter

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
    status, out, _ = await drivers_cli("devices", "--json")
    assert status == 0 and isinstance(json.loads(out), list)


async def test_probe_says_an_lpd_queue_is_unknown() -> None:
    """Issue 9: `probe` exited 0 for a queue the server does not have."""
    unknown = FakeLpd(LpdFaults(queue_state=b"gw: lpd: nosuch: unknown printer\n"))
    async with serving(unknown):
        uri = unknown.uri.rsplit("/", 1)[0] + "/nosuch"
        status, out, _ = await drivers_cli("probe", uri)
    assert status == 1, out
    assert "error:      lpd 127.0.0.1:" in out and "the server has no queue 'nosuch'" in out
    assert "reasons:    other-error" in out


async def test_probe_and_send_refuse_a_bad_uri_before_connecting(tmp_path: Path) -> None:
    status, out, err = await drivers_cli("probe", "socket://127.0.0.1:9?pjll=on")
    assert (status, out) == (2, "")
    assert err.strip() == ("error: socket://127.0.0.1:9?pjll=on: pjll: unknown option for "
                           "socket:// (valid: contimeout, pjl, status, timeout, waiteof)")
    status, _, err = await drivers_cli("probe", "lpd://127.0.0.1:9")
    assert status == 2 and "no queue" in err
    document = tmp_path / "x.txt"
    document.write_bytes(b"x")
    status, _, err = await drivers_cli("send", "lpd://127.0.0.1:9/q?mode=fast", str(document))
    assert status == 2 and "mode='fast' is not one of spool, stream" in err
    assert gateway_cli.main(["probe", "serial:/dev/ttyS0?flow=xon"]) == 2


@pytest.mark.parametrize("host", ["127.0.0.1", "[::1]", "localhost"])
async def test_connection_failures_in_words(host: str, tmp_path: Path) -> None:
    """Issue 9: "Error connecting to ('127.0.0.1', 19999)" became host:port in words."""
    closed = closed_port()
    document = tmp_path / "x.txt"
    document.write_bytes(b"x")
    for uri, kind in ((f"socket://{host}:{closed}?contimeout=5", "socket"),
                      (f"lpd://{host}:{closed}/q?contimeout=5", "lpd")):
        status, _, err = await drivers_cli("send", uri, str(document))
        assert status == 1
        assert err.strip() == (f"error: {kind}: cannot connect to {host}:{closed}: connection "
                               "refused (retry, connecting-to-device)")
        status, out, _ = await drivers_cli("probe", uri)
        assert status == 1 and f"cannot connect to {host}:{closed}: connection refused" in out
        assert "('" not in out and "Errno" not in out


def closed_port() -> int:
    """A loopback port nobody listens on, on IPv4 and IPv6 (bound, never listening)."""
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::", 0))  # the port is free on both families while held
        port: int = probe.getsockname()[1]
    return port


# -- send --driver: a PDF reaches a PCL printer as PCL, with no IPP -------------------------


@pytest.fixture(scope="module")
def p910nd_server() -> Iterator[P910nd]:
    require_programs("gs")
    with running_p910nd() as server:
        yield server


async def test_send_with_a_driver_converts_to_the_printer_language(
    p910nd_server: P910nd, tmp_path: Path
) -> None:
    before = len(p910nd_server.records())
    status, out, err = await drivers_cli("send", p910nd_server.uri, str(VECTOR_PAGE),
                                         "--driver", "pcl5")
    assert status == 0, err
    assert " as pcl5, 1 page(s) " in out
    record = await trio.to_thread.run_sync(p910nd_server.wait_record, before + 1)
    assert record.data is not None
    printed = record.data.read_bytes()
    assert printed.startswith(b"\x1bE") and printed.endswith(b"\x1bE")  # PCL reset both ends
    assert b"\x1b*r" in printed and b"%PDF" not in printed  # raster graphics, not the PDF
    assert out.startswith(f"sent {len(printed)} bytes to {p910nd_server.uri} ")


async def test_send_with_a_driver_into_a_directory(tmp_path: Path) -> None:
    require_programs("gs")
    out_dir = tmp_path / "out"
    for driver in ("pcl5", "postscript", "raw"):
        status, _, err = await drivers_cli("send", f"file://{out_dir}/", str(VECTOR_PAGE),
                                           "--driver", driver, "--job-id", "7")
        assert status == 0, err
    # One job number three times: three files, none replaced, each in its own language.
    names = sorted(p.name for p in out_dir.iterdir())
    assert names == ["job-00007-1.prn", "job-00007-2.prn", "job-00007.prn"]
    heads = [(out_dir / name).read_bytes()[:4] for name in
             ("job-00007.prn", "job-00007-1.prn", "job-00007-2.prn")]
    assert heads == [b"\x1bE\x1b&", b"%!PS", b"%PDF"]


async def test_send_refuses_an_unknown_driver_and_a_wrong_format(tmp_path: Path) -> None:
    document = tmp_path / "page.txt"
    document.write_bytes(b"plain words\n")
    status, _, err = await drivers_cli("send", f"file://{tmp_path}/out/", str(document),
                                       "--driver", "pcl9")
    assert status == 2 and "invalid choice: 'pcl9'" in err
    status, _, err = await drivers_cli("send", f"file://{tmp_path}/out/", str(tmp_path / "no"),
                                       "--driver", "pcl5")
    assert status == 1 and err.strip() == f"error: {tmp_path / 'no'}: no such file or directory"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


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


# -- what `devices` lists, with the machine's buses simulated -------------------------------

USBLP_IDS = {"lp0": "MFG:Epson;MDL:LX-350;CMD:ESCPL2;CLS:PRINTER;",
             "lp1": "MFG:HP;MDL:LaserJet 1020;CMD:HBS,PJL,ACL;CLS:PRINTER;"}


class FakeUsblp:
    """fcntl.ioctl for the usblp character devices in a temporary /dev/usb."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.requests: list[tuple[str, int, int]] = []
        for name in (*USBLP_IDS, "lp2"):  # lp2: unplugged between the glob and the ioctl
            (directory / name).touch()
        (directory / "hiddev0").touch()  # not a printer: not globbed

    def ioctl(self, fd: int, request: int, arg: bytes) -> bytes:
        name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
        self.requests.append((name, request, len(arg)))
        if name not in USBLP_IDS:
            raise OSError(errno.ENODEV, "No such device")
        reply = encode_device_id_reply(USBLP_IDS[name])
        return reply + bytes(len(arg) - len(reply))  # the kernel fills the whole buffer


def comports() -> list[ListPortInfo]:
    ports = []
    for device, description in [("/dev/ttyUSB0", "FT232R USB UART"), ("/dev/ttyS0", "n/a"),
                                ("/dev/ttyACM0", "")]:
        port = ListPortInfo(device, skip_link_detection=True)
        port.description = description
        ports.append(port)
    return ports


@pytest.fixture
def machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeUsblp]:
    """Two USB printers (one a multifunction device, printer on interface 1), an IPP-USB-only
    device, two usblp devices (and one gone), three serial ports."""
    usblp = FakeUsblp(tmp_path)
    monkeypatch.setattr(discovery, "USBLP_DIR", tmp_path)
    monkeypatch.setattr(fcntl, "ioctl", usblp.ioctl)  # the module discovery uses
    monkeypatch.setattr(list_ports, "comports", comports)
    devices = [
        SimPrinter(product=0x2015, serial="XY12"),
        SimPrinter(product=0x2016, serial="MF01", multi_interface=True,
                   device_id="MFG:Acme;MDL:Office 5;CMD:PCL,PDF;CLS:PRINTER;"),
        SimPrinter(product=0x2017, serial="IPP1", protocol=4),  # IPP over USB only
    ]
    usbprinter.use_backend(SimBackend(*devices))
    try:
        yield usblp
    finally:
        usbprinter.use_backend(None)


def test_lpioc_get_device_id_is_the_kernels_number() -> None:
    # _IOC(_IOC_READ, 'P', IOCNR_GET_DEVICE_ID = 1, 1024) from linux/drivers/usb/class/usblp.c
    assert discovery._LPIOC_GET_DEVICE_ID == 0x84005001


def test_serial_ports_listed_in_order_with_names(machine: FakeUsblp) -> None:
    found = discovery.serial_ports()
    assert [(d.uri, d.kind, d.name, d.device_id) for d in found] == [
        ("serial:/dev/ttyACM0?baud=9600", "serial", "/dev/ttyACM0", ""),
        ("serial:/dev/ttyS0?baud=9600", "serial", "/dev/ttyS0", ""),
        ("serial:/dev/ttyUSB0?baud=9600", "serial", "FT232R USB UART", ""),
    ]


def test_usblp_devices_with_their_1284_ids(machine: FakeUsblp) -> None:
    found = discovery.usblp_devices()
    assert [(d.uri, d.kind, d.name, d.device_id) for d in found] == [
        (f"file://{machine.directory}/lp0", "usblp", "Epson LX-350", USBLP_IDS["lp0"]),
        (f"file://{machine.directory}/lp1", "usblp", "HP LaserJet 1020", USBLP_IDS["lp1"]),
        (f"file://{machine.directory}/lp2", "usblp", "usblp lp2", ""),
    ]
    assert machine.requests == [(name, 0x84005001, 1024) for name in ("lp0", "lp1", "lp2")]


def test_usb_printers_with_their_1284_ids(machine: FakeUsblp) -> None:
    found = discovery.usb_printers()
    assert [(d.uri, d.name) for d in found] == [
        ("usb://04f9:2015?serial=XY12", "Acme Laser 1"),
        ("usb://04f9:2016?serial=MF01", "Acme Office 5"),  # its id asked of interface 1
    ]
    assert found[1].device_id == "MFG:Acme;MDL:Office 5;CMD:PCL,PDF;CLS:PRINTER;"
    backend = usbprinter._backend
    for device in backend.printers:
        assert device.bad_requests == [] and device.foreign_touches == []
        assert device.kernel_driver and not device.claimed  # given back to usblp


def test_ipp_gateway_devices_lists_everything(
    machine: FakeUsblp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert gateway_cli.main(["devices"]) == 0
    lines = capsys.readouterr().out.splitlines()
    kinds = [line.split()[0:2] for line in lines if not line.startswith(" ")]
    assert kinds == [
        ["usb", "usb://04f9:2015?serial=XY12"], ["usb", "usb://04f9:2016?serial=MF01"],
        ["usblp", f"file://{machine.directory}/lp0"], ["usblp", f"file://{machine.directory}/lp1"],
        ["usblp", f"file://{machine.directory}/lp2"],
        ["serial", "serial:/dev/ttyACM0?baud=9600"], ["serial", "serial:/dev/ttyS0?baud=9600"],
        ["serial", "serial:/dev/ttyUSB0?baud=9600"],
    ]
    assert "        Acme Office 5  [MFG:Acme;MDL:Office 5;CMD:PCL,PDF;CLS:PRINTER;]" in lines
    assert "        HP LaserJet 1020  [" + USBLP_IDS["lp1"] + "]" in lines
    assert "        FT232R USB UART" in lines
    assert ("        driver: pcl5 (the device id lists PCL: PCL 5 is the only language it "
            "names that we print)") in lines
    assert "        driver: none (it sent no device id to choose a driver from)" in lines


def test_devices_json_lists_each_candidate_with_its_driver(
    machine: FakeUsblp, capsys: pytest.CaptureFixture[str]
) -> None:
    assert discovery.devices_command(json=True) == 0
    listed = json.loads(capsys.readouterr().out)
    by_uri = {entry["uri"]: entry for entry in listed}
    assert len(listed) == 8 and all(set(entry) == {
        "uri", "kind", "name", "device_id", "make_and_model", "driver", "reason"}
        for entry in listed)
    acme = by_uri["usb://04f9:2015?serial=XY12"]
    assert (acme["kind"], acme["make_and_model"], acme["driver"]) == (
        "usb", "Acme Laser 1", "postscript")
    assert acme["reason"].startswith("the device id lists POSTSCRIPT: PostScript is preferred")
    lp0 = by_uri[f"file://{machine.directory}/lp0"]
    assert (lp0["device_id"], lp0["driver"]) == (USBLP_IDS["lp0"], "escp2")
    lp1 = by_uri[f"file://{machine.directory}/lp1"]
    assert lp1["driver"] == "text" and "fallback" in lp1["reason"]  # a host-based printer
    assert by_uri[f"file://{machine.directory}/lp2"]["driver"] == ""
    serial = by_uri["serial:/dev/ttyUSB0?baud=9600"]
    assert (serial["device_id"], serial["driver"], serial["reason"]) == ("", "", "")
