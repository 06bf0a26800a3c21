"""The running gateway: one System behind the HTTP listeners, its signals, and reloads.

SIGTERM and SIGINT stop it (pending jobs stay in the spool). SIGHUP re-reads the configuration
and applies it in place (System.reconfigure): printers are added, changed or removed while
the others go on; a job being printed on a changed printer finishes on its old settings; a
removed printer's jobs stay in the spool. DNS-SD follows the printers. Settings that need the
ports or the spool again (listen, spool, user, TLS files) are kept until a real restart, with
a warning. USB printers plugged in are set up the same way (gateway.hotplug).
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
from gateway import __version__, autoprinters, logs, sd_notify
from gateway.audit import AuditLog
from gateway.authn import Authenticator, Backoff, password_file
from gateway.authority import url
from gateway.config import Config, ConfigError
from gateway.core.spool_lock import LockInfo, SpoolLock
from gateway.core.system import System
from gateway.dashboard.session import Sessions
from gateway.dashboard.view import ServerInfo
from gateway.dnssd import Advertiser
from gateway.hotplug import UsbHotplug
from gateway.metrics import Metrics
from gateway.pam_auth import pam_available, pam_verify
from gateway.passwords import PasswordFile
from gateway.server.ipp_endpoint import IppApp
from gateway.server.listener import Admission, TlsServer, http_limits, serve_listeners
from gateway.server.switch import SwitchableApp
from gateway.tls import ServerTls, TlsError

log = logging.getLogger("gateway")

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
                 tls: ServerTls | None = None, *, configured: Config | None = None) -> None:
        """`system` is the configuration's System, its spool read (`await System.open`);
        `tls` the TLS credentials (gateway.startup.prepare_tls), None for ipp:// only.
        `config` is what runs: `configured` (the file or the command line, as `reread` gives
        it) with the remembered USB printers (gateway.autoprinters)."""
        self.config = config
        self._configured = configured or config
        self._reread = reread
        self._reconfiguring = trio.Lock()  # a reload and a plug-in apply one at a time
        self._hotplug_scope = trio.CancelScope()
        self.hotplug: UsbHotplug | None = None
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
            self._start_hotplug(nursery)
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
            configured = self._reread()
        except ConfigError as exc:
            log.error("reload refused: %s; the running configuration stays", exc)
            return
        configured = self._keep_restart_only_settings(configured)
        old = self.config
        async with self._reconfiguring:
            new = await trio.to_thread.run_sync(autoprinters.with_remembered, configured)
            changes = await self.system.reconfigure(new)
            self._configured, self.config = configured, new
            self.app.current = self._ipp_app(self.system)
        if (new.log_level, new.log_file) != (old.log_level, old.log_file):
            try:
                logs.configure(new.log_level, new.log_file)
            except OSError as exc:
                log.error("reload: log file %s: %s; logging stays as it was", new.log_file,
                          exc.strerror)
        self._admission.reconfigure(new)
        self._announce()
        # The advertiser follows printers added, changed and removed on the bus; what it
        # was started with (the responder, the interfaces, the TXT key `air`) takes a restart.
        if (new.dnssd, new.auth) != (old.dnssd, old.auth):
            await self._stop_dnssd()
            await self._start_dnssd(nursery)
        if new.usb != old.usb:
            self._hotplug_scope.cancel()
            self._start_hotplug(nursery)
        log.info("reloaded: %d printer(s) (added: %s; changed: %s; removed: %s), %d job(s) "
                 "in the spool", len(self.system.printers), ", ".join(changes.added) or "none",
                 ", ".join(changes.changed) or "none", ", ".join(changes.removed) or "none",
                 len(self.system.jobs))

    async def _apply_remembered(self) -> None:
        """A USB printer was set up (gateway.hotplug): serve it, in place like a reload."""
        async with self._reconfiguring:
            new = await trio.to_thread.run_sync(autoprinters.with_remembered,
                                                self._configured)
            await self.system.reconfigure(new)
            self.config = new
        self._announce()

    def _start_hotplug(self, nursery: trio.Nursery) -> None:
        usb = self.config.usb
        if not usb.enabled:
            self.hotplug = None
            return
        self.hotplug = UsbHotplug(lambda: self.system, self._apply_remembered,
                                  spool=self.config.spool, autosetup=usb.autosetup,
                                  scan_interval=usb.scan_interval)
        scope = self._hotplug_scope = trio.CancelScope()

        async def run() -> None:
            with scope:
                assert self.hotplug is not None
                await self.hotplug.run()

        nursery.start_soon(run)

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
