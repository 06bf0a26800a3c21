"""What the advertiser asks of an mDNS responder, and how it picks one.

Two responders: avahi-daemon over D-Bus (gateway.dnssd.avahi) where it runs, since a second
responder on that host would fight it over the host name, and python-zeroconf
(gateway.dnssd.zeroconf_backend) elsewhere.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from gateway.config import DnssdConfig
from gateway.dnssd.txt import ServiceRecord

log = logging.getLogger("gateway.dnssd")

AVAHI_BUS_NAME = "org.freedesktop.Avahi"


class NameTaken(Exception):
    """The instance name is in use, on this host or on the network."""


class BackendError(Exception):
    """The responder cannot be used; the message says why, for one log line."""


# Called with the key of a registration whose name another host took after it was registered.
ConflictCallback = Callable[[str], None]


class Backend(Protocol):
    label: str  # "avahi" or "zeroconf", for the log
    # The host name in the SRV records ("NAME.local"), known once the session is open; the
    # URLs in the TXT records (adminurl) must name it, as the clients that resolved it will.
    # None: the advertiser's own.
    host_name: str | None

    def session(self, on_conflict: ConflictCallback) -> AbstractAsyncContextManager[None]:
        """Connected to the responder inside; leaving it drops whatever is still registered.
        Raises BackendError when the responder cannot be reached."""
        ...

    async def publish(self, key: str, name: str, services: tuple[ServiceRecord, ...]) -> None:
        """Register `services` under the instance `name` for `key` (a printer), replacing what
        `key` had. Raises NameTaken (nothing of `key` stays registered) or BackendError."""
        ...

    async def withdraw(self, key: str) -> None:
        """Remove what `key` has registered (goodbye packets); nothing when it has nothing."""
        ...


async def choose_backend(config: DnssdConfig, host: str) -> Backend:
    """The responder `config.backend` names; "auto" takes Avahi when its name is owned on the
    system bus (DBUS_SYSTEM_BUS_ADDRESS, else the standard socket)."""
    from gateway.dnssd.avahi import AvahiBackend, avahi_running

    use_avahi = config.backend == "avahi" or (
        config.backend == "auto" and await avahi_running())
    if use_avahi:
        return AvahiBackend(config.interfaces)
    from gateway.dnssd.zeroconf_backend import ZeroconfBackend

    return ZeroconfBackend(host, config.interfaces)
