"""`usb://VENDOR:PRODUCT[?serial=...&interface=N&timeout=S&softreset=on]` — USB printer class.

pyusb does the work; every blocking call runs in a worker thread. The printer-class interface
(class 7, subclass 1; bidirectional protocol 2 preferred to 1, never 1284.4 or IPP-over-USB) is
claimed after detaching the kernel's usblp driver, which gets it back at the end.

Bulk writes go in slices of at most `_SLICE_MS`, so a cancelled job is abandoned at once and its
thread gives the device back within that slice; pyusb reports how much of a timed-out write
went through, so nothing is lost or sent twice. A printer that stops taking data is waited for
(unless `timeout=` seconds pass without progress); a stalled endpoint is cleared and the write
retried; an unplugged printer fails the job with RETRY/offline and the next attempt finds it
again once it is back. Cancel sends SOFT_RESET (`softreset=off` to skip it).

`end_job` returns when the last bulk write completed: the printer holds every byte.
"""

from __future__ import annotations

import array
import errno
import logging
import math
import threading
from dataclasses import dataclass
from typing import Any

import trio
import usb.core
import usb.util

from drivers import ieee1284, pjl
from drivers.errors import Outcome, TransportError, UriError, os_reason
from drivers.transport import DeviceStatus, JobInfo, Transport, bad_uri, register_transport
from drivers.transports import tcp
from drivers.uri import DeviceUri, UriOptions

log = logging.getLogger("drivers.usbprinter")

CHUNK = 64 * 1024
PRINTER_CLASS, PRINTER_SUBCLASS = 7, 1
_PROTOCOL_PREFERENCE = (2, 1)  # bidirectional, unidirectional; 3 = 1284.4, 4 = IPP-USB
_SLICE_MS = 250
_CONTROL_MS = 5000
_MAX_STALLS = 3
_DEVICE_ID_LENGTH = 1024
# GET_PORT_STATUS bits (USB printer class 1.1, 4.2.2)
_NOT_ERROR, _SELECTED, _PAPER_EMPTY = 0x08, 0x10, 0x20
_GONE = (errno.ENODEV, errno.ENXIO, errno.ENOENT, errno.ESHUTDOWN)
_LIBUSB_NO_DEVICE, _LIBUSB_PIPE = -4, -9

_backend: Any = None  # None: pyusb's default (libusb); tests plug a simulated printer in here


def use_backend(backend: Any) -> None:
    """Route every USB lookup through `backend` (a `usb.backend.IBackend`); None = libusb."""
    global _backend
    _backend = backend


def parse_address(raw: str) -> tuple[int, int]:
    """VENDOR:PRODUCT (hex) from `usb://04f9:027b?...` or `usb:04f9:027b`."""
    rest = raw.partition(":")[2].removeprefix("//")
    target = rest.split("?", 1)[0].split("#", 1)[0].strip("/")
    vendor, colon, product = target.partition(":")
    try:
        if not colon:
            raise ValueError(target)
        return int(vendor, 16), int(product, 16)
    except ValueError:
        raise UriError(f"{raw!r}: a USB URI is usb://VENDOR:PRODUCT (hex ids)") from None


@dataclass(frozen=True)
class UsbSettings:
    vendor: int
    product: int
    serial: str = ""
    interface: int | None = None
    timeout: float = math.inf
    soft_reset: bool = True

    @classmethod
    def from_uri(cls, uri: DeviceUri) -> UsbSettings:
        """The one reader of usb:// URIs (see drivers.uri.UriOptions)."""
        options = UriOptions(uri, "usb://")
        vendor, product = parse_address(uri.raw)
        settings = cls(
            vendor, product, options.text("serial", ""),
            interface=options.optional_integer("interface", high=255),
            timeout=options.seconds("timeout", 0.0) or math.inf,
            soft_reset=options.switch("softreset", True),
        )
        options.finish()
        return settings

    @property
    def label(self) -> str:
        return f"usb {self.vendor:04x}:{self.product:04x}" + (
            f" serial {self.serial}" if self.serial else "")


def find_printers(vendor: int | None = None, product: int | None = None) -> list[Any]:
    """Attached devices with a printer-class interface (blocking)."""
    found = usb.core.find(find_all=True, backend=_backend) or []
    return [
        dev for dev in found
        if (vendor is None or dev.idVendor == vendor)
        and (product is None or dev.idProduct == product)
        and printer_interfaces(dev)
    ]


def printer_interfaces(dev: Any) -> list[Any]:
    """Printer-class interfaces we can drive, best first."""
    found = [intf for cfg in dev for intf in cfg
             if (intf.bInterfaceClass, intf.bInterfaceSubClass) == (PRINTER_CLASS, PRINTER_SUBCLASS)
             and intf.bInterfaceProtocol in _PROTOCOL_PREFERENCE]
    return sorted(found, key=lambda i: _PROTOCOL_PREFERENCE.index(i.bInterfaceProtocol))


def _is_gone(exc: usb.core.USBError) -> bool:
    return bool(exc.errno in _GONE or exc.backend_error_code == _LIBUSB_NO_DEVICE)


def _is_stall(exc: usb.core.USBError) -> bool:
    return bool(exc.errno == errno.EPIPE or exc.backend_error_code == _LIBUSB_PIPE)


def usb_failure(label: str, what: str, exc: Exception) -> TransportError:
    if isinstance(exc, usb.core.NoBackendError):
        return TransportError(f"{label}: no libusb available", Outcome.STOP_PRINTER, reason="other")
    if isinstance(exc, usb.core.USBError) and _is_gone(exc):
        return TransportError(f"{label}: {what}: printer unplugged", reason="offline")
    if isinstance(exc, usb.core.USBError) and exc.errno in (errno.EACCES, errno.EPERM):
        return TransportError(f"{label}: {what}: permission denied (udev rule?)",
                              Outcome.STOP_PRINTER, reason="other")
    return TransportError(f"{label}: {what}: {os_reason(exc)}", reason="offline")


class UsbConnection:
    """A claimed printer interface. Blocking methods, for worker threads; `lock` keeps one
    call at a time on the handle, so closing never races an abandoned write."""

    def __init__(self, dev: Any, intf: Any, label: str) -> None:
        self.dev, self.intf, self.label = dev, intf, label
        self.lock = threading.Lock()
        self.detached = False
        self.ep_out = self._endpoint(usb.util.ENDPOINT_OUT)
        self.ep_in = self._endpoint(usb.util.ENDPOINT_IN) if intf.bInterfaceProtocol == 2 else None
        self.back_channel = pjl.PjlReplyParser()
        self.pjl_status: pjl.PjlStatus | None = None

    def _endpoint(self, direction: int) -> Any:
        return usb.util.find_descriptor(
            self.intf,
            custom_match=lambda ep: usb.util.endpoint_direction(ep.bEndpointAddress) == direction
            and usb.util.endpoint_type(ep.bmAttributes) == usb.util.ENDPOINT_TYPE_BULK,
        )

    @classmethod
    def open(cls, settings: UsbSettings) -> UsbConnection:
        devices = [
            dev for dev in find_printers(settings.vendor, settings.product)
            if not settings.serial or serial_number(dev) == settings.serial
        ]
        if not devices:
            raise TransportError(f"{settings.label}: not connected", reason="offline")
        dev = devices[0]
        candidates = printer_interfaces(dev)
        if settings.interface is not None:
            candidates = [i for i in candidates if i.bInterfaceNumber == settings.interface]
        if not candidates:
            raise TransportError(f"{settings.label}: no usable printer interface",
                                 Outcome.STOP_PRINTER, reason="other")
        connection = cls(dev, candidates[0], settings.label)
        try:
            connection.claim()
        except usb.core.USBError:
            connection.close()  # give back what was taken before the failure
            raise
        return connection

    def claim(self) -> None:
        number = self.intf.bInterfaceNumber
        try:
            if self.dev.is_kernel_driver_active(number):
                self.dev.detach_kernel_driver(number)
                self.detached = True
        except NotImplementedError:
            pass  # a backend without kernel drivers
        try:
            self.dev.get_active_configuration()
        except usb.core.USBError:
            self.dev.set_configuration()
        usb.util.claim_interface(self.dev, number)
        config = self.dev[self.intf.configuration]
        alternates = [i for i in config if i.bInterfaceNumber == number]
        if len(alternates) > 1:
            self.intf.set_altsetting()

    def write(self, piece: memoryview) -> int:
        """Bytes the printer took within one slice (0 if it took none); stalls are cleared."""
        # pyusb copies anything but an array('B') byte by byte in Python: hand it one.
        buffer = array.array("B")
        buffer.frombytes(piece)
        with self.lock:
            for _ in range(_MAX_STALLS):
                try:
                    written: int = self.dev.write(self.ep_out, buffer, timeout=_SLICE_MS)
                except usb.core.USBTimeoutError:
                    written = 0
                except usb.core.USBError as exc:
                    if not _is_stall(exc):
                        raise
                    log.warning("%s: OUT endpoint stalled; clearing", self.label)
                    self.dev.clear_halt(self.ep_out)
                    continue
                self._drain_back_channel()
                return written
        raise TransportError(f"{self.label}: OUT endpoint keeps stalling", reason="other")

    def _drain_back_channel(self) -> None:
        if self.ep_in is None:
            return
        try:
            data = self.dev.read(self.ep_in, 8192, timeout=1)
        except usb.core.USBError:
            return  # nothing waiting (a timeout), or no back channel after all
        for message in self.back_channel.feed(bytes(data)):
            self.pjl_status = pjl.status_from_message(message) or self.pjl_status

    def device_id(self) -> str:
        """GET_DEVICE_ID: wValue = configuration index, wIndex = interface << 8 | alternate.

        Not through `dev.ctrl_transfer`: for an interface-recipient request pyusb first claims
        interface `wIndex & 0xff`, which here is the alternate setting, not the interface. On a
        multifunction device whose printer is interface 1 that grabbed (or, held by another
        kernel driver, failed on) interface 0. Our interface is claimed already: the request
        goes to the backend as it is, as CUPS's libusb backend sends it.
        """
        with self.lock:
            number, alt = self.intf.bInterfaceNumber, self.intf.bAlternateSetting
            config = self.intf.configuration
            reply = self._class_request_in(0, config, (number << 8) | alt, _DEVICE_ID_LENGTH)
            return ieee1284.decode_device_id_reply(reply)

    def _class_request_in(self, request: int, value: int, index: int, length: int) -> bytes:
        """A class, interface-recipient IN control request, without pyusb's implicit claim."""
        context = self.dev._ctx  # pyusb's resource manager: the open handle and the backend
        context.managed_open()
        buffer = array.array("B", bytes(length))
        count = context.backend.ctrl_transfer(context.handle, 0xA1, request, value, index,
                                              buffer, _CONTROL_MS)
        return buffer[:count].tobytes()

    def port_status(self) -> int:
        with self.lock:
            reply = self.dev.ctrl_transfer(0xA1, 1, 0, self.intf.bInterfaceNumber, 1,
                                           timeout=_CONTROL_MS)
            return int(reply[0]) if len(reply) else _NOT_ERROR | _SELECTED

    def soft_reset(self) -> None:
        number = self.intf.bInterfaceNumber
        with self.lock:
            try:
                self.dev.ctrl_transfer(0x23, 2, 0, number, None, timeout=_CONTROL_MS)
            except usb.core.USBError:
                self.dev.ctrl_transfer(0x21, 2, 0, number, None, timeout=_CONTROL_MS)

    def close(self) -> None:
        """Release the interface and give it back to usblp; errors of a gone device ignored."""
        with self.lock:
            number = self.intf.bInterfaceNumber
            try:
                usb.util.release_interface(self.dev, number)
                if self.detached:
                    self.dev.attach_kernel_driver(number)
            except (usb.core.USBError, NotImplementedError) as exc:
                log.info("%s: closing: %s", self.label, os_reason(exc))
            finally:
                usb.util.dispose_resources(self.dev)


def serial_number(dev: Any) -> str:
    try:
        return str(usb.util.get_string(dev, dev.iSerialNumber) or "")
    except (usb.core.USBError, ValueError):
        return ""


def status_from_port(bits: int) -> DeviceStatus:
    """GET_PORT_STATUS mapped to printer-state-reasons."""
    reasons = set()
    if bits & _PAPER_EMPTY:
        reasons.add("media-empty-error")
    if not bits & _SELECTED:
        reasons.add("offline-report")
    if not bits & _NOT_ERROR and not reasons:
        reasons.add("other-error")
    words = {"media-empty-error": "out of paper", "offline-report": "not selected (offline)",
             "other-error": "error"}
    message = ", ".join(words[r] for r in sorted(reasons)) or "ready"
    return DeviceStatus(frozenset(reasons), f"USB port status {bits:#04x}: {message}",
                        online="offline-report" not in reasons)


@register_transport("usb")
class UsbPrinterTransport(Transport):
    scheme = "usb"

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> UsbSettings:
        return UsbSettings.from_uri(uri)

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        try:
            self.settings = UsbSettings.from_uri(uri)
        except UriError as exc:
            raise bad_uri(exc) from exc
        self._label = self.settings.label
        self._connection: UsbConnection | None = None
        self._waiting_since: float | None = None  # the printer has taken nothing since then

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        self._connection = await self._open()

    async def _open(self) -> UsbConnection:
        try:
            return await trio.to_thread.run_sync(UsbConnection.open, self.settings)
        except (usb.core.USBError, usb.core.NoBackendError) as exc:
            raise usb_failure(self._label, "opening", exc) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        connection = self._connection
        if connection is None:
            raise TransportError(f"{self._label}: send_all without start_job",
                                 Outcome.RETRY_CURRENT)
        view = memoryview(data).cast("B")
        try:
            while view:
                written = await self._write_slice(connection, view[:CHUNK])
                view = view[written:]
        except TransportError:
            await self.abort_job()  # a failed call leaves the transport closed
            raise

    async def _write_slice(self, connection: UsbConnection, piece: memoryview) -> int:
        now = trio.current_time()
        self._waiting_since = self._waiting_since or now
        if now - self._waiting_since > self.settings.timeout:
            raise tcp.timed_out(f"{self._label}: printer busy", self.settings.timeout)
        try:
            written = await trio.to_thread.run_sync(connection.write, piece,
                                                    abandon_on_cancel=True)
        except usb.core.USBError as exc:
            raise usb_failure(self._label, "writing", exc) from exc
        if written:
            self._waiting_since = None
        return written

    async def end_job(self) -> None:
        """Every bulk write completed: the printer holds the job. Releases the interface."""
        await self._close(reset=False)

    async def abort_job(self) -> None:
        await self._close(reset=self.settings.soft_reset)

    async def _close(self, *, reset: bool) -> None:
        connection, self._connection = self._connection, None
        self._waiting_since = None
        if connection is None:
            return

        def close() -> None:
            if reset:
                try:
                    connection.soft_reset()
                except usb.core.USBError as exc:
                    log.info("%s: SOFT_RESET: %s", self._label, os_reason(exc))
            connection.close()

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(close)

    async def query_status(self) -> DeviceStatus | None:
        """GET_PORT_STATUS (and PJL status from the back channel, if any); offline if absent."""
        try:
            bits, pjl_status = await self._with_connection(
                lambda c: (c.port_status(), c.pjl_status))
        except TransportError as exc:
            return DeviceStatus(frozenset({"offline-report"}), exc.message, online=False)
        status = status_from_port(bits)
        if pjl_status is not None:
            status = DeviceStatus(status.reasons | pjl_status.reasons,
                                  pjl_status.display or status.message, status.online)
        return status

    async def device_id(self) -> str | None:
        try:
            return await self._with_connection(lambda c: c.device_id()) or None
        except TransportError:
            return None

    async def _with_connection(self, call: Any) -> Any:
        """Run `call(connection)` on the job's connection, or on a short-lived one."""
        connection = self._connection
        try:
            if connection is not None:
                return await trio.to_thread.run_sync(call, connection, abandon_on_cancel=True)
            connection = await self._open()
            try:
                return await trio.to_thread.run_sync(call, connection)
            finally:
                await trio.to_thread.run_sync(connection.close)
        except usb.core.USBError as exc:
            raise usb_failure(self._label, "asking the printer", exc) from exc
