"""Printer operations: Get-Printer-Attributes (cached, pre-encoded), Pause, Resume, Identify.

The thin shell around `attributes`: it reads the live printer into pure data (its
`Capabilities`, a `PrinterDescription`, a `PrinterSnapshot`) and caches what those encode to.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Set
from dataclasses import dataclass
from functools import partial
from weakref import WeakKeyDictionary

from drivers import Capabilities
from drivers import accepted_formats as planned_formats
from gateway.config import Config
from gateway.core.events import PrinterSnapshot
from gateway.core.printer import Printer
from gateway.errors import IppError
from gateway.policy import needs_login
from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server import values
from gateway.server.attributes import (
    IDENTIFY_ACTIONS,
    PrinterDescription,
    addressed_attributes,
    is_job_template,
    live_attributes,
    media_col_database,
    static_attributes,
)
from gateway.server.operations import Call, Reply, printable, requested_attributes
from ippwire.enums import GroupTag, Status, ValueTag
from ippwire.model import Attribute
from ippwire.writer import encode_attribute

log = logging.getLogger("gateway.ipp")
T = ValueTag
SELECTION_CACHE_LIMIT = 64


@dataclass
class EncodedAttribute:
    name: str
    data: bytes
    template: bool


def _encode(attrs: list[Attribute]) -> list[EncodedAttribute]:
    return [EncodedAttribute(a.name, encode_attribute(a), is_job_template(a.name)) for a in attrs]


# (requested-attributes, scheme, host, port, path): one encoded selection each
SelectionKey = tuple[frozenset[str], str, str, int, str]


class PrinterAttributeCache:
    """Encoded attributes of one printer: the static part once, each selection of them with
    the URIs once per requested-attributes set and scheme and Host, the live part once per
    change. Built from pure data only; it holds no live printer."""

    def __init__(self, caps: Capabilities, description: PrinterDescription) -> None:
        self.capabilities = caps
        self.description = description
        self.static = _encode(static_attributes(caps, description))
        self.database = _encode([media_col_database(caps)])
        self._selections: dict[SelectionKey, bytes] = {}
        self._live: tuple[tuple[object, ...], list[EncodedAttribute]] | None = None

    def selection(self, requested: frozenset[str], scheme: str, host: str, port: int,
                  path: str, *, tls: bool = True) -> bytes:
        key = (requested, scheme, host, port, path)  # `tls` is fixed until a restart
        cached = self._selections.get(key)
        if cached is None:
            if len(self._selections) >= SELECTION_CACHE_LIMIT:
                self._selections.clear()
            description, template, database = _wanted(requested)
            addressed = _encode(addressed_attributes(
                scheme, host, port, path, tls=tls,
                authentication=self.description.authentication))
            cached = b"".join(
                e.data for e in (*self.static, *addressed)
                if e.name in requested or (template if e.template else description))
            if database:
                cached += b"".join(e.data for e in self.database)
            self._selections[key] = cached
        return cached

    def live(self, snapshot: PrinterSnapshot, *, now: float, started_at: float,
             up_time: int) -> list[EncodedAttribute]:
        """Live attributes, re-encoded only when a value in them can have changed."""
        key = (int(now), up_time, started_at, snapshot)
        if self._live is None or self._live[0] != key:
            self._live = (key, _encode(live_attributes(snapshot, now=now, started_at=started_at,
                                                       up_time=up_time)))
        return self._live[1]


# Weak: a reload replaces the printers, and their caches go with them.
_caches: WeakKeyDictionary[Printer, PrinterAttributeCache] = WeakKeyDictionary()


def accepted_formats(printer: Printer) -> tuple[str, ...]:
    """document-format-supported: what the conversion planner can print on this printer."""
    return planned_formats(printer.driver, printer.capabilities)


def describe(printer: Printer, config: Config, operations: tuple[int, ...]
             ) -> PrinterDescription:
    """The printer's configuration as `attributes` takes it, with the server-wide limits of
    `config`; `operations` are those the dispatcher's table answers."""
    return PrinterDescription(
        name=printer.name, uuid=printer.uuid, info=printer.config.info,
        location=printer.config.location, formats=accepted_formats(printer),
        operations=operations,
        max_job_bytes=config.max_job_bytes,
        multiple_operation_timeout=config.multiple_operation_timeout,
        fixed_options=printer.driver.fixed(printer.capabilities),
        authentication="basic" if config.auth.enabled and needs_login(printer.config.print_by)
        else "none")


def cache_for(printer: Printer, config: Config, operations: tuple[int, ...]
              ) -> PrinterAttributeCache:
    cache = _caches.get(printer)
    if (cache is None or cache.capabilities is not printer.capabilities
            or cache.description.operations != operations):
        cache = _caches[printer] = PrinterAttributeCache(printer.capabilities,
                                                         describe(printer, config, operations))
    return cache


def _wanted(requested: Set[str]) -> tuple[bool, bool, bool]:
    everything = "all" in requested
    return (everything or "printer-description" in requested,
            everything or "job-template" in requested,
            "media-col-database" in requested)


async def get_printer_attributes(call: Call) -> Reply:
    printer = call.require_printer()
    requested = requested_attributes(call, ("all",))
    _check_document_format(call, printer)
    cache = cache_for(printer, call.system.config, call.operations.supported)
    description = _wanted(requested)[0]
    endpoint = call.endpoint
    items: list[Attribute | bytes] = [cache.selection(
        frozenset(requested), endpoint.scheme, endpoint.host, endpoint.port,
        call.system.printer_path(printer), tls=call.system.config.tls)]
    live = cache.live(printer.snapshot(), now=time.time(), started_at=call.system.started_at,
                      up_time=call.system.up_time())
    items += [item.data for item in live if description or item.name in requested]
    return Reply(groups=[(GroupTag.PRINTER, items)])


def _check_document_format(call: Call, printer: Printer) -> None:
    """RFC 8011 4.2.5.1: a document-format not in document-format-supported is refused with
    client-error-document-format-not-supported. A supported format gets the same answer
    as any other (a job's options are checked against its own format when it is created)."""
    fmt = call.value("document-format", values.single_mime_type)
    if fmt is not None and fmt not in accepted_formats(printer):
        attr = call.attr("document-format")
        raise IppError(Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED,
                       f"document-format {fmt!r} is not supported by printer {printer.name}",
                       [attr] if attr is not None else [])


async def pause_printer(call: Call) -> Reply:
    call.require_printer().pause()
    return Reply()


async def resume_printer(call: Call) -> Reply:
    call.require_printer().resume()
    return Reply()


async def identify_printer(call: Call) -> Reply:
    printer = call.require_printer()
    actions = call.value("identify-actions", partial(values.keywords, allowed=IDENTIFY_ACTIONS))
    message = call.value("message", partial(values.single_text, max_octets=127))
    CLIENT_LOG_LIMITER.log(
        log, logging.INFO, client_key(call.endpoint.client),
        "printer %s: identify requested by %s (%s)%s", printer.name, printable(call.user),
        ", ".join(actions or ["sound"]), f": {printable(message)}" if message else "")
    return Reply()
