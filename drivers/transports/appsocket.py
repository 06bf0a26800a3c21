"""`socket://host[:9100]?...` — AppSocket / JetDirect: one TCP session per job, raw bytes.

Options: `pjl=on` wraps the job in `UEL @PJL JOB NAME=...` / `@PJL EOJ` (only for printers
whose 1284 CMD lists PJL: others would print the text); `status=pjl` opens the back channel:
the job asks for PJL INFO STATUS and USTATUS, which are read while sending and mapped to
printer-state-reasons (off by default: some printers hang with it); `contimeout=` (seconds to
connect, default 30); `waiteof=on|off|SECONDS` (after the last byte, half-close and wait for
the printer to close, default on = 90 s, as CUPS); `timeout=` (seconds without send progress
before giving up, default 0 = wait: a printer out of paper holds the connection, and resending
would print the first pages twice).

End of job: `end_job` half-closes, waits until the printer's host has acknowledged every byte
(a printer that stopped reading is waited for, up to `timeout=`), then for the printer's EOF
(`waiteof`). A reset before that acknowledgment means the printer dropped data: RETRY. After
it, a reset or a printer that never closes still counts as printed: the job is never resent.
"Every byte" is counted here (PJL wrapper included) and compared with the kernel's running
total of acknowledged bytes (TCP_INFO), which a reset right after the last ACK cannot undo.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from drivers import pjl
from drivers.errors import Outcome, TransportError, UriError, os_reason
from drivers.transport import DeviceStatus, JobInfo, Transport, bad_uri, register_transport
from drivers.transports import tcp
from drivers.uri import DeviceUri, UriOptions, host_port

log = logging.getLogger("drivers.appsocket")

DEFAULT_PORT = 9100
_DEFAULT_EOF_WAIT = 90.0
# A cancel must close within a second on every transport; the UEL gets a short try only.
_ABORT_WAIT = 0.1
_QUERY_WAIT = 5.0


@dataclass(frozen=True)
class SocketSettings:
    host: str
    port: int = DEFAULT_PORT
    pjl: bool = False
    status: str = "none"
    contimeout: float = 30.0
    eof_wait: float = _DEFAULT_EOF_WAIT
    timeout: float = math.inf

    @classmethod
    def from_uri(cls, uri: DeviceUri) -> SocketSettings:
        """The one reader of socket:// URIs (see drivers.uri.UriOptions)."""
        options = UriOptions(uri, "socket://")
        host, port = tcp.address(options, DEFAULT_PORT)
        settings = cls(
            host=host,
            port=port,
            pjl=options.switch("pjl", False),
            status=options.choice("status", "none", ("none", "off", "pjl")),
            contimeout=options.seconds("contimeout", 30.0) or math.inf,
            eof_wait=options.seconds("waiteof", _DEFAULT_EOF_WAIT, on=_DEFAULT_EOF_WAIT),
            timeout=options.seconds("timeout", 0.0) or math.inf,
        )
        options.finish()
        return settings


@register_transport("socket")
class AppSocketTransport(Transport):
    scheme = "socket"

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> SocketSettings:
        return SocketSettings.from_uri(uri)

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        try:
            self.settings = SocketSettings.from_uri(uri)
        except UriError as exc:
            raise bad_uri(exc) from exc
        self._label = f"socket {host_port(self.settings.host, self.settings.port)}"
        self._stream: trio.SocketStream | None = None
        self._sent = tcp.SentCount(None)  # what this job's connection handed to the kernel
        self._job: JobInfo | None = None
        self._parser = pjl.PjlReplyParser()
        self._last_status: pjl.PjlStatus | None = None
        self._statuses_seen = 0
        self._wait = tcp.WaitWatch()

    @property
    def _back_channel(self) -> bool:
        return self.settings.status == "pjl"

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        self._stream = await self._connect()
        self._sent = tcp.SentCount(tcp.bytes_acked(self._stream))
        self._job = job
        if self.settings.pjl or self._back_channel:
            header = pjl.job_header(job.job_name, user=job.user, ask_status=self._back_channel)
            await self.send_all(header)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        stream = self._stream
        if stream is None:
            raise TransportError(
                f"{self._label}: send_all without start_job", Outcome.RETRY_CURRENT
            )
        try:
            if not self._back_channel:
                await self._send(stream, data)
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read_back_channel, stream)
                await self._send(stream, data)
                nursery.cancel_scope.cancel()
        except TransportError:
            await self._close()  # a failed call leaves the transport closed
            raise

    async def send_file(self, path: Path, on_sent: Callable[[int], None]) -> None:
        stream = self._stream
        if stream is None or self._back_channel:  # the back channel is read while sending
            await super().send_file(path, on_sent)
            return
        def sent(count: int) -> None:
            self._sent.add(count)
            self._wait.progressed()
            on_sent(count)

        try:
            with self._wait.waiting_for("the printer to take data"):
                await tcp.send_file(stream, path, sent, self.settings.timeout)
        except trio.TooSlowError:
            await self._close()
            raise tcp.timed_out(f"{self._label}: sending", self.settings.timeout) from None
        except trio.BrokenResourceError as exc:
            await self._close()
            raise tcp.lost(f"{self._label}: sending", exc) from exc

    async def end_job(self) -> None:
        """Half-close, wait until the printer's host acknowledged every byte (a printer out of
        paper is waited for), then for its EOF; see the module doc for the contract."""
        stream, job = self._stream, self._job
        if stream is None or job is None:
            return
        what = f"{self._label}: finishing the job"
        try:
            if self.settings.pjl or self._back_channel:
                await self.send_all(pjl.job_footer(job.job_name))
            try:
                await stream.send_eof()
            except trio.BrokenResourceError as exc:
                raise tcp.lost(what, exc) from exc
            with self._wait.waiting_for("the printer to take the end of the job"):
                await tcp.wait_acknowledged(stream, self._sent, timeout=self.settings.timeout,
                                            what=what)
            await self._wait_for_eof(stream)
            log.info("%s: job %d delivered", self._label, job.job_id)
        finally:
            await self._close()

    async def abort_job(self) -> None:
        stream = self._stream
        if stream is not None and self.settings.pjl:
            # A UEL puts the printer back in PJL mode: it ejects what it has and resets. A
            # printer that reads takes 9 bytes at once; one that stopped (our send buffer
            # full) would not take them within the cancel's one-second budget, and would
            # read them only after the rest of the job anyway: so a short try, then close
            # (its EOF ends the job on port 9100 too).
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + _ABORT_WAIT
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    await stream.send_all(pjl.UEL)
        await self._close()

    async def _connect(self) -> trio.SocketStream:
        s = self.settings
        return await tcp.connect(s.host, s.port, timeout=s.contimeout, what="socket")

    async def _send(self, stream: trio.SocketStream, data: bytes | bytearray | memoryview) -> None:
        try:
            with self._wait.waiting_for("the printer to take data"), \
                    trio.fail_after(self.settings.timeout):
                await stream.send_all(data)
            self._sent.add(memoryview(data).nbytes)
        except trio.TooSlowError:
            raise tcp.timed_out(f"{self._label}: sending", self.settings.timeout) from None
        except trio.BrokenResourceError as exc:
            raise tcp.lost(f"{self._label}: sending", exc) from exc

    async def _read_back_channel(self, stream: trio.SocketStream) -> None:
        try:
            while data := await stream.receive_some(tcp.CHUNK):
                self._take_replies(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return  # the send side reports the broken connection

    def _take_replies(self, data: bytes | bytearray) -> None:
        for message in self._parser.feed(data):
            status = pjl.status_from_message(message)
            if status is None:
                continue
            self._statuses_seen += 1
            if status != self._last_status:
                log.info("%s: PJL status %d %r", self._label, status.code, status.display)
            self._last_status = status

    async def _wait_for_eof(self, stream: trio.SocketStream) -> None:
        # Every byte reached the printer's host: from here on nothing can make the job due
        # again, so a reset or a printer that never closes only gets a log line.
        if self.settings.eof_wait <= 0:
            return
        with trio.move_on_after(self.settings.eof_wait) as scope:
            try:
                while data := await stream.receive_some(tcp.CHUNK):
                    self._take_replies(data)
            except trio.BrokenResourceError as exc:
                log.warning("%s: reset after the whole job was acknowledged (%s)", self._label,
                            os_reason(exc))
        if scope.cancelled_caught:
            log.warning("%s: no EOF %g s after the job; counted as printed", self._label,
                        self.settings.eof_wait)

    async def _close(self) -> None:
        stream = self._stream
        self._stream = self._job = None
        if stream is not None:
            await trio.aclose_forcefully(stream)

    # -- status --------------------------------------------------------------------------

    async def query_status(self) -> DeviceStatus | None:
        """PJL status when `status=pjl`: the back channel's latest while a job runs, else a query.

        Without `status=pjl` the protocol has no status (connecting would count as a job on
        many devices): None between jobs, and during one, whether the printer takes data.
        """
        if not self._back_channel:
            if self._stream is None:
                return None
            return DeviceStatus(message=self._wait.describe(self._label))
        if self._stream is None:
            await self._ask_status()
        status = self._last_status
        if status is None:
            return DeviceStatus(message="No PJL status received.")
        return DeviceStatus(status.reasons, status.display or f"PJL code {status.code}",
                            online=status.online is not False)

    async def _ask_status(self) -> None:
        try:
            stream = await self._connect()
        except TransportError as exc:
            self._last_status = pjl.PjlStatus(0, exc.message, False,
                                              frozenset({"offline-report"}))
            return
        try:
            await stream.send_all(pjl.STATUS_QUERY)
            with trio.move_on_after(_QUERY_WAIT):
                seen = self._statuses_seen
                while data := await stream.receive_some(tcp.CHUNK):
                    self._take_replies(data)
                    if self._statuses_seen > seen:
                        break
        except trio.BrokenResourceError:
            pass
        finally:
            await trio.aclose_forcefully(stream)

    async def check_connection(self) -> DeviceStatus:
        """Connect and close (sends nothing): whether the printer is reachable now."""
        try:
            stream = await self._connect()
        except TransportError as exc:
            return DeviceStatus(frozenset({"offline-report"}), exc.message, online=False)
        await trio.aclose_forcefully(stream)
        return DeviceStatus(message=f"{self._label}: accepts connections")
