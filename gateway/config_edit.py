"""Changing the configuration file's printers in place: add, change, remove, keeping every
comment and the layout of what is not touched (round-trip TOML through tomlkit).

Every change is checked by the same validation a start uses (`config_from_dict` on the
whole new document) before anything is written, and written atomically (a temporary file
in the same directory, fsynced, renamed over the old one with its mode). A running gateway
applies it by reloading (SIGHUP): the dashboard's form and `ipp-gateway add` (issue 14) both
come here; `add` may also create the file (`add_printer(..., new_file=HEADER)`). Blocking
(file I/O): call from a worker thread.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import tomlkit
from tomlkit.items import AoT, Table
from tomlkit.toml_document import TOMLDocument

from gateway.config import Config, ConfigError, config_from_dict

# What the form may set on a printer; other keys of an existing table are kept as they are.
EDITABLE = ("name", "device", "driver", "info", "location", "make_and_model", "print")
# What `ipp-gateway add` also writes for an IPP device, from its own answer (drivers.ippcaps).
SETUP_KEYS = (*EDITABLE, "media", "media_default", "duplex", "color", "resolutions", "formats")
# A configuration file made by `add_printer(..., new_file=...)`: readable by all, as
# deploy/install.sh's is by the gateway's group (it holds no secret: passwords are in the spool).
NEW_FILE_MODE = 0o644


class EditError(Exception):
    """A change that cannot be made: the message says why, in words for the form."""


def _read(path: Path, new_file: str | None = None) -> TOMLDocument:
    try:
        if new_file is not None and not path.exists():
            return tomlkit.parse(new_file)
        return tomlkit.parse(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EditError(f"{path}: cannot read ({exc.strerror})") from None
    except tomlkit.exceptions.ParseError as exc:
        raise EditError(f"{path}: not valid TOML ({exc})") from None


def _printers(document: TOMLDocument) -> AoT:
    printers = document.get("printer")
    if printers is None:
        if document.as_string() and not document.as_string().endswith("\n\n"):
            document.add(tomlkit.nl())  # the first table set off from what precedes it
        printers = tomlkit.aot()
        document.append("printer", printers)
    if not isinstance(printers, AoT):
        raise EditError("the configuration's 'printer' is not an array of tables")
    return printers


def _index(printers: AoT, name: str) -> int:
    for index, table in enumerate(printers):
        if table.get("name") == name:
            return index
    raise EditError(f"no printer named {name!r} in the configuration")


def _fields(values: Mapping[str, Any], keys: tuple[str, ...] = EDITABLE) -> dict[str, Any]:
    unknown = set(values) - set(keys)
    if unknown:
        raise EditError(f"cannot set {', '.join(sorted(unknown))} here "
                        f"(only {', '.join(keys)})")
    return {key: value for key, value in values.items() if value not in (None, "")}


def _checked(document: TOMLDocument, path: Path) -> Config:
    try:
        return config_from_dict(document.unwrap(), source=str(path))
    except ConfigError as exc:
        raise EditError(str(exc)) from None


def _write(path: Path, document: TOMLDocument) -> None:
    text = tomlkit.dumps(document)
    try:
        mode = path.stat().st_mode & 0o7777
    except FileNotFoundError:
        mode = NEW_FILE_MODE
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def add_printer(path: Path, values: Mapping[str, Any], *, new_file: str | None = None,
                keys: tuple[str, ...] = EDITABLE) -> Config:
    """Append a [[printer]] table (needs name and device); the new configuration. With
    `new_file` (TOML text, such as a comment header), a missing file is created from it;
    without, a missing file is an error. `keys` are the keys `values` may set."""
    fields = _fields(values, keys)
    if "name" not in fields or "device" not in fields:
        raise EditError("a printer needs a name and a device URI")
    document = _read(path, new_file)
    printers = _printers(document)
    if any(table.get("name") == fields["name"] for table in printers):
        raise EditError(f"a printer named {fields['name']!r} exists already")
    table = tomlkit.table()
    for key, value in fields.items():
        table[key] = value
    if len(printers):
        printers[-1].add(tomlkit.nl())  # a blank line between tables, as people write them
    printers.append(table)
    config = _checked(document, path)
    _write(path, document)
    return config


def change_printer(path: Path, name: str, values: Mapping[str, Any]) -> Config:
    """Set `values` on the printer `name` (an empty value removes that key, so that its
    default applies); the new configuration. Renaming is refused: a printer's name is its
    path and its queue."""
    if "name" in values and values["name"] != name:
        raise EditError("a printer cannot be renamed: add a new one and remove this one")
    document = _read(path)
    printers = _printers(document)
    table: Table = printers[_index(printers, name)]
    for key, value in values.items():
        if key not in EDITABLE:
            raise EditError(f"cannot set {key} here (only {', '.join(EDITABLE)})")
        if value in (None, ""):
            if key in ("name", "device"):
                raise EditError(f"a printer needs its {key}")
            table.pop(key, None)
        else:
            table[key] = value
    config = _checked(document, path)
    _write(path, document)
    return config


def remove_printer(path: Path, name: str, *, allow_last: bool = False) -> Config:
    """Remove the printer `name` (its finished jobs stay in the spool's history until
    trimmed; its unfinished ones are kept as orphans, which `ipp-gateway jobs` lists). The
    last one only with `allow_last` (`ipp-gateway remove`: a file of no printer is a fresh
    install's, served by the built-in default printer or the remembered USB printers); the
    form refuses it, as the page would then show a printer nobody added."""
    document = _read(path)
    printers = _printers(document)
    index = _index(printers, name)
    if len(printers) == 1 and not allow_last:
        raise EditError("the last printer cannot be removed: add another first")
    del printers[index]
    config = _checked(document, path)
    _write(path, document)
    return config
