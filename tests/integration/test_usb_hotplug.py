"""Plug and print over USB (issue 14): a real gateway process behind simulated USB printers
(tests/support/usb_sim_launcher.py: the real pyusb and usbprinter code, a simulated bus).

Four printers are plugged in while the gateway runs: a PostScript laser whose id also lists
PCL and PCL XL, a PCL 5 laser, a PCL XL printer and a text-only dot-matrix. Each becomes an
IPP printer with the driver its 1284 id calls for and the name its model gives, prints a PDF
that decodes back in its language, shows offline when unplugged, and comes back with the same
name and UUID after a replug and after a restart of the gateway.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest

from drivers.autosetup import printer_name
from gateway.autoprinters import load
from ippwire.enums import JobState, Operation, PrinterState, Status
from tests.peers import CORPUS_DIR, REPO_ROOT
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK, wait_until
from tests.support.ipp_client import submit, wait_job
from tests.support.ipp_jobs import IppPrinter
from tests.support.pipeline_documents import PDF
from tests.support.usb_profiles import PROFILES, UsbProfile, check_printed
from tests.support.usb_sim_launcher import entry, launcher_argv, received, write_control

PLUG_DEADLINE = 5.0  # the promise: set up, or shown offline, within 5 s
USB_TOML = "[usb]\nscan_interval = 0.5"
KINDS = ("postscript-laser", "pcl5-laser", "pclxl-laser", "text-dot-matrix")
JOB_TIMEOUT = 120.0


def _state(port: int) -> dict[str, dict[str, object]]:
    with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/api/state", timeout=10) as reply:
        state = json.loads(reply.read())
    return {printer["name"]: printer for printer in state["printers"]}


def _attributes(port: int, name: str) -> dict[str, list[object]] | None:
    reply = IppPrinter(port, name).send(Operation.GET_PRINTER_ATTRIBUTES)
    if reply.status != Status.OK:
        return None
    return {attr.name: list(attr.plain) for group in reply.message.groups
            for attr in group.attributes}


def _expected_names() -> dict[str, str]:
    taken = ["default"]
    names = {}
    for kind in KINDS:
        names[kind] = printer_name(PROFILES[kind].make_and_model, taken)
        taken.append(names[kind])
    return names


@pytest.fixture
def control(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "usb" / "control.json"
    path.parent.mkdir()
    write_control(path, [entry(kind, plugged=False) for kind in KINDS])
    yield path


def _start(workdir: Path, control: Path) -> GatewayProcess:
    return start_configured_gateway(workdir, [PrinterTable("default")], extra_toml=USB_TOML,
                                    usb_control=control)


def _served(port: int, name: str) -> bool:
    return _attributes(port, name) is not None


def _offline(port: int, name: str) -> bool:
    attrs = _attributes(port, name)
    return attrs is not None and "offline-report" in attrs["printer-state-reasons"]


def _online(port: int, name: str) -> bool:
    attrs = _attributes(port, name)
    return (attrs is not None and "offline-report" not in attrs["printer-state-reasons"]
            and attrs["printer-state"] == [PrinterState.IDLE])


@pytest.mark.slow
def test_plugged_printers_are_set_up_print_and_survive_replug_and_restart(
        tmp_path: Path, control: Path) -> None:
    names = _expected_names()
    work = tmp_path / "gw"
    with _start(work, control) as gateway:
        port = gateway.port
        assert set(_state(port)) == {"default"}
        write_control(control, [entry(kind) for kind in KINDS])
        for kind in KINDS:
            wait_until(partial(_served, port, names[kind]), PLUG_DEADLINE,
                       f"{kind} set up as {names[kind]}")
        shown = _state(port)
        uuids = {}
        for kind in KINDS:
            profile: UsbProfile = PROFILES[kind]
            printer = shown[names[kind]]
            assert printer["driver"] == profile.driver, (kind, printer)
            attrs = _attributes(port, names[kind])
            assert attrs is not None
            assert attrs["printer-make-and-model"] == [profile.make_and_model]
            uuids[kind] = attrs["printer-uuid"]

        # Explainable: the dashboard lists each device with its 1284 id and chosen driver,
        # as `ipp-gateway devices --json` does.
        with urllib.request.urlopen(f"http://{LOOPBACK}:{port}/api/devices",
                                    timeout=30) as reply:
            listed = json.loads(reply.read())["devices"]
        command = subprocess.run(launcher_argv(control, ["devices", "--json"]),
                                 capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
                                 check=True)
        assert listed == json.loads(command.stdout)
        by_uri = {device["uri"]: device for device in listed}
        for kind in KINDS:
            profile = PROFILES[kind]
            uri = f"usb://{profile.vendor:04x}:{profile.product:04x}?serial={profile.serial}"
            assert by_uri[uri]["device_id"] == profile.device_id()
            assert by_uri[uri]["driver"] == profile.driver
            assert by_uri[uri]["reason"]

        # Each prints a PDF in its own language.
        jobs = {kind: submit(port, CORPUS_DIR / "testpage-1p-vector.pdf", printer=names[kind],
                             fmt=PDF) for kind in KINDS}
        for kind, job_id in jobs.items():
            wait_job(port, job_id, names[kind], lambda s: s.state == JobState.COMPLETED,
                     timeout=JOB_TIMEOUT, what=f"{kind}'s job completed")
            check_printed(PROFILES[kind], received(control, PROFILES[kind].serial), 1)

        # Unplugged: offline within 5 s, the queue kept (a job waits); replugged: the same
        # printer, and the waiting job prints.
        write_control(control, [entry(kind, plugged=False) for kind in KINDS])
        for kind in KINDS:
            wait_until(partial(_offline, port, names[kind]), PLUG_DEADLINE,
                       f"{kind} offline")
        before = len(received(control, PROFILES["pcl5-laser"].serial))
        waiting = submit(port, b"waits for the printer\r\n", printer=names["pcl5-laser"],
                         fmt="text/plain")
        time.sleep(1.0)  # two scans: nothing is sent to an unplugged printer
        assert wait_job(port, waiting, names["pcl5-laser"], lambda s: True, timeout=5,
                        what="a state").state == JobState.PENDING
        write_control(control, [entry(kind) for kind in KINDS])
        for kind in KINDS:
            wait_until(partial(_online, port, names[kind]), PLUG_DEADLINE,
                       f"{kind} back online")
            attrs = _attributes(port, names[kind])
            assert attrs is not None and attrs["printer-uuid"] == uuids[kind]
        wait_job(port, waiting, names["pcl5-laser"], lambda s: s.state == JobState.COMPLETED,
                 timeout=JOB_TIMEOUT, what="the waiting job completed")
        assert len(received(control, PROFILES["pcl5-laser"].serial)) > before
        assert set(_state(port)) == {"default", *names.values()}
        log = gateway.log.read_text()
    assert "Traceback" not in log
    for kind in KINDS:
        assert f"set up as printer {names[kind]}, driver {PROFILES[kind].driver}" in log

    remembered = {p.name: p for p in load(work / "spool")}
    assert set(remembered) == set(names.values())
    assert remembered[names["postscript-laser"]].device_id == PROFILES[
        "postscript-laser"].device_id()

    # After a restart, unplugged: the printers are there, offline, with the same UUIDs.
    write_control(control, [entry(kind, plugged=False) for kind in KINDS])
    first_run = len((work / "gateway.log").read_text())
    with _start(work, control) as gateway:
        port = gateway.port
        for kind in KINDS:
            wait_until(partial(_offline, port, names[kind]), PLUG_DEADLINE,
                       f"{kind} offline after the restart")
            attrs = _attributes(port, names[kind])
            assert attrs is not None and attrs["printer-uuid"] == uuids[kind]
        write_control(control, [entry(kind) for kind in KINDS])
        for kind in KINDS:
            wait_until(partial(_online, port, names[kind]), PLUG_DEADLINE,
                       f"{kind} online after the restart")
        assert set(_state(port)) == {"default", *names.values()}
        assert "set up as printer" not in gateway.log.read_text()[first_run:]
