"""TCP listeners that hand every accepted connection to its own `HttpConnection` task.

IPP and IPPS share each port. With TLS on, the first bytes a client sends decide: a TLS
record (a ClientHello starts with 0x16, which no HTTP method does) is answered with a
handshake and HTTP over it, scheme "ipps"; anything else is plain HTTP, scheme "ipp", and the
bytes read are the start of its first request. RFC 2817's `Upgrade: TLS/1.2` on a plain
connection ends up here too (`TlsServer.upgrade`, which the router answers with).

Before any byte is read, `Admission` decides whether a peer is served at all: its address
against the allow and deny rules of the listener that accepted it (its listen entry's own, else
the global ones; gateway.access; web pages and IPP alike, since they share the port), then
the connection caps, in total and per client address. A refused peer's
connection is closed at once (over a cap, after a 503 written without waiting), with one
rate-limited log line. When accept() itself fails for want of descriptors, the listener
pauses 100 ms at a time and says so once, not once per try with a traceback.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
import ipaddress
import logging
import os
import resource
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence

import ifaddr
import trio

from gateway.access import (
    AccessRules,
    Address,
    ConnectionCounter,
    ListenerRules,
    Network,
    Refusal,
    Verdict,
    effective_cap,
    parse_address,
    rules_for,
)
from gateway.config import Config, LimitsConfig
from gateway.ratelimit import CLIENT_LOG_LIMITER, REFUSAL_LOG_LIMITER, client_key
from gateway.server.http import (
    DEFAULT_LIMITS,
    HttpApp,
    HttpLimits,
    HttpRequest,
    Takeover,
    format_address,
    replayed_head,
)
from gateway.server.http_connection import (
    ConnectionLimits,
    HttpConnection,
    connection_limits,
    log_client_failure,
)
from gateway.server.streams import ReplayStream

logger = logging.getLogger("gateway.server.listener")

_ANY_HOST = ("", "*")
_TLS_HANDSHAKE_RECORD = 0x16
# accept(2) failing for want of resources; anything else is a bug or a closed listener.
_ACCEPT_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_ACCEPT_BACKOFF = 0.1  # seconds, as trio.serve_listeners waits
_LOCAL_REFRESH = 60.0  # seconds before a refused peer makes us list the interfaces again
_OVER_CAP_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
                      b"Content-Length: 21\r\nRetry-After: 10\r\nConnection: close\r\n\r\n"
                      b"Too many connections\n")


def http_limits(config: Config) -> ConnectionLimits:
    """The HTTP limits of a configuration: `server.read_timeout` and `[limits]`."""
    limits: LimitsConfig = config.limits
    return ConnectionLimits(read_timeout=config.read_timeout,
                            keepalive_timeout=limits.idle_timeout,
                            header_timeout=limits.header_timeout,
                            max_header_bytes=limits.max_header_bytes,
                            max_header_fields=limits.max_header_fields)


def host_networks() -> list[Network]:
    """The networks of this host's interfaces (IPv4 and IPv6, link-local included)."""
    networks: list[Network] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            address = ip.ip[0] if isinstance(ip.ip, tuple) else ip.ip
            try:
                networks.append(ipaddress.ip_network(
                    f"{address.partition('%')[0]}/{ip.network_prefix}", strict=False))
            except ValueError:
                continue  # an address ifaddr could not decode: no network to allow
    return networks


def descriptor_limit() -> int | None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return None if soft == resource.RLIM_INFINITY else soft


class Admission:
    """Which accepted connections are served: the access rules of the listener that accepted
    it (its own, or the global ones), then the caps. One per gateway, shared by its
    listeners; `reconfigure` applies a reloaded configuration to new connections (open ones
    stay, and count)."""

    def __init__(self, rules: AccessRules | None = None, *, max_connections: int = 512,
                 max_connections_per_client: int = 64, fd_limit: int | None = None,
                 local_networks: Callable[[], Iterable[Network]] = host_networks,
                 listeners: Sequence[ListenerRules] = ()) -> None:
        self._local_networks = local_networks
        self._listed_at = 0.0
        self._local: tuple[Network, ...] | None = None  # listed when a rule says "local"
        self._fd_limit = fd_limit
        self._configured = max_connections
        self.counter = ConnectionCounter(effective_cap(max_connections, fd_limit),
                                         max_connections_per_client)
        self._set_rules(rules or AccessRules(), listeners)

    @classmethod
    def from_config(cls, config: Config) -> Admission:
        return cls(AccessRules.parse(config.allow, config.deny),
                   max_connections=config.limits.max_connections,
                   max_connections_per_client=config.limits.max_connections_per_client,
                   fd_limit=descriptor_limit(), listeners=listener_rules(config))

    def reconfigure(self, config: Config) -> None:
        self._configured = config.limits.max_connections
        self.counter.total_cap = effective_cap(self._configured, self._fd_limit)
        self.counter.per_client_cap = config.limits.max_connections_per_client
        self._set_rules(AccessRules.parse(config.allow, config.deny), listener_rules(config))
        self.log_settings()

    def _set_rules(self, rules: AccessRules, listeners: Sequence[ListenerRules]) -> None:
        self._local = None
        self._configured_rules = rules
        self._configured_listeners = tuple(listeners)
        self._apply_local()

    def _apply_local(self) -> None:
        """The rules with "local" standing for what the interfaces are now (listed only when
        a rule says "local")."""
        def localised(rules: AccessRules) -> AccessRules:
            if not rules.uses_local:
                return rules
            if self._local is None:
                self._listed_at = time.monotonic()
                self._local = tuple(self._local_networks())
            return rules.with_local(self._local)

        self.rules = localised(self._configured_rules)
        self.listeners = tuple(dataclasses.replace(entry, rules=localised(entry.rules))
                               for entry in self._configured_listeners)

    def log_settings(self) -> None:
        counter = self.counter
        lowered = ("" if counter.total_cap == self._configured else
                   f" (limits.max_connections {self._configured} lowered: the descriptor "
                   f"limit is {self._fd_limit})")
        logger.info("connections: at most %d, %d per client address%s; allowed: %s; "
                    "denied: %s", counter.total_cap, counter.per_client_cap, lowered,
                    _describe(self.rules.allow, self.rules.local),
                    _describe(self.rules.deny, self.rules.local) or "none")
        for entry in self.listeners:
            logger.info("%s: allowed: %s; denied: %s", entry.source,
                        _describe(entry.rules.allow, entry.rules.local),
                        _describe(entry.rules.deny, entry.rules.local) or "none")

    def admit(self, client: str, host: str,
              listener: tuple[str, int] | None = None) -> str | Verdict | Refusal:
        """For a connection from `host` ("ip:port" `client` in the log) accepted by the
        listener bound to `listener`: the key to `release` it with once it ends, or why it
        is refused (logged here)."""
        rules, source = rules_for(listener, self.listeners, self.rules)
        verdict = rules.check(host)
        if verdict is Verdict.NOT_ALLOWED and rules.uses_local and self._stale():
            self._local = None  # a new address (DHCP) since we looked
            self._apply_local()
            rules, source = rules_for(listener, self.listeners, self.rules)
            verdict = rules.check(host)
        key = _address_key(host)
        if verdict is not Verdict.ALLOWED:
            rule = f"{source}.deny" if verdict is Verdict.DENIED else f"{source}.allow"
            REFUSAL_LOG_LIMITER.log(logger, logging.WARNING, key,
                                    "%s: connection refused: %s by %s", client,
                                    verdict.value, rule)
            return verdict
        refusal = self.counter.open(key)
        if refusal is None:
            return key
        if refusal is Refusal.TOTAL:
            REFUSAL_LOG_LIMITER.log(logger, logging.WARNING, "all clients",
                                    "%s: connection refused: %d connections open, the cap "
                                    "(%s)", client, self.counter.total, refusal.value)
        else:
            REFUSAL_LOG_LIMITER.log(logger, logging.WARNING, key,
                                    "%s: connection refused: %d connections open from %s, "
                                    "the cap (%s)", client, self.counter.of(key), key,
                                    refusal.value)
        return refusal

    def release(self, key: str) -> None:
        self.counter.close(key)

    def _stale(self) -> bool:
        return time.monotonic() - self._listed_at >= _LOCAL_REFRESH


def listener_rules(config: Config) -> list[ListenerRules]:
    """The rules of the listen entries that have their own allow or deny list (each list
    left out is the global one)."""
    found: list[ListenerRules] = []
    for address in config.listen:
        # Entries of server.listen carry none; [[server.listeners]] tables may.
        allow: tuple[str, ...] | None = getattr(address, "allow", None)
        deny: tuple[str, ...] | None = getattr(address, "deny", None)
        if allow is None and deny is None:
            continue
        hosts = _listen_hosts(address.host)
        if hosts is None:
            continue
        rules = AccessRules.parse(config.allow if allow is None else allow,
                                  config.deny if deny is None else deny)
        found.append(ListenerRules(hosts, address.port, rules, f"server.listeners ({address})"))
    return found


def _listen_hosts(host: str) -> frozenset[Address] | None:
    """The addresses a listen host binds (empty: every address; None: it does not resolve),
    resolved as the listeners were bound (gateway.startup)."""
    if host in _ANY_HOST:
        return frozenset()
    literal = parse_address(host.removeprefix("[").removesuffix("]"))
    if literal is not None:
        return frozenset({literal})
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        # Never bound either (startup refuses a name that does not resolve); not "every
        # address", which an empty set would mean.
        logger.warning("listen host %s does not resolve (%s): its own allow and deny rules "
                       "are left out", host, exc)
        return None
    return frozenset(address for info in infos
                     if (address := parse_address(str(info[4][0]))) is not None)


def _address_key(host: str) -> str:
    address = parse_address(host)
    return host if address is None else str(address)


def _describe(rules: Sequence[Network | str], local: Sequence[Network]) -> str:
    return ", ".join(f"local ({', '.join(map(str, local))})" if isinstance(rule, str)
                     else str(rule) for rule in rules)


class TlsServer:
    """HTTP over TLS for the listeners: `context` gives the SSLContext to handshake with now
    (a certificate renewal changes it), `app` is what the listeners serve (set by
    `serve_listeners`, so that an upgraded connection follows a reload as a plain one does)."""

    def __init__(self, context: Callable[[], ssl.SSLContext],
                 limits: HttpLimits = DEFAULT_LIMITS) -> None:
        self.context = context
        self.limits = limits
        self.app: HttpApp | None = None

    async def serve(self, stream: trio.abc.Stream, *, local: tuple[str, int], client: str,
                    replay: bytes = b"", request_head: bytes = b"") -> None:
        """Handshake on `stream` (whose first bytes, already read, are `replay`), then serve
        HTTP on it with scheme "ipps"; `request_head` is a request to answer first (the one
        that asked for the upgrade). A failed or slow handshake is one log line."""
        if self.app is None:
            raise RuntimeError("TlsServer.serve before serve_listeners gave it an app")
        transport = ReplayStream(replay, stream) if replay else stream
        tls = trio.SSLStream(transport, self.context(), server_side=True, https_compatible=True)
        # The handshake is this connection's first head: trickled, it must still end in time.
        limits = connection_limits(self.limits)
        seconds = min(limits.header_timeout, limits.read_timeout)
        with trio.move_on_after(seconds) as scope:
            try:
                await tls.do_handshake()
            except trio.BrokenResourceError as exc:
                _log_handshake_failure(client, _handshake_reason(exc))
                return
        if scope.cancelled_caught:
            _log_handshake_failure(client, f"no handshake within {seconds:g} s")
            return
        connection = HttpConnection(tls, self.app, limits=self.limits, local=local,
                                    client=client, scheme="ipps", initial_data=request_head)
        await connection.serve()

    def upgrade(self, request: HttpRequest) -> Takeover:
        """The takeover for an RFC 2817 upgrade of `request`: after the 101, the handshake,
        then the answer to `request` itself over TLS (as cupsd does, and the CUPS client
        waits for), then HTTP on the connection as on any TLS one."""
        head = replayed_head(request)

        async def run(stream: trio.abc.Stream) -> None:
            await self.serve(stream, local=(request.host, request.port), client=request.client,
                             request_head=head)

        return run


def _handshake_reason(exc: trio.BrokenResourceError) -> str:
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLError):
        return cause.reason or cause.strerror or str(cause)
    if cause is not None:
        return str(cause) or type(cause).__name__
    return "connection closed"


def _log_handshake_failure(client: str, reason: str) -> None:
    CLIENT_LOG_LIMITER.log(logger, logging.INFO, client_key(client),
                           "%s: TLS handshake failed: %s", client, reason)


async def serve_http(
    app: HttpApp,
    listen: list[tuple[str, int]],
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    tls: TlsServer | None = None,
    admission: Admission | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` over HTTP (and HTTPS with `tls`) on every (host, port) in `listen` until
    cancelled, to the peers `admission` lets in (default: `Admission()`'s rules and caps).

    A host may be "" (every address, IPv4 and IPv6), "0.0.0.0", "::", a name such as
    "localhost" (each address it resolves to) or an IPv6 literal with or without brackets.
    Port 0 picks a free port, the same one for all addresses of that host. Reports the
    actually bound (host, port) pairs through `task_status.started`.
    """
    listeners: list[trio.SocketListener] = []
    try:
        for host, port in listen:
            listeners.extend(await _open_listeners(host, port))
    except OSError:
        await close_listeners(listeners)
        raise
    await serve_listeners(app, listeners, limits=limits, tls=tls, admission=admission,
                          task_status=task_status)


async def close_listeners(listeners: list[trio.SocketListener]) -> None:
    for listener in listeners:
        await trio.aclose_forcefully(listener)


async def _open_listeners(host: str, port: int) -> list[trio.SocketListener]:
    bind_host = None if host in _ANY_HOST else host.removeprefix("[").removesuffix("]")
    listeners = await trio.open_tcp_listeners(port, host=bind_host)
    if port != 0 or len(listeners) < 2:
        return listeners
    # Port 0 draws a separate port for each address (IPv4, IPv6): reopen them all on one.
    shared_port = _bound_address(listeners[0])[1]
    for listener in listeners:
        await trio.aclose_forcefully(listener)
    return await trio.open_tcp_listeners(shared_port, host=bind_host)


def _bound_address(listener: trio.SocketListener) -> tuple[str, int]:
    address = listener.socket.getsockname()
    return str(address[0]), int(address[1])


async def _serve_connection(stream: trio.SocketStream, app: HttpApp, limits: HttpLimits,
                            tls: TlsServer | None, local: tuple[str, int], client: str) -> None:
    """Serve one admitted connection; whatever happens to it, the listener carries on."""
    try:
        first = b""
        if tls is not None:
            first = await _first_bytes(stream, limits)
            if not first:
                return  # closed, or silent while idle: nothing to answer
            if first[0] == _TLS_HANDSHAKE_RECORD:
                await tls.serve(stream, local=local, client=client, replay=first)
                return
        connection = HttpConnection(stream, app, limits=limits, local=local, client=client,
                                    initial_data=first)
        await connection.serve()
    except Exception:
        log_client_failure(logger, client, "%s: connection failed", client)
    finally:
        await trio.aclose_forcefully(stream)


async def _first_bytes(stream: trio.SocketStream, limits: HttpLimits) -> bytes:
    """What the client sends first (b"" if it closes, or stays silent as long as an idle
    connection may)."""
    with trio.move_on_after(connection_limits(limits).keepalive_timeout):
        try:
            return bytes(await stream.receive_some(limits.receive_size))
        except (trio.BrokenResourceError, trio.ClosedResourceError) as exc:
            logger.debug("connection lost before its first bytes: %s", exc)
    return b""


async def serve_listeners(
    app: HttpApp,
    listeners: list[trio.SocketListener],
    *,
    limits: HttpLimits = DEFAULT_LIMITS,
    tls: TlsServer | None = None,
    admission: Admission | None = None,
    task_status: trio.TaskStatus[list[tuple[str, int]]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` on listeners bound earlier (by gateway.startup, before privileges were
    dropped) until cancelled, over TLS too when `tls` is given (the same ports), to the peers
    `admission` lets in; reports their (host, port) pairs through `task_status`."""
    if admission is None:
        admission = Admission(fd_limit=descriptor_limit())
    bound = [_bound_address(listener) for listener in listeners]
    for address in bound:
        logger.info("listening on %s (%s)", format_address(address),
                    "ipp and ipps" if tls is not None else "ipp")
    admission.log_settings()
    if tls is not None:
        tls.app = app

    async def handler(stream: trio.SocketStream, local: tuple[str, int], client: str,
                      key: str) -> None:
        try:
            await _serve_connection(stream, app, limits, tls, local, client)
        finally:
            admission.release(key)

    try:
        async with trio.open_nursery() as nursery:
            for listener, address in zip(listeners, bound, strict=True):
                nursery.start_soon(functools.partial(_accept_loop, listener, admission,
                                                     handler, bound=address))
            task_status.started(bound)
    finally:
        await close_listeners(listeners)


async def _accept_loop(
    listener: trio.SocketListener,
    admission: Admission,
    handler: Callable[[trio.SocketStream, tuple[str, int], str, str], Awaitable[None]],
    *,
    bound: tuple[str, int] | None = None,
) -> None:
    """Accept connections until cancelled; each admitted one is served in a task of its own
    (in this loop's nursery), a refused one is closed here and now. `bound` is the address
    the listener is bound to, whose access rules apply (None: the global ones)."""
    starved_since: float | None = None
    async with trio.open_nursery() as nursery:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _ACCEPT_CAPACITY_ERRNOS:
                    raise
                if starved_since is None:
                    starved_since = trio.current_time()
                    logger.warning("accept failed: %s (%d connections open); pausing new "
                                   "connections %g s at a time until it passes",
                                   os.strerror(exc.errno), admission.counter.total,
                                   _ACCEPT_BACKOFF)
                await trio.sleep(_ACCEPT_BACKOFF)
                continue
            if starved_since is not None:
                logger.warning("accepting connections again after %.1f s",
                               trio.current_time() - starved_since)
                starved_since = None
            await _admit(stream, admission, handler, nursery, bound)


async def _admit(
    stream: trio.SocketStream,
    admission: Admission,
    handler: Callable[[trio.SocketStream, tuple[str, int], str, str], Awaitable[None]],
    nursery: trio.Nursery,
    bound: tuple[str, int] | None,
) -> None:
    try:
        local = stream.socket.getsockname()
        peer = stream.socket.getpeername()
    except OSError as exc:  # reset before we got to it
        logger.debug("connection lost before serving: %s", exc)
        await trio.aclose_forcefully(stream)
        return
    client = format_address(peer)
    admitted = admission.admit(client, str(peer[0]), bound)
    if isinstance(admitted, str):
        nursery.start_soon(handler, stream, (str(local[0]), int(local[1])), client, admitted)
        return
    if isinstance(admitted, Refusal):
        _answer_over_cap(stream)
    await trio.aclose_forcefully(stream)


def _answer_over_cap(stream: trio.SocketStream) -> None:
    """A 503 for a client over a cap, if the socket takes it at once: a new connection's
    send buffer is empty, and waiting for a client we are refusing would hold what the cap
    protects."""
    try:
        os.write(stream.socket.fileno(), _OVER_CAP_RESPONSE)
    except OSError as exc:
        logger.debug("no 503 for a connection over the cap: %s", exc)
