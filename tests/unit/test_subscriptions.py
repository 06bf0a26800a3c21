"""IPP subscriptions: the pure store (gateway.core.subscriptions) and the operations
(gateway.server.ops_subscriptions) driven through `dispatch` with real codec bytes."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
import trio.testing

from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS
from gateway.config import Config, PrinterConfig
from gateway.core.events import (
    JobCompleted,
    JobCreated,
    JobProgress,
    JobSnapshot,
    JobStateChanged,
    PrinterConfigChanged,
    PrinterSnapshot,
    PrinterStateChanged,
)
from gateway.core.subscriptions import (
    DEFAULT_LEASE,
    EVENT_LIFE,
    EVENT_QUEUE,
    EVENTS_SUPPORTED,
    WAIT_LIMIT,
    SubscriptionStore,
    TooMany,
    follow,
    pending,
)
from gateway.core.system import System
from ippwire.enums import GroupTag, JobState, Operation, PrinterState, Status, ValueTag
from ippwire.model import Attribute, Group, Message
from ippwire.writer import request
from tests.support.ipp_dispatch import call, op_attr

T = ValueTag
URI = "ipp://localhost:8631/ipp/print"
NOW = 1_000_000.0


# -- the pure store ------------------------------------------------------------------------


def job(job_id: int = 1, state: JobState = JobState.PENDING, printer: str = "office",
        impressions: int = 0) -> JobSnapshot:
    return JobSnapshot(id=job_id, printer=printer, name="doc", user="alice", state=state,
                       reasons=(), message="", document_format="application/pdf",
                       impressions_completed=impressions, sheets_completed=0, bytes_sent=0,
                       attempts=0)


def printer(state: PrinterState = PrinterState.IDLE, name: str = "office") -> PrinterSnapshot:
    return PrinterSnapshot(name=name, uuid="u", state=state, reasons=("none",), message="",
                           state_changed_at=NOW, config_changed_at=NOW, paused=False,
                           queued_jobs=0)


class Events:
    """Events with increasing revisions, as the job store publishes them."""

    def __init__(self) -> None:
        self.revision = 0

    def _next(self) -> int:
        self.revision += 1
        return self.revision

    def created(self, job_id: int = 1, printer_name: str = "office") -> JobCreated:
        return JobCreated(self._next(), NOW, job(job_id, printer=printer_name))

    def state(self, job_id: int, state: JobState, previous: JobState) -> JobStateChanged:
        return JobStateChanged(self._next(), NOW, job(job_id, state), previous)

    def progress(self, job_id: int, pages: int, at: float = NOW) -> JobProgress:
        return JobProgress(self._next(), at, job(job_id, JobState.PROCESSING, impressions=pages))

    def completed(self, job_id: int) -> JobCompleted:
        return JobCompleted(self._next(), NOW, job(job_id, JobState.COMPLETED),
                            JobState.PROCESSING)

    def printer_state(self, state: PrinterState) -> PrinterStateChanged:
        return PrinterStateChanged(self._next(), NOW, printer(state))


def printer_subscription(store: SubscriptionStore, *events: str, lease: int | None = None,
                         since: int = 0, name: str = "office") -> int:
    return store.add(printer=name, job_id=None, events=events, user="alice", now=NOW,
                     since_revision=since, lease=lease).id


def seen(store: SubscriptionStore, subscription_id: int) -> list[tuple[int, str]]:
    subscription = store.get(subscription_id, NOW)
    assert subscription is not None
    return [(n.sequence, n.event) for _, n in pending([subscription], {})]


def test_job_state_changed_covers_creation_and_end() -> None:
    store, events = SubscriptionStore(), Events()
    broad = printer_subscription(store, "job-state-changed")
    narrow = printer_subscription(store, "job-completed")
    for event in (events.created(1), events.state(1, JobState.PROCESSING, JobState.PENDING),
                  events.progress(1, 1), events.completed(1)):
        store.deliver(event, NOW)
    assert seen(store, broad) == [(1, "job-created"), (2, "job-state-changed"),
                                  (3, "job-completed")]
    assert seen(store, narrow) == [(1, "job-completed")]


def test_job_subscription_hears_only_its_job_and_printer_only_its_printer() -> None:
    store, events = SubscriptionStore(), Events()
    mine = store.add(printer="office", job_id=2, events=("job-created", "job-completed"),
                     user="alice", now=NOW, since_revision=0).id
    office = printer_subscription(store, "job-created", "printer-state-changed")
    store.deliver(events.created(1), NOW)
    store.deliver(events.created(2), NOW)
    store.deliver(events.created(3, printer_name="laser"), NOW)
    store.deliver(PrinterStateChanged(events._next(), NOW, printer(name="laser")), NOW)
    assert [n.source.job.id for _, n in pending([store.get(mine, NOW)], {})  # type: ignore[list-item, union-attr]
            ] == [2]
    assert len(seen(store, office)) == 2


def test_events_published_before_the_subscription_are_not_its_own() -> None:
    store, events = SubscriptionStore(), Events()
    early = events.created(1)  # published, not yet delivered when the subscription is made
    late_one = printer_subscription(store, "job-created", since=early.revision)
    store.deliver(early, NOW)
    store.deliver(events.created(2), NOW)
    assert seen(store, late_one) == [(1, "job-created")]


def test_queue_is_bounded_and_the_gap_shows() -> None:
    store, events = SubscriptionStore(), Events()
    subscription_id = printer_subscription(store, "job-created")
    for job_id in range(1, EVENT_QUEUE + 6):
        store.deliver(events.created(job_id), NOW)
    numbers = [sequence for sequence, _ in seen(store, subscription_id)]
    assert len(numbers) == EVENT_QUEUE
    assert numbers[0] == 6 and numbers[-1] == EVENT_QUEUE + 5


def test_progress_is_coalesced_under_a_new_number() -> None:
    store, events = SubscriptionStore(), Events()
    subscription_id = printer_subscription(store, "job-progress", "job-completed")
    for pages in (1, 2, 3):
        store.deliver(events.progress(1, pages), NOW)
    store.deliver(events.completed(1), NOW)
    subscription = store.get(subscription_id, NOW)
    assert subscription is not None
    notices = [n for _, n in pending([subscription], {})]
    assert [(n.sequence, n.event) for n in notices] == [(3, "job-progress"),
                                                        (4, "job-completed")]
    assert isinstance(notices[0].source, JobProgress)
    assert notices[0].source.job.impressions_completed == 3


def test_progress_every_time_interval_is_kept() -> None:
    store, events = SubscriptionStore(), Events()
    subscription = store.add(printer="office", job_id=None, events=("job-progress",),
                             user="a", now=NOW, since_revision=0, time_interval=5)
    store.deliver(events.progress(1, 1, NOW), NOW)
    store.deliver(events.progress(1, 2, NOW + 1), NOW)  # within 5 s: replaces
    store.deliver(events.progress(1, 3, NOW + 7), NOW)  # 5 s later: a notice of its own
    assert [(n.sequence, n.source.job.impressions_completed)  # type: ignore[union-attr]
            for _, n in pending([subscription], {})] == [(2, 2), (3, 3)]


def test_sequence_numbers_choose_what_is_returned() -> None:
    store, events = SubscriptionStore(), Events()
    subscription_id = printer_subscription(store, "job-created")
    for job_id in (1, 2, 3):
        store.deliver(events.created(job_id), NOW)
    subscription = store.get(subscription_id, NOW)
    assert subscription is not None
    assert [n.sequence for _, n in pending([subscription], {subscription_id: 3})] == [3]
    assert [n.sequence for _, n in pending([subscription], {subscription_id: 4})] == []


def test_printer_lease_expires_and_renews() -> None:
    store = SubscriptionStore()
    default = printer_subscription(store, "printer-state-changed")
    short = printer_subscription(store, "printer-state-changed", lease=10)
    forever = printer_subscription(store, "printer-state-changed", lease=0)
    assert store.get(default, NOW).lease == DEFAULT_LEASE  # type: ignore[union-attr]
    subscription = store.get(short, NOW + 9)
    assert subscription is not None
    assert store.renew(subscription, 20, NOW + 9) == 20
    assert store.get(short, NOW + 28) is not None
    assert store.get(short, NOW + 29) is None
    assert store.get(default, NOW + DEFAULT_LEASE) is None
    assert store.get(forever, NOW + 10 * DEFAULT_LEASE) is not None


def test_job_subscription_ends_a_while_after_its_job() -> None:
    store, events = SubscriptionStore(), Events()
    subscription = store.add(printer="office", job_id=1, events=("job-completed",),
                             user="a", now=NOW, since_revision=0)
    assert subscription.lease == 0 and subscription.expires_at is None
    store.deliver(events.completed(1), NOW + 5)
    assert subscription.complete
    assert store.get(subscription.id, NOW + 5 + EVENT_LIFE - 1) is subscription
    assert store.get(subscription.id, NOW + 5 + EVENT_LIFE) is None


def test_printer_stopped_once_then_state_changes() -> None:
    store, events = SubscriptionStore(), Events()
    subscription_id = printer_subscription(store, "printer-state-changed")
    for state in (PrinterState.STOPPED, PrinterState.STOPPED, PrinterState.IDLE):
        store.deliver(events.printer_state(state), NOW)
    assert [e for _, e in seen(store, subscription_id)] == [
        "printer-stopped", "printer-state-changed", "printer-state-changed"]


def test_removed_printer_ends_its_subscriptions() -> None:
    store, events = SubscriptionStore(), Events()
    subscription_id = printer_subscription(store, "printer-config-changed")
    store.deliver(PrinterConfigChanged(events._next(), NOW, printer(), removed=True), NOW)
    assert store.get(subscription_id, NOW) is None


def test_lost_events_leave_a_gap() -> None:
    store, events = SubscriptionStore(), Events()
    subscription_id = printer_subscription(store, "job-created")
    store.deliver(events.created(1), NOW)
    store.lost(3)
    store.deliver(events.created(2), NOW)
    assert [s for s, _ in seen(store, subscription_id)] == [1, 3]


def test_the_store_and_each_job_are_bounded() -> None:
    store = SubscriptionStore(max_subscriptions=12)
    for _ in range(10):
        store.add(printer="office", job_id=7, events=("job-completed",), user="a", now=NOW,
                  since_revision=0)
    with pytest.raises(TooMany):
        store.add(printer="office", job_id=7, events=("job-completed",), user="a", now=NOW,
                  since_revision=0)
    printer_subscription(store, "job-created")
    printer_subscription(store, "job-created")
    with pytest.raises(TooMany):
        printer_subscription(store, "job-created")


def test_events_that_are_not_ipp_events_are_passed_over() -> None:
    store = SubscriptionStore()
    printer_subscription(store, *EVENTS_SUPPORTED)
    assert store.deliver(object(), NOW) == 0  # type: ignore[arg-type]


def test_watchers_wake_on_news_and_on_cancel() -> None:
    store, events = SubscriptionStore(), Events()
    one = printer_subscription(store, "job-created")
    woken: list[str] = []
    unwatch = store.watch([one], lambda: woken.append("news"))
    store.deliver(events.created(1), NOW)
    store.cancel(one)
    assert woken == ["news", "news"]
    unwatch()
    assert store.watcher_count() == 0


# -- the operations --------------------------------------------------------------------


@pytest.fixture
def system(tmp_path: Path) -> System:
    out = tmp_path / "out"
    config = Config(spool=tmp_path / "spool",
                    printers=(PrinterConfig("office", f"file://{out}/",
                                            formats=RAW_PASSTHROUGH_FORMATS),))
    return System(config)


@pytest.fixture
async def following(system: System) -> AsyncIterator[System]:
    """The System's one bus subscriber feeding its subscriptions, as System.run starts it."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(follow, system.bus, system.subscriptions, time.time)
        yield system
        nursery.cancel_scope.cancel()


def template(*events: str, **extra: tuple[int, object]) -> Group:
    attrs = [Attribute.of("notify-pull-method", T.KEYWORD, "ippget")]
    if events:
        attrs.append(Attribute.of("notify-events", T.KEYWORD, *events))
    attrs += [Attribute.of(name, tag, value) for name, (tag, value) in extra.items()]  # type: ignore[arg-type]
    return Group(GroupTag.SUBSCRIPTION, attrs)


def with_templates(message: Message, *templates: Group) -> Message:
    message.groups.extend(templates)
    return message


def value_of(group: Group | None, name: str) -> object:
    assert group is not None
    attr = group.get(name)
    return None if attr is None else attr.value


def sub_ids(response: Message) -> list[object]:
    return [value_of(group, "notify-subscription-id")
            for group in response.groups_of(GroupTag.SUBSCRIPTION)]


async def subscribe(system: System, *events: str, user: str = "test",
                    client: str = "127.0.0.1:40000") -> int:
    message = request(Operation.CREATE_PRINTER_SUBSCRIPTIONS, printer_uri=URI, user=user)
    response = await call(system, with_templates(message, template(*events)), client=client)
    assert response.code == Status.OK, response
    subscription_id = sub_ids(response)[0]
    assert isinstance(subscription_id, int)
    return subscription_id


async def notifications(system: System, *ids: int, wait: bool = False, first: int = 1,
                        user: str = "test", client: str = "127.0.0.1:40000") -> Message:
    attrs: dict[str, tuple[int, object]] = {
        "notify-subscription-ids": (T.INTEGER, list(ids)),
        "notify-sequence-numbers": (T.INTEGER, [first] * len(ids)),
        "notify-wait": (T.BOOLEAN, wait)}
    return await call(system, request(Operation.GET_NOTIFICATIONS, printer_uri=URI, user=user,
                                      attrs=attrs), client=client)  # type: ignore[arg-type]


def events_of(response: Message) -> list[tuple[str, int]]:
    return [(str(g.get("notify-subscribed-event").value),  # type: ignore[union-attr]
             int(g.get("notify-sequence-number").value))  # type: ignore[union-attr, arg-type]
            for g in response.groups_of(GroupTag.EVENT_NOTIFICATION)]


async def test_print_job_subscription_hears_its_job_from_creation(following: System) -> None:
    system = following
    message = request(Operation.PRINT_JOB, printer_uri=URI, attrs={
        "document-format": (T.MIME_MEDIA_TYPE, "application/pdf")})
    response = await call(system, with_templates(
        message, template("job-created", "job-completed"),
        Group(GroupTag.SUBSCRIPTION, [Attribute.of("notify-recipient-uri", T.URI,
                                                   "mailto:a@example.com")])),
        b"%PDF-1.4 test")
    assert response.code == Status.OK_IGNORED_SUBSCRIPTIONS
    made, refused = response.groups_of(GroupTag.SUBSCRIPTION)
    assert value_of(refused, "notify-status-code") == Status.CLIENT_ERROR_URI_SCHEME_NOT_SUPPORTED
    subscription_id = value_of(made, "notify-subscription-id")
    assert isinstance(subscription_id, int)
    await trio.testing.wait_all_tasks_blocked()
    got = await notifications(system, subscription_id)
    assert events_of(got)[0] == ("job-created", 1)
    assert op_attr(got, "notify-get-interval") is not None


async def test_notify_wait_holds_until_an_event(following: System) -> None:
    system = following
    subscription_id = await subscribe(system, "printer-state-changed")
    answers: list[Message] = []

    async def waiting() -> None:
        answers.append(await notifications(system, subscription_id, wait=True))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiting)
        await trio.testing.wait_all_tasks_blocked()
        assert answers == [] and system.subscriptions.watcher_count() == 1
        response = await call(system, request(Operation.PAUSE_PRINTER, printer_uri=URI))
        assert response.code == Status.OK
    assert events_of(answers[0]) == [("printer-stopped", 1)]
    assert system.subscriptions.watcher_count() == 0


async def test_notify_wait_is_bounded(system: System,
                                      autojump_clock: trio.testing.MockClock) -> None:
    subscription_id = await subscribe(system, "printer-state-changed")
    started = trio.current_time()
    got = await notifications(system, subscription_id, wait=True)
    assert trio.current_time() - started == pytest.approx(WAIT_LIMIT)  # the virtual clock
    assert got.code == Status.OK and events_of(got) == []
    assert op_attr(got, "notify-get-interval") is not None


async def test_only_the_subscriber_or_an_admin_reads_events(system: System) -> None:
    remote = "192.0.2.9:5000"  # not loopback: not an administrator with auth off
    subscription_id = await subscribe(system, "job-created", user="alice", client=remote)
    bob = await notifications(system, subscription_id, user="bob", client=remote)
    assert bob.code == Status.CLIENT_ERROR_NOT_AUTHORIZED
    alice = await notifications(system, subscription_id, user="alice", client=remote)
    assert alice.code == Status.OK
    admin = await notifications(system, subscription_id, user="root")
    assert admin.code == Status.OK
    cancel = await call(system, request(
        Operation.CANCEL_SUBSCRIPTION, printer_uri=URI, user="bob",
        attrs={"notify-subscription-id": (T.INTEGER, subscription_id)}), client=remote)
    assert cancel.code == Status.CLIENT_ERROR_NOT_AUTHORIZED
    listed = await call(system, request(
        Operation.GET_SUBSCRIPTIONS, printer_uri=URI, user="bob",
        attrs={"requested-attributes": (T.KEYWORD, "all")}), client=remote)
    group = listed.group(GroupTag.SUBSCRIPTION)
    assert group is not None and group.get("notify-subscription-id") is not None
    assert group.get("notify-subscriber-user-name") is None  # private to alice


async def test_create_job_subscriptions_needs_the_owner(system: System) -> None:
    remote = "192.0.2.9:5000"
    created = await call(system, request(Operation.CREATE_JOB, printer_uri=URI, user="alice"),
                         client=remote)
    job_id = value_of(created.group(GroupTag.JOB), "job-id")
    message = request(Operation.CREATE_JOB_SUBSCRIPTIONS, printer_uri=URI, user="bob",
                      attrs={"notify-job-id": (T.INTEGER, job_id)})  # type: ignore[dict-item]
    refused = await call(system, with_templates(message, template("job-completed")),
                         client=remote)
    assert refused.code == Status.CLIENT_ERROR_NOT_AUTHORIZED
    message = request(Operation.CREATE_JOB_SUBSCRIPTIONS, printer_uri=URI, user="alice",
                      attrs={"notify-job-id": (T.INTEGER, job_id)})  # type: ignore[dict-item]
    made = await call(system, with_templates(message, template("job-completed")),
                      client=remote)
    assert made.code == Status.OK and sub_ids(made)[0] is not None
    missing = request(Operation.CREATE_JOB_SUBSCRIPTIONS, printer_uri=URI,
                      attrs={"notify-job-id": (T.INTEGER, 999)})
    assert (await call(system, with_templates(missing, template()))).code == \
        Status.CLIENT_ERROR_NOT_FOUND


async def test_bad_templates_are_refused_one_by_one(system: System) -> None:
    message = request(Operation.CREATE_PRINTER_SUBSCRIPTIONS, printer_uri=URI)
    response = await call(system, with_templates(
        message, template("no-such-event"),
        Group(GroupTag.SUBSCRIPTION, [Attribute.of("notify-events", T.KEYWORD,
                                                   "job-created")]),
        template("job-created", **{"notify-user-data": (T.OCTET_STRING, b"x" * 64)})))
    assert response.code == Status.CLIENT_ERROR_IGNORED_ALL_SUBSCRIPTIONS
    codes = [g.get("notify-status-code").value  # type: ignore[union-attr]
             for g in response.groups_of(GroupTag.SUBSCRIPTION)]
    assert codes == [Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED,
                     Status.CLIENT_ERROR_BAD_REQUEST,
                     Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED]
    none = await call(system, request(Operation.CREATE_PRINTER_SUBSCRIPTIONS,
                                       printer_uri=URI))
    assert none.code == Status.CLIENT_ERROR_BAD_REQUEST


async def test_printer_attributes_advertise_ippget(system: System) -> None:
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=URI))
    group = response.group(GroupTag.PRINTER)
    assert group is not None
    assert group.get("notify-pull-method-supported").plain == ["ippget"]  # type: ignore[union-attr]
    assert group.get("notify-events-supported").plain == list(EVENTS_SUPPORTED)  # type: ignore[union-attr]
    assert group.get("notify-schemes-supported") is None
    operations = group.get("operations-supported").plain  # type: ignore[union-attr]
    assert set(range(Operation.CREATE_PRINTER_SUBSCRIPTIONS,
                     Operation.GET_NOTIFICATIONS + 1)) <= set(operations)
