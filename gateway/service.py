"""The running gateway: one System behind the HTTP listeners, its signals, and reloads.

SIGTERM and SIGINT stop it (pending jobs stay in the spool). SIGHUP re-reads the configuration
and restarts the System in-process on the same listeners: requests in flight finish first, a
job being printed is stopped and requeued (as after a restart), and nothing in the spool is
lost. Settings that need the ports or the spool again (listen, spool, user) are kept until a
real restart, with a warning.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import signal
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import trio

from drivers import ACCELERATED
from gateway import __version__, logs, sd_notify
from gateway.audit import AuditLog
from gateway.authn import Authenticator, Backoff, password_file
from gateway.authority import url
from gateway.config import Config, ConfigError
from gateway.core.spool_lock import LockInfo, SpoolLock
from gateway.core.system import System
from gateway.dashboard.session import Sessions
from gateway.dashboard.view import ServerInfo
from gateway.dnssd import Advertiser
from gateway.metrics import Metrics
from gateway.pam_auth import pam_available, pam_verify
from gateway.passwords import PasswordFile
from gateway.server.ipp_endpoint import IppApp
from gateway.server.listener import Admission, TlsServer, http_limits, serve_listeners
from gateway.server.switch import SwitchableApp
from gateway.tls import ServerTls, TlsError

log = logging.getLogger("gateway")

RELOAD_DRAIN_TIMEOUT = 60.0  # seconds a reload waits for requests in flight
# The TLS pair is read while root, before the hand-over: a reload could not read it again.
RESTART_ONLY = ("listen", "spool", "user", "tls", "tls_certificate", "tls_key")
RENEWAL_CHECK_INTERVAL = 86400.0  # seconds between looks at the certificate's end date


def public_host_name() -> str:
    """This host as phones and laptops resolve it: `name.local` over mDNS unless it already
    has a domain."""
    name = socket.gethostname() or "localhost"
    return name if "." in name else f"{name}.local"


def _restart_value(config: Config, name: str) -> object:
    """What of setting `name` takes a restart: of the listen entries, their addresses (the
    bound sockets); their own allow and deny lists apply on reload like the global ones."""
    if name == "listen":
        return tuple((address.host, address.port) for address in config.listen)
    return getattr(config, name)


def config_file(config: Config) -> Path | None:
    """The file the configuration came from, which the dashboard's printer form edits;
    None for the built-in default or command-line printers alone."""
    path = Path(config.source)
    return path if config.source != "built-in default" and path.is_file() else None


def request_reload() -> None:
    """Reload as SIGHUP does, through the same signal (the one reload path): asked by the
    dashboard after it changed the configuration file, from inside a request, which the
    reload waits for."""
    os.kill(os.getpid(), signal.SIGHUP)


def local_url(host: str, port: int) -> str:
    """A URL for the command line on this host to reach a bound address."""
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return url("ipp", host, port)


class Gateway:
    def __init__(self, config: Config, reread: Callable[[], Config], lock: SpoolLock,
                 listeners: list[trio.SocketListener], system: System,
                 tls: ServerTls | None = None) -> None:
        """`system` is the configuration's System, its spool read (`await System.open`);
        `tls` the TLS credentials (gateway.startup.prepare_tls), None for ipp:// only."""
        self.config = config
        self._reread = reread
        self._lock = lock
        self._listeners = listeners
        self._bound: list[tuple[str, int]] = []
        self._system_scope = trio.CancelScope()
        self._system_done = trio.Event()
        self._dnssd_scope = trio.CancelScope()
        self._dnssd_done = trio.Event()
        self._dnssd_done.set()
        self.system = system
        self.tls = tls
        self.audit = AuditLog.for_config(config)  # audit.log in the spool
        self.metrics = Metrics()  # GET /metrics; one registry, so counters outlive reloads
        self._limits = http_limits(config)
        self._admission = Admission.from_config(config)
        self._tls_server = None if tls is None else TlsServer(lambda: tls.context, self._limits)
        self._backoff = Backoff()  # failed logins per address, kept across reloads
        self._sessions = Sessions()  # dashboard logins, kept across reloads
        self._advertiser: Advertiser | None = None
        self.app = SwitchableApp(self._ipp_app(system))

    def _ipp_app(self, system: System) -> IppApp:
        upgrade = None if self._tls_server is None else self._tls_server.upgrade
        return IppApp(system, tls_upgrade=upgrade, authenticator=self._authenticator(system),
                      server_info=self._server_info, sessions=self._sessions,
                      config_file=config_file(system.config), request_reload=request_reload,
                      metrics=self.metrics)

    def _server_info(self) -> ServerInfo:
        """The server panel of the dashboard: the certificate in use and the DNS-SD names."""
        credentials = None if self.tls is None else self.tls.credentials
        return ServerInfo(
            __version__,
            certificate_sha256=credentials.fingerprint if credentials else "",
            certificate_expires=credentials.not_after.isoformat() if credentials else "",
            dnssd_names=self._advertiser.advertised() if self._advertiser else {},
            auth_enabled=self.system.config.auth.enabled)

    def _authenticator(self, system: System) -> Authenticator:
        auth = system.config.auth
        passwords = PasswordFile(password_file(system.config.spool))
        pam = None
        if auth.enabled:
            if auth.pam and not pam_available():
                log.error("auth.pam: system accounts cannot be checked: the pamela binding "
                          "or libpam is missing (pip install 'ipp-gateway[pam]'); only the "
                          "password file is used")
            elif auth.pam:
                pam = functools.partial(pam_verify, service=auth.pam_service)
            if not auth.pam and not passwords.accounts():
                log.warning("authentication is on but %s has no accounts: nobody can log in "
                            "(add one with: ipp-gateway passwd USER --admin)", passwords.path)
            if auth.allow_plain_http:
                log.warning("authentication: passwords are taken over plain HTTP "
                            "(auth.allow_plain_http), where anyone on the path can read them")
        return Authenticator(auth, passwords, backoff=self._backoff, pam=pam)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            await self._start_system(nursery, self.system)
            self._bound = await nursery.start(
                functools.partial(serve_listeners, limits=self._limits, tls=self._tls_server,
                                  admission=self._admission),
                self.app, self._listeners)
            if self.tls is not None and self.tls.store is not None:
                nursery.start_soon(self._renew_certificate, self.tls)
            self._announce()
            await self._start_dnssd(nursery)
            sd_notify.notify("READY=1")
            log.info("raster codec: %s", "C (drivers.filters._rastercodec)" if ACCELERATED
                     else "pure Python (the C extension is not built, or IPP_GATEWAY_PURE_PYTHON)")
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT,
                                           signal.SIGHUP) as signals:
                async for signum in signals:
                    if signum == signal.SIGHUP:
                        sd_notify.notify("RELOADING=1")
                        await self.reload(nursery)
                        sd_notify.notify("READY=1")
                        continue
                    log.info("received %s: stopping; pending jobs stay in the spool",
                             signal.Signals(signum).name)
                    sd_notify.notify("STOPPING=1")
                    nursery.cancel_scope.cancel()
                    break

    async def _renew_certificate(self, tls: ServerTls) -> None:
        """Replace the self-signed certificate when it nears its end, without a restart:
        new connections get the new one, open ones keep theirs."""
        while True:
            await trio.sleep(RENEWAL_CHECK_INTERVAL)
            try:
                await trio.to_thread.run_sync(tls.renew_if_due, datetime.now(UTC))
            except TlsError as exc:
                log.error("TLS certificate renewal failed: %s; the current one stays (it "
                          "ends %s)", exc, f"{tls.credentials.not_after:%Y-%m-%d}")

    async def _start_system(self, nursery: trio.Nursery, system: System) -> None:
        scope, done = trio.CancelScope(), trio.Event()

        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                      ) -> None:
            try:
                with scope, self.audit.following(system.bus, nursery), \
                        self.metrics.following(system, nursery):
                    await system.run(task_status=task_status)
            finally:
                done.set()

        await nursery.start(run)
        self.system, self._system_scope, self._system_done = system, scope, done

    async def _stop_system(self) -> None:
        self._system_scope.cancel()
        await self._system_done.wait()

    async def _start_dnssd(self, nursery: trio.Nursery) -> None:
        """Advertise the current System's printers (the responder is never waited for)."""
        scope, done = trio.CancelScope(), trio.Event()
        advertiser = Advertiser(self.system, port=self._bound[0][1], host=public_host_name(),
                                tls=self.tls is not None, config=self.config.dnssd)
        self._advertiser = advertiser

        async def run(*, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                      ) -> None:
            try:
                with scope:
                    await advertiser.run(task_status=task_status)
            finally:
                done.set()

        await nursery.start(run)
        self._dnssd_scope, self._dnssd_done = scope, done

    async def _stop_dnssd(self) -> None:
        # Wait for the goodbyes: the same name registered again beside the old one would be
        # taken for a collision and renamed "(2)".
        self._dnssd_scope.cancel()
        await self._dnssd_done.wait()

    async def reload(self, nursery: trio.Nursery) -> None:
        log.info("received SIGHUP: reloading the configuration (%s)", self.config.source)
        try:
            new = self._reread()
        except ConfigError as exc:
            log.error("reload refused: %s; the running configuration stays", exc)
            return
        new = self._keep_restart_only_settings(new)
        async with self.app.closed(RELOAD_DRAIN_TIMEOUT) as drained:
            if not drained:
                log.warning("reload postponed: %d request(s) still in flight after %g s; "
                            "send SIGHUP again", self.app.in_flight, RELOAD_DRAIN_TIMEOUT)
                return
            await self._stop_dnssd()
            await self._stop_system()
            try:
                system = await System.open(new)
            except OSError as exc:
                log.error("reload failed: %s; restarting the previous configuration", exc)
                new, system = self.config, await System.open(self.config)
            self.app.current = self._ipp_app(system)
            await self._start_system(nursery, system)
        if (new.log_level, new.log_file) != (self.config.log_level, self.config.log_file):
            try:
                logs.configure(new.log_level, new.log_file)
            except OSError as exc:
                log.error("reload: log file %s: %s; logging stays as it was", new.log_file,
                          exc.strerror)
        self.config = new
        self._admission.reconfigure(new)
        self._announce()
        await self._start_dnssd(nursery)
        log.info("reloaded: %d printer(s), %d job(s) in the spool", len(system.printers),
                 len(system.jobs))

    def _keep_restart_only_settings(self, new: Config) -> Config:
        kept: dict[str, object] = {}
        for name in RESTART_ONLY:
            if _restart_value(new, name) != _restart_value(self.config, name):
                log.warning("reload: server.%s changed; that takes a restart (the running "
                            "value stays until then)", name)
                kept[name] = getattr(self.config, name)
        return dataclasses.replace(new, **kept) if kept else new  # type: ignore[arg-type]

    def _announce(self) -> None:
        system = self.system
        host = public_host_name()
        port = self._bound[0][1]
        also = "" if self.tls is None else " (and ipps://)"
        for printer in system.printers.values():
            log.info("printer %s: ipp://%s:%d%s%s -> %s (driver %s)", printer.name, host, port,
                     system.printer_path(printer), also, printer.device_uri.redacted(),
                     printer.driver.name)
        log.info("default printer: ipp://%s:%d/ipp/print%s (spool %s)", host, port, also,
                 self.config.spool)
        self._lock.update(LockInfo(
            pid=os.getpid(),
            urls=tuple(dict.fromkeys(local_url(h, p) for h, p in self._bound)),
            printers=tuple(system.printers)))
