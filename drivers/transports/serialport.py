"""`serial:/dev/ttyUSB0?baud=9600&bits=8&parity=none&stop=1&flow=none|soft|hard|dtrdsr`.

pyserial opens and configures the port (in a worker thread: opening can block). The data path
then uses the port's descriptor directly, non-blocking, waiting in Trio for it to be writable:
writes are paced by the kernel's flow control (`soft` = XON/XOFF, `hard` = RTS/CTS), each
`os.write` reports exactly what was taken (pyserial's `write()` with a timeout hides partial
writes), and a cancel stops at once. `flow=dtrdsr` is done in software, as the CUPS serial
backend does: nothing is written while the printer holds DSR low. `flow=hard` is both: the
kernel's RTS/CTS (CRTSCTS) pauses the line itself, and no write is started while CTS is low,
so the tty buffer does not fill up behind a printer that is off line and a cancel drops little.

Reading a handshake line can fail. ENOTTY/EINVAL means the port has no modem lines at all (a
pty, some cheap adapters): nothing to wait for, the line counts as up (logged once). Anything
else (EIO, ENODEV, ENXIO: a USB-serial adapter unplugged mid-job) is the device gone, not "line
up": it is reported as offline (RETRY), rather than being left for the next write to find.

A busy printer (XOFF or a low handshake line) is waited for, however long, unless `timeout=`
(seconds without progress) is set; meanwhile `query_status` reports it. `end_job` returns once
the kernel's output queue is empty: the printer has received every byte.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import stat
from dataclasses import dataclass
from typing import Any

import serial
import trio

from drivers.errors import Outcome, TransportError, UriError, os_reason
from drivers.transport import DeviceStatus, JobInfo, Transport, bad_uri, register_transport
from drivers.transports import tcp
from drivers.uri import DeviceUri, UriOptions

log = logging.getLogger("drivers.serialport")

CHUNK = 64 * 1024
_POLL = 0.02  # seconds between looks at a handshake line or the output queue
_BUSY_AFTER = 1.0  # seconds without progress before the status says the printer is busy
# ... and before it says offline: a printer that is only busy holds XOFF for a few seconds
# at a time all through a long job, and clients should not see it flicker offline.
_OFFLINE_AFTER = 10.0
_PARITIES = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}
_STOP_BITS = {"1": 1.0, "1.5": 1.5, "2": 2.0}
_HANDSHAKE = {"hard": "cts", "dtrdsr": "dsr"}  # the line the printer holds low when busy
_NO_MODEM_LINES = (errno.ENOTTY, errno.EINVAL)


@dataclass(frozen=True)
class SerialSettings:
    device: str
    baud: int = 9600
    bits: int = 8
    parity: str = "none"
    stop: float = 1.0
    flow: str = "none"
    timeout: float = math.inf

    @classmethod
    def from_uri(cls, uri: DeviceUri) -> SerialSettings:
        """The one reader of serial: URIs (see drivers.uri.UriOptions)."""
        options = UriOptions(uri, "serial:")
        settings = cls(
            device=_device_path(options),
            baud=options.integer("baud", 9600, low=50, high=4_000_000),
            bits=options.integer("bits", 8, low=5, high=8),
            parity=options.choice("parity", "none", tuple(_PARITIES)),
            stop=_STOP_BITS[options.choice("stop", "1", tuple(_STOP_BITS))],
            flow=options.choice("flow", "none", ("none", "soft", "hard", "dtrdsr")),
            timeout=options.seconds("timeout", 0.0) or math.inf,
        )
        options.finish()
        return settings

    def open_port(self) -> Any:
        """A configured pyserial port (blocking: call in a thread)."""
        port = serial.Serial(
            port=self.device,
            baudrate=self.baud,
            bytesize=self.bits,
            parity=_PARITIES[self.parity],
            stopbits=self.stop,
            xonxoff=self.flow == "soft",
            rtscts=self.flow == "hard",
            timeout=0,
            write_timeout=0,
            exclusive=True,
        )
        os.set_blocking(port.fileno(), False)
        return port


def _device_path(options: UriOptions) -> str:
    """The port's device path: absolute, and if it exists, a character device. A missing one
    is fine (a USB adapter unplugged: the job waits for it), a directory or file never is."""
    uri = options.uri
    if uri.host:  # serial://dev/ttyUSB0: "dev" taken for a host
        raise options.error(f"{uri.host!r} is read as a host: a serial URI is "
                            f"serial:/{uri.host}{uri.path} (one slash, no host)")
    path = uri.path
    if not path.startswith("/") or path.endswith("/"):
        raise options.error(f"{path!r} is not a device path: a serial URI is "
                            "serial:/dev/ttyXXX?baud=...")
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return path
    if not stat.S_ISCHR(mode):
        raise options.error(f"{path} is not a serial port (not a character device)")
    return path


def _open_error(device: str, exc: Exception) -> TransportError:
    code = getattr(exc, "errno", None)
    if code in (errno.EACCES, errno.EPERM):
        return TransportError(f"{device}: permission denied", Outcome.STOP_PRINTER, reason="other")
    if code in (errno.ENOENT, errno.ENODEV, errno.ENXIO):
        return TransportError(f"{device}: no such port (unplugged?)", reason="offline")
    return TransportError(f"{device}: cannot open: {os_reason(exc)}", reason="offline")


@register_transport("serial")
class SerialTransport(Transport):
    scheme = "serial"

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> SerialSettings:
        return SerialSettings.from_uri(uri)

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        try:
            self.settings = SerialSettings.from_uri(uri)
        except UriError as exc:
            raise bad_uri(exc) from exc
        self._label = f"serial {self.settings.device}"
        self._port: Any = None
        self._waiting_since: float | None = None  # the printer is not taking data since then
        self._no_lines_logged = False

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        try:
            self._port = await trio.to_thread.run_sync(self.settings.open_port)
        except (OSError, serial.SerialException) as exc:
            raise _open_error(self.settings.device, exc) from exc

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        port = self._port
        if port is None:
            raise TransportError(f"{self._label}: send_all without start_job",
                                 Outcome.RETRY_CURRENT)
        view = memoryview(data).cast("B")
        try:
            while view:
                written = await self._write_some(port, view[:CHUNK])
                view = view[written:]
        except TransportError:
            await self.abort_job()  # a failed call leaves the transport closed
            raise

    async def _write_some(self, port: Any, piece: memoryview) -> int:
        fd = port.fileno()
        self._waiting_since = self._waiting_since or trio.current_time()
        try:
            with trio.fail_after(self.settings.timeout):
                line = _HANDSHAKE.get(self.settings.flow)
                if line is not None:
                    await self._wait_for_line(port, line)
                await trio.lowlevel.wait_writable(fd)
        except trio.TooSlowError:
            raise tcp.timed_out(f"{self._label}: printer busy", self.settings.timeout) from None
        try:
            written = os.write(fd, piece)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise TransportError(f"{self._label}: write failed: {os_reason(exc)}",
                                 reason="offline") from exc
        if written:
            self._waiting_since = None
        return written

    async def _wait_for_line(self, port: Any, line: str) -> None:
        # Modem lines give no event that Trio can wait on (TIOCMIWAIT blocks a thread): polled.
        while not self._line_up(port, line):  # noqa: ASYNC110
            await trio.sleep(_POLL)

    def _line_up(self, port: Any, line: str) -> bool:
        """Whether handshake `line` ("cts" or "dsr") is high; see the module doc on errors."""
        try:
            return bool(getattr(port, line))
        except (OSError, serial.SerialException) as exc:
            code = getattr(exc, "errno", None)
            if code in _NO_MODEM_LINES:
                if not self._no_lines_logged:
                    self._no_lines_logged = True
                    log.warning("%s: the port has no modem lines; not waiting for %s",
                                self._label, line.upper())
                return True
            raise TransportError(f"{self._label}: cannot read {line.upper()}: {os_reason(exc)}",
                                 reason="offline") from exc

    async def end_job(self) -> None:
        """Returns once the kernel has transmitted every byte (its output queue is empty)."""
        port = self._port
        if port is None:
            return
        try:
            with trio.fail_after(self.settings.timeout):
                while self._pending(port):
                    self._waiting_since = self._waiting_since or trio.current_time()
                    await trio.sleep(_POLL)
        except trio.TooSlowError:
            raise tcp.timed_out(f"{self._label}: draining", self.settings.timeout) from None
        finally:
            await self._close(flush=False)

    def _pending(self, port: Any) -> int:
        try:
            return int(port.out_waiting)
        except OSError:
            return 0  # the port cannot tell (a pty): what was written is with the peer

    async def abort_job(self) -> None:
        await self._close(flush=True)

    async def _close(self, *, flush: bool) -> None:
        port, self._port = self._port, None
        self._waiting_since = None
        if port is None:
            return

        def close() -> None:
            if flush:  # drop what the printer has not taken yet
                with contextlib.suppress(OSError, serial.SerialException):
                    port.reset_output_buffer()
            port.close()

        with trio.CancelScope(shield=True):
            await trio.to_thread.run_sync(close, abandon_on_cancel=True)

    async def query_status(self) -> DeviceStatus | None:
        """Whether the port exists, and while a job runs, whether the printer takes data."""
        if not await trio.Path(self.settings.device).exists():
            message = f"{self._label}: port not present"
            return DeviceStatus(frozenset({"offline-report"}), message, online=False)
        port = self._port
        if port is None:
            return DeviceStatus(message=f"{self._label}: port present")
        waiting = trio.current_time() - (self._waiting_since or trio.current_time())
        line_low = self._handshake_low(port)
        if line_low or waiting > _BUSY_AFTER:
            why = line_low or "flow control"
            message = f"{self._label}: printer busy ({why}) for {waiting:.0f} s"
            reasons = frozenset({"offline-report"}) if waiting > _OFFLINE_AFTER else frozenset()
            return DeviceStatus(reasons, message)
        return DeviceStatus(message=f"{self._label}: printing")

    def _handshake_low(self, port: Any) -> str:
        line = _HANDSHAKE.get(self.settings.flow)
        if line is None:
            return ""
        try:
            up = self._line_up(port, line)
        except TransportError:
            return f"{line.upper()} unreadable"
        return "" if up else f"{line.upper()} low"
