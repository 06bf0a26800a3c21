"""The advertiser: every printer of a System on DNS-SD, for as long as the System runs.

It registers each printer (gateway.dnssd.txt says what), renames on a conflict and keeps the
chosen name in `<spool>/dnssd.json` (gateway.dnssd.names), registers again when a printer's
configuration changes (`PrinterConfigChanged` on the bus; no TXT value depends on the
printer's state, so `PrinterStateChanged` is not followed), and withdraws everything when
cancelled. DNS-SD is a convenience: when the responder fails, one warning says why and the
printers go on printing.
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path

import trio

from gateway.config import DnssdConfig
from gateway.core.bus import Subscription
from gateway.core.events import PrinterConfigChanged
from gateway.core.printer import Printer
from gateway.core.system import System
from gateway.dnssd.backend import Backend, BackendError, NameTaken, choose_backend
from gateway.dnssd.names import (
    ChosenName,
    dump_names,
    first_name,
    load_names,
    next_name,
)
from gateway.dnssd.txt import ServiceRecord, instance_name, printer_services
from gateway.server.attributes import is_ipp_everywhere
from gateway.server.operation_table import OPERATIONS
from gateway.server.ops_printer import describe

log = logging.getLogger("gateway.dnssd")

NAMES_FILE = "dnssd.json"
WITHDRAW_TIMEOUT = 3.0  # seconds a shutdown waits for the goodbyes


class Advertiser:
    def __init__(self, system: System, *, port: int, host: str, tls: bool,
                 config: DnssdConfig, backend: Backend | None = None) -> None:
        """`host` is the name the printers' URLs use (adminurl) unless the responder names
        the host itself (Avahi); `tls`: the IPPS records and
        TLS=1.2 are advertised; `backend` replaces the one `config.backend` picks (tests)."""
        self.system = system
        self.port = port
        self.host = host
        self.tls = tls
        self.config = config
        self._backend = backend
        self._names_path = system.config.spool / NAMES_FILE
        self._kept: dict[str, ChosenName] = {}
        self._published: dict[str, tuple[str, tuple[ServiceRecord, ...]]] = {}
        self._lock = trio.Lock()  # one registration change at a time
        self._failure: BackendError | None = None
        self._work = trio.CancelScope()
        self._names_warned = False

    def advertised(self) -> dict[str, str]:
        """Each printer's DNS-SD instance name as last registered (the dashboard shows it)."""
        return {key: chosen.chosen for key, chosen in self._kept.items()}

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """Advertise until cancelled. Started at once: the printers serve while the
        responder probes."""
        if not self.config.enabled:
            task_status.started()
            return
        with self.system.bus.subscribe(kinds=(PrinterConfigChanged.kind,)) as changes:
            task_status.started()
            try:
                backend = self._backend or await choose_backend(self.config, self.host)
                await self._advertise(backend, changes)
            except BackendError as exc:  # connecting, or leaving (a printer's own: _guarded)
                self._failure = self._failure or exc
        if self._failure is not None:
            log.warning("dnssd: the printers are not advertised: %s (printing is not "
                        "affected)", self._failure)

    async def _advertise(self, backend: Backend, changes: Subscription) -> None:
        conflicts_send, conflicts = trio.open_memory_channel[str](math.inf)
        async with backend.session(conflicts_send.send_nowait):
            try:
                with self._work:
                    self._kept = await trio.to_thread.run_sync(_read_names, self._names_path)
                    async with trio.open_nursery() as nursery:
                        for name in self.system.printers:
                            nursery.start_soon(self._guarded, backend, name, False)
                        nursery.start_soon(self._follow_changes, backend, changes, nursery)
                        nursery.start_soon(self._follow_conflicts, backend, conflicts, nursery)
            finally:
                with trio.move_on_after(WITHDRAW_TIMEOUT, shield=True):
                    await self._withdraw_all(backend)

    async def _follow_changes(self, backend: Backend, changes: Subscription,
                              nursery: trio.Nursery) -> None:
        async for event in changes:
            if isinstance(event, PrinterConfigChanged):
                nursery.start_soon(self._guarded, backend, event.printer.name, False)

    async def _follow_conflicts(self, backend: Backend,
                                conflicts: trio.MemoryReceiveChannel[str],
                                nursery: trio.Nursery) -> None:
        async for key in conflicts:
            nursery.start_soon(self._guarded, backend, key, True)

    async def _guarded(self, backend: Backend, key: str, taken: bool) -> None:
        try:
            async with self._lock:
                await self._publish(backend, key, taken)
        except BackendError as exc:
            if self._failure is None:
                self._failure = exc
            self._work.cancel()

    async def _publish(self, backend: Backend, key: str, taken: bool) -> None:
        """(Re-)register printer `key`, or withdraw it if it is gone; `taken`: the name it
        has was claimed by another host since."""
        printer = self.system.printers.get(key)
        if printer is None:
            await self._withdraw(backend, key)
            return
        services, wanted = self._records(printer, backend.host_name or self.host)
        current = self._published.get(key)
        kept = self._kept.get(key)
        name = current[0] if current and kept and kept.wanted == wanted else first_name(
            wanted, kept)
        if taken:
            name = self._rename(key, wanted, name) or ""
        elif current == (name, services):
            return
        while name:
            try:
                await backend.publish(key, name, services)
            except NameTaken:
                name = self._rename(key, wanted, name) or ""
                continue
            self._published[key] = (name, services)
            log.info('dnssd: printer %s: registered "%s" (%s) via %s', key, name,
                     ", ".join(s.type for s in services), backend.label)
            await self._remember(key, ChosenName(wanted, name))
            return

    def _rename(self, key: str, wanted: str, name: str) -> str | None:
        new = next_name(wanted, name)
        if new is None:
            log.warning('dnssd: printer %s: "%s" is taken and no numbered name is left; '
                        "not advertised", key, name)
            self._published.pop(key, None)
        else:
            log.info('dnssd: printer %s: "%s" is taken; now "%s"', key, name, new)
        return new

    def _records(self, printer: Printer, host: str) -> tuple[tuple[ServiceRecord, ...], str]:
        description = describe(printer, self.system.config, OPERATIONS.supported)
        caps = printer.capabilities
        services = printer_services(
            caps, description, path=self.system.printer_path(printer), host=host,
            port=self.port, tls=self.tls, ipp_everywhere=is_ipp_everywhere(caps, description))
        return services, instance_name(description)

    async def _remember(self, key: str, chosen: ChosenName) -> None:
        if self._kept.get(key) == chosen:
            return
        self._kept[key] = chosen
        try:
            await trio.to_thread.run_sync(_write_names, self._names_path, dump_names(self._kept))
        except OSError as exc:
            if not self._names_warned:
                self._names_warned = True
                log.warning("dnssd: cannot keep the chosen names in %s (%s); a renamed printer "
                            "may get another name after a restart", self._names_path,
                            exc.strerror)

    async def _withdraw(self, backend: Backend, key: str) -> None:
        if self._published.pop(key, None) is not None:
            await backend.withdraw(key)
            log.info("dnssd: printer %s: withdrawn", key)

    async def _withdraw_all(self, backend: Backend) -> None:
        for key in list(self._published):
            try:
                await self._withdraw(backend, key)
            except BackendError as exc:
                log.warning("dnssd: printer %s: not withdrawn: %s", key, exc)
                return


def _read_names(path: Path) -> dict[str, ChosenName]:
    try:
        return load_names(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError) as exc:
        log.warning("dnssd: cannot read %s (%s); starting from the wanted names", path, exc)
        return {}


def _write_names(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
