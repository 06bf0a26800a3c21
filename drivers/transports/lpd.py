"""`lpd://host[:port]/queue?...` — RFC 1179 print jobs, with CUPS's option spellings.

Options: `reserve=none|rfc1179|any` (source ports: none, 721-731, 512-1023), `mode=spool|stream`
(for a job of unknown length: spool to a temporary file so the data file can be announced with
its length, or announce length 0 and close at the end, which LPRng accepts and BSD lpd refuses),
`order=control,data|data,control`, `banner=on|off`, `format=l` (the print-command letter),
`timeout=` (seconds without progress or acknowledgment, default 300), `contimeout=` (seconds to
connect, default 30), `status=short|long|off` (send-queue-state for `query_status`).

A job of known length (`JobInfo.data_length`) is streamed straight to the server whatever the
mode: the data file starts while the document is still being read.

End of job: `end_job` returns once the server acknowledged the last file. After both files went
out in full, a server that closes instead of sending that last acknowledgment, or stays silent
past `timeout` once its host acknowledged every byte, counts as success, as in CUPS: the job is
never sent twice. A reset means it dropped data it had not read: RETRY.
Cancel: between subcommands the abort subcommand is sent; in the middle of a file the
connection is closed, which makes the server drop the incomplete file. (BSD lpd then keeps a
control file received before it: an empty entry in its queue. `order=data,control` avoids it;
its remove-jobs command is no cure: asked for one job, it dropped the whole queue here.)
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

import trio

from drivers.errors import Outcome, TransportError, UriError, os_reason
from drivers.transport import DeviceStatus, JobInfo, Transport, bad_uri, register_transport
from drivers.transports import tcp
from drivers.transports.lpd_protocol import (
    ABORT_JOB,
    DEFAULT_PORT,
    FORMATS,
    ControlFile,
    Need,
    Order,
    ReceiveJob,
    job_number,
    parse_queue_state,
    queue_state_command,
)
from drivers.uri import DeviceUri, UriOptions, host_port

log = logging.getLogger("drivers.lpd")
_T = TypeVar("_T")

_ABORT_WAIT = 0.5
_SPOOL_READ = 1024 * 1024  # big reads: each one is a worker-thread round trip
_STATUS_TIMEOUT = 10.0
_STATUS_LIMIT = 64 * 1024


@dataclass(frozen=True)
class LpdSettings:
    host: str
    port: int
    queue: str
    reserve: str = "none"
    mode: str = "spool"
    order: Order = Order.CONTROL_FIRST
    banner: bool = False
    format: str = "l"
    timeout: float = 300.0
    contimeout: float = 30.0
    status: str = "short"

    @classmethod
    def from_uri(cls, uri: DeviceUri) -> LpdSettings:
        """The one reader of lpd:// URIs (see drivers.uri.UriOptions)."""
        options = UriOptions(uri, "lpd://")
        host, port = tcp.address(options, DEFAULT_PORT)
        queue = uri.path.strip("/")
        if not queue:
            raise options.error("no queue: an LPD URI is lpd://HOST[:PORT]/QUEUE")
        if any(ch.isspace() or not ch.isprintable() for ch in queue):
            raise options.error(f"queue {queue!r} has spaces or control characters")
        fmt = options.text("format", "l")
        if len(fmt) != 1 or fmt not in FORMATS:
            raise options.error(f"format={fmt!r} is not one of {', '.join(FORMATS)}")
        settings = cls(
            host=host,
            port=port,
            queue=queue,
            reserve=options.choice("reserve", "none", ("none", "rfc1179", "any")),
            mode=options.choice("mode", "spool", ("spool", "stream")),
            order=Order(options.choice("order", "control,data", ("control,data", "data,control"))),
            banner=options.switch("banner", False),
            format=fmt,
            timeout=options.seconds("timeout", 300.0) or math.inf,
            contimeout=options.seconds("contimeout", 30.0) or math.inf,
            status=options.choice("status", "short", ("short", "long", "off")),
        )
        options.finish()
        return settings

    @property
    def source_ports(self) -> tuple[int, ...]:
        return {"rfc1179": tcp.RFC1179_PORTS, "any": tcp.PRIVILEGED_PORTS}.get(self.reserve, ())


@register_transport("lpd")
class LpdTransport(Transport):
    scheme = "lpd"

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> LpdSettings:
        return LpdSettings.from_uri(uri)

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        try:
            self.settings = LpdSettings.from_uri(uri)
        except UriError as exc:
            raise bad_uri(exc) from exc
        s = self.settings
        self._label = f"lpd {host_port(s.host, s.port)}/{s.queue}"
        self._job: JobInfo | None = None
        self._stream: trio.SocketStream | None = None
        self._dialogue: ReceiveJob | None = None
        self._spool: IO[bytes] | None = None
        self._dirty = False  # a send was cut short: the server is mid-message, no subcommand now
        self._wait = tcp.WaitWatch()

    # -- the job -------------------------------------------------------------------------

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        self._job = job
        try:
            if job.data_length is None and self.settings.mode == "spool":
                self._spool = await self._local_io(tempfile.TemporaryFile)
            else:
                await self._open_dialogue(job, job.data_length)
        except TransportError:
            await self.abort_job()  # a failed call leaves the transport closed
            raise

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._job is None:
            raise TransportError(
                f"{self._label}: send_all without start_job", Outcome.RETRY_CURRENT
            )
        try:
            if self._spool is not None:
                await self._local_io(self._spool.write, data)
            elif self._dialogue is not None:
                self._dialogue.data_sent(len(data))
                await self._send(data, "data file")
        except TransportError:
            await self.abort_job()
            raise

    async def send_file(self, path: Path, on_sent: Callable[[int], None]) -> None:
        """A job of announced length is read from the spooled file as it goes out (tcp.send_file);
        spooling takes the plain way."""
        dialogue, stream = self._dialogue, self._stream
        if self._job is None or self._spool is not None or dialogue is None or stream is None:
            await super().send_file(path, on_sent)
            return

        def sent(count: int) -> None:
            self._wait.progressed()
            on_sent(count)

        what = f"{self._label}: sending the data file"
        try:
            self._dirty = True
            with self._wait.waiting_for("the server to take the data file"):
                # The size is checked against the announced length before a byte goes.
                await tcp.send_file(stream, path, sent, self.settings.timeout,
                                    before=dialogue.data_sent)
            self._dirty = False
        except trio.TooSlowError:
            await self.abort_job()
            raise tcp.timed_out(what, self.settings.timeout) from None
        except trio.BrokenResourceError as exc:
            await self.abort_job()
            raise tcp.lost(what, exc) from exc
        except TransportError:
            await self.abort_job()
            raise

    async def _local_io(self, call: Callable[..., _T], *args: object) -> _T:
        try:
            return await trio.to_thread.run_sync(call, *args)
        except OSError as exc:
            raise TransportError(f"{self._label}: local spool file: {os_reason(exc)}",
                                 reason="other") from exc

    async def end_job(self) -> None:
        """Deliver what is left; returns once the server holds the whole job (see module doc)."""
        job = self._job
        if job is None:
            return
        try:
            if self._spool is not None:
                await self._deliver_spooled(job, self._spool)
            else:
                await self._finish()
            log.info("%s: job %d delivered", self._label, job.job_id)
        finally:
            await self._close()

    async def abort_job(self) -> None:
        stream, dialogue, dirty = self._stream, self._dialogue, self._dirty
        if stream is not None and dialogue is not None and dialogue.can_abort and not dirty:
            with trio.CancelScope(shield=True) as scope:
                scope.deadline = trio.current_time() + _ABORT_WAIT
                try:
                    await stream.send_all(ABORT_JOB)
                    log.info("%s: abort subcommand sent", self._label)
                    # Closing now could reset the connection before the server reads it.
                    await stream.send_eof()
                    await tcp.read_until_eof(stream, 0)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    pass
        await self._close()

    # -- the dialogue --------------------------------------------------------------------

    async def _open_dialogue(self, job: JobInfo, data_length: int | None) -> None:
        s = self.settings
        control = ControlFile(
            number=job_number(job.job_id),
            host=job.host,
            user=job.user,
            title=job.job_name,
            format=s.format,
            copies=job.copies,
            banner=s.banner,
        )
        self._dialogue = ReceiveJob(s.queue, control, s.order, data_length)
        self._stream = await self._connect()
        await self._advance(self._dialogue)

    async def _deliver_spooled(self, job: JobInfo, spool: IO[bytes]) -> None:
        length = await self._local_io(spool.seek, 0, 2)
        await self._local_io(spool.seek, 0)
        await self._open_dialogue(job, length)
        assert self._dialogue is not None
        while chunk := await self._local_io(spool.read, _SPOOL_READ):
            self._dialogue.data_sent(len(chunk))
            await self._send(chunk, "data file")
        await self._finish()

    async def _finish(self) -> None:
        dialogue, stream = self._dialogue, self._stream
        if dialogue is None or stream is None:
            raise TransportError(f"{self._label}: end_job without start_job", Outcome.RETRY_CURRENT)
        dialogue.data_done()
        await self._advance(dialogue)
        if dialogue.data_length is None:
            await self._await_close_after_stream(stream)

    async def _advance(self, dialogue: ReceiveJob) -> Need:
        """Send messages and check acks until the data file body is due or the dialogue ends."""
        while (need := dialogue.need()) in (Need.SEND, Need.ACK):
            if need is Need.SEND:
                await self._send(dialogue.next_message(), "LPD command")
                dialogue.message_sent()
                continue
            reply = await self._read_ack(dialogue)
            if not reply and dialogue.everything_sent:
                log.warning(
                    "%s: no final acknowledgment after the whole job was sent: counted as "
                    "printed (as CUPS does)", self._label
                )
                return Need.CLOSE
            dialogue.receive_ack(reply)
        return need

    async def _read_ack(self, dialogue: ReceiveJob) -> bytes:
        """One acknowledgment byte; b"" if the server closed (or went silent after the whole job
        reached its host)."""
        assert self._stream is not None
        step = dialogue.awaiting.value if dialogue.awaiting else "acknowledgment"
        try:
            with self._wait.waiting_for(f"the {step} ack"), trio.fail_after(self.settings.timeout):
                return await self._stream.receive_some(1)
        except trio.TooSlowError:
            # Silent after everything: printed, if the server's host acknowledged every byte.
            if dialogue.everything_sent and tcp.unacknowledged(self._stream) == 0:
                return b""
            what = f"{self._label}: waiting for the {step} ack"
            raise tcp.timed_out(what, self.settings.timeout) from None
        except trio.BrokenResourceError as exc:
            # A reset, not a close: the server dropped data it had not read.
            raise tcp.lost(f"{self._label}: waiting for the {step} ack", exc) from exc

    async def _await_close_after_stream(self, stream: trio.SocketStream) -> None:
        # Streaming has no final ack: half-close, then the server closes once it read the end.
        what = f"{self._label}: ending the streamed data file"
        try:
            await stream.send_eof()
            with trio.move_on_after(self.settings.timeout):
                await tcp.read_until_eof(stream, 0)
                return
        except trio.BrokenResourceError as exc:
            raise tcp.lost(what, exc) from exc
        if tcp.unacknowledged(stream) > 1:  # more than our FIN is still unacknowledged
            raise tcp.timed_out(what, self.settings.timeout)

    async def _send(self, data: bytes | bytearray | memoryview, what: str) -> None:
        assert self._stream is not None
        self._dirty = True
        try:
            with self._wait.waiting_for(f"the server to take the {what}"), \
                    trio.fail_after(self.settings.timeout):
                await self._stream.send_all(data)
        except trio.TooSlowError:
            label = f"{self._label}: sending the {what}"
            raise tcp.timed_out(label, self.settings.timeout) from None
        except trio.BrokenResourceError as exc:
            raise tcp.lost(f"{self._label}: sending the {what}", exc) from exc
        self._dirty = False

    async def _connect(self) -> trio.SocketStream:
        s = self.settings
        try:
            return await tcp.connect(
                s.host, s.port, timeout=s.contimeout, source_ports=s.source_ports, what="lpd"
            )
        except tcp.PrivilegeError:
            if s.reserve != "any":
                raise
            log.warning("%s: no privilege for a reserved port; using any port", self._label)
            return await tcp.connect(s.host, s.port, timeout=s.contimeout, what="lpd")

    async def _close(self) -> None:
        stream, spool = self._stream, self._spool
        self._job = self._stream = self._dialogue = self._spool = None
        self._dirty = False
        if stream is not None:
            await trio.aclose_forcefully(stream)
        if spool is not None:
            spool.close()  # an unlinked temporary file: closing frees it, nothing to flush

    # -- status --------------------------------------------------------------------------

    async def query_status(self) -> DeviceStatus | None:
        """The remote queue, by send-queue-state (short or long): reachable, jobs, warnings.

        While this transport carries a job it opens no second connection (many printers' own
        LPD servers take one at a time): it tells what the job is waiting on instead.
        """
        s = self.settings
        if self._job is not None:
            return self._job_status()
        if s.status == "off":
            return None
        command = queue_state_command(s.queue, long=s.status == "long")
        try:
            stream = await self._connect()
        except TransportError as exc:
            return DeviceStatus(frozenset({"offline-report"}), exc.message, online=False)
        wait = min(s.timeout, _STATUS_TIMEOUT)
        try:
            with trio.fail_after(wait):
                await stream.send_all(command)
                reply = await tcp.read_until_eof(stream, _STATUS_LIMIT)
        except trio.TooSlowError:
            message = f"{self._label}: no queue state within {wait:g} s"
            return DeviceStatus(frozenset({"offline-report"}), message, online=False)
        except trio.BrokenResourceError as exc:
            message = f"{self._label}: queue state: connection lost ({os_reason(exc)})"
            return DeviceStatus(frozenset({"offline-report"}), message, online=False)
        finally:
            await trio.aclose_forcefully(stream)
        state = parse_queue_state(reply.decode("utf-8", "replace"))
        if state.unknown_queue:
            message = (f"{self._label}: the server has no queue {s.queue!r} "
                       f"(it answered: {state.message})")
            return DeviceStatus(state.reasons | {"other-error"}, message, online=True)
        return DeviceStatus(state.reasons, state.message, online=True)

    def _job_status(self) -> DeviceStatus:
        if self._stream is None:
            return DeviceStatus(message=f"{self._label}: spooling the job to learn its length")
        return DeviceStatus(message=self._wait.describe(self._label))
