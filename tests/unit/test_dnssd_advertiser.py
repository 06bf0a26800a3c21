"""The advertiser (gateway.dnssd.advertiser) against a fake responder: what it registers and
under which name, renaming on a conflict and keeping the name across restarts, registering
again when a printer's configuration changes, withdrawing on cancel, and a failing
responder that leaves printing alone. Nothing here touches the network."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path

import pytest
import trio
import trio.lowlevel
import trio.testing

from gateway.config import Config, DnssdConfig, PrinterConfig
from gateway.core.system import System
from gateway.dnssd import Advertiser
from gateway.dnssd.backend import BackendError, ConflictCallback, NameTaken
from gateway.dnssd.txt import ServiceRecord
from ippwire.enums import Operation, Status, ValueTag
from ippwire.writer import request
from tests.support.ipp_dispatch import call

PORT = 8631


class FakeResponder:
    """Names in `taken` belong to other hosts; a name is refused, too, while another key of
    ours has it (as Avahi refuses a local duplicate)."""

    label = "fake"

    def __init__(self, taken: set[str] | None = None, fail: str = "",
                 host_name: str | None = None) -> None:
        self.host_name = host_name
        self.taken = taken or set()
        self.fail = fail
        self.registered: dict[str, tuple[str, tuple[ServiceRecord, ...]]] = {}
        self.published: list[tuple[str, str]] = []
        self.withdrawn: list[str] = []
        self.connected = False
        self.on_conflict: ConflictCallback | None = None

    @asynccontextmanager
    async def session(self, on_conflict: ConflictCallback) -> AsyncIterator[None]:
        self.on_conflict = on_conflict
        self.connected = True
        try:
            yield
        finally:
            self.connected = False

    async def publish(self, key: str, name: str, services: tuple[ServiceRecord, ...]) -> None:
        await trio.lowlevel.checkpoint()
        if self.fail:
            raise BackendError(self.fail)
        others = {n for k, (n, _) in self.registered.items() if k != key}
        if name in self.taken or name in others:
            raise NameTaken(name)
        self.registered[key] = (name, services)
        self.published.append((key, name))

    async def withdraw(self, key: str) -> None:
        await trio.lowlevel.checkpoint()
        if self.registered.pop(key, None) is not None:
            self.withdrawn.append(key)


def make_system(tmp_path: Path, *printers: PrinterConfig) -> System:
    return System(Config(spool=tmp_path / "spool", printers=printers or (
        PrinterConfig("office", f"file://{tmp_path}/out/", driver="postscript",
                      info="Laser"),
        PrinterConfig("lab", f"file://{tmp_path}/lab/"))))


def advertiser(system: System, backend: FakeResponder, *, tls: bool = False,
               enabled: bool = True) -> Advertiser:
    return Advertiser(system, port=PORT, host="gw.local", tls=tls,
                      config=DnssdConfig(enabled=enabled), backend=backend)


async def until(condition: Callable[[], bool]) -> None:
    """Wait for `condition` (the advertiser reads and writes its names in a worker thread,
    which wait_all_tasks_blocked does not wait for)."""
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - a thread's result: no event to wait on
            await trio.sleep(0.01)
    await trio.testing.wait_all_tasks_blocked()


def dnssd_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "gateway.dnssd"]


async def test_registers_every_printer_and_withdraws_on_cancel(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.dnssd")
    system = make_system(tmp_path)
    backend = FakeResponder()
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(system, backend, tls=True).run)
        await until(lambda: len(backend.registered) == 2)
        assert {k: n for k, (n, _) in backend.registered.items()} == {
            "office": "Laser", "lab": "lab"}
        types = [s.type for s in backend.registered["office"][1]]
        assert types == ["_ipp._tcp", "_ipps._tcp", "_printer._tcp", "_http._tcp"]
        assert backend.connected
        nursery.cancel_scope.cancel()
    assert backend.registered == {} and sorted(backend.withdrawn) == ["lab", "office"]
    assert not backend.connected
    lines = dnssd_lines(caplog)
    assert ('dnssd: printer office: registered "Laser" (_ipp._tcp, _ipps._tcp, _printer._tcp, '
            "_http._tcp) via fake") in lines
    assert "dnssd: printer office: withdrawn" in lines
    assert "dnssd: printer lab: withdrawn" in lines


@pytest.mark.parametrize(("host_name", "expected"), [
    (None, "gw.local"), ("avahi-host.local", "avahi-host.local")])
async def test_urls_name_the_host_the_responder_advertises(
        tmp_path: Path, host_name: str | None, expected: str) -> None:
    # Avahi's SRV records name its own host name: adminurl must be what clients resolve.
    backend = FakeResponder(host_name=host_name)
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(make_system(tmp_path), backend).run)
        await until(lambda: len(backend.registered) == 2)
        [ipp] = [s for s in backend.registered["lab"][1] if s.type == "_ipp._tcp"]
        assert dict(ipp.txt)["adminurl"] == f"http://{expected}:{PORT}/ipp/print/lab"
        nursery.cancel_scope.cancel()


async def test_a_taken_name_is_numbered_and_kept_across_restarts(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.dnssd")
    backend = FakeResponder(taken={"Laser", "Laser (2)"})
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(make_system(tmp_path), backend).run)
        await until(lambda: len(backend.registered) == 2)
        assert backend.registered["office"][0] == "Laser (3)"
        nursery.cancel_scope.cancel()
    lines = dnssd_lines(caplog)
    assert 'dnssd: printer office: "Laser" is taken; now "Laser (2)"' in lines
    assert 'dnssd: printer office: "Laser (2)" is taken; now "Laser (3)"' in lines
    kept = json.loads((tmp_path / "spool" / "dnssd.json").read_text())
    assert kept["office"] == {"wanted": "Laser", "chosen": "Laser (3)"}

    # The other host has gone, yet the printer keeps the name clients know it by.
    again = FakeResponder()
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(make_system(tmp_path), again).run)
        await until(lambda: len(again.registered) == 2)
        assert [name for key, name in again.published if key == "office"] == ["Laser (3)"]
        nursery.cancel_scope.cancel()


async def test_two_printers_wanting_one_name_get_two(tmp_path: Path) -> None:
    system = make_system(
        tmp_path,
        PrinterConfig("a", f"file://{tmp_path}/a/", driver="postscript", info="Laser"),
        PrinterConfig("b", f"file://{tmp_path}/b/", driver="postscript", info="Laser"))
    backend = FakeResponder()
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(system, backend).run)
        await until(lambda: len(backend.registered) == 2)
        assert sorted(n for n, _ in backend.registered.values()) == ["Laser", "Laser (2)"]
        nursery.cancel_scope.cancel()


async def test_a_later_conflict_renames(tmp_path: Path,
                                        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.dnssd")
    backend = FakeResponder()
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(make_system(tmp_path), backend).run)
        await until(lambda: len(backend.registered) == 2)
        backend.taken.add("Laser")
        assert backend.on_conflict is not None
        backend.on_conflict("office")
        await until(lambda: backend.registered["office"][0] != "Laser")
        assert backend.registered["office"][0] == "Laser (2)"
        nursery.cancel_scope.cancel()
    assert 'dnssd: printer office: "Laser" is taken; now "Laser (2)"' in dnssd_lines(caplog)


async def test_a_config_change_is_announced_again(tmp_path: Path) -> None:
    system = make_system(tmp_path)
    backend = FakeResponder()
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(system, backend).run)
        await until(lambda: len(backend.registered) == 2)
        printer = system.printers["office"]
        before = len(backend.published)

        # Nothing changed: nothing is sent again.
        system.store.publish_printer(printer.snapshot(), config=True)
        await trio.testing.wait_all_tasks_blocked()
        assert len(backend.published) == before

        printer.config = replace(printer.config, location="Room 3", info="Big laser")
        system.store.publish_printer(printer.snapshot(), config=True)
        await until(lambda: backend.registered["office"][0] != "Laser")
        name, services = backend.registered["office"]
        assert name == "Big laser"
        assert dict(services[0].txt)["note"] == "Room 3"

        # Removed by a reload: withdrawn.
        del system.printers["lab"]
        snapshot = replace(printer.snapshot(), name="lab")
        system.store.publish_printer(snapshot, config=True, removed=True)
        # Not wait_all_tasks_blocked: the advertiser may be writing the names file in a
        # worker thread, which counts as blocked, before it reads the removal.
        await until(lambda: "lab" not in backend.registered)
        assert backend.withdrawn == ["lab"]
        nursery.cancel_scope.cancel()


async def test_disabled_registers_nothing(tmp_path: Path) -> None:
    backend = FakeResponder()
    async with trio.open_nursery() as nursery:
        await nursery.start(advertiser(make_system(tmp_path), backend, enabled=False).run)
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert backend.published == [] and not backend.connected


async def test_a_failing_responder_logs_once_and_printing_goes_on(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "gateway.dnssd")
    system = make_system(tmp_path)
    backend = FakeResponder(fail="avahi-daemon over D-Bus: Connection refused")
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        await nursery.start(advertiser(system, backend).run)
        await until(lambda: any(r.levelno == logging.WARNING for r in caplog.records))
        warnings = [r for r in caplog.records
                    if r.name == "gateway.dnssd" and r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "Connection refused" in warnings[0].getMessage()
        assert not backend.connected

        message = request(Operation.PRINT_JOB, printer_uri=f"ipp://localhost:{PORT}/ipp/print/lab",
                          attrs={"document-format": (ValueTag.MIME_MEDIA_TYPE,
                                                     "application/octet-stream")})
        response = await call(system, message, b"raw bytes for the printer")
        assert response.code == Status.OK
        output = tmp_path / "lab"
        with trio.fail_after(10):
            while not any(output.glob("job-*.prn")):  # noqa: ASYNC110 - a file appears
                await trio.sleep(0.05)
        assert next(output.glob("job-*.prn")).read_bytes() == b"raw bytes for the printer"
        nursery.cancel_scope.cancel()
