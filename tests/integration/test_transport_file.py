"""The file transport through the transport conformance suite, as every other transport: into a
directory (`file:///dir/`, one file per job) and onto one named file (`file:///path`, replaced
by each job), with the file system as the device."""

from __future__ import annotations

import shutil
from pathlib import Path

import trio

from drivers.errors import Outcome
from drivers.testing import FailureCase, check_transport
from drivers.transport import JobInfo, open_transport


class OutputDirectory:
    """The device behind `file:///dir/`: job N must land whole under its first free name,
    `job-0000N.prn` (the conformance jobs have distinct ids), and nowhere else."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    async def read(self, job: JobInfo, complete: bool) -> bytes | None:
        # end_job returns once the file is fsynced and named: nothing to wait for.
        path = trio.Path(self.directory / f"job-{job.job_id:05d}.prn")
        return await path.read_bytes() if await path.exists() else None

    def leftovers(self) -> list[str]:
        """Partial files left behind (a cancelled or failed job must leave none)."""
        return sorted(path.name for path in self.directory.glob("*.part"))


class OutputFile:
    """The device behind `file:///path`: each job replaces the file; reading takes it away, so
    that a job that never arrived reads as nothing rather than as the job before it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    async def read(self, job: JobInfo, complete: bool) -> bytes | None:
        path = trio.Path(self.path)
        if not await path.exists():
            return None
        data = await path.read_bytes()
        await path.unlink()
        return data

    def leftovers(self) -> list[str]:
        return sorted(path.name for path in self.path.parent.glob("*.part"))


def directory_taken_by_a_file(directory: Path) -> FailureCase:
    """Where the output directory should be there is a plain file (a mistyped path, a mount
    gone): the job cannot be opened, and the admin has to act."""

    async def break_device() -> None:
        await trio.to_thread.run_sync(shutil.rmtree, directory)
        await trio.Path(directory).write_bytes(b"not a directory")

    async def restore_device() -> None:
        await trio.Path(directory).unlink()
        await trio.Path(directory).mkdir()

    return FailureCase("output directory is a file", break_device, restore_device,
                       Outcome.STOP_PRINTER, reason="other")


async def test_file_directory_conformance(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    output = OutputDirectory(directory)
    passed = await check_transport(lambda: open_transport(f"file://{directory}/"), output.read,
                                   failures=[directory_taken_by_a_file(directory)])
    assert len(passed) == 5
    assert output.leftovers() == []


async def test_file_path_conformance(tmp_path: Path) -> None:
    directory = tmp_path / "out"
    directory.mkdir()
    output = OutputFile(directory / "printer.prn")
    passed = await check_transport(lambda: open_transport(f"file://{output.path}"), output.read,
                                   failures=[directory_taken_by_a_file(directory)])
    assert len(passed) == 5
    assert output.leftovers() == []
