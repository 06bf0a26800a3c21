"""USB printers plugged in and out while the gateway runs (plug and print).

The monitor scans the attached printer-class devices (pyusb, claiming nothing) every
`[usb] scan_interval` seconds, and at once when the kernel or udev announces a USB device
added or removed (a netlink socket, read on the Trio loop through its descriptor; where no
such socket can be opened, the scan alone finds them). For each scan:

- A device whose identity (vendor, product, serial) no printer has is set up: its IEEE 1284
  device id is read once, the driver chosen from its `CMD:` list (drivers.autosetup, in the
  documented preference order), a name derived from `MFG:`/`MDL:`, and the printer is
  remembered in the spool (gateway.autoprinters) and added in place (System.reconfigure).
- Every printer with a `usb://` device, set up so or configured, is shown offline while its
  device is absent (its jobs wait; the queue stays) and online when it is back.

A device remembered as removed by a person (`ipp-gateway remove`) is not set up again.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

from drivers import (
    DeviceUri,
    DriverError,
    attached_usb_printers,
    choice_for_device_id,
    open_transport,
    parse_device_id,
    printer_name,
)
from gateway import autoprinters
from gateway.autoprinters import RememberedPrinter, usb_identity
from gateway.core.system import System

log = logging.getLogger("gateway.hotplug")

EVENT_SETTLE = 0.3  # seconds after an event before scanning: the device is being enumerated
DEVICE_ID_TIMEOUT = 5.0  # seconds to read a new printer's 1284 id
DEVICE_ID_ATTEMPTS = 3  # scans that try to read it before the printer is set up without one
_NETLINK_KOBJECT_UEVENT = 15
_KERNEL_GROUP, _UDEV_GROUP = 1, 2
_UDEV_MAGIC = 0xFEEDCAFE


# -- device events (pure) ------------------------------------------------------------------


def parse_uevent(message: bytes) -> dict[str, str]:
    """The properties of one netlink uevent: the kernel's (`add@/devices/...\\0KEY=value\\0`)
    or udev's (`libudev\\0`, a header, then `KEY=value\\0`); {} when it is neither."""
    if message.startswith(b"libudev\x00"):
        if len(message) < 24 or struct.unpack_from(">I", message, 8)[0] != _UDEV_MAGIC:
            return {}
        offset, length = struct.unpack_from("=II", message, 16)
        body = message[offset:offset + length]
    elif b"@" in message.split(b"\x00", 1)[0]:
        body = message.split(b"\x00", 1)[1] if b"\x00" in message else b""
    else:
        return {}
    properties = {}
    for item in body.split(b"\x00"):
        key, equals, value = item.partition(b"=")
        if equals:
            properties[key.decode("latin-1")] = value.decode("latin-1")
    return properties


def is_usb_change(properties: dict[str, str]) -> bool:
    """A USB device or interface came or went: worth a scan."""
    return (properties.get("SUBSYSTEM") == "usb"
            and properties.get("ACTION") in ("add", "remove", "bind", "unbind"))


def identity_matches(configured: str, attached: str) -> bool:
    """A configured identity without a serial (`usb://vvvv:pppp`) matches any device of that
    vendor and product; one with a serial only that device."""
    if configured == attached:
        return True
    vendor_product, _, serial = configured.rpartition(":")
    return not serial and attached.startswith(vendor_product + ":")


# -- the monitor -------------------------------------------------------------------------


class UsbHotplug:
    def __init__(self, system: Callable[[], System], apply: Callable[[], Awaitable[None]], *,
                 spool: Path, autosetup: bool = True, scan_interval: float = 2.0) -> None:
        """`system` gives the running System; `apply` re-applies the configuration with the
        remembered printers (the gateway's in-place reconfigure) after one was added."""
        self._system = system
        self._apply = apply
        self._spool = spool
        self._autosetup = autosetup
        self._scan_interval = scan_interval
        self._wake = trio.Event()
        self._attempts: dict[str, int] = {}  # identity -> failed reads of its device id
        self._told: set[str] = set()  # identities whose refusal was logged
        self.attached: dict[str, str] = {}  # identity -> device URI, as last scanned

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            # Events make a plug-in seen at once; the scan is the fallback that never misses
            # one (a lost event, a host without them). It is cheap: no device is opened for
            # a printer seen before.
            events = _open_uevent_socket()
            interval = self._scan_interval
            if events is not None:
                nursery.start_soon(self._follow_events, events)
            log.info("usb: watching for printers (%s; a scan every %g s)",
                     "and device events" if events is not None else "no device events here",
                     interval)
            while True:
                await self.scan()
                self._wake = trio.Event()
                with trio.move_on_after(interval):
                    await self._wake.wait()

    async def _follow_events(self, sock: socket.socket) -> None:
        with sock:
            while True:
                await trio.lowlevel.wait_readable(sock)
                try:
                    message = sock.recv(65536)
                except BlockingIOError:
                    continue
                except OSError as exc:  # ENOBUFS: events were lost; a scan finds the truth
                    if exc.errno != errno.ENOBUFS:
                        raise
                    message = b""
                if not message or is_usb_change(parse_uevent(message)):
                    await trio.sleep(EVENT_SETTLE)
                    self._wake.set()

    async def scan(self) -> None:
        """One look at the bus: set up new printers, then show each USB printer's presence."""
        try:
            uris = await trio.to_thread.run_sync(attached_usb_printers)
        except (OSError, ValueError, DriverError) as exc:  # no bus, no libusb (pyusb's
            # NoBackendError is a ValueError): presence stays as it was
            log.debug("usb: scan failed: %s", exc)
            return
        self.attached = {identity: uri for uri in uris
                         if (identity := usb_identity(uri)) is not None}
        if self._autosetup and await self._set_up_new():
            await self._apply()
        for printer in self._system().printers.values():
            configured = usb_identity(printer.config.device_uri)
            if configured is not None:
                printer.set_present(any(identity_matches(configured, attached)
                                        for attached in self.attached))

    async def _set_up_new(self) -> bool:
        system = self._system()
        known = [identity for p in system.printers.values()
                 if (identity := usb_identity(p.config.device_uri)) is not None]
        remembered = await trio.to_thread.run_sync(autoprinters.load, self._spool)
        added = False
        for identity, uri in self.attached.items():
            if any(identity_matches(k, identity) for k in known):
                continue
            gone = next((p for p in remembered if p.identity == identity), None)
            if gone is not None and gone.removed:
                if identity not in self._told:
                    self._told.add(identity)
                    log.info("usb: %s (%s) was removed by a person; not set up again "
                             "('ipp-gateway add %s' does)", gone.name, uri, uri)
                continue
            if gone is not None:  # remembered, but overridden by name: nothing to do
                continue
            taken = [*system.printers, *(p.name for p in remembered)]
            printer = await self._describe(identity, uri, taken)
            if printer is None:
                continue
            await trio.to_thread.run_sync(autoprinters.remember, self._spool, printer)
            remembered.append(printer)
            log.info("usb: %s plugged in: set up as printer %s, driver %s (%s)", uri,
                     printer.name, printer.driver, printer.reason)
            added = True
        return added

    async def _describe(self, identity: str, uri: str, taken: list[str]
                        ) -> RememberedPrinter | None:
        """The new printer for the device at `uri`: its id read, its driver chosen; None to
        try again at the next scan (the id could not be read yet)."""
        text = ""
        with trio.move_on_after(DEVICE_ID_TIMEOUT):
            try:
                text = await open_transport(DeviceUri.parse(uri)).device_id() or ""
            except DriverError as exc:
                log.info("usb: %s: no device id yet: %s", uri, exc.message)
        if not text:
            self._attempts[identity] = self._attempts.get(identity, 0) + 1
            if self._attempts[identity] < DEVICE_ID_ATTEMPTS:
                return None
        device = parse_device_id(text)
        choice = choice_for_device_id(text)
        make_and_model = device.make_and_model or f"USB printer {uri[6:15]}"
        name = printer_name(make_and_model, taken)
        return RememberedPrinter(identity=identity, name=name, device_uri=uri,
                                 driver=choice.driver, make_and_model=make_and_model,
                                 device_id=text, reason=choice.reason)


def _open_uevent_socket() -> socket.socket | None:
    """A non-blocking netlink socket for udev's events (after its rules ran: the device node
    is ready for us), or the kernel's where no udev runs; None where neither can be had
    (a container, a kernel without it)."""
    group = _UDEV_GROUP if os.path.exists("/run/udev/control") else _KERNEL_GROUP
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK,
                             _NETLINK_KOBJECT_UEVENT)
    except (OSError, AttributeError) as exc:
        log.debug("usb: no device events: %s", exc)
        return None
    try:
        sock.bind((0, group))
    except OSError as exc:
        log.debug("usb: no device events: %s", exc)
        sock.close()
        return None
    return sock

