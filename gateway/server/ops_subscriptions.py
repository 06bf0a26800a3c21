"""Subscription operations (RFC 3995) with ippget pull delivery (RFC 3996):
Create-Printer-Subscriptions, Create-Job-Subscriptions, Get-Subscription-Attributes,
Get-Subscriptions, Renew-Subscription, Cancel-Subscription, Get-Notifications, and the
subscription templates a Print-Job or Create-Job carries.

The store is pure (gateway.core.subscriptions); this is its IPP face and the one place that
waits (notify-wait), on a trio.Event the store's watch sets.

Who may do what, as CUPS' default policy: anyone may subscribe to a printer; a job's
subscriptions are its owner's (or an administrator's) to make; a subscription is its
subscriber's (notify-subscriber-user-name) or an administrator's to read events from, renew
or cancel. Others may list it, without the values CUPS keeps private by default.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from functools import partial
from typing import TypeVar

import trio

from gateway.authority import url
from gateway.core.events import (
    Event,
    JobCompleted,
    JobCreated,
    JobProgress,
    JobStateChanged,
    PrinterConfigChanged,
    PrinterStateChanged,
)
from gateway.core.job import Job
from gateway.core.subscriptions import (
    EVENTS_DEFAULT,
    EVENTS_SUPPORTED,
    GET_INTERVAL,
    MAX_LEASE,
    MAX_USER_DATA,
    PULL_METHODS,
    WAIT_LIMIT,
    Notice,
    Subscription,
    SubscriptionStore,
    TooMany,
    pending,
)
from gateway.core.system import PRINT_PATH
from gateway.errors import BadRequest, IppError, NotFound, NotPossible
from gateway.policy import JobOwner, Need, Outcome, decide
from gateway.server import values
from gateway.server.attributes import ipp_datetime
from gateway.server.operations import Call, Reply, printable, requested_attributes
from gateway.server.values import INT32_MAX, BadValue
from ippwire.enums import GroupTag, Status, ValueTag
from ippwire.model import Attribute, Group

log = logging.getLogger("gateway.ipp")
T = ValueTag
V = TypeVar("V")
UNSUPPORTED = Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED

# The operation attributes each handler reads (operation_table.ATTRIBUTES).
CREATE_PRINTER: frozenset[str] = frozenset()
CREATE_JOB = frozenset({"notify-job-id"})
ONE = frozenset({"notify-subscription-id"})
GET_ONE = frozenset({"notify-subscription-id", "requested-attributes"})
GET_ALL = frozenset({"notify-job-id", "limit", "requested-attributes", "my-subscriptions"})
RENEW = frozenset({"notify-subscription-id", "notify-lease-duration"})
GET_NOTIFICATIONS = frozenset({"notify-subscription-ids", "notify-sequence-numbers",
                               "notify-wait"})

# What a subscriber's subscription shows only to them and an administrator (CUPS'
# SubscriptionPrivateValues default).
PRIVATE_VALUES = frozenset({"notify-events", "notify-pull-method", "notify-recipient-uri",
                            "notify-subscriber-user-name", "notify-user-data"})
_TEMPLATE = frozenset({"notify-pull-method", "notify-recipient-uri", "notify-events",
                       "notify-lease-duration", "notify-user-data", "notify-time-interval",
                       "notify-charset", "notify-natural-language", "notify-attributes"})

_positive = partial(values.single_integer, low=1, high=INT32_MAX)
_seconds = partial(values.single_integer, low=0, high=MAX_LEASE)


def store_of(call: Call) -> SubscriptionStore:
    return call.system.subscriptions


# -- who may ----------------------------------------------------------------------------


def _allow(call: Call, owner: JobOwner, what: str, refusal: str) -> None:
    """Whether the viewer is `owner` or an administrator (gateway.policy's Need.OWNER),
    raised as the dispatcher raises its own refusals: a challenge when logging in could
    help, else client-error-not-authorized saying `refusal`."""
    printer = call.require_printer()
    decision = decide(Need.OWNER, call.viewer, auth_enabled=call.auth_enabled,
                      print_by=printer.config.print_by, owner=owner)
    if decision.allowed:
        return
    log.info("printer %s: %s refused to %s (%s): %s", printer.name, what,
             printable(call.viewer.user), call.endpoint.client or "in-process", refusal)
    if decision.outcome is Outcome.CHALLENGE and call.endpoint.authenticator is not None:
        raise call.endpoint.authenticator.challenge(refusal, secure=call.endpoint.secure)
    raise IppError(Status.CLIENT_ERROR_NOT_AUTHORIZED, refusal)


_NOT_YOURS = "only its subscriber or an administrator may use a subscription"


def _owner(subscription: Subscription) -> JobOwner:
    return JobOwner(subscription.user, subscription.user_authenticated)


def _sees_private(call: Call, subscription: Subscription) -> bool:
    return call.viewer.sees_private_values(subscription.user, subscription.user_authenticated)


# -- templates --------------------------------------------------------------------------


class _Refused(Exception):
    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status


def _read(group: Group, name: str, read: Callable[[Attribute], V]) -> V | None:
    attr = group.get(name)
    if attr is None:
        return None
    try:
        return read(attr)
    except BadValue as error:
        raise _Refused(UNSUPPORTED, f"{name}: {error}") from None


def _user_data(group: Group) -> bytes | None:
    attr = group.get("notify-user-data")
    if attr is None:
        return None
    if len(attr.values) != 1 or attr.values[0][0] != T.OCTET_STRING or not isinstance(
            attr.values[0][1], bytes) or len(attr.values[0][1]) > MAX_USER_DATA:
        raise _Refused(UNSUPPORTED, f"notify-user-data: up to {MAX_USER_DATA} octets")
    return attr.values[0][1]


def _events(group: Group) -> tuple[tuple[str, ...], bool]:
    """The events asked for, and whether some were not supported (and left out)."""
    attr = group.get("notify-events")
    if attr is None:
        return EVENTS_DEFAULT, False
    asked: list[str] = []
    for tag, value in attr.values:
        try:
            asked.append(values.keyword(tag, value))
        except BadValue as error:
            raise _Refused(UNSUPPORTED, f"notify-events: {error}") from None
    kept = tuple(dict.fromkeys(e for e in asked if e in EVENTS_SUPPORTED))
    if not kept:
        raise _Refused(UNSUPPORTED, "notify-events: none of these events is supported")
    return kept, len(kept) != len(set(asked))


def _subscribe(call: Call, group: Group, job: Job | None, *, at_creation: bool = False
               ) -> list[Attribute]:
    """One subscription template made into a subscription: the response's subscription
    group (notify-subscription-id, or notify-status-code saying why not)."""
    printer = call.require_printer()
    try:
        if group.get("notify-recipient-uri") is not None:
            raise _Refused(Status.CLIENT_ERROR_URI_SCHEME_NOT_SUPPORTED,
                           "push notifications are not supported; use notify-pull-method "
                           "ippget")
        method = _read(group, "notify-pull-method", values.single_keyword)
        if method is None:
            raise _Refused(Status.CLIENT_ERROR_BAD_REQUEST, "notify-pull-method is missing")
        if method not in PULL_METHODS:
            raise _Refused(UNSUPPORTED, f"notify-pull-method {method!r} is not supported")
        charset = _read(group, "notify-charset", values.single_charset)
        if charset not in (None, "utf-8", "us-ascii"):
            raise _Refused(Status.CLIENT_ERROR_CHARSET_NOT_SUPPORTED,
                           f"notify-charset {charset!r} is not supported")
        language = _read(group, "notify-natural-language", values.single_natural_language)
        lease = _read(group, "notify-lease-duration", _seconds)
        if lease is not None and job is not None:
            raise _Refused(UNSUPPORTED, "a job's subscription lasts as long as the job: "
                           "notify-lease-duration is for printer subscriptions")
        interval = _read(group, "notify-time-interval", _seconds)
        user_data = _user_data(group)
        events, narrowed = _events(group)
        ignored = [a.name for a in group if a.name not in _TEMPLATE]
        store = store_of(call)
        try:
            subscription = store.add(
                printer=printer.name, job_id=None if job is None else job.id, events=events,
                user=call.user, user_authenticated=call.viewer.authenticated, now=time.time(),
                # Made with its job: it hears the job's creation, published a moment ago.
                since_revision=0 if at_creation else call.system.store.revision,
                lease=lease, user_data=user_data,
                time_interval=interval or 0,
                natural_language=language or "en")
        except TooMany as error:
            raise _Refused(Status.CLIENT_ERROR_TOO_MANY_SUBSCRIPTIONS, str(error)) from None
    except _Refused as refused:
        log.info("printer %s: subscription refused to %s: %s", printer.name,
                 printable(call.user), refused)
        return [Attribute.of("notify-status-code", T.ENUM, int(refused.status))]
    answer = [Attribute.of("notify-subscription-id", T.INTEGER, subscription.id)]
    if job is None:
        answer.append(Attribute.of("notify-lease-duration", T.INTEGER, subscription.lease))
    if narrowed or ignored:
        answer.append(Attribute.of("notify-status-code", T.ENUM,
                                   int(Status.OK_IGNORED_OR_SUBSTITUTED)))
    return answer


def _templates(call: Call) -> list[Group]:
    return call.request.groups_of(GroupTag.SUBSCRIPTION)


def _subscribed(call: Call, job: Job | None, *, at_creation: bool = False
                ) -> tuple[list[tuple[GroupTag, list[Attribute | bytes]]], int]:
    """The response groups of every template in the request, and how many were made."""
    groups: list[tuple[GroupTag, list[Attribute | bytes]]] = []
    made = 0
    for template in _templates(call):
        answer = _subscribe(call, template, job, at_creation=at_creation)
        if answer[0].name == "notify-subscription-id":
            made += 1
        groups.append((GroupTag.SUBSCRIPTION, list[Attribute | bytes](answer)))
    return groups, made


def job_subscriptions(call: Call, job: Job) -> list[tuple[GroupTag, list[Attribute | bytes]]]:
    """The subscriptions a Print-Job or Create-Job asks for with its job. Call it right
    after the job is made, before any await, so that they hear job-created."""
    groups, _ = _subscribed(call, job, at_creation=True)
    return groups


def with_subscriptions(reply: Reply, groups: list[tuple[GroupTag, list[Attribute | bytes]]]
                       ) -> Reply:
    """A job-creating reply with its subscription groups after the job's (RFC 3995 11.1):
    successful-ok-ignored-subscriptions when one was not made."""
    if not groups:
        return reply
    refused = any(isinstance(items[0], Attribute) and items[0].name == "notify-status-code"
                  for _, items in groups)
    status = Status.OK_IGNORED_SUBSCRIPTIONS if refused and reply.status is Status.OK \
        else reply.status
    return Reply(status, reply.message, list(reply.unsupported), [*reply.groups, *groups])


def _creation_reply(groups: list[tuple[GroupTag, list[Attribute | bytes]]], made: int
                    ) -> Reply:
    if not groups:
        raise BadRequest("no subscription template (subscription-attributes group)")
    if made == 0:
        return Reply(Status.CLIENT_ERROR_IGNORED_ALL_SUBSCRIPTIONS,
                     "no subscription was made", groups=groups)
    if made < len(groups):
        return Reply(Status.OK_IGNORED_SUBSCRIPTIONS, "some subscriptions were not made",
                     groups=groups)
    substituted = any(isinstance(a, Attribute) and a.name == "notify-status-code"
                      for _, items in groups for a in items)
    return Reply(Status.OK_IGNORED_OR_SUBSTITUTED if substituted else Status.OK,
                 groups=groups)


# -- the operations ----------------------------------------------------------------------


async def create_printer_subscriptions(call: Call) -> Reply:
    call.require_printer()
    return _creation_reply(*_subscribed(call, None))


async def create_job_subscriptions(call: Call) -> Reply:
    printer = call.require_printer()
    job_id = call.value("notify-job-id", _positive, Status.CLIENT_ERROR_BAD_REQUEST)
    if job_id is None:
        raise BadRequest("Create-Job-Subscriptions needs notify-job-id")
    job = call.system.jobs.get(job_id)
    if job is None or job.printer != printer.name:
        raise NotFound(f"job {job_id} does not exist")
    _allow(call, JobOwner(job.user, job.user_authenticated), "Create-Job-Subscriptions",
           "only the job's owner or an administrator may subscribe to it")
    if job.state.is_terminal:
        raise NotPossible(f"job {job_id} is already {job.state.name.lower()}")
    return _creation_reply(*_subscribed(call, job))


def _target(call: Call) -> Subscription:
    subscription_id = call.value("notify-subscription-id", _positive,
                                 Status.CLIENT_ERROR_BAD_REQUEST)
    if subscription_id is None:
        raise BadRequest("missing notify-subscription-id")
    return _find(call, subscription_id)


def _find(call: Call, subscription_id: int) -> Subscription:
    subscription = store_of(call).get(subscription_id, time.time())
    if subscription is None or subscription.printer != call.require_printer().name:
        raise NotFound(f"subscription {subscription_id} does not exist")
    return subscription


async def get_subscription_attributes(call: Call) -> Reply:
    subscription = _target(call)
    requested = requested_attributes(call, ("all",))
    return Reply(groups=[(GroupTag.SUBSCRIPTION,
                          list[Attribute | bytes](_describe(call, subscription, requested)))])


async def get_subscriptions(call: Call) -> Reply:
    printer = call.require_printer()
    job_id = call.value("notify-job-id", _positive)
    limit = call.value("limit", _positive)
    mine = call.value("my-subscriptions", values.single_boolean) or False
    requested = requested_attributes(call, ("notify-subscription-id",))
    chosen = [s for s in store_of(call).all(time.time()) if s.printer == printer.name
              and s.job_id == job_id
              and (not mine or call.viewer.owns(s.user, s.user_authenticated))]
    if limit is not None:
        chosen = chosen[:limit]
    return Reply(groups=[(GroupTag.SUBSCRIPTION,
                          list[Attribute | bytes](_describe(call, s, requested)))
                         for s in chosen])


async def renew_subscription(call: Call) -> Reply:
    subscription = _target(call)
    _allow(call, _owner(subscription), "Renew-Subscription", _NOT_YOURS)
    if subscription.job_id is not None:
        raise NotPossible(f"subscription {subscription.id} lasts as long as job "
                          f"{subscription.job_id}: it cannot be renewed")
    lease = call.value("notify-lease-duration", _seconds)
    if lease is None:  # RFC 3995 11.2.6 has it an operation attribute; CUPS reads either
        for group in _templates(call):
            attr = group.get("notify-lease-duration")
            if attr is not None:
                try:
                    lease = _seconds(attr)
                except BadValue as error:
                    raise IppError(UNSUPPORTED, f"notify-lease-duration: {error}",
                                   [attr]) from None
    granted = store_of(call).renew(subscription, lease, time.time())
    return Reply(groups=[(GroupTag.SUBSCRIPTION, [
        Attribute.of("notify-lease-duration", T.INTEGER, granted)])])


async def cancel_subscription(call: Call) -> Reply:
    subscription = _target(call)
    _allow(call, _owner(subscription), "Cancel-Subscription", _NOT_YOURS)
    store_of(call).cancel(subscription.id)
    log.info("subscription %d: cancelled by %s", subscription.id, printable(call.user))
    return Reply()


async def get_notifications(call: Call) -> Reply:
    ids = call.value("notify-subscription-ids",
                     partial(values.integers, low=1, high=INT32_MAX),
                     Status.CLIENT_ERROR_BAD_REQUEST)
    if not ids:
        raise BadRequest("Get-Notifications needs notify-subscription-ids")
    sequence = call.value("notify-sequence-numbers",
                          partial(values.integers, low=1, high=INT32_MAX)) or []
    wait = call.value("notify-wait", values.single_boolean) or False
    subscriptions = [_find(call, subscription_id) for subscription_id in dict.fromkeys(ids)]
    for subscription in subscriptions:
        _allow(call, _owner(subscription), "Get-Notifications", _NOT_YOURS)
    first = dict(zip(ids, sequence, strict=False))
    notices = list(pending(subscriptions, first))
    if not notices and wait and not all(s.complete for s in subscriptions):
        await _wait_for_events(store_of(call), [s.id for s in subscriptions])
        subscriptions = [s for s in subscriptions
                         if store_of(call).get(s.id, time.time()) is s]
        notices = list(pending(subscriptions, first))
    groups: list[tuple[GroupTag, list[Attribute | bytes]]] = [
        (GroupTag.EVENT_NOTIFICATION, list[Attribute | bytes](_notification(call, s, n)))
        for s, n in notices]
    operation = [Attribute.of("printer-up-time", T.INTEGER, call.system.up_time())]
    complete = bool(subscriptions) and all(s.complete for s in subscriptions)
    if not complete:
        operation.insert(0, Attribute.of("notify-get-interval", T.INTEGER, GET_INTERVAL))
    return Reply(Status.OK_EVENTS_COMPLETE if complete else Status.OK, groups=groups,
                 operation=operation)


async def _wait_for_events(store: SubscriptionStore, ids: list[int]) -> None:
    """notify-wait: hold the request until one of `ids` has news, WAIT_LIMIT at most."""
    woken = trio.Event()
    unwatch = store.watch(ids, woken.set)
    try:
        with trio.move_on_after(WAIT_LIMIT):
            await woken.wait()
    finally:
        unwatch()


# -- rendering ---------------------------------------------------------------------------


def _printer_uri(call: Call, name: str) -> str:
    endpoint = call.endpoint
    return url(endpoint.scheme, endpoint.host, endpoint.port, f"{PRINT_PATH}/{name}")


def _describe(call: Call, subscription: Subscription, requested: set[str]
              ) -> list[Attribute]:
    """A subscription's attributes (RFC 3995 5.3, 5.4), as `call`'s viewer may see them."""
    s = subscription
    attrs = [
        Attribute.of("notify-subscription-id", T.INTEGER, s.id),
        Attribute.of("notify-printer-uri", T.URI, _printer_uri(call, s.printer)),
        Attribute.of("notify-subscriber-user-name", T.NAME, s.user or "anonymous"),
        Attribute.of("notify-events", T.KEYWORD, *s.events),
        Attribute.of("notify-pull-method", T.KEYWORD, PULL_METHODS[0]),
        Attribute.of("notify-time-interval", T.INTEGER, s.time_interval),
        Attribute.of("notify-charset", T.CHARSET, "utf-8"),
        Attribute.of("notify-natural-language", T.NATURAL_LANGUAGE, s.natural_language),
        Attribute.of("notify-sequence-number", T.INTEGER, s.sequence),
        Attribute.of("printer-up-time", T.INTEGER, call.system.up_time()),
    ]
    if s.job_id is not None:
        attrs.insert(2, Attribute.of("notify-job-id", T.INTEGER, s.job_id))
    else:
        attrs.append(Attribute.of("notify-lease-duration", T.INTEGER, s.lease))
        attrs.append(Attribute.of("notify-lease-expiration-time", T.INTEGER,
                                  call.system.to_up_time(s.expires_at) or 0))
    if s.user_data is not None:
        attrs.append(Attribute.of("notify-user-data", T.OCTET_STRING, s.user_data))
    if not _sees_private(call, s):
        attrs = [a for a in attrs if a.name not in PRIVATE_VALUES]
    if "all" in requested:
        return attrs
    return [a for a in attrs if a.name in requested or a.name == "notify-subscription-id"]


def notify_text(event: Event) -> str:
    """notify-text: the event in words (no job name: that is private to the job's owner)."""
    if isinstance(event, (JobCreated, JobStateChanged, JobProgress, JobCompleted)):
        job = event.job
        state = job.state.name.lower().replace("_", "-")
        if isinstance(event, JobCreated):
            return f"Job {job.id} created."
        if isinstance(event, JobProgress):
            return f"Job {job.id}: {job.impressions_completed} pages, {job.bytes_sent} bytes."
        return f"Job {job.id} {state}." + (f" {job.message}" if job.message else "")
    if not isinstance(event, (PrinterStateChanged, PrinterConfigChanged)):
        return ""
    printer = event.printer
    if isinstance(event, PrinterConfigChanged):
        return f"Printer {printer.name} {'removed' if event.removed else 'changed'}."
    return f"Printer {printer.name} {printer.state.name.lower()}." + (
        f" {printer.message}" if printer.message else "")


def _notification(call: Call, subscription: Subscription, notice: Notice) -> list[Attribute]:
    """One event notification group (RFC 3995 9.1, 9.2)."""
    event = notice.source
    attrs = [
        Attribute.of("notify-subscription-id", T.INTEGER, subscription.id),
        Attribute.of("notify-printer-uri", T.URI, _printer_uri(call, subscription.printer)),
        Attribute.of("notify-subscribed-event", T.KEYWORD, notice.event),
        Attribute.of("printer-up-time", T.INTEGER, call.system.to_up_time(event.time) or 1),
        Attribute.of("printer-current-time", T.DATE_TIME, ipp_datetime(event.time)),
        Attribute.of("notify-sequence-number", T.INTEGER, notice.sequence),
        Attribute.of("notify-charset", T.CHARSET, "utf-8"),
        Attribute.of("notify-natural-language", T.NATURAL_LANGUAGE,
                     subscription.natural_language),
    ]
    if subscription.user_data is not None:
        attrs.append(Attribute.of("notify-user-data", T.OCTET_STRING, subscription.user_data))
    attrs.append(Attribute.of("notify-text", T.TEXT,
                              values.text(T.TEXT, printable(notify_text(event)), 255)))
    if isinstance(event, (JobCreated, JobStateChanged, JobProgress, JobCompleted)):
        job = event.job
        attrs += [
            Attribute.of("notify-job-id", T.INTEGER, job.id),
            Attribute.of("job-state", T.ENUM, int(job.state)),
            Attribute.of("job-state-reasons", T.KEYWORD, *(job.reasons or ("none",))),
            Attribute.of("job-impressions-completed", T.INTEGER, job.impressions_completed),
        ]
    elif isinstance(event, (PrinterStateChanged, PrinterConfigChanged)):
        printer = event.printer
        attrs += [
            Attribute.of("printer-name", T.NAME, printer.name),
            Attribute.of("printer-state", T.ENUM, int(printer.state)),
            Attribute.of("printer-state-reasons", T.KEYWORD, *(printer.reasons or ("none",))),
            Attribute.of("printer-is-accepting-jobs", T.BOOLEAN, True),
        ]
    return attrs
