"""The simulated USB printers of the plug-and-print tests: their 1284 ids, the checks of what
they received (against real driver output), hotplug on the simulated bus, and the launcher that
runs the gateway behind them."""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio
import usb.core

from drivers import get_driver
from drivers.discovery import usb_printers
from drivers.ieee1284 import parse_device_id
from drivers.transport import JobInfo, open_transport
from drivers.transports import usbprinter
from ippwire.enums import JobState
from tests.peers import CORPUS_DIR, REPO_ROOT
from tests.peers.gateway_proc import PrinterTable, start_configured_gateway
from tests.support.driver_printing import Document, low_resolution, print_to_file
from tests.support.ipp_client import submit, wait_job
from tests.support.pipeline_documents import PDF
from tests.support.usb_profiles import (
    PCL5_LASER,
    PCLXL_LASER,
    POSTSCRIPT_LASER,
    PROFILES,
    TEXT_DOT_MATRIX,
    check_printed,
)
from tests.support.usb_sim import SimBackend
from tests.support.usb_sim_launcher import (
    ControlledBus,
    entry,
    launcher_argv,
    received,
    write_control,
)

EXPECTED = {  # profile -> (MFG, MDL, CMD, driver)
    "postscript-laser": ("Hewlett-Packard", "HP LaserJet 1220",
                         ("PJL", "MLC", "PCL", "PCLXL", "POSTSCRIPT"), "postscript"),
    "pcl5-laser": ("Hewlett-Packard", "HP LaserJet 1100", ("MLC", "PCL", "PJL"), "pcl5"),
    "pclxl-laser": ("Brother", "HL-2270DW series", ("PJL", "PCL", "PCLXL"), "pclxl"),
    "text-dot-matrix": ("OKI DATA CORP", "ML320/1TURBO", ("IBM", "MICROLINE"), "text"),
}
KNOWN_LANGUAGES = {"POSTSCRIPT", "PCLXL", "PCL", "ESCP", "ESC/P", "EPSON", "ESC/P2"}


@pytest.fixture
def backend() -> Iterator[SimBackend]:
    sim = SimBackend()
    usbprinter.use_backend(sim)
    try:
        yield sim
    finally:
        usbprinter.use_backend(None)


# -- the ids --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_profile_has_a_parseable_id(name: str) -> None:
    kind = PROFILES[name]
    manufacturer, model, commands, driver = EXPECTED[name]
    device = parse_device_id(kind.device_id("S1"))
    assert (device.manufacturer, device.model, device.command_set) == (
        manufacturer, model, commands)
    assert device.serial_number == "S1"
    assert kind.driver == driver
    get_driver(kind.driver)  # a registered driver
    assert (kind.language == "") == (driver == "text")
    assert not kind.language or device.supports(kind.language)
    assert kind.make_and_model == device.make_and_model


def test_the_four_kinds_are_distinct_and_make_the_preference_order_matter() -> None:
    identities = {(p.vendor, p.product, p.serial) for p in PROFILES.values()}
    assert len({(v, p) for v, p, _ in identities}) == len({s for _, _, s in identities}) == 4
    postscript = parse_device_id(POSTSCRIPT_LASER.device_id()).command_set
    assert postscript.index("PCL") < postscript.index("PCLXL") < postscript.index("POSTSCRIPT")
    assert "POSTSCRIPT" not in parse_device_id(PCLXL_LASER.device_id()).command_set
    assert {"PCLXL", "POSTSCRIPT"}.isdisjoint(parse_device_id(PCL5_LASER.device_id()).command_set)
    assert KNOWN_LANGUAGES.isdisjoint(parse_device_id(TEXT_DOT_MATRIX.device_id()).command_set)


# -- the checks against real driver output -------------------------------------------------


@pytest.fixture(scope="module")
def printed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The one-page corpus PDF as each profile's driver prints it (at 75 dpi, to stay fast)."""
    out = tmp_path_factory.mktemp("printed")
    document = Document(CORPUS_DIR / "testpage-1p-vector.pdf", PDF, 1)
    jobs: dict[str, bytes] = {}

    async def print_all() -> None:
        for kind in PROFILES.values():
            driver = get_driver(kind.driver)
            data, _ = await print_to_file(document, driver, low_resolution(driver),
                                          out / f"{kind.name}.prn")
            jobs[kind.name] = data

    trio.run(print_all)
    return jobs


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_each_checker_accepts_its_own_language_only(name: str,
                                                    printed: dict[str, bytes]) -> None:
    check_printed(name, printed[name], 1)
    with pytest.raises(AssertionError):
        check_printed(name, printed[name], 2)  # the page count is checked
    for other, data in printed.items():
        if other != name:
            with pytest.raises(AssertionError):
                check_printed(name, data, 1)


def test_a_checker_refuses_nothing_and_a_cut_job(printed: dict[str, bytes]) -> None:
    for name, data in printed.items():
        with pytest.raises(AssertionError):
            check_printed(name, b"", 1)
        if name != "text-dot-matrix":  # cut text is still text
            with pytest.raises(AssertionError):
                check_printed(name, data[: len(data) // 2], 1)


# -- hotplug on the simulated bus -----------------------------------------------------------


def test_a_printer_plugged_after_the_start_is_found_and_serves_its_id(
        backend: SimBackend) -> None:
    assert usbprinter.find_printers() == []
    backend.plug(PCL5_LASER.make())
    backend.plug(TEXT_DOT_MATRIX.make("DOT2"))
    found = usb_printers()
    assert [(d.uri, d.device_id) for d in found] == [
        (f"usb://03f0:0517?serial={PCL5_LASER.serial}", PCL5_LASER.device_id()),
        ("usb://06bc:000b?serial=DOT2", TEXT_DOT_MATRIX.device_id("DOT2"))]
    assert found[1].name == "OKI DATA CORP ML320/1TURBO"


def test_flipping_plugged_is_a_cable_pulled_and_pushed_back(backend: SimBackend) -> None:
    printer = backend.plug(PCLXL_LASER.make())
    twin = backend.plug(PCLXL_LASER.make("TWIN"))  # equal but for the serial
    before = usbprinter.find_printers(product=PCLXL_LASER.product)[0]
    assert usbprinter.serial_number(before) == PCLXL_LASER.serial
    before.detach_kernel_driver(0)  # a call on the open handle, which pyusb does not cache
    assert not printer.kernel_driver
    printer.plugged = False
    assert [usbprinter.serial_number(d) for d in usbprinter.find_printers()] == ["TWIN"]
    with pytest.raises(usb.core.USBError) as gone:
        before.is_kernel_driver_active(0)
    assert gone.value.backend_error_code == -4  # LIBUSB_ERROR_NO_DEVICE
    printer.plugged = True
    with pytest.raises(usb.core.USBError):  # the old handle stays dead, as on hardware
        before.is_kernel_driver_active(0)
    assert printer.kernel_driver and not printer.claimed
    serials = sorted(usbprinter.serial_number(d) for d in usbprinter.find_printers())
    assert serials == sorted([PCLXL_LASER.serial, "TWIN"])
    assert twin.plugged
    assert [d.device_id for d in usb_printers()] == [
        PCLXL_LASER.device_id(), PCLXL_LASER.device_id("TWIN")]


# -- the launcher ---------------------------------------------------------------------------


def test_the_control_file_drives_the_bus_and_records_what_arrives(tmp_path: Path) -> None:
    control = tmp_path / "control.json"
    bus = ControlledBus(control)
    assert not bus.refresh() and bus.backend.printers == []  # no file yet: an empty bus
    write_control(control, [entry("postscript-laser", "PS1"), entry("pclxl-laser", "XL1")])
    assert bus.refresh()
    assert not bus.refresh()  # unchanged
    assert [p.serial for p in bus.backend.enumerate_devices()] == ["PS1", "XL1"]
    write_control(control, [entry("postscript-laser", "PS1", plugged=False)])
    assert bus.refresh()
    assert bus.backend.enumerate_devices() == []  # XL1 unlisted: unplugged, not forgotten
    write_control(control, [entry("postscript-laser", "PS1"), entry("pclxl-laser", "XL1")])
    assert bus.refresh()

    async def send() -> None:
        transport = open_transport("usb://03f0:0412?serial=PS1")
        await transport.start_job(JobInfo(job_id=1))
        await transport.send_all(b"%!PS\nshowpage\n")
        await transport.end_job()

    usbprinter.use_backend(bus.backend)
    try:
        trio.run(send)
    finally:
        usbprinter.use_backend(None)
    assert received(control, "PS1") == b"%!PS\nshowpage\n"
    assert received(control, "XL1") == b""


def _devices(control: Path) -> str:
    result = subprocess.run(launcher_argv(control, ["devices"]), capture_output=True,
                            text=True, timeout=60, cwd=REPO_ROOT, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_launcher_runs_the_gateway_command_behind_the_simulated_printers(
        tmp_path: Path) -> None:
    control = tmp_path / "control.json"
    write_control(control, [entry(name) for name in sorted(PROFILES)])
    listed = _devices(control)
    for kind in PROFILES.values():
        assert f"usb://{kind.vendor:04x}:{kind.product:04x}?serial={kind.serial}" in listed
        assert kind.device_id() in listed

    write_control(control, [entry(name, plugged=name != "pcl5-laser") for name in PROFILES])
    listed = _devices(control)
    assert PCL5_LASER.serial not in listed
    assert all(kind.serial in listed for kind in PROFILES.values() if kind is not PCL5_LASER)


def test_the_launcher_needs_its_separator(tmp_path: Path) -> None:
    result = subprocess.run([*launcher_argv(tmp_path / "c.json", [])[:-1], "devices"],
                            capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                            check=False)
    assert result.returncode == 2 and "usage" in result.stderr


def test_the_control_thread_follows_changes_while_the_gateway_would_run(tmp_path: Path) -> None:
    control = tmp_path / "control.json"
    write_control(control, [entry("text-dot-matrix", "DOT1")])
    bus = ControlledBus(control)
    bus.refresh()
    stop = threading.Event()
    follower = threading.Thread(target=bus.follow, args=(stop,), daemon=True)
    follower.start()
    try:
        for plugged in (False, True, False):
            write_control(control, [entry("text-dot-matrix", "DOT1", plugged=plugged)])
            for _ in range(200):  # polled every 0.1 s: well within 200 x 0.05 s
                if [p.serial for p in bus.backend.enumerate_devices()] == (
                        ["DOT1"] if plugged else []):
                    break
                time.sleep(0.05)
            else:
                raise AssertionError(f"the bus did not follow plugged={plugged}")
    finally:
        stop.set()
        follower.join(timeout=5)
    assert not follower.is_alive()


def test_a_gateway_started_through_the_launcher_prints_to_a_simulated_printer(
        tmp_path: Path) -> None:
    control = tmp_path / "usb" / "control.json"
    control.parent.mkdir()
    write_control(control, [entry("postscript-laser", "PSX")])
    table = PrinterTable.on_device("laser", "usb://03f0:0412?serial=PSX", driver="postscript")
    with start_configured_gateway(tmp_path / "gw", [table], usb_control=control) as gateway:
        job_id = submit(gateway.port, CORPUS_DIR / "testpage-1p-vector.pdf", printer="laser",
                        fmt=PDF)
        wait_job(gateway.port, job_id, "laser", lambda s: s.state == JobState.COMPLETED,
                 timeout=60, what="the job completed")
    check_printed(POSTSCRIPT_LASER, received(control, "PSX"), 1)
