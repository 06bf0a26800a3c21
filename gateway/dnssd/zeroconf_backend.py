"""Registering with python-zeroconf as this host's mDNS responder, where no avahi-daemon runs.

Zeroconf runs its own asyncio loop in its own thread. Each step here is one coroutine handed
to that loop, waited for in a Trio worker thread, so the Trio side never blocks on it.

python-zeroconf has no subtypes: a service is one record set per instance name. A subtype is
added here as a second `ServiceInfo` of type `_print._sub._ipp._tcp.local.` for the same
instance, entered only in the registry's index by type (which answers PTR questions), and
announced and withdrawn with its PTR record alongside the service.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import ifaddr
import trio
import zeroconf
from zeroconf import ServiceInfo, Zeroconf
from zeroconf._protocol.outgoing import DNSOutgoing

from gateway.dnssd.backend import BackendError, ConflictCallback, NameTaken
from gateway.dnssd.txt import ServiceRecord

log = logging.getLogger("gateway.dnssd")

DOMAIN = "local."
FLAGS_RESPONSE = 0x8400  # QR (a response) and AA (authoritative), RFC 6762 section 18
STEP_TIMEOUT = 10.0  # probing takes under a second; a step over this is reported stuck
CLOSE_TIMEOUT = 3.0
NAME_TAKEN = (zeroconf.NonUniqueNameException, zeroconf.ServiceNameAlreadyRegistered)

T = TypeVar("T")

# RFC 6762 section 8.1: wait 0-250 ms, send three probes 250 ms apart, and if by 250 ms after
# the third no conflicting answer came, announce. (python-zeroconf's own probing spaces them
# 500 ms apart and adds 150-250 ms: about 0.35 s more before a phone sees the printer.)
PROBE_DELAY_MS = (0, 250)
PROBE_INTERVAL_MS = 250
PROBES = 3


def _name_taken(zc: Zeroconf, infos: list[ServiceInfo]) -> bool:
    """Whether another responder answered for one of the names (the answer is in the cache)."""
    return any(zc.cache.current_entry_with_name_and_alias(info.type, info.name)
               for info in infos)


async def _probe(zc: Zeroconf, infos: list[ServiceInfo]) -> None:
    """Probe every name of one printer at once; NonUniqueNameException if one is taken."""
    await asyncio.sleep(random.uniform(*PROBE_DELAY_MS) / 1000)
    loop = asyncio.get_running_loop()
    for _ in range(PROBES):
        for info in infos:
            zc.async_send(zc.generate_service_query(info))
        deadline = loop.time() + PROBE_INTERVAL_MS / 1000
        while (remaining := deadline - loop.time()) > 0:
            if _name_taken(zc, infos):
                raise zeroconf.NonUniqueNameException
            await zc.async_wait(remaining * 1000)  # woken early by any cache update
    if _name_taken(zc, infos):
        raise zeroconf.NonUniqueNameException


@dataclass
class _Registered:
    infos: list[ServiceInfo]  # the services, in the registry
    subtypes: list[ServiceInfo]  # their subtypes, in the registry's index by type only


def interface_addresses(names: tuple[str, ...]) -> list[str]:
    """The addresses to answer with and listen on: those of the interfaces `names` (every
    interface when empty), leaving out loopback and link-local IPv6 (which needs a scope)."""
    found = []
    for adapter in ifaddr.get_adapters():
        if names and adapter.nice_name not in names and adapter.name not in names:
            continue
        for ip in adapter.ips:
            text = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
            address = ipaddress.ip_address(text)
            if address.is_loopback or (address.version == 6 and address.is_link_local):
                continue
            found.append(text)
    return found


class ZeroconfBackend:
    label = "zeroconf"

    def __init__(self, host: str, interfaces: tuple[str, ...] = ()) -> None:
        self._server = host.rstrip(".") + "."
        self.host_name: str | None = host.rstrip(".")
        self._interfaces = interfaces
        self._addresses: list[str] = []
        self._zc: Zeroconf | None = None
        self._registered: dict[str, _Registered] = {}

    @asynccontextmanager
    async def session(self, on_conflict: ConflictCallback) -> AsyncIterator[None]:
        # python-zeroconf does not report a conflict after registration: `on_conflict` unused.
        self._addresses = await trio.to_thread.run_sync(interface_addresses, self._interfaces)
        if not self._addresses:
            raise BackendError("no address to advertise on" + (
                f" (dnssd.interfaces: {', '.join(self._interfaces)})" if self._interfaces
                else ""))
        choice: Any = self._addresses if self._interfaces else zeroconf.InterfaceChoice.All
        try:
            self._zc = await trio.to_thread.run_sync(lambda: Zeroconf(interfaces=choice))
        except (OSError, zeroconf.Error) as exc:
            raise BackendError(f"python-zeroconf: {exc}") from None
        try:
            yield
        finally:
            zc, self._zc = self._zc, None
            self._registered.clear()
            # Zeroconf.close sends the goodbyes of what is left, then stops its thread.
            with trio.move_on_after(CLOSE_TIMEOUT, shield=True):
                await trio.to_thread.run_sync(zc.close, abandon_on_cancel=True)

    async def _on_loop(self, make: Callable[[Zeroconf], Coroutine[Any, Any, T]]) -> T:
        """Run `make(zc)` on zeroconf's own loop; wait for it in a worker thread."""
        zc = self._zc
        if zc is None or zc.loop is None:
            raise BackendError("python-zeroconf: not running")
        future = asyncio.run_coroutine_threadsafe(make(zc), zc.loop)
        try:
            return await trio.to_thread.run_sync(future.result, STEP_TIMEOUT,
                                                 abandon_on_cancel=True)
        except FutureTimeout:
            future.cancel()
            raise BackendError(f"python-zeroconf: no answer from its thread in "
                               f"{STEP_TIMEOUT:g} s") from None
        except NAME_TAKEN as exc:
            raise NameTaken(str(exc)) from None
        except (OSError, zeroconf.Error) as exc:
            raise BackendError(f"python-zeroconf: {exc or type(exc).__name__}") from None

    def _infos(self, name: str, service: ServiceRecord) -> tuple[ServiceInfo, list[ServiceInfo]]:
        type_ = f"{service.type}.{DOMAIN}"
        full = f"{name}.{type_}"

        def info(record_type: str) -> ServiceInfo:
            return ServiceInfo(record_type, full, port=service.port,
                               properties=dict(service.txt), server=self._server,
                               parsed_addresses=self._addresses)

        return info(type_), [info(f"{subtype}._sub.{type_}") for subtype in service.subtypes]

    async def publish(self, key: str, name: str, services: tuple[ServiceRecord, ...]) -> None:
        await self.withdraw(key)
        infos: list[ServiceInfo] = []
        subtypes: list[ServiceInfo] = []
        for service in services:
            base, subs = self._infos(name, service)
            infos.append(base)
            subtypes.extend(subs)
        await self._on_loop(lambda zc: _register(zc, infos, subtypes))
        self._registered[key] = _Registered(infos, subtypes)

    async def withdraw(self, key: str) -> None:
        registered = self._registered.pop(key, None)
        if registered is not None:
            await self._on_loop(lambda zc: _unregister(zc, registered))


async def _register(zc: Zeroconf, infos: list[ServiceInfo], subtypes: list[ServiceInfo]) -> None:
    """Probe for every service of one printer at once, then register them all (announced
    at once, as probing is done: `cooperating_responders`), or none of them."""
    await zc.async_wait_for_start()
    await _probe(zc, infos)
    results = await asyncio.gather(
        *(zc.async_register_service(info, cooperating_responders=True) for info in infos),
        return_exceptions=True)
    failures = [result for result in results if isinstance(result, BaseException)]
    if failures:
        done = [info for info, result in zip(infos, results, strict=True)
                if not isinstance(result, BaseException)]
        await _unregister(zc, _Registered(done, []))
        raise failures[0]
    for subtype in subtypes:
        zc.registry.types.setdefault(subtype.type.lower(), {})[subtype.key] = subtype
    _send_pointers(zc, subtypes, ttl=None)
    await asyncio.gather(*(_awaitable(result) for result in results))


async def _unregister(zc: Zeroconf, registered: _Registered) -> None:
    for subtype in registered.subtypes:
        bucket = zc.registry.types.get(subtype.type.lower(), {})
        bucket.pop(subtype.key, None)
        if not bucket:
            zc.registry.types.pop(subtype.type.lower(), None)
    _send_pointers(zc, registered.subtypes, ttl=0)
    pending = [await zc.async_unregister_service(info) for info in registered.infos]
    await asyncio.gather(*pending)


def _send_pointers(zc: Zeroconf, subtypes: list[ServiceInfo], ttl: int | None) -> None:
    """Announce the subtypes' PTR records (`ttl` 0: their goodbyes)."""
    if not subtypes:
        return
    out = DNSOutgoing(FLAGS_RESPONSE)
    for subtype in subtypes:
        out.add_answer_at_time(subtype.dns_pointer(override_ttl=ttl), 0)
    zc.async_send(out)


async def _awaitable(value: object) -> None:
    if isinstance(value, Awaitable):
        await value
