"""Who may connect, and how many at once: the pure half of the listener's admission.

`AccessRules` matches a peer address against allow and deny lists of networks (deny wins).
The word "local" in an allow list stands for loopback and the networks of the host's own
interfaces, which the I/O shell (gateway.server.listener) lists and hands in; an IPv4 peer
seen on a dual-stack socket as ::ffff:a.b.c.d is matched as a.b.c.d.

A listen address may carry rules of its own (`ListenerRules`, from a `[[server.listeners]]`
table); `rules_for` picks the ones for the address a listener is bound to, else the global
`server.allow`/`server.deny`.

`ConnectionCounter` keeps the connections open in total and per client address against two
caps, and counts the ones refused. `effective_cap` keeps the total cap below the process's
file-descriptor limit, with room for what else needs descriptors (spool files, Ghostscript's
pipes, DNS-SD, the log).

No trio, no sockets: the listener does the I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address

LOCAL = "local"  # loopback and the host's own subnets
LOOPBACK_NETWORKS: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"),
                                          ipaddress.ip_network("::1/128"))
DEFAULT_ALLOW = (LOCAL,)
# Descriptors kept back from the connection cap: listeners, the log, the spool lock, the
# spool files and device of every printer at work, converters' pipes, DNS-SD sockets.
FD_RESERVE_MIN = 64
FD_RESERVE_SHARE = 8  # ... or an eighth of the limit, whichever is more


def parse_rule(text: str) -> Network | str:
    """One allow/deny entry: a network in CIDR form ("192.168.1.0/24", "fd00::/8"), a single
    address (a /32 or /128), or "local"; raises ValueError saying what is wrong."""
    value = text.strip()
    if value.lower() == LOCAL:
        return LOCAL
    try:
        network = ipaddress.ip_network(value, strict=False)
    except ValueError:
        raise ValueError(f"{text!r} is not an address, a network in CIDR form "
                         f"(e.g. 192.168.1.0/24, fd00::/8) or {LOCAL!r}") from None
    return _unmapped_network(network)


def parse_address(text: str) -> Address | None:
    """A peer's address as a socket reports it ("::ffff:10.0.0.1", "fe80::1%eth0"), IPv4
    when it is IPv4-mapped; None when it is not an IP address (a Unix socket, say)."""
    host = text.partition("%")[0]  # a zone id says which link, not which host
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped_network(network: Network) -> Network:
    """::ffff:a.b.c.d/N written in a rule means the IPv4 network it maps."""
    if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
        mapped = network.network_address.ipv4_mapped
        if mapped is not None:
            return ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
    return network


class Verdict(Enum):
    ALLOWED = "allowed"
    DENIED = "denied"  # matched a deny rule
    NOT_ALLOWED = "not allowed"  # matched no allow rule


@dataclass(frozen=True)
class AccessRules:
    """Allow and deny lists. `local` is what "local" stands for now (loopback is always part
    of it); a rule list without "local" does not depend on it."""

    allow: tuple[Network | str, ...] = DEFAULT_ALLOW
    deny: tuple[Network | str, ...] = ()
    local: tuple[Network, ...] = LOOPBACK_NETWORKS

    @classmethod
    def parse(cls, allow: Iterable[str], deny: Iterable[str] = ()) -> AccessRules:
        return cls(tuple(parse_rule(rule) for rule in allow),
                   tuple(parse_rule(rule) for rule in deny))

    @property
    def uses_local(self) -> bool:
        return LOCAL in self.allow or LOCAL in self.deny

    def with_local(self, networks: Iterable[Network]) -> AccessRules:
        """These rules with "local" standing for loopback plus `networks`."""
        local = tuple(dict.fromkeys((*LOOPBACK_NETWORKS, *map(_unmapped_network, networks))))
        return AccessRules(self.allow, self.deny, local)

    def check(self, peer: str) -> Verdict:
        address = parse_address(peer)
        if address is None:
            return Verdict.NOT_ALLOWED
        if self._matches(address, self.deny):
            return Verdict.DENIED
        if self._matches(address, self.allow):
            return Verdict.ALLOWED
        return Verdict.NOT_ALLOWED

    def allows(self, peer: str) -> bool:
        return self.check(peer) is Verdict.ALLOWED

    def _matches(self, address: Address, rules: tuple[Network | str, ...]) -> bool:
        for rule in rules:
            if isinstance(rule, str):
                if any(address in network for network in self.local):
                    return True
            elif address in rule:
                return True
        return False


GLOBAL_SOURCE = "server"  # where the global rules are configured: server.allow, server.deny


@dataclass(frozen=True)
class ListenerRules:
    """The rules of one listen entry, for every listener bound for it: `hosts` are the
    addresses it names (empty: every address, as "*:631" binds 0.0.0.0 and ::), `port` its
    port (0: whichever port was drawn). `source` names the entry in the log."""

    hosts: frozenset[Address]
    port: int
    rules: AccessRules
    source: str

    def matches(self, host: str, port: int) -> bool:
        if self.port not in (0, port):
            return False
        if not self.hosts:
            return True
        address = parse_address(host)
        return address is not None and address in self.hosts


def rules_for(bound: tuple[str, int] | None, listeners: Iterable[ListenerRules],
              default: AccessRules) -> tuple[AccessRules, str]:
    """The rules for a connection accepted by the listener bound to `bound` (None: not
    known), and where they are configured. An entry naming the address wins over one for
    every address on the same port, as the more specific."""
    if bound is None:
        return default, GLOBAL_SOURCE
    host, port = bound
    fallback: ListenerRules | None = None
    for entry in listeners:
        if entry.matches(host, port):
            if entry.hosts:
                return entry.rules, entry.source
            fallback = fallback or entry
    if fallback is not None:
        return fallback.rules, fallback.source
    return default, GLOBAL_SOURCE


def effective_cap(configured: int, fd_limit: int | None) -> int:
    """The total connection cap: `configured`, but below the descriptor limit `fd_limit`
    (None = unlimited) by a reserve, and at least 1."""
    if fd_limit is None:
        return configured
    reserve = max(FD_RESERVE_MIN, fd_limit // FD_RESERVE_SHARE)
    return max(1, min(configured, fd_limit - reserve))


class Refusal(Enum):
    TOTAL = "limits.max_connections"  # the key that sets the cap it hit
    PER_CLIENT = "limits.max_connections_per_client"


@dataclass
class ConnectionCounter:
    """Open connections in total and per client address, against `total_cap` and
    `per_client_cap`. `open()` either counts a connection in or says which cap refused it;
    every counted connection must be `close()`d exactly once."""

    total_cap: int
    per_client_cap: int
    total: int = 0
    refused: int = 0  # since the start
    _per_client: dict[str, int] = field(default_factory=dict)

    def open(self, client: str) -> Refusal | None:
        if self.total >= self.total_cap:
            self.refused += 1
            return Refusal.TOTAL
        count = self._per_client.get(client, 0)
        if count >= self.per_client_cap:
            self.refused += 1
            return Refusal.PER_CLIENT
        self._per_client[client] = count + 1
        self.total += 1
        return None

    def close(self, client: str) -> None:
        count = self._per_client.get(client, 0)
        if count < 1:
            raise RuntimeError(f"closing a connection of {client} that was never opened")
        if count == 1:
            del self._per_client[client]  # no entry per address ever seen: they would pile up
        else:
            self._per_client[client] = count - 1
        self.total -= 1

    def of(self, client: str) -> int:
        return self._per_client.get(client, 0)

    @property
    def clients(self) -> int:
        return len(self._per_client)
