"""IPP subscriptions (RFC 3995) and their ippget event queues (RFC 3996): the pure store.

One bus subscriber (`follow`, started by the System) hands every event to `deliver`, which
turns it into a `Notice` for each subscription that asked for it. A subscription is a
printer's (all its jobs and the printer itself) or one job's. Each keeps its own queue of
at most `EVENT_QUEUE` notices, numbered by `notify-sequence-number` from 1: when the queue
is full the oldest notice goes, and the gap in the numbers tells the client. Notices stay
queued after they are read, as RFC 3996 has it: a client says which it has already seen
with notify-sequence-numbers.

A printer subscription lives for its lease (`notify-lease-duration`, 0: until cancelled);
a job subscription until its job ends, and then `EVENT_LIFE` seconds more so that the
job-completed notice can still be fetched. Expired subscriptions are dropped lazily, on the
next call that looks at the store: nothing here needs a timer.

Nothing survives a restart (CUPS keeps subscriptions on disk; a client of ours subscribes
again when it is told client-error-not-found).

Pure: no I/O, no trio. Times are wall-clock seconds passed in by the caller.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from gateway.core.events import (
    Event,
    JobCompleted,
    JobCreated,
    JobProgress,
    JobStateChanged,
    PrinterConfigChanged,
    PrinterStateChanged,
)
from ippwire.enums import JobState, PrinterState

if TYPE_CHECKING:  # the bus is Trio's; this module only iterates it
    from gateway.core.bus import EventBus

log = logging.getLogger("gateway.notify")

JOB_EVENTS = ("job-completed", "job-created", "job-progress", "job-state-changed",
              "job-stopped")
PRINTER_EVENTS = ("printer-config-changed", "printer-state-changed", "printer-stopped")
EVENTS_SUPPORTED = tuple(sorted(JOB_EVENTS + PRINTER_EVENTS))
EVENTS_DEFAULT = ("job-completed",)  # as CUPS: what a template without notify-events gets
# RFC 3995 5.3.3: a subscriber to job-state-changed also hears of the job's creation, its
# end and its stopping (the notice names the specific event); printer-state-changed
# likewise covers printer-stopped.
_COVERED_BY = {
    "job-created": "job-state-changed",
    "job-completed": "job-state-changed",
    "job-stopped": "job-state-changed",
    "printer-stopped": "printer-state-changed",
}

# The bus events notifications tell of (the bus may carry other kinds, for other readers).
IPP_EVENT_KINDS = (JobCreated.kind, JobStateChanged.kind, JobProgress.kind, JobCompleted.kind,
                   PrinterStateChanged.kind, PrinterConfigChanged.kind)
PULL_METHODS = ("ippget",)
DEFAULT_LEASE = 86400  # seconds, a printer subscription's lease when none is asked for
MAX_LEASE = 2**31 - 1
EVENT_QUEUE = 100  # notices kept per subscription
EVENT_LIFE = 60  # ippget-event-life: seconds a finished job's subscription stays readable
MAX_SUBSCRIPTIONS = 100  # in all, as CUPS' MaxSubscriptions
MAX_PER_JOB = 10
MAX_USER_DATA = 63  # octets of notify-user-data (RFC 3995 5.3.6)
GET_INTERVAL = 10  # notify-get-interval: how soon to ask again, in seconds
WAIT_LIMIT = 30.0  # the longest a Get-Notifications with notify-wait is held (as CUPS)


class TooMany(Exception):
    """No more subscriptions: the store, or the job, has its most."""


@dataclass(frozen=True, slots=True)
class Notice:
    """One event as one subscription sees it: `event` is the specific keyword
    (notify-subscribed-event), `sequence` its notify-sequence-number."""

    sequence: int
    event: str
    source: Event


@dataclass
class Subscription:
    id: int
    printer: str
    job_id: int | None  # None: a printer subscription
    events: tuple[str, ...]
    user: str  # notify-subscriber-user-name
    user_authenticated: bool = False
    user_data: bytes | None = None
    time_interval: int = 0
    natural_language: str = "en"
    lease: int = 0  # the granted notify-lease-duration; 0 with job_id: the job's life
    created_at: float = 0.0
    expires_at: float | None = None  # None: until cancelled (or its job ends)
    since_revision: int = 0  # events at or before this store revision predate it
    sequence: int = 0  # the last notify-sequence-number given out
    complete: bool = False  # its job has ended: no event will follow the queued ones
    queue: deque[Notice] = field(default_factory=lambda: deque(maxlen=EVENT_QUEUE))

    def wants(self, event: str) -> bool:
        return event in self.events or _COVERED_BY.get(event) in self.events

    def held_from(self, first: int) -> list[Notice]:
        """The queued notices numbered `first` or later."""
        return [notice for notice in self.queue if notice.sequence >= first]

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


def event_keyword(event: object, stopped_printers: set[str] | None = None) -> str | None:
    """The RFC 3995 event keyword of a bus event; None for one that is not an IPP event
    (the bus may carry more kinds than notifications tell of)."""
    if isinstance(event, JobCreated):
        return "job-created"
    if isinstance(event, JobCompleted):
        return "job-completed"
    if isinstance(event, JobProgress):
        return "job-progress"
    if isinstance(event, JobStateChanged):
        stopped = event.job.state is JobState.PROCESSING_STOPPED
        return "job-stopped" if stopped and event.previous is not JobState.PROCESSING_STOPPED \
            else "job-state-changed"
    if isinstance(event, PrinterStateChanged):
        was_stopped = stopped_printers is not None and event.printer.name in stopped_printers
        if event.printer.state is PrinterState.STOPPED and not was_stopped:
            return "printer-stopped"
        return "printer-state-changed"
    if isinstance(event, PrinterConfigChanged):
        return "printer-config-changed"
    return None


class SubscriptionStore:
    def __init__(self, *, max_subscriptions: int = MAX_SUBSCRIPTIONS,
                 queue: int = EVENT_QUEUE) -> None:
        self._subscriptions: dict[int, Subscription] = {}
        self._next_id = 1
        self._max = max_subscriptions
        self._queue = queue
        self._stopped: set[str] = set()  # printers last seen stopped: printer-stopped once
        self._watchers: dict[int, list[Callable[[], None]]] = {}
        self.delivered = 0

    def __len__(self) -> int:
        return len(self._subscriptions)

    # -- making and ending ---------------------------------------------------------------

    def add(self, *, printer: str, job_id: int | None, events: Iterable[str], user: str,
            now: float, since_revision: int, lease: int | None = None,
            user_authenticated: bool = False, user_data: bytes | None = None,
            time_interval: int = 0, natural_language: str = "en") -> Subscription:
        """A new subscription (raises TooMany). `lease` is a printer subscription's
        notify-lease-duration (None: the default; 0: until cancelled); a job subscription
        lasts as long as its job. `since_revision`: the store revision it starts after."""
        self.expire(now)
        if len(self._subscriptions) >= self._max:
            raise TooMany(f"the gateway holds its most subscriptions ({self._max})")
        if job_id is not None and sum(
                1 for s in self._subscriptions.values() if s.job_id == job_id) >= MAX_PER_JOB:
            raise TooMany(f"job {job_id} has its most subscriptions ({MAX_PER_JOB})")
        granted = 0 if job_id is not None else (DEFAULT_LEASE if lease is None else lease)
        subscription = Subscription(
            id=self._next_id, printer=printer, job_id=job_id, events=tuple(events), user=user,
            user_authenticated=user_authenticated, user_data=user_data,
            time_interval=time_interval, natural_language=natural_language, lease=granted,
            created_at=now, expires_at=now + granted if granted else None,
            since_revision=since_revision, queue=deque(maxlen=self._queue))
        self._next_id += 1
        self._subscriptions[subscription.id] = subscription
        log.info("subscription %d: created for %s %s by %s (%s)", subscription.id,
                 "job" if job_id is not None else "printer",
                 job_id if job_id is not None else printer, user, ",".join(subscription.events))
        return subscription

    def get(self, subscription_id: int, now: float) -> Subscription | None:
        self.expire(now)
        return self._subscriptions.get(subscription_id)

    def all(self, now: float) -> list[Subscription]:
        self.expire(now)
        return list(self._subscriptions.values())

    def renew(self, subscription: Subscription, lease: int | None, now: float) -> int:
        """A printer subscription's new lease from `now`; the granted duration."""
        granted = DEFAULT_LEASE if lease is None else lease
        subscription.lease = granted
        subscription.expires_at = now + granted if granted else None
        return granted

    def cancel(self, subscription_id: int) -> bool:
        subscription = self._subscriptions.pop(subscription_id, None)
        if subscription is None:
            return False
        self._wake(subscription_id)
        self._watchers.pop(subscription_id, None)
        return True

    def expire(self, now: float) -> list[int]:
        """Drop the subscriptions whose lease (or job's afterlife) ran out."""
        gone = [s.id for s in self._subscriptions.values() if s.expired(now)]
        for subscription_id in gone:
            log.info("subscription %d: expired", subscription_id)
            self.cancel(subscription_id)
        return gone

    # -- events --------------------------------------------------------------------------

    def deliver(self, event: Event, now: float) -> int:
        """Queue `event` for every subscription that asked for it; how many did."""
        keyword = event_keyword(event, self._stopped)
        if keyword is None:
            return 0
        if isinstance(event, PrinterStateChanged):
            if event.printer.state is PrinterState.STOPPED:
                self._stopped.add(event.printer.name)
            else:
                self._stopped.discard(event.printer.name)
        self.expire(now)
        reached = 0
        for subscription in self._subscriptions.values():
            if _concerns(subscription, event) and subscription.wants(keyword):
                self._queue_notice(subscription, keyword, event)
                reached += 1
        if isinstance(event, JobCompleted):
            self._job_ended(event.job.id, now)
        if isinstance(event, PrinterConfigChanged) and event.removed:
            for subscription in list(self._subscriptions.values()):
                if subscription.printer == event.printer.name:
                    self.cancel(subscription.id)
        self.delivered += reached
        return reached

    def _queue_notice(self, subscription: Subscription, keyword: str, event: Event) -> None:
        if not (isinstance(event, JobProgress) and _coalesce(subscription, event)):
            subscription.sequence += 1
            subscription.queue.append(Notice(subscription.sequence, keyword, event))
        self._wake(subscription.id)

    def lost(self, count: int) -> None:
        """The bus dropped `count` events before we read them: every subscription skips a
        sequence number, so its client sees that something is missing."""
        if count <= 0:
            return
        log.warning("notifications: %d events were lost (the bus queue overflowed)", count)
        for subscription in self._subscriptions.values():
            subscription.sequence += 1

    def _job_ended(self, job_id: int, now: float) -> None:
        for subscription in self._subscriptions.values():
            if subscription.job_id == job_id and not subscription.complete:
                subscription.complete = True
                subscription.expires_at = now + EVENT_LIFE

    # -- waiting (the caller brings the waking: a trio.Event's set, say) -----------------

    def watch(self, ids: Iterable[int], wake: Callable[[], None]) -> Callable[[], None]:
        """Call `wake` when any of the subscriptions `ids` gets a notice or ends; returns
        the function that stops watching."""
        watched = list(ids)
        for subscription_id in watched:
            self._watchers.setdefault(subscription_id, []).append(wake)

        def unwatch() -> None:
            for subscription_id in watched:
                wakers = self._watchers.get(subscription_id)
                if wakers is not None and wake in wakers:
                    wakers.remove(wake)
                    if not wakers:
                        del self._watchers[subscription_id]
        return unwatch

    def _wake(self, subscription_id: int) -> None:
        for wake in list(self._watchers.get(subscription_id, ())):
            wake()

    def watcher_count(self) -> int:
        return sum(len(w) for w in self._watchers.values())


def _concerns(subscription: Subscription, event: Event) -> bool:
    if event.revision <= subscription.since_revision:
        return False  # published before the subscription was made, delivered after
    if isinstance(event, (JobCreated, JobStateChanged, JobProgress, JobCompleted)):
        if subscription.job_id is not None:
            return event.job.id == subscription.job_id
        return event.job.printer == subscription.printer
    if isinstance(event, (PrinterStateChanged, PrinterConfigChanged)):
        return subscription.job_id is None and event.printer.name == subscription.printer
    return False


def _coalesce(subscription: Subscription, event: JobProgress) -> bool:
    """Progress is a level: a newer job-progress replaces the job's one still last in the
    queue, under a new sequence number (a client that read the old one sees the gap)."""
    if not subscription.queue:
        return False
    last = subscription.queue[-1]
    if last.event != "job-progress" or not isinstance(last.source, JobProgress) or (
            last.source.job.id != event.job.id):
        return False
    if subscription.time_interval and event.time - last.source.time >= \
            subscription.time_interval:
        return False  # the client asked to hear of progress this often: keep both
    subscription.queue.pop()
    subscription.sequence += 1
    subscription.queue.append(Notice(subscription.sequence, "job-progress", event))
    return True


def pending(subscriptions: Iterable[Subscription], first: dict[int, int]
            ) -> Iterator[tuple[Subscription, Notice]]:
    """The notices of `subscriptions` numbered from `first[id]` (1 when not given)."""
    for subscription in subscriptions:
        for notice in subscription.held_from(first.get(subscription.id, 1)):
            yield subscription, notice


async def follow(bus: EventBus, store: SubscriptionStore, clock: Callable[[], float],
                 maxlen: int = 1024) -> None:
    """The one bus subscriber that feeds every subscription, until cancelled."""
    with bus.subscribe(maxlen=maxlen, kinds=IPP_EVENT_KINDS) as events:
        async for event in events:
            if events.missed:
                store.lost(events.missed)
                events.missed = 0
            try:
                store.deliver(event, clock())
            except Exception:  # a bug here must not take the printers down with it
                log.exception("notifications: could not deliver %s", type(event).__name__)
