"""The device layer: one Transport class per URI scheme, as CUPS backends and PAPPL devices.

A Transport carries one job at a time: `start_job`, any number of `send_all`, then `end_job`
(returns once the device has accepted every byte) or `abort_job` (cancel; idempotent, leaves
the transport closed). Failures raise `TransportError` with an `Outcome`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, TypeVar

import trio

from drivers.errors import Outcome, TransportError, UriError
from drivers.uri import DeviceUri, UriOptions

FILE_READ = 1 << 20


@dataclass(frozen=True)
class JobInfo:
    """What a transport may need to know of the job it carries (names for LPD and PJL)."""

    job_id: int
    job_name: str = "untitled"
    user: str = "anonymous"
    document_format: str = "application/octet-stream"
    copies: int = 1
    host: str = "ipp-gateway"
    # The exact number of bytes the send_all calls will carry, when known before the job starts
    # (a raw document): LPD can then announce the data file at once instead of spooling it.
    data_length: int | None = None


@dataclass(frozen=True)
class Supply:
    """One supply as the device reports it (IPP marker-* values; RFC 3805 for the kinds)."""

    name: str  # marker-names / printer-supply-description, e.g. "Black Toner"
    kind: str  # marker-types keyword: "toner", "ink", "waste-toner", ...
    color: str  # marker-colors: "#000000", "none", ...
    level: int  # marker-levels: 0-100, or -1 (unavailable), -2 (unknown), -3 (some left)
    low: int = 0  # marker-low-levels
    high: int = 100  # marker-high-levels


@dataclass(frozen=True)
class DeviceStatus:
    """A snapshot of the device: IPP printer-state-reasons keywords and a human message,
    and its supplies where the transport can read them (IPP devices)."""

    reasons: frozenset[str] = field(default_factory=frozenset)
    message: str = ""
    online: bool = True
    supplies: tuple[Supply, ...] = ()


class Transport(ABC):
    scheme: ClassVar[str]

    def __init__(self, uri: DeviceUri) -> None:
        self.uri = uri

    @classmethod
    def settings_from_uri(cls, uri: DeviceUri) -> object:
        """Every setting `uri` gives this transport, checked by the transport's own rules:
        UriError (naming the part at fault) for anything it would not use, unknown options
        included. The constructor and `check_device_uri` both call it, so a URI that passes
        the check never stops the printer on its first job. (This default: no options.)"""
        UriOptions(uri, f"{uri.scheme}://").finish()
        return None

    @abstractmethod
    async def start_job(self, job: JobInfo) -> None: ...

    def set_document_format(self, fmt: str) -> None:
        """The MIME type of the bytes the coming `send_all` calls carry (the driver's output,
        which may differ from `JobInfo.document_format`, the job's source format): the
        pipeline tells it before the first byte. Only a transport whose protocol names the
        format (IPP's document-format) cares; the others ignore it."""
        return None

    @abstractmethod
    async def send_all(self, data: bytes | bytearray | memoryview) -> None: ...

    async def send_file(self, path: Path, on_sent: Callable[[int], None]) -> None:
        """Send the whole file at `path` (a pass-through document), as `send_all` would, and
        report each piece sent. The TCP transports override this to read the page cache in
        place (tcp.send_file) under their own timeouts."""
        async with await trio.open_file(path, "rb") as file:
            # Big reads: each one is a worker-thread round trip.
            while chunk := await file.read(FILE_READ):
                await self.send_all(chunk)
                on_sent(len(chunk))

    @abstractmethod
    async def end_job(self) -> None:
        """Finish the job; when this returns the device holds every byte.

        Once it returns, the job is done and must never be sent again. Once the device has
        accepted every byte, it does not raise: a peer that then closes without its last
        acknowledgment (LPD) or resets instead of closing (AppSocket) still means success, as
        in CUPS. If it raises, the device may hold part of the job, never all of it, and the
        error's outcome says what to do. Either way the transport is closed afterwards.
        """

    @abstractmethod
    async def abort_job(self) -> None:
        """Stop the current job, if any; idempotent."""

    async def query_status(self) -> DeviceStatus | None:
        """Ask the device how it is, where the protocol allows; None = cannot tell."""
        return None

    async def device_id(self) -> str | None:
        """The IEEE 1284 device id, where the device reports one."""
        return None


def bad_uri(exc: UriError) -> TransportError:
    """A constructor's answer to a URI its `settings_from_uri` refused: the printer stops until
    its admin fixes the URI; the job waits."""
    return TransportError(str(exc), Outcome.STOP_PRINTER, reason="other")


_T = TypeVar("_T", bound=type[Transport])
_REGISTRY: dict[str, type[Transport]] = {}


def register_transport(*schemes: str) -> Callable[[_T], _T]:
    def decorate(cls: _T) -> _T:
        for scheme in schemes:
            _REGISTRY[scheme] = cls
        return cls

    return decorate


_builtins_loaded = False


def _load_builtin_transports() -> None:
    # Imported for their registration side effect; kept lazy so `drivers` imports stay cheap.
    # (A flag, not an empty registry: importing one transport module must not hide the rest.)
    global _builtins_loaded
    if _builtins_loaded:
        return
    import importlib
    import pkgutil

    import drivers.transports as package

    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
    _builtins_loaded = True


def transport_class(uri: DeviceUri) -> type[Transport]:
    _load_builtin_transports()
    try:
        return _REGISTRY[uri.scheme]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UriError(
            f"device URI {uri.redacted()!r}: no transport for scheme {uri.scheme!r} "
            f"(known: {known})"
        ) from None


def check_device_uri(uri: DeviceUri | str) -> None:
    """Raise UriError, in words, unless the transport for `uri` would accept it as it is: a
    known scheme, a host where one is needed, the LPD queue, the serial device path, and every
    option known to that transport and well-formed. No network and no device I/O (a serial
    path is looked at with stat, to refuse a directory or a regular file)."""
    parsed = DeviceUri.parse(uri) if isinstance(uri, str) else uri
    transport_class(parsed).settings_from_uri(parsed)


def open_transport(uri: DeviceUri | str) -> Transport:
    parsed = DeviceUri.parse(uri) if isinstance(uri, str) else uri
    return transport_class(parsed)(parsed)


def known_schemes() -> list[str]:
    _load_builtin_transports()
    return sorted(_REGISTRY)
