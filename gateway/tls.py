"""The server's TLS credentials: a self-signed certificate made on first start, or a pair
named in the configuration, and the `ssl.SSLContext` that serves them (TLS 1.2 and up).

The self-signed certificate lives in `<spool>/tls/` (`server.crt`, and `server.key` mode
0600, owned by the account the gateway runs as). Clients pin it on first use (CUPS, macOS,
Windows all trust on first use for a printer), so it is reused as it is across restarts and
replaced only when it nears its end (`RENEW_BEFORE`) or no longer names this host. Its
SHA-256 fingerprint goes to the log at start, for comparing with what a client shows.

No trio here: the start-up code calls this while still root (a configured key is often
readable by root alone), and the service runs a renewal in a worker thread. The certificate
work itself, with `cryptography`, is gateway.certificates: at start it runs in a child
process, so the gateway never holds that library in memory.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import socket
import ssl
import struct
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Protocol

log = logging.getLogger("gateway.tls")

TLS_DIRECTORY = "tls"
CERTIFICATE_NAME = "server.crt"
KEY_NAME = "server.key"
# Apple refuses TLS server certificates valid for more than 825 days, even ones a user has
# chosen to trust; the next certificate is made that long before this one ends.
VALIDITY = timedelta(days=825)
RENEW_BEFORE = timedelta(days=30)
# Clients whose clock runs a little behind still accept a certificate made just now.
BACKDATE = timedelta(days=1)
CHILD_TIMEOUT = 60.0  # seconds for the certificate child (key generation included)

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class TlsError(Exception):
    """The certificate or key cannot be used; the message names the file and the fix."""


class ChildUnavailable(Exception):
    """The certificate child process cannot be started (the work is then done in-process)."""


@dataclass(frozen=True)
class Identity:
    """What a certificate for this host names: host names first (the first one is the
    subject), then addresses."""

    names: tuple[str, ...]
    addresses: tuple[IpAddress, ...]


@dataclass(frozen=True)
class Credentials:
    certificate: Path
    key: Path
    fingerprint: str  # SHA-256 of the DER certificate, "AB:CD:..."
    not_after: datetime
    self_signed: bool  # made by us (and renewed by us), not named in the configuration

    def renew_at(self) -> datetime:
        return self.not_after - RENEW_BEFORE


def host_identity() -> Identity:
    """This host as clients reach it: its name, `name.local` (mDNS), localhost, and its
    addresses (loopback included)."""
    hostname = socket.gethostname() or "localhost"
    short = hostname.split(".")[0]
    names = [hostname if "." in hostname else f"{hostname}.local", hostname, f"{short}.local",
             "localhost"]
    addresses: list[IpAddress] = [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1")]
    addresses += _interface_addresses()
    with contextlib.suppress(OSError):
        for info in socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM):
            with contextlib.suppress(ValueError):
                addresses.append(ipaddress.ip_address(str(info[4][0]).partition("%")[0]))
    return Identity(tuple(dict.fromkeys(names)), tuple(dict.fromkeys(addresses)))


_SIOCGIFADDR = 0x8915


def _interface_addresses() -> list[IpAddress]:
    """The IPv4 address of each interface (ioctl) and every IPv6 address that is not
    link-local (/proc/net/if_inet6): what a client on the LAN may type."""
    found: list[IpAddress] = []
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        for _, name in socket.if_nameindex():
            request = struct.pack("256s", name.encode()[:15])
            with contextlib.suppress(OSError):
                reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
                found.append(ipaddress.IPv4Address(reply[20:24]))
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/if_inet6").read_text().splitlines():
            address = ipaddress.IPv6Address(bytes.fromhex(line.split()[0]))
            if not address.is_link_local:
                found.append(address)
    return found


def server_context(credentials: Credentials) -> ssl.SSLContext:
    """A server context for `credentials`: TLS 1.2 and 1.3 only."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    # No TLS 1.3 session tickets: CUPS 2.4's client (GnuTLS) with a timeout set, as
    # `ipptool -T` and the self-certification runner use it, takes the tickets that arrive
    # after the handshake for the start of the answer and reads 0 bytes of it.
    context.num_tickets = 0
    try:
        context.load_cert_chain(credentials.certificate, credentials.key)
    except (ssl.SSLError, OSError) as exc:
        raise TlsError(f"certificate {credentials.certificate} with key {credentials.key}: "
                       f"OpenSSL refuses them ({exc})") from None
    return context


class RenewableStore(Protocol):
    """Where a self-signed certificate is kept and made anew (gateway.certificates)."""

    def ensure(self, identity: Identity, now: datetime) -> Credentials: ...


@dataclass(frozen=True)
class SelfSignedStore:
    """`<spool>/tls/` as a `RenewableStore` that loads `cryptography` only when it is used."""

    directory: Path
    owner: tuple[int, int] | None = None

    def ensure(self, identity: Identity, now: datetime) -> Credentials:
        from gateway.certificates import CertificateStore

        return CertificateStore(self.directory, self.owner).ensure(identity, now)


class ServerTls:
    """The TLS side of the listeners: the context handshakes use now (a renewal swaps it;
    connections already made keep theirs) and the credentials behind it."""

    def __init__(self, credentials: Credentials, store: RenewableStore | None = None) -> None:
        self.credentials = credentials
        self.context = server_context(credentials)
        self.store = store  # set when we made the certificate and so renew it

    def renew_if_due(self, now: datetime, identity: Identity | None = None) -> bool:
        """Make and load a new certificate when the kept one is due; True if it did. Blocks
        (key generation, file writes): call it from a worker thread."""
        if self.store is None or now < self.credentials.renew_at():
            return False
        credentials = self.store.ensure(identity or host_identity(), now)
        self.context, self.credentials = server_context(credentials), credentials
        log.info("TLS certificate renewed: SHA-256 fingerprint %s, valid until %s",
                 credentials.fingerprint,
                 f"{credentials.not_after:%Y-%m-%d}")
        return True


def open_server_tls(directory: Path, *, certificate: Path | None = None,
                    key: Path | None = None, owner: tuple[int, int] | None = None,
                    in_child: bool = False, identity: Identity | None = None,
                    now: datetime | None = None) -> ServerTls:
    """The configured pair when `certificate` and `key` are given, else the self-signed one
    kept in `directory` (made now if needed). Raises `TlsError`. With `in_child` the
    certificate work (and `cryptography`) runs in a child process, so the gateway itself never
    loads it (its `identity` is then this host's)."""
    credentials = None
    if in_child:
        try:
            credentials = _credentials_from_child(directory, certificate, key, owner)
        except ChildUnavailable as exc:  # then here, at the cost of the memory
            log.debug("certificate check in this process: %s", exc)
    if credentials is None:
        from gateway.certificates import open_credentials

        credentials = open_credentials(directory, certificate=certificate, key=key, owner=owner,
                                       identity=identity, now=now)
    store = SelfSignedStore(directory, owner) if credentials.self_signed else None
    server = ServerTls(credentials, store)
    if credentials.not_after <= (now or datetime.now(UTC)):
        log.warning("TLS certificate %s ended on %s: clients will refuse it",
                    credentials.certificate, f"{credentials.not_after:%Y-%m-%d}")
    log.info("TLS certificate %s: SHA-256 fingerprint %s, valid until %s",
             credentials.certificate, credentials.fingerprint,
             f"{credentials.not_after:%Y-%m-%d}")
    return server


def _credentials_from_child(directory: Path, certificate: Path | None, key: Path | None,
                            owner: tuple[int, int] | None) -> Credentials:
    argv = [sys.executable, "-m", "gateway.certificates", str(directory)]
    if certificate is not None and key is not None:
        argv += ["--certificate", str(certificate), "--key", str(key)]
    if owner is not None:
        argv += ["--owner", f"{owner[0]}:{owner[1]}"]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT,
                              check=False)
    except OSError as exc:  # this account may not run the interpreter by its path
        raise ChildUnavailable(str(exc)) from None
    except subprocess.TimeoutExpired as exc:
        raise TlsError(f"the certificate check did not finish ({exc})") from None
    for line in done.stderr.splitlines():
        if line and not line.startswith("error: "):
            log.info("%s", line)
    if done.returncode != 0:
        errors = [line[len("error: "):] for line in done.stderr.splitlines()
                  if line.startswith("error: ")]
        raise TlsError(errors[-1] if errors else
                       f"the certificate check failed (exit {done.returncode}): "
                       f"{done.stderr.strip()[-300:]}")
    record = json.loads(done.stdout)
    return Credentials(Path(record["certificate"]), Path(record["key"]), record["fingerprint"],
                       datetime.fromisoformat(record["not_after"]), bool(record["self_signed"]))
