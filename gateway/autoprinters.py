"""USB printers set up by plugging them in, remembered in `<spool>/usb-printers.json`.

A printer set up by the hotplug monitor (gateway.hotplug) is remembered by its identity
(vendor, product and serial number), so that it keeps its name, and with the name its UUID
(`System` derives it from the name) and its jobs, across unplugging, replugging and restarts.
It is forgotten only by a person: `ipp-gateway remove NAME` marks it removed, and a removed
identity is not set up again when it comes back (`ipp-gateway add usb://...` does that).

The file lives in the spool, which the gateway's account can write after it dropped root;
the configuration file may not be writable by it. The configuration wins: a `[[printers]]`
table with the same device identity, or the same name, replaces the remembered printer, so a
wrong driver guess is corrected in the configuration and stays corrected.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from gateway.config import Config, PrinterConfig

log = logging.getLogger("gateway.autoprinters")

FILE_NAME = "usb-printers.json"
_VERSION = 1


@dataclass(frozen=True)
class RememberedPrinter:
    identity: str  # "vvvv:pppp:serial" (usb_identity)
    name: str
    device_uri: str
    driver: str
    make_and_model: str = ""
    device_id: str = ""  # the IEEE 1284 id it gave when it was set up
    reason: str = ""  # why this driver, for people (devices, the dashboard)
    removed: bool = False

    def printer_config(self) -> PrinterConfig:
        return PrinterConfig(name=self.name, device_uri=self.device_uri, driver=self.driver,
                             make_and_model=self.make_and_model)


def remembered_path(spool: Path) -> Path:
    return spool / FILE_NAME


def usb_identity(device_uri: str) -> str | None:
    """`vvvv:pppp:serial` for a `usb://vvvv:pppp[?serial=S]` URI (lower-case ids, serial as
    given; "" without one), None for any other scheme or a malformed one."""
    parts = urlsplit(device_uri)
    if parts.scheme != "usb":
        return None
    ids = (parts.netloc + parts.path).strip("/").lower()
    vendor, colon, product = ids.partition(":")
    if not colon or len(vendor) != 4 or len(product) != 4:
        return None
    try:
        int(vendor, 16), int(product, 16)
    except ValueError:
        return None
    serial = parse_qs(parts.query).get("serial", [""])[0]
    return f"{vendor}:{product}:{serial}"


def load(spool: Path) -> list[RememberedPrinter]:
    """The remembered printers; a missing file is none, a damaged one is none with a warning
    (the file is rewritten at the next plug-in)."""
    path = remembered_path(spool)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        entries = data["printers"]
        return [_entry(item) for item in entries]
    except FileNotFoundError:
        return []
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); no USB printer is remembered", path, exc)
        return []


def _entry(item: Any) -> RememberedPrinter:
    if not isinstance(item, dict):
        raise TypeError("an entry is not an object")
    known = {f.name for f in dataclasses.fields(RememberedPrinter)}
    values = {key: value for key, value in item.items() if key in known}
    for key, value in values.items():
        wanted = bool if key == "removed" else str
        if not isinstance(value, wanted):
            raise TypeError(f"{key} is not a {wanted.__name__}")
    return RememberedPrinter(**values)


def save(spool: Path, printers: Iterable[RememberedPrinter]) -> None:
    """Write the file whole: to a temporary file beside it, fsynced, renamed over it."""
    path = remembered_path(spool)
    text = json.dumps({"version": _VERSION,
                       "printers": [dataclasses.asdict(p) for p in printers]}, indent=2)
    fd, temporary = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=spool)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text + "\n")
            file.flush()
            os.fsync(file.fileno())
        _same_owner_as(spool, temporary)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _same_owner_as(spool: Path, path: str) -> None:
    """Root running `ipp-gateway remove` leaves the file to the spool's owner (the gateway's
    account), which must write it at the next plug-in."""
    if os.geteuid() != 0:
        return
    owner = spool.stat()
    os.chown(path, owner.st_uid, owner.st_gid)


def remember(spool: Path, printer: RememberedPrinter) -> None:
    """Add or replace (by identity) one printer."""
    kept = [p for p in load(spool) if p.identity != printer.identity]
    save(spool, [*kept, printer])


def forget(spool: Path, name: str) -> bool:
    """Mark the remembered printer `name` removed (`ipp-gateway remove`); False when no
    printer of that name is remembered (or it was removed already)."""
    printers = load(spool)
    found = False
    for index, printer in enumerate(printers):
        if printer.name == name and not printer.removed:
            printers[index] = dataclasses.replace(printer, removed=True)
            found = True
    if found:
        save(spool, printers)
    return found


def overriding(printer: RememberedPrinter, configured: Iterable[PrinterConfig]
               ) -> PrinterConfig | None:
    """The configured printer that replaces `printer`: same device identity or same name."""
    for config in configured:
        if config.name == printer.name or usb_identity(config.device_uri) == printer.identity:
            return config
    return None


def active(remembered: Iterable[RememberedPrinter], configured: Iterable[PrinterConfig]
           ) -> list[RememberedPrinter]:
    """The remembered printers served beside the configured ones: not removed, not
    overridden."""
    configured = tuple(configured)
    return [p for p in remembered if not p.removed and overriding(p, configured) is None]


def with_remembered(config: Config) -> Config:
    """`config` with the remembered USB printers after its own (blocking: it reads the
    spool). The built-in default printer stands in only when neither has a printer."""
    extra = active(load(config.spool), config.printers)
    if not extra:
        return config
    return dataclasses.replace(
        config, printers=(*config.printers, *(p.printer_config() for p in extra)))
