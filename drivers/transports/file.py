"""`file:` transport: a directory (one output file per job, named by job id) or one file.

In a directory, a job is written to `job-00042.prn.part`, fsynced, then given the first free
name of `job-00042.prn`, `job-00042-1.prn`, `job-00042-2.prn` ...: a finished output file is
never replaced, even when job numbers start again. The name is claimed with link(2), which
fails rather than replace, so two jobs can never land on one name; the partial is then
unlinked. A job resumed after a crash starts its partial afresh (unlinked, then created
exclusively: never written through a name that may share its inode with a finished file), so
the directory never holds a job twice over or half of one under a final name. On a file system
without hard links (FAT on a USB stick) the free name is claimed with O_EXCL instead, then the
partial renamed onto it: a crash between the two leaves an empty file under that name.

A single file (`file:///path/out.prn`, not a directory) is the one output the admin named: each
job replaces it, written and renamed the same way.

A character device or FIFO (the usblp node `/dev/usb/lp0`) is written in place. A path under
/dev that is not there is a device that is off or unplugged (udev removes the node): the job
waits (RETRY, offline) instead of creating a regular file where the node belongs; a device
that fails a write with EIO/ENODEV/ENXIO went away mid-job and is waited for the same way.
"""

from __future__ import annotations

import errno
import itertools
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import trio

from drivers.errors import Outcome, TransportError, UriError
from drivers.transport import JobInfo, Transport, bad_uri, register_transport
from drivers.uri import DeviceUri, UriOptions

PARTIAL_SUFFIX = ".part"
# link(2) where the file system has no hard links: FAT says EPERM, others EOPNOTSUPP/ENOSYS.
_NO_HARD_LINKS = (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS)


@dataclass(frozen=True)
class FileSettings:
    path: Path  # a directory if it ends in "/" or is one: a new file per job there

    @classmethod
    def from_uri(cls, uri: DeviceUri) -> FileSettings:
        """The one reader of file: URIs: an absolute path and no options."""
        options = UriOptions(uri, "file://")
        if uri.host and uri.host != "localhost":  # file://tmp/out: "tmp" taken for a host
            raise options.error(f"{uri.host!r} is read as a host: a file URI is "
                                f"file:///{uri.host}{uri.path} (three slashes)")
        if not uri.path.startswith("/"):
            raise options.error("no absolute path: a file URI is file:///DIR/ or "
                                "file:///PATH")
        options.finish()
        return cls(Path(uri.path))


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
    """Where job `job_id` would land first: DIR/job-00042.prn for a directory (the next free
    name if that one is taken, see `free_names`), else the file itself."""
    target = Path(uri.path)
    if uri.path.endswith("/") or target.is_dir():
        return target / f"job-{job_id:05d}.prn"
    return target


def free_names(first: Path) -> Iterator[Path]:
    """job-00042.prn, job-00042-1.prn, job-00042-2.prn ...: the names a job may take."""
    yield first
    for number in itertools.count(1):
        yield first.with_name(f"{first.stem}-{number}{first.suffix}")


def publish(partial: Path, first: Path) -> Path:
    """Give the finished (fsynced) `partial` the first free name from `first` on, never
    replacing a file; returns the name taken. Blocking."""
    for candidate in free_names(first):
        try:
            os.link(partial, candidate)
        except FileExistsError:
            continue
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            return _publish_without_links(partial, first)
        os.unlink(partial)
        return candidate
    raise AssertionError("unreachable: free_names never ends")


def _publish_without_links(partial: Path, first: Path) -> Path:
    for candidate in free_names(first):
        try:
            os.close(os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                             0o644))
        except FileExistsError:
            continue
        os.replace(partial, candidate)  # onto the empty file this job has just claimed
        return candidate
    raise AssertionError("unreachable: free_names never ends")


def _create_partial(partial: Path) -> BinaryIO:
    """A new, empty partial file. One left by an earlier attempt is unlinked first, not
    truncated: it may share its inode with a finished file (a crash between link and unlink)."""
    partial.unlink(missing_ok=True)
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        # Created between the unlink and the open: only another writer of the same job id
        # could (another gateway on this directory); never write through its file.
        raise OSError(errno.EBUSY, f"{partial.name} is being written by someone else") from None
    return os.fdopen(fd, "wb")


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@register_transport("file")
class FileTransport(Transport):
    scheme = "file"

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> FileSettings:
        return FileSettings.from_uri(uri)

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        try:
            self.settings = FileSettings.from_uri(uri)
        except UriError as exc:
            raise bad_uri(exc) from exc
        self._file: BinaryIO | None = None
        self._final: Path | None = None
        self._partial: Path | None = None
        self.last_output: Path | None = None  # where the last finished job went

    async def start_job(self, job: JobInfo) -> None:
        await self.abort_job()
        final = output_path(self.uri, job.job_id)
        device = is_device(final)
        if not device and under_dev(final):
            raise TransportError(f"{final}: no such device (printer off or unplugged?)",
                                 Outcome.RETRY, reason="offline")
        partial = final if device else final.with_name(final.name + PARTIAL_SUFFIX)
        try:
            if device:
                self._file = await trio.to_thread.run_sync(open, partial, "wb")
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                self._file = await trio.to_thread.run_sync(_create_partial, partial)
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
        # A directory gets a new file per job; a single named file is replaced by each job.
        into_directory = final != Path(self.uri.path)

        def finish() -> Path:
            file.flush()
            if partial == final:  # a device: nothing to make durable or rename
                file.close()
                return final
            os.fsync(file.fileno())
            file.close()
            if into_directory:
                landed = publish(partial, final)
            else:
                os.replace(partial, final)
                landed = final
            _fsync_directory(final.parent)
            return landed

        try:
            self.last_output = await trio.to_thread.run_sync(finish)
        except OSError as exc:
            raise _failure(f"finishing {final}", exc, partial == final) from exc

    async def abort_job(self) -> None:
        file, partial = self._file, self._partial
        self._file = None
        if file is not None:
            file.close()
            if partial is not None and partial != self._final:
                partial.unlink(missing_ok=True)
