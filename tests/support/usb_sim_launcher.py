"""The gateway with simulated USB printers, for subprocess tests:

    python -m tests.support.usb_sim_launcher CONTROL.json -- run --config gateway.toml

installs a `SimBackend` as `usbprinter`'s backend, then runs `gateway.cli.main` with the
arguments after `--` in this same process and exits with its status. Which printers exist and
whether they are plugged in follows CONTROL.json, a list of entries

    {"profile": "postscript-laser", "serial": "PS1", "plugged": true}

(`profile` a name of tests/support/usb_profiles.py; `serial` defaults to the profile's;
`plugged` to true). A daemon thread reads it again every 0.1 s once it has changed; a printer
whose entry is gone counts as unplugged, so nothing is ever forgotten. Tests write the file
with `write_control`, atomically, so the thread never reads half of one.

What each printer received is appended, as it arrives, to `received-<serial>.bin` beside
CONTROL.json (`received(control, serial)` reads it), so a test outside this process sees the
bytes a job sent.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tests.support.usb_profiles import profile
from tests.support.usb_sim import SimBackend, SimPrinter

log = logging.getLogger("tests.usb_sim_launcher")

POLL_SECONDS = 0.1

ControlEntry = Mapping[str, Any]


def entry(kind: str, serial: str | None = None, *, plugged: bool = True) -> dict[str, Any]:
    """One CONTROL.json entry (the profile's own serial when none is given)."""
    return {"profile": kind, "serial": serial or profile(kind).serial, "plugged": plugged}


def write_control(path: Path, entries: Iterable[ControlEntry]) -> None:
    """Replace CONTROL.json at once: written beside it, then renamed over it."""
    listed = [dict(item) for item in entries]
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    scratch.write_text(json.dumps(listed, indent=1))
    os.replace(scratch, path)


def received_path(control: Path, serial: str) -> Path:
    return control.parent / f"received-{serial}.bin"


def received(control: Path, serial: str) -> bytes:
    """Every byte the simulated printer `serial` has received so far (b"" for none)."""
    try:
        return received_path(control, serial).read_bytes()
    except FileNotFoundError:
        return b""


def launcher_argv(control: Path, gateway_args: Sequence[str]) -> list[str]:
    """The command line that runs `ipp-gateway GATEWAY_ARGS` behind simulated printers."""
    return [sys.executable, "-m", "tests.support.usb_sim_launcher", str(control), "--",
            *gateway_args]


class ControlledBus:
    """The simulated USB bus, kept as CONTROL.json says."""

    def __init__(self, control: Path) -> None:
        self.control = control
        self.backend = SimBackend()
        self._by_serial: dict[str, SimPrinter] = {}
        self._seen: tuple[int, int, int] | None = None
        self._files_lock = threading.Lock()

    def _stamp(self) -> tuple[int, int, int] | None:
        try:
            stat = self.control.stat()
        except FileNotFoundError:
            return None
        # The inode changes on every atomic replace, even within one mtime tick.
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    def refresh(self) -> bool:
        """Apply CONTROL.json if it changed since the last look; whether it did."""
        stamp = self._stamp()
        if stamp == self._seen:
            return False
        self._seen = stamp
        try:
            entries = json.loads(self.control.read_text()) if stamp is not None else []
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable, printers left as they were: %s", self.control, exc)
            return False
        self.apply(entries)
        return True

    def apply(self, entries: Sequence[ControlEntry]) -> None:
        wanted: dict[str, bool] = {}
        for item in entries:
            kind = profile(str(item["profile"]))
            serial = str(item.get("serial") or kind.serial)
            plugged = bool(item.get("plugged", True))
            wanted[serial] = plugged
            printer = self._by_serial.get(serial)
            if printer is None:
                printer = kind.make(serial, plugged=plugged)
                printer.on_data = self._recorder(serial)
                self._by_serial[serial] = printer
                self.backend.printers.append(printer)
                log.info("simulated %s %s added, %s", kind.name, serial,
                         "plugged in" if plugged else "unplugged")
            elif printer.plugged != plugged:
                if plugged:
                    printer.replug()
                else:
                    printer.unplug()
                log.info("simulated printer %s %s", serial,
                         "plugged in" if plugged else "unplugged")
        for serial, printer in self._by_serial.items():
            if serial not in wanted and printer.plugged:
                printer.unplug()
                log.info("simulated printer %s unplugged (no longer listed)", serial)

    def _recorder(self, serial: str) -> Any:
        path = received_path(self.control, serial)

        def record(data: bytes) -> None:
            with self._files_lock, path.open("ab") as sink:
                sink.write(data)

        return record

    def follow(self, stop: threading.Event) -> None:
        """Re-read CONTROL.json every `POLL_SECONDS` until `stop` is set."""
        while not stop.wait(POLL_SECONDS):
            try:
                self.refresh()
            except (KeyError, TypeError, AttributeError) as exc:  # a bad entry: say so, go on
                log.warning("%s: bad entry: %s", self.control, exc)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "--":
        print("usage: python -m tests.support.usb_sim_launcher CONTROL.json -- ARGS...",
              file=sys.stderr)
        return 2
    from drivers.transports import usbprinter
    from gateway.cli import main as gateway_main

    bus = ControlledBus(Path(argv[0]))
    bus.refresh()  # before the gateway starts: its first scan sees the plugged printers
    usbprinter.use_backend(bus.backend)
    stop = threading.Event()
    threading.Thread(target=bus.follow, args=(stop,), name="usb-sim-control",
                     daemon=True).start()
    try:
        return gateway_main(list(argv[2:]))
    finally:
        stop.set()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
