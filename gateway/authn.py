"""Authentication: who a request comes from, proven by HTTP Basic credentials.

With `[auth] enabled`, a request's `Authorization: Basic` credentials are checked against
the password file in the spool (gateway.passwords, `ipp-gateway passwd`), then, with
`[auth] pam`, against the system's accounts (gateway.pam_auth). The result is a `Viewer`
(gateway.privacy) that gateway.policy judges. Without credentials the viewer is the
request's requesting-user-name, unproven; with authentication off, a client on the
gateway's own host (loopback) is the administrator, as the local root is on a CUPS server.

Basic sends the password in the clear, so credentials are taken only over TLS (ipps, or a
connection upgraded to TLS) unless `[auth] allow_plain_http`; over plain HTTP the answer is
426 Upgrade Required, which the CUPS client and ipptool follow by upgrading.

Guessing is slowed per client address: after a failure the next check from that address
waits (0.5 s, doubling to 30 s, forgotten after 15 min quiet), checks from one address run
one at a time, and at most two scrypt checks run at once in all. A successful check is
remembered for a few minutes (keyed by a keyed hash of the password, never the password),
so that a client sending credentials with every request does not pay scrypt each time.

`parse_basic` and `Backoff` are pure; `Authenticator` is the Trio shell.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import ipaddress
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import trio

from gateway import audit
from gateway.config import AuthConfig
from gateway.passwords import PASSWD_FILE, Account, PasswordFile
from gateway.privacy import Viewer

log = logging.getLogger("gateway.auth")

MAX_CREDENTIALS = 1024  # characters of an Authorization value we decode
CACHE_SECONDS = 300.0
CACHE_ENTRIES = 1024
PAM_CACHE_SECONDS = 60.0  # a system account may be locked or changed behind our back


def password_file(spool: Path) -> Path:
    """Where the gateway's accounts are kept (`ipp-gateway passwd` writes it)."""
    return spool / PASSWD_FILE


class BadCredentials(ValueError):
    """An Authorization header that is not readable Basic credentials."""


def parse_basic(value: str) -> tuple[str, str]:
    """(user, password) from an `Authorization: Basic ...` value (RFC 7617; UTF-8, as
    CUPS and browsers send it). Raises BadCredentials saying what is wrong."""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "basic":
        raise BadCredentials(f"the {scheme[:20]!r} scheme is not accepted (use Basic)")
    token = token.strip()
    if not token or len(token) > MAX_CREDENTIALS:
        raise BadCredentials("empty or oversized Basic credentials")
    try:
        decoded = base64.b64decode(token, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise BadCredentials("Basic credentials are not base64 of UTF-8 text") from None
    user, colon, password = decoded.partition(":")
    if not colon or not user or not password:
        raise BadCredentials("Basic credentials need a user name and a password")
    if not user.isprintable():
        raise BadCredentials("the user name has control characters")
    return user, password


@dataclass
class _Failures:
    count: int
    last: float


class Backoff:
    """Per-address delays after failed logins: `delay(address, now)` is how long the next
    check from `address` waits; `failed` and `succeeded` record outcomes. Bounded: the
    least recently failing addresses are forgotten first."""

    def __init__(self, *, first: float = 0.5, ceiling: float = 30.0,
                 forget_after: float = 900.0, max_addresses: int = 4096) -> None:
        self.first, self.ceiling, self.forget_after = first, ceiling, forget_after
        self.max_addresses = max_addresses
        self._failures: OrderedDict[str, _Failures] = OrderedDict()

    def delay(self, address: str, now: float) -> float:
        entry = self._failures.get(address)
        if entry is None:
            return 0.0
        if now - entry.last > self.forget_after:
            del self._failures[address]
            return 0.0
        wanted = min(self.ceiling, self.first * 2.0 ** min(entry.count - 1, 32))
        return max(0.0, entry.last + wanted - now)

    def failed(self, address: str, now: float) -> int:
        """Record a failure; the number of failures from `address` in a row."""
        entry = self._failures.pop(address, None)
        if entry is None or now - entry.last > self.forget_after:
            entry = _Failures(0, now)
        entry.count += 1
        entry.last = now
        self._failures[address] = entry
        while len(self._failures) > self.max_addresses:
            self._failures.popitem(last=False)
        return entry.count

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)

    def __len__(self) -> int:
        return len(self._failures)


class NotAuthenticated(Exception):
    """The request must authenticate (or move to TLS first) before it can be answered:
    HTTP 401 with a challenge, or 426 with an Upgrade offer, and an IPP body saying
    client-error-not-authenticated."""

    def __init__(self, message: str, *, encryption_required: bool, realm: str) -> None:
        super().__init__(message)
        self.message = message
        self.encryption_required = encryption_required
        self.realm = realm

    @property
    def http_status(self) -> int:
        return 426 if self.encryption_required else 401

    @property
    def headers(self) -> list[tuple[str, str]]:
        if self.encryption_required:
            return [("Upgrade", "TLS/1.2, HTTP/1.1"), ("Connection", "Upgrade")]
        return [("WWW-Authenticate", f'Basic realm="{self.realm}", charset="UTF-8"')]


def address_of(client: str) -> str:
    """The address of a client "ip:port" / "[v6]:port" (what backoff and audit key on)."""
    host = client.rpartition(":")[0] if client.count(":") == 1 or client.startswith("[") \
        else client
    return host.strip("[]") or client


def is_loopback(address: str) -> bool:
    try:
        parsed = ipaddress.ip_address(address.partition("%")[0])
    except ValueError:
        return False
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    return parsed.is_loopback


Verifier = Callable[[str, str], Account | None]


class Authenticator:
    """Identifies the sender of each request (see the module docstring). One per app; the
    `backoff` is kept across reloads by whoever makes the apps."""

    def __init__(self, config: AuthConfig, passwords: PasswordFile, *,
                 backoff: Backoff | None = None, pam: Verifier | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.passwords = passwords
        self.backoff = backoff or Backoff()
        self._pam = pam
        self._clock = clock
        self._secret = os.urandom(32)
        # key -> (account, expiry, the password file's accounts when checked, or None: PAM)
        self._cache: OrderedDict[tuple[str, bytes],
                                 tuple[Account, float, object | None]] = OrderedDict()
        self._address_locks: dict[str, trio.Lock] = {}
        self._checks = trio.CapacityLimiter(2)  # scrypt is CPU and memory: two at a time
        # PAM sleeps ~2 s after a wrong password (pam_unix without nodelay): its own slots,
        # so that guessing at system accounts cannot hold up the password file's logins.
        self._pam_checks = trio.CapacityLimiter(4)

    @property
    def enabled(self) -> bool:
        return self.config.enabled

    def challenge(self, message: str, *, secure: bool) -> NotAuthenticated:
        """What to answer a request that must log in: 426 over plain HTTP when credentials
        may not travel there, else 401 with the Basic challenge."""
        return NotAuthenticated(
            message, realm=self.config.realm,
            encryption_required=not secure and not self.config.allow_plain_http)

    async def identify(self, *, authorization: str | None, secure: bool, client: str,
                       requested_user: str) -> Viewer:
        """Who sent a request: raises NotAuthenticated when it carried credentials that do
        not hold (or may not travel unencrypted); never for a request without any."""
        address = address_of(client)
        if not self.config.enabled:
            return Viewer(requested_user, is_admin=is_loopback(address))
        if authorization is None:
            return Viewer(requested_user)
        if not secure and not self.config.allow_plain_http:
            audit.auth_failed(None, address, "credentials over plain http")
            raise self.challenge("credentials are taken only over TLS (ipps)", secure=False)
        try:
            user, password = parse_basic(authorization)
        except BadCredentials as error:
            audit.auth_failed(None, address, str(error))
            raise self.challenge(str(error), secure=secure) from None
        account = await self.verify(user, password, address)
        if account is None:
            raise self.challenge("wrong user name or password", secure=secure)
        return Viewer(account.name, is_admin=account.admin, authenticated=True,
                      groups=account.groups)

    async def verify(self, user: str, password: str, address: str) -> Account | None:
        """The account `user` logs in to with `password`, or None (audited, and slowing the
        next attempt from `address`)."""
        key = (user, hmac.new(self._secret, password.encode("utf-8", "surrogatepass"),
                              hashlib.sha256).digest())
        cached = self._cached(key)
        if cached is not None:
            return cached
        lock = self._address_locks.setdefault(address, trio.Lock())
        try:
            async with lock:
                wait = self.backoff.delay(address, self._clock())
                if wait > 0:
                    await trio.sleep(wait)
                account = await trio.to_thread.run_sync(
                    self.passwords.verify, user, password, limiter=self._checks)
                pam = self._pam
                from_pam = account is None and pam is not None \
                    and user not in self.passwords.accounts()
                if from_pam and pam is not None:
                    account = await trio.to_thread.run_sync(
                        pam, user, password, limiter=self._pam_checks)
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._address_locks.pop(address, None)
        if account is None:
            failures = self.backoff.failed(address, self._clock())
            log.warning("authentication of %r from %s failed (%d in a row)", user[:64],
                        address, failures)
            audit.auth_failed(user, address, "wrong user name or password")
            return None
        self.backoff.succeeded(address)
        self._remember(key, account, from_pam)
        return account

    def _cached(self, key: tuple[str, bytes]) -> Account | None:
        entry = self._cache.get(key)
        if entry is None:
            return None
        account, expires, generation = entry
        # Any change to the password file (a new password, a deletion) ends the entry at
        # once: accounts() gives a new mapping after every change it sees.
        if self._clock() > expires or (
                generation is not None and self.passwords.accounts() is not generation):
            del self._cache[key]
            return None
        return account

    def _remember(self, key: tuple[str, bytes], account: Account, from_pam: bool) -> None:
        ttl = PAM_CACHE_SECONDS if from_pam else CACHE_SECONDS
        generation = None if from_pam else self.passwords.accounts()
        self._cache[key] = (account, self._clock() + ttl, generation)
        self._cache.move_to_end(key)
        while len(self._cache) > CACHE_ENTRIES:
            self._cache.popitem(last=False)

