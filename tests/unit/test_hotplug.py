"""The hotplug monitor's parts: device events, identities, the remembered printers, and one
monitor in-process over a System with the simulated USB bus (tests/support/usb_sim.py)."""

from __future__ import annotations

import json
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio

from drivers.transports import usbprinter
from gateway import autoprinters
from gateway.autoprinters import RememberedPrinter, usb_identity
from gateway.config import Config, PrinterConfig
from gateway.core.system import System
from gateway.hotplug import UsbHotplug, identity_matches, is_usb_change, parse_uevent
from tests.support.usb_profiles import PCL5_LASER, POSTSCRIPT_LASER
from tests.support.usb_sim import SimBackend, SimPrinter

# -- device events ---------------------------------------------------------------------------


def test_kernel_uevent_is_parsed() -> None:
    message = (b"add@/devices/pci0000:00/0000:00:14.0/usb1/1-2\x00ACTION=add\x00"
               b"DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2\x00SUBSYSTEM=usb\x00"
               b"DEVTYPE=usb_device\x00PRODUCT=3f0/412/100\x00SEQNUM=4242\x00")
    properties = parse_uevent(message)
    assert properties["ACTION"] == "add" and properties["PRODUCT"] == "3f0/412/100"
    assert is_usb_change(properties)


def test_udev_monitor_message_is_parsed() -> None:
    body = b"ACTION=remove\x00SUBSYSTEM=usb\x00DEVTYPE=usb_interface\x00INTERFACE=7/1/2\x00"
    header_size = 40
    header = b"libudev\x00" + struct.pack(">I", 0xFEEDCAFE) + struct.pack(
        "=IIIIIII", header_size, header_size, len(body), 0, 0, 0, 0)
    assert len(header) == header_size
    properties = parse_uevent(header + body)
    assert properties == {"ACTION": "remove", "SUBSYSTEM": "usb", "DEVTYPE": "usb_interface",
                          "INTERFACE": "7/1/2"}
    assert is_usb_change(properties)


@pytest.mark.parametrize("message", [
    b"", b"garbage", b"libudev\x00short", b"libudev\x00" + b"\x00" * 32,
    b"change@/devices/virtual/net/veth0\x00ACTION=change\x00SUBSYSTEM=net\x00",
])
def test_other_or_broken_events_do_not_ask_for_a_scan(message: bytes) -> None:
    assert not is_usb_change(parse_uevent(message))


# -- identities and the remembered printers ------------------------------------------------------


def test_usb_identity() -> None:
    assert usb_identity("usb://03F0:0412?serial=CN12") == "03f0:0412:CN12"
    assert usb_identity("usb://03f0:0412") == "03f0:0412:"
    assert usb_identity("usb://03f0:0412?serial=CN12&timeout=30") == "03f0:0412:CN12"
    for other in ("socket://host:9100", "usb://printer", "usb://zz:12", "file:///tmp/x"):
        assert usb_identity(other) is None


def test_an_identity_without_serial_matches_every_device_of_its_model() -> None:
    assert identity_matches("03f0:0412:", "03f0:0412:CN12")
    assert identity_matches("03f0:0412:CN12", "03f0:0412:CN12")
    assert not identity_matches("03f0:0412:CN12", "03f0:0412:CN13")
    assert not identity_matches("03f0:0412:", "03f0:0413:CN12")


def _remembered(name: str = "HP_LaserJet_1220", identity: str = "03f0:0412:CN12",
                **changes: object) -> RememberedPrinter:
    values: dict[str, object] = {
        "identity": identity, "name": name, "device_uri": "usb://03f0:0412?serial=CN12",
        "driver": "postscript", "make_and_model": "HP LaserJet 1220"}
    values.update(changes)
    return RememberedPrinter(**values)  # type: ignore[arg-type]


def test_remembered_printers_round_trip_and_forget(tmp_path: Path) -> None:
    assert autoprinters.load(tmp_path) == []
    printer = _remembered()
    autoprinters.remember(tmp_path, printer)
    autoprinters.remember(tmp_path, _remembered("Other", "04f9:0042:E7"))
    assert autoprinters.load(tmp_path) == [printer, _remembered("Other", "04f9:0042:E7")]
    assert autoprinters.forget(tmp_path, "HP_LaserJet_1220")
    assert not autoprinters.forget(tmp_path, "HP_LaserJet_1220")  # removed already
    assert not autoprinters.forget(tmp_path, "nobody")
    [gone, kept] = autoprinters.load(tmp_path)
    assert gone.removed and not kept.removed


def test_a_damaged_file_is_no_printer_not_a_crash(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    path = autoprinters.remembered_path(tmp_path)
    for text in ("{", json.dumps({"printers": [{"name": 3}]}), json.dumps([1])):
        path.write_text(text)
        assert autoprinters.load(tmp_path) == []
    assert "unreadable" in caplog.text


def test_the_configuration_overrides_by_identity_or_name(tmp_path: Path) -> None:
    printer = _remembered()
    by_identity = PrinterConfig("laser", "usb://03f0:0412?serial=CN12", driver="pcl5")
    by_name = PrinterConfig("HP_LaserJet_1220", "socket://10.0.0.9", driver="pcl5")
    unrelated = PrinterConfig("other", "usb://03f0:0412?serial=ZZZ", driver="pcl5")
    assert autoprinters.overriding(printer, [by_identity]) == by_identity
    assert autoprinters.overriding(printer, [by_name]) == by_name
    assert autoprinters.active([printer], [unrelated]) == [printer]
    assert autoprinters.active([printer], [by_identity]) == []
    assert autoprinters.active([_remembered(removed=True)], []) == []
    config = Config(spool=tmp_path, printers=(unrelated,))
    autoprinters.remember(tmp_path, printer)
    merged = autoprinters.with_remembered(config)
    assert [p.name for p in merged.printers] == ["other", "HP_LaserJet_1220"]
    assert merged.printers[1].driver == "postscript"
    assert merged.printers[1].make_and_model == "HP LaserJet 1220"


# -- the monitor, in-process ---------------------------------------------------------------


class Monitor:
    def __init__(self, system: System, spool: Path) -> None:
        self.system = system
        self.spool = spool
        self.applied = 0
        self.hotplug = UsbHotplug(lambda: system, self.apply, spool=spool)

    async def apply(self) -> None:
        self.applied += 1
        await self.system.reconfigure(autoprinters.with_remembered(
            Config(spool=self.spool, printers=self.configured)))

    configured: tuple[PrinterConfig, ...] = ()


@pytest.fixture
async def bus() -> AsyncIterator[SimBackend]:
    backend = SimBackend()
    usbprinter.use_backend(backend)
    try:
        yield backend
    finally:
        usbprinter.use_backend(None)


async def _system(tmp_path: Path, configured: tuple[PrinterConfig, ...]
                  ) -> tuple[System, Monitor]:
    spool = tmp_path / "spool"
    config = autoprinters.with_remembered(Config(spool=spool, printers=configured))
    system = await System.open(config)
    monitor = Monitor(system, spool)
    monitor.configured = configured
    return system, monitor


async def test_a_plugged_printer_is_set_up_once_and_shown_offline_when_unplugged(
        tmp_path: Path, bus: SimBackend) -> None:
    base = PrinterConfig("base", (tmp_path / "out").as_uri() + "/", status_interval=0)
    system, monitor = await _system(tmp_path, (base,))
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        device = bus.plug(PCL5_LASER.make())
        await monitor.hotplug.scan()
        name = "HP_LaserJet_1100"
        assert list(system.printers) == ["base", name]
        printer = system.printers[name]
        assert (printer.driver.name, printer.capabilities.make_and_model) == (
            "pcl5", "HP LaserJet 1100")
        assert not printer.absent
        uuid = printer.uuid
        await monitor.hotplug.scan()  # seen again: nothing new
        assert monitor.applied == 1

        device.unplug()
        await monitor.hotplug.scan()
        assert printer.absent and "offline-report" in printer.state_reasons
        device.replug()
        await monitor.hotplug.scan()
        assert not printer.absent and "offline-report" not in printer.state_reasons
        assert system.printers[name] is printer and printer.uuid == uuid
        assert monitor.applied == 1
        nursery.cancel_scope.cancel()


async def test_a_configured_override_stays_and_a_removed_printer_stays_removed(
        tmp_path: Path, bus: SimBackend) -> None:
    """The guess (PostScript) was wrong: the configuration names the device with pcl5. The
    plug-in sets nothing up, and the configured printer follows the device's presence."""
    uri = f"usb://{POSTSCRIPT_LASER.vendor:04x}:{POSTSCRIPT_LASER.product:04x}"
    override = PrinterConfig("laser", uri, driver="pcl5", status_interval=0)
    system, monitor = await _system(tmp_path, (override,))
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        await monitor.hotplug.scan()
        assert system.printers["laser"].absent  # configured, not plugged in: offline
        device = bus.plug(POSTSCRIPT_LASER.make())
        await monitor.hotplug.scan()
        assert list(system.printers) == ["laser"] and monitor.applied == 0
        assert system.printers["laser"].driver.name == "pcl5"
        assert not system.printers["laser"].absent

        # Without the override, it is set up; removed by a person, it is not set up again.
        monitor.configured = ()
        await system.reconfigure(Config(spool=monitor.spool))
        await monitor.hotplug.scan()
        [name] = [n for n in system.printers if n != "default"]
        assert system.printers[name].driver.name == "postscript"
        assert autoprinters.forget(monitor.spool, name)
        await monitor.apply()
        device.unplug()
        await monitor.hotplug.scan()
        device.replug()
        await monitor.hotplug.scan()
        assert name not in system.printers
        nursery.cancel_scope.cancel()


async def test_a_device_without_an_id_is_retried_then_set_up_as_text(
        tmp_path: Path, bus: SimBackend) -> None:
    system, monitor = await _system(tmp_path, ())
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        bus.plug(SimPrinter(vendor=0x1234, product=0x5678, serial="NOID", device_id=""))
        await monitor.hotplug.scan()
        await monitor.hotplug.scan()
        assert monitor.applied == 0  # two tries to read an id
        await monitor.hotplug.scan()
        [remembered] = autoprinters.load(monitor.spool)
        assert remembered.driver == "text" and remembered.device_uri == (
            "usb://1234:5678?serial=NOID")
        assert remembered.name in system.printers
        nursery.cancel_scope.cancel()
