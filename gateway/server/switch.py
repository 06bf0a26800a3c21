"""An HttpApp that can be replaced while the server runs (a configuration reload).

The swap waits for the requests in flight to finish and holds new ones at the door meanwhile,
so a job being received is committed by the System that created it before the next System
reads the spool: no request is served half by one configuration and half by the other.

A request is in flight while its handler runs. A streamed body and a connection taken over
by an `Upgrade` (a WebSocket) run after that, uncounted: they are not requests, they could
hold a reload forever, and whatever they follow (the old System's bus) ends with it.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

from gateway.server.http import HttpApp, HttpRequest, HttpResult, RequestBody


class SwitchableApp:
    def __init__(self, app: HttpApp) -> None:
        self.current = app
        self._in_flight = 0
        self._idle = trio.Event()
        self._idle.set()
        self._open = trio.Event()
        self._open.set()

    async def handle(self, request: HttpRequest, body: RequestBody) -> HttpResult:
        app = await self._enter()
        try:
            return await app.handle(request, body)
        finally:
            self._leave()

    # Plain calls, not a context manager, and no wait while open: this runs on every request
    # (a checkpoint and a generator-based context manager cost ~45 us each time).
    async def _enter(self) -> HttpApp:
        while not self._open.is_set():
            await self._open.wait()
        self._in_flight += 1
        if self._in_flight == 1:
            self._idle = trio.Event()
        return self.current

    def _leave(self) -> None:
        self._in_flight -= 1
        if not self._in_flight:
            self._idle.set()

    @asynccontextmanager
    async def closed(self, drain_timeout: float = math.inf) -> AsyncIterator[bool]:
        """Hold new requests and wait (at most `drain_timeout` s) for those in flight; yields
        whether they all ended. Set `current` inside; requests go on when the block exits."""
        self._open = trio.Event()
        try:
            with trio.move_on_after(drain_timeout):
                await self._idle.wait()
            yield not self._in_flight
        finally:
            self._open.set()

    @property
    def in_flight(self) -> int:
        return self._in_flight
