"""`file:` transport: a directory (one output file per job, named by job id) or one file.

Output is written to a temporary name, fsynced, then renamed into place, so a job that is
resumed after a crash replaces its partial output instead of appending to it: the directory
holds each job exactly once.

A character device or FIFO (the usblp node `/dev/usb/lp0`) is written in place. A path under
/dev that is not there is a device that is off or unplugged (udev removes the node): the job
waits (RETRY, offline) instead of creating a regular file where the node belongs; a device
that fails a write with EIO/ENODEV/ENXIO went away mid-job and is waited for the same way.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import BinaryIO

import trio

from drivers.errors import Outcome, TransportError
from drivers.transport import JobInfo, Transport, register_transport
from drivers.uri import DeviceUri


def is_device(path: Path) -> bool:
    """A character device (/dev/usb/lp0) or FIFO: written directly, never renamed."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


_DEVICE_GONE = (errno.EIO, errno.ENODEV, errno.ENXIO)


def under_dev(path: Path) -> bool:
    return path.is_absolute() and path.parts[1:2] == ("dev",)


def _failure(what: str, exc: OSError, device: bool) -> TransportError:
    if device and exc.errno in _DEVICE_GONE:
        return TransportError(f"{what}: {exc.strerror} (printer off or unplugged?)",
                              Outcome.RETRY, reason="offline")
    return TransportError(f"{what}: {exc.strerror}", Outcome.STOP_PRINTER, reason="other")


def output_path(uri: DeviceUri, job_id: int) -> Path:
    """Where job `job_id` lands: DIR/job-00042.prn for a directory, else the file itself."""
    target = Path(uri.path)
    if uri.path.endswith("/") or target.is_dir():
        return target / f"job-{job_id:05d}.prn"
    return target


@register_transport("file")
class FileTransport(Transport):
    scheme = "file"

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        if not uri.path:
            raise TransportError(f"{uri.redacted()}: file URI has no path", Outcome.STOP_PRINTER)
        self._file: BinaryIO | None = None
        self._final: Path | None = None
        self._partial: Path | None = None

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        final = output_path(self.uri, job.job_id)
        device = is_device(final)
        if not device and under_dev(final):
            raise TransportError(f"{final}: no such device (printer off or unplugged?)",
                                 Outcome.RETRY, reason="offline")
        partial = final if device else final.with_name(final.name + ".part")
        try:
            if not device:
                final.parent.mkdir(parents=True, exist_ok=True)
            self._file = await trio.to_thread.run_sync(open, partial, "wb")
        except OSError as exc:
            raise _failure(f"cannot open {partial}", exc, device) from exc
        self._final, self._partial = final, partial

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self._file is None:
            raise TransportError("send_all without start_job", Outcome.RETRY_CURRENT)
        try:
            await trio.to_thread.run_sync(self._file.write, data)
        except OSError as exc:
            raise _failure(f"writing {self._partial}", exc, self._partial == self._final
                           ) from exc

    async def end_job(self) -> None:
        file, final, partial = self._file, self._final, self._partial
        if file is None or final is None or partial is None:
            return
        self._file = None

        def finish() -> None:
            file.flush()
            if partial == final:  # a device: nothing to make durable or rename
                file.close()
                return
            os.fsync(file.fileno())
            file.close()
            os.replace(partial, final)
            directory = os.open(final.parent, os.O_RDONLY)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)

        try:
            await trio.to_thread.run_sync(finish)
        except OSError as exc:
            raise _failure(f"finishing {final}", exc, partial == final) from exc

    async def abort_job(self) -> None:
        file, partial = self._file, self._partial
        self._file = None
        if file is not None:
            file.close()
            if partial is not None and partial != self._final:
                partial.unlink(missing_ok=True)
