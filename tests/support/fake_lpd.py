"""A small RFC 1179 server on loopback that can misbehave on purpose.

It records every receive-job dialogue (control file, data, source port, whether it completed
or was aborted) and can refuse with a non-zero ack, drop the connection in the middle of the
data file, answer slowly, stop reading, or close instead of sending the last ack. A data-file
length of 0 is read until the connection closes, as LPRng does.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import trio

from tests.peers.procs import LOOPBACK


@dataclass
class LpdFaults:
    refuse_receive: int = 0  # ack byte for the receive-job command (0 = accept)
    refuse_data: int = 0  # ack byte for the data-file subcommand
    drop_after: int | None = None  # close after this many data-file bytes
    stall_after: int | None = None  # stop reading after this many data-file bytes
    ack_delay: float = 0.0  # seconds before each acknowledgment...
    slow_from: int = 0  # ...from the connection's acknowledgment with this index (0 = first)
    final_ack: bool = True  # False: close instead of acknowledging the last file
    queue_state: bytes = b"no entries\n"


@dataclass
class FakeJob:
    queue: str
    source_port: int
    control: bytes = b""
    data: bytearray = field(default_factory=bytearray)
    announced: list[int] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # "control"/"data", in arrival order
    aborted: bool = False
    complete: bool = False
    acks: int = 0


class _Reader:
    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = bytearray()

    async def _fill(self) -> bool:
        data = await self.stream.receive_some(65536)
        self.buffer += data
        return bool(data)

    async def line(self) -> bytes | None:
        while b"\n" not in self.buffer:
            if not await self._fill():
                return None
        end = self.buffer.index(b"\n")
        line = bytes(self.buffer[:end])
        del self.buffer[: end + 1]
        return line

    async def some(self, limit: int) -> bytes:
        if not self.buffer and not await self._fill():
            return b""
        piece = bytes(self.buffer[:limit])
        del self.buffer[:limit]
        return piece


class FakeLpd:
    def __init__(self, faults: LpdFaults | None = None) -> None:
        self.faults = faults or LpdFaults()
        self.jobs: list[FakeJob] = []
        self.queue_requests: list[bytes] = []
        self.port = 0

    @property
    def uri(self) -> str:
        return f"lpd://{LOOPBACK}:{self.port}/raw"

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=LOOPBACK)
        self.port = listeners[0].socket.getsockname()[1]
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    @property
    def completed(self) -> list[FakeJob]:
        return [job for job in self.jobs if job.complete]

    async def _ack(self, stream: trio.SocketStream, job: FakeJob, code: int = 0) -> None:
        if job.acks >= self.faults.slow_from:
            await trio.sleep(self.faults.ack_delay)
        job.acks += 1
        await stream.send_all(bytes([code]))

    async def _handle(self, stream: trio.SocketStream) -> None:
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            async with stream:
                reader = _Reader(stream)
                command = await reader.line()
                if not command:
                    return
                if command[0] in (3, 4):
                    self.queue_requests.append(command)
                    await stream.send_all(self.faults.queue_state)
                    return
                if command[0] == 2:
                    await self._receive_job(stream, reader, command[1:].decode())

    async def _receive_job(self, stream: trio.SocketStream, reader: _Reader, queue: str) -> None:
        job = FakeJob(queue, stream.socket.getpeername()[1])
        self.jobs.append(job)
        await self._ack(stream, job, self.faults.refuse_receive)
        if self.faults.refuse_receive:
            return
        while (line := await reader.line()) is not None:
            if line == b"\x01":
                job.aborted = True
                return
            code, count_text, _name = line[:1], *line[1:].decode().split(" ", 1)
            count = int(count_text)
            job.announced.append(count)
            kind = "control" if code == b"\x02" else "data"
            if not await self._receive_file(stream, reader, job, kind, count):
                return
        job.complete = "control" in job.files and "data" in job.files and not job.aborted

    async def _receive_file(
        self, stream: trio.SocketStream, reader: _Reader, job: FakeJob, kind: str, count: int
    ) -> bool:
        if kind == "data" and self.faults.refuse_data:
            await self._ack(stream, job, self.faults.refuse_data)
            return True
        await self._ack(stream, job)
        if kind == "data" and count == 0:  # LPRng: the data runs until the connection closes
            while piece := await reader.some(65536):
                job.data += piece
            job.files.append(kind)
            job.complete = "control" in job.files
            return False
        body = await self._read_body(reader, job, kind, count + 1)
        if body is None:
            return False
        job.files.append(kind)
        last = len(job.files) == 2
        if last and not self.faults.final_ack:
            job.complete = True
            return False
        await self._ack(stream, job)
        return True

    async def _read_body(
        self, reader: _Reader, job: FakeJob, kind: str, count: int
    ) -> bytes | None:
        body = bytearray()
        while len(body) < count:
            limit = count - len(body)
            if kind == "data":
                for threshold in (self.faults.drop_after, self.faults.stall_after):
                    if threshold is not None and len(body) < threshold:
                        limit = min(limit, threshold - len(body))
                if self.faults.drop_after is not None and len(body) >= self.faults.drop_after:
                    return None
                if self.faults.stall_after is not None and len(body) >= self.faults.stall_after:
                    await trio.sleep_forever()
            piece = await reader.some(limit)
            if not piece:
                return None
            body += piece
            if kind == "data":
                job.data += piece
        if kind == "data":
            del job.data[len(job.data) - 1 :]  # the trailing NUL is not data
        else:
            job.control = bytes(body[:-1])
        return bytes(body)
