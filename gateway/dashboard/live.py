"""The dashboard's live feed: one WebSocket per open page, fed from the event bus.

On connect the page gets a snapshot (printers, jobs, server, who it is), then one message
per batch of bus events. Batches are what keeps a slow browser from costing anything:
- publishing never waits (the bus), and this session's queue coalesces a job's progress;
- a page gets at most one message per MIN_INTERVAL, the first at once, later ones
  gathering what came meanwhile (a job's progress replaced by its newer news);
- an update is encoded once for all the pages that see it alike (anonymous ones, say);
- a page whose queue overflowed (`missed`) gets a fresh snapshot instead of the gap;
- a page that takes longer than SEND_TIMEOUT to take one message is closed (it reconnects
  and starts again from a snapshot).

The page may send {"type": "resync"} (after its own reconnect) or {"type": "login",
"token": ...} (a session token from /api/login, gateway.dashboard.session) to see as that
user from then on; anything else is ignored.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

from gateway.core.events import (
    EVENT_KINDS,
    Event,
    JobAttempt,
    JobProgress,
    PrinterConfigChanged,
    job_id_of,
)
from gateway.core.store import job_snapshot
from gateway.core.system import System
from gateway.dashboard.session import Sessions
from gateway.dashboard.view import Json, ServerInfo, event_message, job_view, printer_view
from gateway.privacy import Viewer
from gateway.server.http import HttpRequest

log = logging.getLogger("gateway.dashboard")

QUEUE = 256  # bus events held for one page before it is resynced
SHOWN_KINDS = tuple(kind for kind in EVENT_KINDS if kind != JobAttempt.kind)  # reports: no
SEND_TIMEOUT = 10.0  # seconds a page may take to take one message
# A page gets at most one message per MIN_INTERVAL: the first change after a quiet spell
# goes out at once; changes that come faster are gathered into the next message, and a
# job's progress is replaced by its newer news within one message.
MIN_INTERVAL = 0.1
ENCODED_CACHE = 512  # encoded updates kept for the pages that see them alike
FINISHED_SHOWN = 50  # finished jobs in a snapshot, newest first


def newest_news(batch: list[Event]) -> list[Event]:
    """`batch` without the progress of a job that has newer news in it (its state or
    progress later in the batch carries the same counters, and more)."""
    last_of_job: dict[int, int] = {}
    for index, event in enumerate(batch):
        job_id = job_id_of(event)
        if job_id is not None:
            last_of_job[job_id] = index
    return [event for index, event in enumerate(batch)
            if not (isinstance(event, JobProgress) and last_of_job[event.job.id] != index)]


def snapshot(system: System, viewer: Viewer, server: ServerInfo) -> Json:
    """Everything the page shows, as of `system.store.revision`."""
    printers = []
    for printer in system.printers.values():
        config = printer.config
        printers.append(printer_view(
            printer.snapshot(), device_uri=config.device_uri, driver=config.driver,
            make_and_model=printer.capabilities.make_and_model, location=config.location,
            info=config.info, path=system.printer_path(printer)))
    jobs = sorted(system.jobs.values(), key=lambda j: j.id, reverse=True)
    active = [j for j in jobs if not j.state.is_terminal]
    finished = [j for j in jobs if j.state.is_terminal][:FINISHED_SHOWN]
    return {
        "type": "snapshot", "revision": system.store.revision,
        "viewer": {"user": viewer.user, "admin": viewer.is_admin,
                   "authenticated": viewer.authenticated},
        "server": server.as_json(),
        "printers": printers,
        "jobs": [job_view(job_snapshot(j), viewer) for j in [*active, *finished]],
    }


class LiveFeed:
    """The WebSocket session of the dashboard (a `Session` for websocket_route)."""

    def __init__(self, system: System, sessions: Sessions,
                 server: Callable[[], ServerInfo], viewer_of: Callable[[HttpRequest], Viewer]
                 ) -> None:
        self.system = system
        self.sessions = sessions
        self.server = server
        self.viewer_of = viewer_of
        self.open_pages = 0
        self._encoded: dict[tuple[int, str, int, Viewer], str | None] = {}

    def encoded(self, event: Event, viewer: Viewer) -> str | None:
        """The update `event` makes for `viewer`, as JSON text (None: not shown), encoded
        once for every page whose viewer is the same."""
        job_id = job_id_of(event) or 0
        key = (event.revision, event.kind, job_id, viewer)
        if key in self._encoded:
            return self._encoded[key]
        message = event_message(event, viewer)
        text = None if message is None else json.dumps(message, separators=(",", ":"))
        if len(self._encoded) >= ENCODED_CACHE:
            self._encoded.clear()  # old revisions are not asked for again
        self._encoded[key] = text
        return text

    async def __call__(self, ws: WebSocketConnection, request: HttpRequest) -> None:
        self.open_pages += 1
        page = _Page(self, ws, self.viewer_of(request))
        try:
            await page.run()
        except* ConnectionClosed:
            pass  # the page went away, or was closed as too slow: it reconnects if it can
        finally:
            self.open_pages -= 1


class _Page:
    def __init__(self, feed: LiveFeed, ws: WebSocketConnection, viewer: Viewer) -> None:
        self.feed = feed
        self.ws = ws
        self.viewer = viewer
        self.resync = trio.Event()

    async def run(self) -> None:
        with self.feed.system.bus.subscribe(maxlen=QUEUE, kinds=SHOWN_KINDS) as events:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._read)
                try:
                    await self._send_snapshot()
                    noted = events.missed
                    last_sent = -MIN_INTERVAL
                    while True:
                        first = await self._next(events)
                        if first is None:  # resync asked for
                            await self._send_snapshot()
                            noted = events.missed
                            continue
                        # At once after a quiet spell, else at the next interval; either way
                        # what was published alongside comes too.
                        await trio.sleep_until(max(trio.current_time(),
                                                   last_sent + MIN_INTERVAL))
                        batch = newest_news([first, *events.drain()])
                        if events.missed != noted or self.resync.is_set():
                            noted = events.missed
                            await self._send_snapshot()
                            continue
                        if any(isinstance(e, PrinterConfigChanged) for e in batch):
                            await self._send_snapshot()
                            continue
                        parts = [text for text in (self.feed.encoded(e, self.viewer)
                                                   for e in batch) if text is not None]
                        if parts:
                            last_sent = trio.current_time()
                            await self._send_text('{"type":"events","events":['
                                                  + ",".join(parts) + "]}")
                finally:
                    nursery.cancel_scope.cancel()

    async def _next(self, events: Any) -> Event | None:
        """The next bus event, or None when the page asked for a snapshot first."""
        result: list[Event | None] = []
        async with trio.open_nursery() as nursery:
            async def event() -> None:
                try:
                    result.append(await events.receive())
                except trio.EndOfChannel:  # the system stopped (a reload): start again
                    result.append(None)
                    await self.ws.aclose(code=1012, reason="the gateway reloaded")
                nursery.cancel_scope.cancel()

            async def asked() -> None:
                await self.resync.wait()
                result.append(None)
                nursery.cancel_scope.cancel()

            nursery.start_soon(event)
            nursery.start_soon(asked)
        return result[0] if result else None

    async def _send_snapshot(self) -> None:
        self.resync = trio.Event()
        await self._send(snapshot(self.feed.system, self.viewer, self.feed.server()))

    async def _send(self, message: Json) -> None:
        await self._send_text(json.dumps(message, separators=(",", ":")))

    async def _send_text(self, text: str) -> None:
        with trio.move_on_after(SEND_TIMEOUT) as scope:
            await self.ws.send_message(text)
        if scope.cancelled_caught:
            log.info("dashboard: a page took over %.0f s to take an update; closed",
                     SEND_TIMEOUT)
            await self.ws.aclose(code=1008, reason="too slow")
            raise ConnectionClosed(None)

    async def _read(self) -> None:
        while True:
            text = await self.ws.get_message()
            try:
                message = json.loads(text)
            except ValueError:
                continue
            if not isinstance(message, dict):
                continue
            if message.get("type") == "resync":
                self.resync.set()
            elif message.get("type") == "login" and isinstance(message.get("token"), str):
                viewer = self.feed.sessions.viewer(message["token"])
                if viewer is not None:
                    self.viewer = viewer
                    self.resync.set()
