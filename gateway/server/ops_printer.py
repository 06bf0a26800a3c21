"""Printer operations: Get-Printer-Attributes (cached, pre-encoded), Pause, Resume, Identify."""

from __future__ import annotations

import logging
import time
from collections.abc import Set
from dataclasses import dataclass
from functools import partial

from drivers import accepted_formats as planned_formats
from gateway.core.printer import Printer
from gateway.ipp.enums import GroupTag, Operation, ValueTag
from gateway.ipp.model import Attribute
from gateway.ipp.writer import encode_attribute
from gateway.ratelimit import CLIENT_LOG_LIMITER, client_key
from gateway.server import values
from gateway.server.attributes import (
    IDENTIFY_ACTIONS,
    addressed_attributes,
    is_job_template,
    live_attributes,
    media_col_database,
    static_attributes,
)
from gateway.server.operations import Call, Reply, handles, printable, requested_attributes

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


class PrinterAttributeCache:
    """Encoded attributes of one printer: the static part once, the URIs once per Host, each
    selection of them once per requested-attributes set, the live part once per change."""

    def __init__(self, printer: Printer, formats: tuple[str, ...]) -> None:
        self.printer = printer
        timeout = printer.system.config.multiple_operation_timeout
        self.static = _encode(static_attributes(printer, formats=formats,
                                                multiple_operation_timeout=timeout))
        self.database = _encode([media_col_database(printer)])
        self._selections: dict[tuple[frozenset[str], str, int, str], bytes] = {}
        self._live: tuple[tuple[object, ...], list[EncodedAttribute]] | None = None

    def selection(self, requested: frozenset[str], host: str, port: int, path: str) -> bytes:
        key = (requested, host, port, path)
        cached = self._selections.get(key)
        if cached is None:
            if len(self._selections) >= SELECTION_CACHE_LIMIT:
                self._selections.clear()
            description, template, database = _wanted(requested)
            addressed = _encode(addressed_attributes(self.printer, host, port, path))
            cached = b"".join(
                e.data for e in (*self.static, *addressed)
                if e.name in requested or (template if e.template else description))
            if database:
                cached += b"".join(e.data for e in self.database)
            self._selections[key] = cached
        return cached

    def live(self) -> list[EncodedAttribute]:
        """Live attributes, re-encoded only when a value in them can have changed."""
        printer = self.printer
        key = (int(time.time()), printer.state, printer.message, printer.accepting,
               printer.state_changed_at, tuple(printer.state_reasons), printer.system.jobs_revision)
        if self._live is None or self._live[0] != key:
            self._live = (key, _encode(live_attributes(printer)))
        return self._live[1]


_caches: dict[int, PrinterAttributeCache] = {}


def accepted_formats(printer: Printer) -> tuple[str, ...]:
    """document-format-supported: what the conversion planner can print on this printer."""
    return planned_formats(printer.driver, printer.capabilities)


def cache_for(printer: Printer) -> PrinterAttributeCache:
    cache = _caches.get(id(printer))
    if cache is None or cache.printer is not printer:
        cache = _caches[id(printer)] = PrinterAttributeCache(printer, accepted_formats(printer))
    return cache


def _wanted(requested: Set[str]) -> tuple[bool, bool, bool]:
    everything = "all" in requested
    return (everything or "printer-description" in requested,
            everything or "job-template" in requested,
            "media-col-database" in requested)


@handles(Operation.GET_PRINTER_ATTRIBUTES)
async def get_printer_attributes(call: Call) -> Reply:
    printer = call.require_printer()
    requested = requested_attributes(call, ("all",))
    call.value("document-format", values.single_mime_type)
    cache = cache_for(printer)
    description = _wanted(requested)[0]
    items: list[Attribute | bytes] = [cache.selection(
        frozenset(requested), call.endpoint.host, call.endpoint.port,
        call.system.printer_path(printer))]
    items += [live.data for live in cache.live() if description or live.name in requested]
    return Reply(groups=[(GroupTag.PRINTER, items)])


@handles(Operation.PAUSE_PRINTER)
async def pause_printer(call: Call) -> Reply:
    call.require_printer().pause()
    return Reply()


@handles(Operation.RESUME_PRINTER)
async def resume_printer(call: Call) -> Reply:
    call.require_printer().resume()
    return Reply()


@handles(Operation.IDENTIFY_PRINTER)
async def identify_printer(call: Call) -> Reply:
    printer = call.require_printer()
    actions = call.value("identify-actions", partial(values.keywords, allowed=IDENTIFY_ACTIONS))
    message = call.value("message", partial(values.single_text, max_octets=127))
    CLIENT_LOG_LIMITER.log(
        log, logging.INFO, client_key(call.endpoint.client),
        "printer %s: identify requested by %s (%s)%s", printer.name, printable(call.user),
        ", ".join(actions or ["sound"]), f": {printable(message)}" if message else "")
    return Reply()
