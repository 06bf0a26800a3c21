"""What is attached and how it is: USB printers (with their 1284 ids and the driver those
choose, drivers.autosetup), usblp character devices, serial ports, and `probe(uri)` connecting
to one device to report its status and id.

Behind `ipp-gateway devices` / `probe` and `python -m drivers devices` / `probe`: both command
lines call `devices_command` / `probe_command`, so their output and exit status are the same.
"""

from __future__ import annotations

import fcntl
import json as json_format
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from drivers.autosetup import choice_for_device_id
from drivers.errors import DriverError, UriError, os_reason
from drivers.ieee1284 import decode_device_id_reply, parse_device_id
from drivers.transport import DeviceStatus, check_device_uri, open_transport
from drivers.transports import usbprinter
from drivers.transports.appsocket import AppSocketTransport
from drivers.uri import DeviceUri

log = logging.getLogger("drivers.discovery")

_DEVICE_ID_LENGTH = 1024
USBLP_DIR = Path("/dev/usb")  # where the kernel's usblp driver puts lp0, lp1 ...
# LPIOC_GET_DEVICE_ID(len) = _IOC(_IOC_READ, 'P', 1, len), from linux/usb/usblp.c
_LPIOC_GET_DEVICE_ID = (2 << 30) | (_DEVICE_ID_LENGTH << 16) | (ord("P") << 8) | 1


@dataclass(frozen=True)
class FoundDevice:
    """One attached device: the URI to configure, a name for people, its 1284 id if any, and
    the driver that id chooses with the reason (none for a device without an id)."""

    uri: str
    kind: str  # "usb", "usblp" or "serial"
    name: str
    device_id: str = ""
    driver: str = ""
    reason: str = ""

    @classmethod
    def with_choice(cls, uri: str, kind: str, name: str, device_id: str) -> FoundDevice:
        """A printer, its driver chosen from its device id when it sent one."""
        if not device_id:
            return cls(uri, kind, name, "", "", "it sent no device id to choose a driver from")
        choice = choice_for_device_id(device_id)
        return cls(uri, kind, name, device_id, choice.driver, choice.reason)

    @property
    def make_and_model(self) -> str:
        return parse_device_id(self.device_id).make_and_model if self.device_id else ""

    def as_json(self) -> dict[str, str]:
        return {"uri": self.uri, "kind": self.kind, "name": self.name,
                "device_id": self.device_id, "make_and_model": self.make_and_model,
                "driver": self.driver, "reason": self.reason}


@dataclass(frozen=True)
class ProbeResult:
    uri: str
    reachable: bool | None  # None: the transport cannot tell without printing
    status: DeviceStatus | None = None
    device_id: str | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        """Whether a job could print: reachable (or cannot tell), no error, and no reason of
        error severity (an LPD server that has no such queue answers, but prints nothing)."""
        if self.error or self.reachable is False:
            return False
        return self.status is None or not any(r.endswith("-error") for r in self.status.reasons)


def _usb_entry(dev: Any, intf: Any) -> FoundDevice:
    serial = usbprinter.serial_number(dev)
    uri = f"usb://{dev.idVendor:04x}:{dev.idProduct:04x}"
    if serial:
        uri += f"?serial={serial}"
    try:
        connection = usbprinter.UsbConnection(dev, intf, uri)
        connection.claim()
        try:
            text = connection.device_id()
        finally:
            connection.close()
    except (OSError, DriverError, NotImplementedError) as exc:  # one odd device: go on
        log.info("%s: no device id: %s", uri, os_reason(exc))
        text = ""
    name = parse_device_id(text).make_and_model if text else f"USB printer {uri[6:15]}"
    return FoundDevice.with_choice(uri, "usb", name, text)


def usb_printers() -> list[FoundDevice]:
    """USB printer-class devices (blocking: run in a thread). Their id needs a claim."""
    found = []
    for dev in usbprinter.find_printers():
        found.append(_usb_entry(dev, usbprinter.printer_interfaces(dev)[0]))
    return found


def usblp_devices() -> list[FoundDevice]:
    """Printers the kernel's usblp driver holds, as `file:` URIs, with their 1284 ids."""
    found = []
    for path in sorted(USBLP_DIR.glob("lp*")):
        text = ""
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
            try:
                reply = fcntl.ioctl(fd, _LPIOC_GET_DEVICE_ID, bytes(_DEVICE_ID_LENGTH))
                text = decode_device_id_reply(reply)
            finally:
                os.close(fd)
        except OSError as exc:
            log.info("%s: no device id: %s", path, os_reason(exc))
        name = parse_device_id(text).make_and_model if text else f"usblp {path.name}"
        found.append(FoundDevice.with_choice(f"file://{path}", "usblp", name, text))
    return found


def serial_ports() -> list[FoundDevice]:
    from serial.tools import list_ports

    found = []
    for port in sorted(list_ports.comports(), key=lambda p: str(p.device)):
        described = port.description if port.description not in ("", "n/a") else port.device
        found.append(FoundDevice(f"serial:{port.device}?baud=9600", "serial", described))
    return found


async def devices() -> list[FoundDevice]:
    """Every attached USB printer, usblp device and serial port."""
    listed: list[FoundDevice] = []
    for finder in (usb_printers, usblp_devices, serial_ports):
        try:
            listed += await trio.to_thread.run_sync(finder)
        except (OSError, ValueError, DriverError) as exc:  # one bus must not hide the others
            log.warning("listing devices: %s: %s", finder.__name__, os_reason(exc))
    return listed


# The timeout becomes the result's "no answer within" error, which a caller's cancel scope
# would not give.
async def probe(uri: str, *, timeout: float = 15.0) -> ProbeResult:  # noqa: ASYNC109
    """Connect to the device at `uri` and report its status and device id; prints nothing.

    The URI is checked first by the rules the gateway uses (`check_device_uri`): UriError.
    """
    parsed = DeviceUri.parse(uri)
    check_device_uri(parsed)
    try:
        transport = open_transport(parsed)
    except DriverError as exc:
        return ProbeResult(parsed.redacted(), False, error=exc.message)
    shown = transport.uri.redacted()
    with trio.move_on_after(timeout):
        try:
            status = await transport.query_status()
            if status is None and isinstance(transport, AppSocketTransport):
                status = await transport.check_connection()
            device_id = await transport.device_id()
        except DriverError as exc:
            return ProbeResult(shown, False, error=exc.message)
        reachable = None if status is None else status.online
        return ProbeResult(shown, reachable, status, device_id)
    return ProbeResult(shown, False, error=f"no answer within {timeout:g} s")


def describe_probe(result: ProbeResult) -> list[str]:
    lines = [f"device:     {result.uri}"]
    reachable = {True: "yes", False: "no", None: "cannot tell without printing"}
    lines.append(f"reachable:  {reachable[result.reachable]}")
    if result.status is not None:
        lines.append(f"status:     {result.status.message or '-'}")
        lines.append(f"reasons:    {', '.join(sorted(result.status.reasons)) or 'none'}")
    if result.device_id:
        device = parse_device_id(result.device_id)
        lines.append(f"device id:  {result.device_id}")
        lines.append(f"model:      {device.make_and_model}")
        lines.append(f"languages:  {', '.join(device.command_set) or '-'}")
    if result.error:
        lines.append(f"error:      {result.error}")
    elif not result.ok and result.reachable is not False and result.status is not None:
        lines.append(f"error:      {result.status.message or 'the device reports an error'}")
    return lines


def describe_devices(found: list[FoundDevice]) -> list[str]:
    if not found:
        return ["no USB printers or serial ports found"]
    lines = []
    for device in found:
        lines.append(f"{device.kind:7} {device.uri}")
        lines.append(f"        {device.name}" + (f"  [{device.device_id}]" if device.device_id
                                                 else ""))
        if device.driver:
            lines.append(f"        driver: {device.driver} ({device.reason})")
        elif device.reason:
            lines.append(f"        driver: none ({device.reason})")
    return lines


# The command lines: a report on standard output, a failure in one line on standard error.


def configure_logging(verbose: bool = False) -> None:
    """The commands' log lines on standard error: warnings, or each transport step."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")


def run_command(command: Callable[[], Awaitable[int]]) -> int:
    """Run `command` under trio; a device or file failure is one line on standard error
    and exit status 1, with what the gateway would do next."""
    try:
        return trio.run(command)
    except DriverError as exc:
        why = f"{exc.outcome.value}" + (f", {exc.reason}" if exc.reason else "")
        print(f"error: {exc.message} ({why})", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"error: {where}{os_reason(exc)}", file=sys.stderr)
        return 1


def probe_command(uri: str, *, verbose: bool = False,
                  more: Callable[[str], Awaitable[list[str]]] | None = None) -> int:
    """`probe DEVICE_URI`: print the device's status and id. Exit status 0 when a job could
    print, 1 when not (unreachable, or the device reports an error), 2 for a bad URI (refused
    before connecting, by the gateway's own check)."""
    configure_logging(verbose)
    try:
        check_device_uri(uri)
    except (UriError, DriverError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    async def report() -> int:
        result = await probe(uri)
        lines = describe_probe(result)
        if result.ok and more is not None:
            lines += await more(uri)
        print("\n".join(lines))
        return 0 if result.ok else 1

    return run_command(report)


def devices_command(*, verbose: bool = False, json: bool = False) -> int:
    """`devices [--json]`: list the attached USB printers, usblp devices and serial ports, with
    the driver each printer's device id chooses; exit 0. With `json`, one JSON array of objects
    {uri, kind, name, device_id, make_and_model, driver, reason} on standard output."""
    configure_logging(verbose)

    async def report() -> int:
        found = await devices()
        if json:
            print(json_format.dumps([device.as_json() for device in found], indent=2))
        else:
            print("\n".join(describe_devices(found)))
        return 0

    return run_command(report)
