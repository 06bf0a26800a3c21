"""Registering through avahi-daemon over D-Bus (jeepney's Trio connection).

One Avahi EntryGroup per printer holds all its services, so they share one instance name and
a conflict on any of them renames them together. Avahi probes and announces; it reports
the outcome as the group's StateChanged signal: ESTABLISHED, or COLLISION (the name is taken
on the network, now or later) or FAILURE. A name already registered on this host is refused
at once with org.freedesktop.Avahi.CollisionError.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import trio
from jeepney import (  # type: ignore[import-untyped]
    DBusAddress,
    HeaderFields,
    MatchRule,
    Message,
    new_method_call,
)
from jeepney.bus_messages import message_bus  # type: ignore[import-untyped]
from jeepney.io.common import RouterClosed  # type: ignore[import-untyped]
from jeepney.io.trio import (  # type: ignore[import-untyped]
    DBusRouter,
    open_dbus_connection,
    open_dbus_router,
)
from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

from gateway.dnssd.backend import (
    AVAHI_BUS_NAME,
    BackendError,
    ConflictCallback,
    NameTaken,
)
from gateway.dnssd.txt import ServiceRecord, encode_txt

log = logging.getLogger("gateway.dnssd")

SERVER = DBusAddress("/", bus_name=AVAHI_BUS_NAME, interface="org.freedesktop.Avahi.Server")
GROUP_INTERFACE = "org.freedesktop.Avahi.EntryGroup"
COLLISION_ERROR = "org.freedesktop.Avahi.CollisionError"
STATE_CHANGED = MatchRule(type="signal", interface=GROUP_INTERFACE, member="StateChanged")
IF_UNSPEC = -1
PROTO_UNSPEC = -1
# AvahiEntryGroupState
UNCOMMITTED, REGISTERING, ESTABLISHED, COLLISION, FAILURE = range(5)
CONNECT_TIMEOUT = 5.0
# Probing takes about a second; a group still registering after this is reported stuck.
ESTABLISH_TIMEOUT = 15.0
# What a lost or refused D-Bus connection raises in jeepney's Trio shell.
CONNECTION_ERRORS = (OSError, ValueError, RouterClosed, DBusErrorResponse, trio.EndOfChannel,
                     trio.BrokenResourceError, trio.ClosedResourceError)


async def avahi_running() -> bool:
    """Whether avahi-daemon owns its name on the system bus (false when there is no bus)."""
    owned = False
    try:
        with trio.move_on_after(CONNECT_TIMEOUT):
            async with open_dbus_router("SYSTEM") as router:
                reply = await router.send_and_get_reply(message_bus.NameHasOwner(AVAHI_BUS_NAME))
                owned = bool(unwrap_msg(reply)[0])
    except* CONNECTION_ERRORS:
        owned = False
    return owned


@dataclass
class _Group:
    path: str
    state: int = UNCOMMITTED
    error: str = ""
    committed: bool = False  # publish() waits for the outcome of a Commit
    changed: trio.Event = field(default_factory=trio.Event)


class AvahiBackend:
    label = "avahi"

    def __init__(self, interfaces: tuple[str, ...] = ()) -> None:
        self._interface_names = interfaces
        self._interfaces: tuple[int, ...] = (IF_UNSPEC,)
        self._router: DBusRouter | None = None
        self._groups: dict[str, _Group] = {}  # by key
        self._on_conflict: ConflictCallback = lambda key: None
        self.host_name: str | None = None

    @asynccontextmanager
    async def session(self, on_conflict: ConflictCallback) -> AsyncIterator[None]:
        self._on_conflict = on_conflict
        self._interfaces = self._interface_indexes()
        failure: BaseException | None = None
        try:
            connection = None
            with trio.move_on_after(CONNECT_TIMEOUT):
                connection = await open_dbus_connection("SYSTEM")
            if connection is None:
                raise TimeoutError("the system bus did not answer")
            # Closing the connection frees every group still there: Avahi sends goodbyes.
            async with connection, trio.open_nursery() as nursery:
                router = DBusRouter(connection)
                await nursery.start(_route, router)
                self._router = router
                try:
                    await self._call(message_bus.AddMatch(STATE_CHANGED))
                    # Avahi names the SRV target after its own host name, not ours.
                    (fqdn,) = await self._call(new_method_call(SERVER, "GetHostNameFqdn"))
                    self.host_name = str(fqdn).rstrip(".") or None
                    await nursery.start(self._watch_states)
                    yield
                finally:
                    self._router = None
                    self._groups.clear()
                    nursery.cancel_scope.cancel()
                    await router.aclose()
        except* CONNECTION_ERRORS as group:
            failure = group.exceptions[0]
        except* BackendError as group:
            # A refused call while connecting, out of the nursery's group: the advertiser
            # catches a BackendError, not an ExceptionGroup.
            failure = group.exceptions[0]
        if isinstance(failure, BackendError):
            raise failure
        if failure is not None:
            raise BackendError(f"avahi-daemon over D-Bus: {_describe(failure)}")

    def _interface_indexes(self) -> tuple[int, ...]:
        if not self._interface_names:
            return (IF_UNSPEC,)
        indexes = []
        for name in self._interface_names:
            try:
                indexes.append(socket.if_nametoindex(name))
            except OSError:
                log.warning("dnssd: interface %s does not exist; not advertising on it", name)
        if not indexes:
            raise BackendError("none of dnssd.interfaces ({}) exists".format(
                ", ".join(self._interface_names)))
        return tuple(indexes)

    async def _call(self, message: Message) -> tuple[object, ...]:
        if self._router is None:
            raise BackendError("avahi-daemon: not connected")
        try:
            return tuple(unwrap_msg(await self._router.send_and_get_reply(message)))
        except DBusErrorResponse as exc:
            if exc.name == COLLISION_ERROR:
                raise NameTaken(str(exc)) from None
            raise BackendError(f"avahi-daemon: {exc.name}: {_describe(exc)}") from None
        except (RouterClosed, trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            raise BackendError(f"avahi-daemon over D-Bus: {_describe(exc)}") from None

    async def _watch_states(self, *, task_status: trio.TaskStatus[None]
                            = trio.TASK_STATUS_IGNORED) -> None:
        assert self._router is not None
        async with self._router.filter(STATE_CHANGED, bufsize=64) as signals:
            task_status.started()
            async for signal in signals:
                self._state_changed(signal)

    def _state_changed(self, signal: Message) -> None:
        path = signal.header.fields.get(HeaderFields.path)
        for key, group in self._groups.items():
            if group.path != path:
                continue
            state, error = signal.body
            group.state, group.error = int(state), str(error)
            group.changed.set()
            group.changed = trio.Event()
            if state == COLLISION and not group.committed:
                # Registered a while ago: another host has just claimed the name.
                self._on_conflict(key)

    async def publish(self, key: str, name: str, services: tuple[ServiceRecord, ...]) -> None:
        group = self._groups.get(key)
        if group is None:
            (path,) = await self._call(new_method_call(SERVER, "EntryGroupNew"))
            group = self._groups[key] = _Group(str(path))
        else:
            await self._call(new_method_call(self._address(group), "Reset"))
        address = self._address(group)
        try:
            for service in services:
                await self._add(address, name, service)
            group.committed = True
            group.state = REGISTERING
            await self._call(new_method_call(address, "Commit"))
            with trio.move_on_after(ESTABLISH_TIMEOUT):
                while group.state in (UNCOMMITTED, REGISTERING):
                    await group.changed.wait()
        except NameTaken:
            await self._call(new_method_call(address, "Reset"))
            raise
        finally:
            group.committed = False
        if group.state == COLLISION:
            await self._call(new_method_call(address, "Reset"))
            raise NameTaken(name)
        if group.state == FAILURE:
            raise BackendError(f"avahi-daemon could not register {name!r}: {group.error}")
        if group.state != ESTABLISHED:
            raise BackendError(f"avahi-daemon: {name!r} still not registered after "
                               f"{ESTABLISH_TIMEOUT:g} s")

    async def _add(self, address: DBusAddress, name: str, service: ServiceRecord) -> None:
        txt = encode_txt(service.txt)
        for interface in self._interfaces:
            await self._call(new_method_call(
                address, "AddService", "iiussssqaay",
                (interface, PROTO_UNSPEC, 0, name, service.type, "", "", service.port, txt)))
            for subtype in service.subtypes:
                await self._call(new_method_call(
                    address, "AddServiceSubtype", "iiussss",
                    (interface, PROTO_UNSPEC, 0, name, service.type, "",
                     f"{subtype}._sub.{service.type}")))

    async def withdraw(self, key: str) -> None:
        group = self._groups.pop(key, None)
        if group is not None:
            await self._call(new_method_call(self._address(group), "Free"))

    @staticmethod
    def _address(group: _Group) -> DBusAddress:
        return DBusAddress(group.path, bus_name=AVAHI_BUS_NAME, interface=GROUP_INTERFACE)


async def _route(router: DBusRouter, *, task_status: trio.TaskStatus[None]
                 = trio.TASK_STATUS_IGNORED) -> None:
    """Run `router`'s receiver until `router.aclose()`, shielded from the session's
    cancellation: the goodbyes (EntryGroup.Free) sent while the gateway shuts down need
    their replies, and a receiver cancelled with everything else would never read them."""
    with trio.CancelScope(shield=True):
        async with trio.open_nursery() as nursery:
            await router.start(nursery)
            task_status.started()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DBusErrorResponse):
        return " ".join(str(part) for part in exc.data) or str(exc.name)
    if isinstance(exc, OSError) and exc.strerror:
        where = f" ({exc.filename})" if exc.filename else ""
        return f"{exc.strerror}{where}"
    return str(exc) or type(exc).__name__
