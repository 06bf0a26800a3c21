"""Start-up checks: every resource the gateway needs is tried before it says it is ready, and
each failure is one line that names the thing and the fix, never a bare errno string.

- the account to run as (root only binds the ports, then hands over: gateway.privileges);
- the spool: created, locked (one gateway per spool), writable by that account, with room;
- the log file's directory, so that it can rotate after the hand-over;
- the TLS certificate and key (made in the spool on first start, or read from the configured
  pair while still root: such a key is often readable by root alone);
- each listen address, bound while still root.
"""

from __future__ import annotations

import errno
import logging
import os
import pwd
import shutil
import socket
import tempfile
from pathlib import Path

import trio

from gateway.audit import AUDIT_FILE
from gateway.authority import authority
from gateway.config import DEFAULT_PORT, DEFAULT_USER, Config, ListenAddress, default_spool
from gateway.core.spool_lock import SpoolInUse, SpoolLock
from gateway.passwords import PASSWD_FILE, PasswordFileError, hand_over
from gateway.privileges import (
    Account,
    PrivilegeError,
    prepare_directory,
    resolve_account,
    running_as_root,
    writable_by,
)
from gateway.server.listener import close_listeners
from gateway.tls import TLS_DIRECTORY, ServerTls, TlsError, open_server_tls

log = logging.getLogger("gateway")

MIN_FREE_BYTES = 32 << 20  # below this a spool cannot take even a small job and its record


class StartupError(Exception):
    """A resource the gateway needs is not there; the message says which and what to do."""


def current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def target_account(config: Config) -> Account | None:
    """The account to run as after binding, or None to stay as we are."""
    if not running_as_root():
        me = current_user()
        if config.user and config.user != me:
            raise StartupError(f"server.user {config.user!r}: running as another user needs "
                               f"root (started as {me}); leave it out or start as root")
        return None
    name = config.user or DEFAULT_USER
    if name == "root":
        log.warning("running as root (server.user = root): documents from the network are "
                    "parsed with every privilege; set server.user to an unprivileged account")
        return None
    try:
        return resolve_account(name)
    except PrivilegeError as exc:
        raise StartupError(str(exc)) from None


def prepare_spool(config: Config, account: Account | None) -> SpoolLock:
    """Create (when missing), lock and check the spool; returns the held lock."""
    spool = config.spool
    created = not spool.exists()
    try:
        spool.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartupError(f"cannot create spool {spool}: {exc.strerror}; create it or use "
                           "--spool DIR") from None
    if not spool.is_dir():
        raise StartupError(f"spool {spool} is not a directory; use --spool DIR")
    # Our own spool is handed to the account; a directory someone chose is only checked.
    if account is not None and (created or spool == default_spool()):
        try:
            prepare_directory(spool, account)
        except PrivilegeError as exc:
            raise StartupError(str(exc)) from None
    lock = SpoolLock(spool)
    try:
        lock.acquire()
    except SpoolInUse as exc:
        raise StartupError(str(exc)) from None
    except OSError as exc:
        raise StartupError(f"spool {spool} is not usable: {exc.strerror}") from None
    checked = False
    try:
        if account is not None:
            lock.chown(account.uid, account.gid)
            hand_over_audit_log(spool, account)
            hand_over_password_file(spool, account)
        _check_writable(spool, account)
        _check_free_space(config)
        checked = True
    finally:
        if not checked:
            lock.release()
    return lock


def hand_over_audit_log(spool: Path, account: Account) -> None:
    """The audit log and its rotated files, made by an earlier run (as root, say), become
    the account's: after the drop it must reopen and rotate them."""
    for path in spool.glob(f"{AUDIT_FILE}*"):
        try:
            # Not through a link: the spool is the account's to write, and a planted
            # "audit.log.1 -> /etc/shadow" must not hand that file over at the next start.
            if path.is_symlink() or path.lstat().st_nlink > 1:
                log.warning("not handing %s to %s: it is a link", path, account.name)
                continue
            os.chown(path, account.uid, account.gid, follow_symlinks=False)
        except OSError as exc:
            log.warning("cannot hand %s to %s: %s; audit lines will be lost until it is "
                        "writable by that account", path, account.name, exc.strerror)


def hand_over_password_file(spool: Path, account: Account) -> None:
    """The accounts file, written by `ipp-gateway passwd` as root, becomes the account's:
    the gateway reads it (0600) after the drop."""
    path = spool / PASSWD_FILE
    try:
        hand_over(path, account.uid, account.gid)
    except (OSError, PasswordFileError) as exc:
        log.warning("cannot hand %s to %s: %s; its users cannot log in until that account "
                    "can read it", path, account.name, exc)


def prepare_tls(config: Config, account: Account | None) -> ServerTls | None:
    """The server's TLS (None with `server.tls = false`): the configured certificate and
    key, else the self-signed pair in `<spool>/tls/`, owned by `account`."""
    if not config.tls:
        log.info("TLS is off (server.tls = false): ipp:// only")
        return None
    owner = None if account is None else (account.uid, account.gid)
    try:
        return open_server_tls(config.spool / TLS_DIRECTORY, certificate=config.tls_certificate,
                               key=config.tls_key, owner=owner, in_child=True)
    except TlsError as exc:
        raise StartupError(str(exc)) from None


def _check_writable(spool: Path, account: Account | None) -> None:
    for directory in (spool, spool / "jobs"):
        if directory.exists():
            problem = (writable_by(directory, account, "spool") if account is not None
                       else _writable_here(directory))
            if problem is not None:
                owner = f"chown -R {account.name}: {spool}" if account is not None else (
                    f"make it writable by {current_user()}")
                raise StartupError(f"{problem}; {owner}, or use --spool DIR")


def _writable_here(directory: Path) -> str | None:
    try:
        fd, name = tempfile.mkstemp(prefix=".write-test-", dir=directory)
    except OSError as exc:
        return f"spool {directory} is not writable by user {current_user()} ({exc.strerror})"
    os.close(fd)
    os.unlink(name)
    return None


def _check_free_space(config: Config) -> None:
    free = shutil.disk_usage(config.spool).free
    if free < MIN_FREE_BYTES:
        raise StartupError(f"spool {config.spool} has only {free >> 20} MB free (at least "
                           f"{MIN_FREE_BYTES >> 20} MB needed); free some space or use --spool "
                           "DIR on another disk")
    if free < config.max_job_bytes:
        log.warning("spool %s has %d MB free, less than max_job_mb (%d): a large job will be "
                    "refused", config.spool, free >> 20, config.max_job_bytes >> 20)


def prepare_log_file(path: Path | None, account: Account | None) -> None:
    """Let the account write and rotate the log file it inherits an open handle to."""
    if path is None or account is None:
        return
    try:
        if not path.parent.exists():
            prepare_directory(path.parent, account)
        if path.exists():
            os.chown(path, account.uid, account.gid)
    except (OSError, PrivilegeError) as exc:
        log.warning("log file %s: cannot hand it to user %s (%s); it may not rotate",
                    path, account.name, exc)
        return
    problem = writable_by(path.parent, account, "log directory")
    if problem is not None:
        log.warning("log file %s will not rotate: %s", path, problem)


async def open_listeners(listen: tuple[ListenAddress, ...]) -> list[trio.SocketListener]:
    """Bind every listen address (while still privileged); StartupError names the one that
    failed and what to do."""
    listeners: list[trio.SocketListener] = []
    try:
        for address in listen:
            listeners.extend(await _open(address))
    except StartupError:
        await close_listeners(listeners)
        raise
    return listeners


async def _open(address: ListenAddress) -> list[trio.SocketListener]:
    try:
        hosts = _numeric_hosts(address)
        listeners = await _open_on(hosts, address.port)
        if address.port != 0 or len(listeners) < 2:
            return listeners
        # Port 0 draws a port per address: reopen them all on the first one's.
        port = listeners[0].socket.getsockname()[1]
        for listener in listeners:
            await trio.aclose_forcefully(listener)
        return await _open_on(hosts, port)
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen on {address}: the host name does not resolve "
                           f"({exc.strerror}); use --listen *:{address.port}") from None
    except OSError as exc:
        raise StartupError(listen_failure(address, exc)) from None


def _numeric_hosts(address: ListenAddress) -> list[str | None]:
    """The addresses a listen host names, resolved here with a blocking lookup: trio would
    resolve a name in a worker thread that then stays, and the hand-over to another account
    must happen while the process has a single thread (capabilities are per thread)."""
    if not address.host:
        return [None]  # every address: trio binds the wildcards without a lookup
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def _open_on(hosts: list[str | None], port: int) -> list[trio.SocketListener]:
    listeners: list[trio.SocketListener] = []
    try:
        for host in hosts:
            listeners.extend(await trio.open_tcp_listeners(port, host=host))
    except OSError:
        await close_listeners(listeners)
        raise
    return listeners


def listen_failure(address: ListenAddress, exc: OSError) -> str:
    """The words for a failed bind."""
    port = address.port
    if exc.errno == errno.EACCES:
        if port < 1024:
            host = address.host or "0.0.0.0"
            return (f"port {port} needs root or CAP_NET_BIND_SERVICE; use --listen "
                    f"{authority(host, DEFAULT_PORT)}")
        return f"cannot listen on {address}: permission denied"
    if exc.errno == errno.EADDRINUSE:
        return (f"port {port} on {address} is already in use by another program (another "
                f"ipp-gateway, or CUPS on 631?); stop it or choose another port with --listen")
    if exc.errno == errno.EADDRNOTAVAIL:
        return f"{address.host} is not an address of this machine; use --listen *:{port}"
    return f"cannot listen on {address}: {exc.strerror or exc}"
