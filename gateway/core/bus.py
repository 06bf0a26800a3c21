"""The in-process event bus: the store publishes, subscribers read at their own pace.

Publishing never waits: each subscriber has its own bounded queue. When a queue is full, a
newer `JobProgress` replaces the older one of the same job still queued (progress is a level,
not a history); failing that, the oldest event is dropped and counted in `missed`, so a slow
subscriber (a browser on a phone, a stalled notification client) can tell it must resync
from a snapshot, and the printer never waits for it.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

import trio

from gateway.core.events import Event, JobProgress, job_id_of

log = logging.getLogger("gateway.bus")

DEFAULT_QUEUE = 256


class Subscription:
    """One subscriber's bounded queue; iterate it (`async for event in subscription`)."""

    def __init__(self, bus: EventBus, maxlen: int, kinds: frozenset[str] | None,
                 accept: Callable[[Event], bool] | None) -> None:
        self._bus = bus
        self._queue: deque[Event] = deque()
        self._maxlen = max(1, maxlen)
        self._kinds = kinds
        self._accept = accept
        self._ready = trio.Event()
        self.missed = 0  # events dropped because this subscriber fell behind
        self.closed = False

    def _offer(self, event: Event) -> None:
        if (self._kinds is not None and event.kind not in self._kinds) or (
                self._accept is not None and not self._accept(event)):
            return
        if isinstance(event, JobProgress) and self._replace_progress(event):
            return
        if len(self._queue) >= self._maxlen:
            self._queue.popleft()
            self.missed += 1
        self._queue.append(event)
        self._ready.set()

    def _replace_progress(self, event: JobProgress) -> bool:
        """Coalesce: the job's older progress still queued (and nothing of the job after it)
        gives way to this one, keeping the job's events in order."""
        for index in range(len(self._queue) - 1, -1, -1):
            queued = self._queue[index]
            if job_id_of(queued) == event.job.id:
                if isinstance(queued, JobProgress):
                    self._queue[index] = event
                    return True
                return False
        return False

    def pending(self) -> int:
        return len(self._queue)

    def get_nowait(self) -> Event | None:
        """The next queued event, or None when the queue is empty."""
        return self._queue.popleft() if self._queue else None

    async def receive(self) -> Event:
        """The next event, waiting for one; raises trio.EndOfChannel once closed and empty."""
        while not self._queue:
            if self.closed:
                raise trio.EndOfChannel
            self._ready = trio.Event()
            await self._ready.wait()
        return self._queue.popleft()

    def drain(self) -> list[Event]:
        events = list(self._queue)
        self._queue.clear()
        return events

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._bus._forget(self)
            self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Event:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


class EventBus:
    def __init__(self) -> None:
        self._subscribers: list[Subscription] = []
        self.published = 0
        self.closed = False

    def subscribe(self, *, maxlen: int = DEFAULT_QUEUE, kinds: Iterable[str] | None = None,
                  accept: Callable[[Event], bool] | None = None) -> Subscription:
        """A new subscription to events published from now on: only `kinds` (by `Event.kind`)
        when given, and only those `accept` returns True for. Close it (or use it as a
        context manager) when done."""
        subscription = Subscription(self, maxlen, None if kinds is None else frozenset(kinds),
                                    accept)
        if self.closed:  # nothing will come: its reader sees the end at once
            subscription.close()
        else:
            self._subscribers.append(subscription)
        return subscription

    def close(self) -> None:
        """End every subscription (its reader gets trio.EndOfChannel once it has read what
        was queued), and any made later: the System publishing here has stopped."""
        self.closed = True
        for subscription in list(self._subscribers):
            subscription.close()

    def publish(self, event: Event) -> None:
        """Hand `event` to every subscriber; never waits."""
        self.published += 1
        for subscription in self._subscribers:
            subscription._offer(event)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    def _forget(self, subscription: Subscription) -> None:
        if subscription in self._subscribers:
            self._subscribers.remove(subscription)
