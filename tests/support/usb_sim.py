"""A simulated USB printer behind pyusb's backend interface (`usb.backend.IBackend`).

Only the device is simulated: the code under test is the real `usbprinter` module driving
pyusb, exactly as on hardware. The printer has one configuration with a printer-class
interface (bulk OUT, and bulk IN when bidirectional), string descriptors, GET_DEVICE_ID,
GET_PORT_STATUS and SOFT_RESET, a kernel driver (usblp) to detach, and faults: a busy printer
(writes time out), partial writes, stalls, and unplug/replug.

`multi_interface=True` makes it a multifunction device: interface 0 is a mass-storage card
reader held by its own kernel driver (usb-storage: never to be detached or claimed), interface 1
alternate 0 the printer (class 7, protocol 2 bidirectional), interface 1 alternate 1 IPP-over-USB
(protocol 4, to be skipped). Class requests are checked as the USB printer class spec 1.1 says:
GET_DEVICE_ID wValue = configuration index, wIndex = interface << 8 | alternate setting;
GET_PORT_STATUS and SOFT_RESET wIndex = interface. A wrong request stalls (EPIPE), as on a real
device, and is recorded in `bad_requests`; so is any touch of interface 0 in `foreign_touches`.

Hotplug: a backend's `printers` may grow (`SimBackend.plug`) while code enumerates, and setting
`plugged` (directly or through `unplug`/`replug`) behaves as pulling the cable: handles opened
before it fail with ENODEV for ever, even after the printer is back, as libusb's do; a fresh
enumeration finds the printer again with usblp bound to it.
"""

from __future__ import annotations

import errno
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import usb.backend
import usb.core

from drivers.ieee1284 import encode_device_id_reply

EP_OUT, EP_IN = 0x01, 0x82
MULTI_EP_OUT, MULTI_EP_IN = 0x03, 0x84  # the printer's endpoints on the multifunction device
_BULK = 0x02
_STORAGE = (8, 6, 0x50)  # mass storage, SCSI, bulk-only


@dataclass(frozen=True)
class SimInterface:
    number: int
    alt: int
    klass: int
    subclass: int
    protocol: int
    endpoints: tuple[int, ...]
_LIBUSB_NO_DEVICE, _LIBUSB_PIPE, _LIBUSB_TIMEOUT, _LIBUSB_BUSY = -4, -9, -7, -6


def _gone() -> usb.core.USBError:
    return usb.core.USBError("No such device", _LIBUSB_NO_DEVICE, errno.ENODEV)


@dataclass
class SimPrinter:
    vendor: int = 0x04F9
    product: int = 0x027B
    serial: str = "SIM0001"
    device_id: str = "MFG:Acme;MDL:Laser 1;CMD:PJL,PCL,POSTSCRIPT;CLS:PRINTER;SN:SIM0001;"
    protocol: int = 2
    port_status: int = 0x18
    plugged: bool = True
    kernel_driver: bool = True
    busy: bool = False  # writes time out and take nothing
    max_accept: int = 0  # > 0: a write takes at most this many bytes, then times out
    partial_delay: float = 0.005  # seconds a partial write takes (the timeout, shortened)
    stalls: int = 0  # the next N writes stall the OUT endpoint (EPIPE until clear_halt)
    keep_limit: int = 16 * 1024 * 1024  # bytes kept for comparison (the hash covers all)
    generation: int = 0
    received: bytearray = field(default_factory=bytearray)
    digest: Any = field(default_factory=hashlib.sha256)
    total: int = 0
    back_channel: bytearray = field(default_factory=bytearray)
    soft_resets: int = 0
    halted: bool = False
    claimed: set[int] = field(default_factory=set)
    write_calls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    multi_interface: bool = False
    bad_requests: list[tuple[int, int, int, int]] = field(default_factory=list)
    foreign_touches: list[str] = field(default_factory=list)  # calls on interface 0 (storage)
    alt_settings: dict[int, int] = field(default_factory=dict)  # set_interface_altsetting calls
    manufacturer: str = "Acme"  # the iManufacturer and iProduct strings
    product_name: str = "Laser 1"
    on_data: Callable[[bytes], None] | None = None  # told of every accepted write, in order

    def __setattr__(self, name: str, value: Any) -> None:
        # Tests flip `plugged` directly; it must still look like a cable pulled and pushed back
        # in (a new device for the host), or a handle from before would go on working.
        changed = (name == "plugged" and "generation" in self.__dict__
                   and bool(value) != self.__dict__["plugged"])
        super().__setattr__(name, value)
        if not changed:
            return
        if value:
            self.kernel_driver = True  # usblp binds to the new device
            self.halted = False
            self.alt_settings.clear()
        else:
            self.generation += 1
            self.claimed.clear()

    @property
    def printer_interface(self) -> int:
        return 1 if self.multi_interface else 0

    def interfaces(self) -> list[SimInterface]:
        """Every (interface, alternate setting) of the one configuration, in order."""
        if not self.multi_interface:
            eps = (EP_OUT, EP_IN) if self.protocol == 2 else (EP_OUT,)
            return [SimInterface(0, 0, 7, 1, self.protocol, eps)]
        eps = (MULTI_EP_OUT, MULTI_EP_IN) if self.protocol == 2 else (MULTI_EP_OUT,)
        return [SimInterface(0, 0, *_STORAGE, (EP_OUT, EP_IN)),
                SimInterface(1, 0, 7, 1, self.protocol, eps),
                SimInterface(1, 1, 7, 1, 4, (0x05, 0x86))]

    def interface(self, number: int, alt: int) -> SimInterface:
        for intf in self.interfaces():
            if (intf.number, intf.alt) == (number, alt):
                return intf
        raise IndexError("no such interface")

    def unplug(self) -> None:
        with self.lock:
            self.plugged = False

    def replug(self) -> None:
        with self.lock:
            self.plugged = True

    def take(self) -> bytes:
        """The bytes received since the last call."""
        with self.lock:
            data = bytes(self.received)
            self.received.clear()
            return data

    def accept(self, data: bytes) -> None:
        self.digest.update(data)
        self.total += len(data)
        room = self.keep_limit - len(self.received)
        self.received += data[: max(0, room)]
        if self.on_data is not None and data:
            self.on_data(data)


@dataclass
class _Handle:
    printer: SimPrinter
    generation: int
    configuration: int = 0


def _descriptor(**fields: Any) -> SimpleNamespace:
    return SimpleNamespace(extra_descriptors=[], **fields)


class SimBackend(usb.backend.IBackend):  # type: ignore[misc]
    def __init__(self, *printers: SimPrinter) -> None:
        super().__init__()
        self.printers = list(printers)

    def plug(self, printer: SimPrinter) -> SimPrinter:
        """A printer that was not there at the start, plugged in now."""
        printer.plugged = True
        if not any(known is printer for known in self.printers):
            self.printers.append(printer)
        return printer

    def _index(self, dev: SimPrinter) -> int:
        # By identity: two printers of one profile compare equal field by field.
        for index, printer in enumerate(list(self.printers)):
            if printer is dev:
                return index
        raise _gone()

    # -- descriptors ---------------------------------------------------------------------

    def enumerate_devices(self) -> list[SimPrinter]:
        # A copy: another thread may plug a printer in while pyusb walks the list.
        return [p for p in list(self.printers) if p.plugged]

    def get_device_descriptor(self, dev: SimPrinter) -> SimpleNamespace:
        index = self._index(dev)
        return _descriptor(
            bLength=18, bDescriptorType=1, bcdUSB=0x0200, bDeviceClass=0, bDeviceSubClass=0,
            bDeviceProtocol=0, bMaxPacketSize0=64, idVendor=dev.vendor, idProduct=dev.product,
            bcdDevice=0x0100, iManufacturer=1, iProduct=2, iSerialNumber=3,
            bNumConfigurations=1, address=index + 2, bus=1, port_number=index + 1,
            port_numbers=(index + 1,), speed=3,
        )

    def get_configuration_descriptor(self, dev: SimPrinter, config: int) -> SimpleNamespace:
        count = len({intf.number for intf in dev.interfaces()})
        return _descriptor(bLength=9, bDescriptorType=2, wTotalLength=32, bNumInterfaces=count,
                           bConfigurationValue=1, iConfiguration=0, bmAttributes=0xC0,
                           bMaxPower=1)

    def get_interface_descriptor(
        self, dev: SimPrinter, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        desc = dev.interface(intf, alt)  # logical indexes; equal to the numbers here
        return _descriptor(bLength=9, bDescriptorType=4, bInterfaceNumber=desc.number,
                           bAlternateSetting=desc.alt, bNumEndpoints=len(desc.endpoints),
                           bInterfaceClass=desc.klass, bInterfaceSubClass=desc.subclass,
                           bInterfaceProtocol=desc.protocol, iInterface=0)

    def get_endpoint_descriptor(
        self, dev: SimPrinter, ep: int, intf: int, alt: int, config: int
    ) -> SimpleNamespace:
        address = dev.interface(intf, alt).endpoints[ep]
        return _descriptor(bLength=7, bDescriptorType=5, bEndpointAddress=address,
                           bmAttributes=_BULK, wMaxPacketSize=512, bInterval=0, bRefresh=0,
                           bSynchAddress=0)

    # -- handles -------------------------------------------------------------------------

    def _check(self, handle: _Handle) -> SimPrinter:
        printer = handle.printer
        if not printer.plugged or handle.generation != printer.generation:
            raise _gone()
        return printer

    def open_device(self, dev: SimPrinter) -> _Handle:
        if not dev.plugged:
            raise _gone()
        return _Handle(dev, dev.generation)

    def close_device(self, handle: _Handle) -> None:
        pass

    def set_configuration(self, handle: _Handle, config_value: int) -> None:
        self._check(handle)
        handle.configuration = config_value

    def get_configuration(self, handle: _Handle) -> int:
        self._check(handle)
        return handle.configuration

    def _foreign(self, printer: SimPrinter, intf: int, call: str) -> bool:
        """Interface `intf` is not the printer's: the card reader of a multifunction device."""
        if intf == printer.printer_interface:
            return False
        printer.foreign_touches.append(f"{call}({intf})")
        return True

    def set_interface_altsetting(self, handle: _Handle, intf: int, alt: int) -> None:
        printer = self._check(handle)
        printer.interface(intf, alt)  # IndexError for a setting the device does not have
        if not self._foreign(printer, intf, "set_interface_altsetting"):
            printer.alt_settings[intf] = alt

    def claim_interface(self, handle: _Handle, intf: int) -> None:
        printer = self._check(handle)
        # The foreign interface is held by usb-storage, which nothing should detach.
        if self._foreign(printer, intf, "claim_interface") or printer.kernel_driver:
            raise usb.core.USBError("Resource busy", _LIBUSB_BUSY, errno.EBUSY)
        printer.claimed.add(intf)

    def release_interface(self, handle: _Handle, intf: int) -> None:
        self._check(handle).claimed.discard(intf)

    def is_kernel_driver_active(self, handle: _Handle, intf: int) -> bool:
        printer = self._check(handle)
        return True if intf != printer.printer_interface else printer.kernel_driver

    def detach_kernel_driver(self, handle: _Handle, intf: int) -> None:
        printer = self._check(handle)
        if not self._foreign(printer, intf, "detach_kernel_driver"):
            printer.kernel_driver = False

    def attach_kernel_driver(self, handle: _Handle, intf: int) -> None:
        printer = self._check(handle)
        if not self._foreign(printer, intf, "attach_kernel_driver"):
            printer.kernel_driver = True

    def clear_halt(self, handle: _Handle, ep: int) -> None:
        self._check(handle).halted = False

    # -- transfers -----------------------------------------------------------------------

    def bulk_write(self, handle: _Handle, ep: int, intf: int, data: Any, timeout: int) -> int:
        printer = self._check(handle)
        with printer.lock:
            printer.write_calls += 1
            if intf not in printer.claimed:
                raise usb.core.USBError("Interface not claimed", -1, errno.EIO)
            if ep not in printer.interface(printer.printer_interface, 0).endpoints:
                raise usb.core.USBError("Pipe error", _LIBUSB_PIPE, errno.EPIPE)
            if printer.halted or printer.stalls > 0:
                printer.stalls = max(0, printer.stalls - 1)
                printer.halted = True
                raise usb.core.USBError("Pipe error", _LIBUSB_PIPE, errno.EPIPE)
            take = 0 if printer.busy else len(data)
            if printer.max_accept:
                take = min(take, printer.max_accept)
            printer.accept(data[:take].tobytes())
        if take == 0:
            time.sleep(timeout / 1000)  # the printer sat on it until the timeout
            raise usb.core.USBTimeoutError("Operation timed out", _LIBUSB_TIMEOUT,
                                           errno.ETIMEDOUT)
        if take < len(data):
            time.sleep(printer.partial_delay)
        return take

    def bulk_read(self, handle: _Handle, ep: int, intf: int, buff: Any, timeout: int) -> int:
        printer = self._check(handle)
        with printer.lock:
            count = min(len(buff), len(printer.back_channel))
            buff[:count] = type(buff)("B", printer.back_channel[:count])
            del printer.back_channel[:count]
        if not count:
            raise usb.core.USBTimeoutError("Operation timed out", _LIBUSB_TIMEOUT,
                                           errno.ETIMEDOUT)
        return count

    def ctrl_transfer(
        self, handle: _Handle, bmRequestType: int, bRequest: int, wValue: int, wIndex: int,
        data: Any, timeout: int,
    ) -> int:
        printer = self._check(handle)
        if bmRequestType == 0x80 and bRequest == 6 and wValue >> 8 == 3:
            return self._fill(data, self._string(printer, wValue & 0xFF))
        number = printer.printer_interface
        alt = printer.alt_settings.get(number, 0)
        if bmRequestType == 0xA1 and bRequest == 0 and (wValue, wIndex) == (0, number << 8 | alt):
            return self._fill(data, encode_device_id_reply(printer.device_id))
        if bmRequestType == 0xA1 and bRequest == 1 and wIndex == number:
            return self._fill(data, bytes([printer.port_status]))
        if bmRequestType in (0x21, 0x23) and bRequest == 2 and wIndex == number:
            printer.soft_resets += 1
            printer.halted = False
            return 0
        printer.bad_requests.append((bmRequestType, bRequest, wValue, wIndex))
        raise usb.core.USBError("Pipe error", _LIBUSB_PIPE, errno.EPIPE)

    @staticmethod
    def _string(printer: SimPrinter, index: int) -> bytes:
        if index == 0:
            return bytes([4, 3, 0x09, 0x04])
        text = {1: printer.manufacturer, 2: printer.product_name, 3: printer.serial}.get(index, "")
        payload = text.encode("utf-16-le")
        return bytes([len(payload) + 2, 3]) + payload

    @staticmethod
    def _fill(buff: Any, payload: bytes) -> int:
        count = min(len(buff), len(payload))
        buff[:count] = type(buff)("B", payload[:count])
        return count
