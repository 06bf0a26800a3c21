"""`ipp-gateway doctor`: what is wrong with this gateway, each finding with its fix in one line.

It checks the configuration; that a running gateway answers IPP on each listen address; each
printer's device (LPD and AppSocket connect, the USB printer is attached, the serial port
opens); the TLS certificate's validity and expiry; the spool's free space; the DNS-SD
registrations; and Ghostscript.

Two halves. The findings (`Finding`, and the `*_finding` functions that turn what was observed
into a level, words and a fix) are pure, so each rule is tested without a device. The probes
(`run_checks` and the `_check_*` coroutines) do the I/O, each bounded by `timeout` seconds, the
printers' devices and the listen addresses in parallel.

Exit status: 1 when a check FAILed, 0 when all are ok or merely warn.
"""

from __future__ import annotations

import argparse
import errno
import http.client
import json
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING

from gateway.config import Config, ConfigError, ListenAddress, PrinterConfig, default_printer

if TYPE_CHECKING:
    from drivers import ProbeResult

log = logging.getLogger("gateway.doctor")

DEFAULT_TIMEOUT = 3.0  # seconds for each device, listener, responder and program asked
WARN_BEFORE = timedelta(days=30)  # a certificate ending sooner is reported
IPP_SERVICE = "_ipp._tcp"
USB_HINT = "`ipp-gateway devices` lists the attached printers with their URIs"


class Level(Enum):
    OK = "ok"
    WARNING = "warning"
    FAIL = "FAIL"


@dataclass(frozen=True)
class Finding:
    check: str  # what was checked: "config", "listen 127.0.0.1:631", "printer office", ...
    level: Level
    found: str  # what was found, in words
    fix: str = ""  # what to do about it, in one line ("" when nothing is to be done)


def ok(check: str, found: str) -> Finding:
    return Finding(check, Level.OK, found)


def warning(check: str, found: str, fix: str) -> Finding:
    return Finding(check, Level.WARNING, found, fix)


def fail(check: str, found: str, fix: str) -> Finding:
    return Finding(check, Level.FAIL, found, fix)


# -- the findings (pure) ----------------------------------------------------------------------


def config_finding(source: str, error: str | None, printers: int, *, readable: bool = True
                   ) -> Finding:
    if error is not None and not readable:
        return fail("config", error, "give the configuration file with --config FILE "
                                     "(deploy/ipp-gateway.example.toml shows every key)")
    if error is not None:
        return fail("config", error,
                    f"correct the key named here in {source} (ipp-gateway check-config "
                    f"{source} checks it)")
    return ok("config", f"{source}: valid, {printers} printer(s)")


def listener_finding(address: str, answered: str | None, connected: bool, error: str,
                     ) -> Finding:
    """`answered`: what the IPP answer said (None: no IPP answer); `connected`: whether a
    plain TCP connection was accepted; `error`: why the IPP request failed."""
    check = f"listen {address}"
    if answered is not None:
        return ok(check, f"the gateway answers IPP ({answered})")
    if connected:
        return fail(check, f"something accepts connections but gives no IPP answer ({error})",
                    "stop the other program on this port, or allow this host in server.allow "
                    "/ the listener's allow list")
    return fail(check, f"nothing answers ({error})",
                "start the gateway (systemctl start ipp-gateway, or ipp-gateway run --config "
                "FILE) and read its log for why it stopped")


def device_finding(printer: str, scheme: str, result: ProbeResult, opened: str | None,
                   connected: str | None) -> Finding:
    """A printer's device from its probe (`drivers.probe`), plus what was done where the probe
    cannot tell: `opened` is why a local device (serial port, usblp) would not open ("" if it
    did; None: not tried), `connected` why a TCP connection failed ("" if it was made)."""
    check = f"printer {printer} ({result.uri})"
    status = result.status
    words = result.error or (status.message if status is not None else "")
    reasons = sorted(status.reasons) if status is not None else []
    if result.error or result.reachable is False:
        return fail(check, words or "not reachable", device_fix(scheme, result.uri, words))
    if not result.ok:
        errors = ", ".join(r for r in reasons if r.endswith("-error"))
        return fail(check, f"{words or 'the device reports an error'} ({errors})",
                    device_fix(scheme, result.uri, words or errors))
    if opened:
        return fail(check, f"the device does not open: {opened}",
                    open_fix(scheme, opened))
    if connected:
        return fail(check, f"cannot connect: {connected}", device_fix(scheme, result.uri,
                                                                      connected))
    if status is not None and status.reasons:
        return warning(check, f"{words} ({', '.join(reasons)})",
                       "see to the printer (paper, toner, cover); jobs wait meanwhile")
    if result.reachable is None and connected is None and opened is None:
        return ok(check, "cannot tell without printing")
    done = "connects" if connected == "" else "opens" if opened == "" else ""
    return ok(check, "; ".join(part for part in (words, done) if part))


def device_fix(scheme: str, uri: str, words: str) -> str:
    """The next step for a device that did not answer, by transport."""
    lowered = words.lower()
    if "permission" in lowered or "access denied" in lowered:
        return ("let the gateway's account use the device: install deploy's udev rule, or add "
                "the account to groups lp and dialout")
    if scheme == "lpd":
        if "queue" in lowered and "refused" not in lowered:
            return "correct the queue name in the printer's device URI (lpd://HOST/QUEUE)"
        return ("switch the printer or its LPD server on, check its address and port in the "
                f"device URI ({uri}), and that no firewall blocks the port (515 by default)")
    if scheme == "socket":
        return ("switch the printer on and check its address and port in the device URI "
                f"({uri}); AppSocket is usually port 9100")
    if scheme == "usb":
        return ("plug the printer in and switch it on; if it has another id or serial, "
                f"{USB_HINT}")
    if scheme == "serial":
        return f"connect the serial adapter, or correct the port in the device URI; {USB_HINT}"
    if scheme == "file":
        return "create the directory or device named in the URI, or correct the URI"
    return f"check the device URI {uri} with ipp-gateway probe"


def open_fix(scheme: str, why: str) -> str:
    if "busy" in why or "in use" in why:
        return ("another program holds the port: stop it (a getty, ModemManager, a second "
                "gateway)")
    if "permission" in why:
        return ("let the gateway's account open it: add it to group dialout (serial) or lp "
                "(usblp), or install deploy's udev rule")
    return device_fix(scheme, "", why)


def certificate_finding(path: Path | None, not_after: datetime | None, error: str | None,
                        now: datetime, *, self_signed: bool, tls: bool = True) -> Finding:
    """`path` None with no error: no certificate made yet (the first start makes one)."""
    check = "certificate"
    if not tls:
        return ok(check, "TLS is off (server.tls = false): ipp:// only")
    renew = ("the gateway makes a new one itself when it starts; restart it"
             if self_signed else "install a renewed certificate and key at server.tls_certificate"
             " / server.tls_key, then reload (systemctl reload ipp-gateway)")
    if error is not None:
        fix = (f"remove {path.parent} and restart the gateway to make a new self-signed one"
               if self_signed and path is not None else
               "give a readable PEM certificate and matching unencrypted key "
               "(server.tls_certificate / server.tls_key)")
        return fail(check, error, fix)
    if path is None or not_after is None:
        return ok(check, "none yet: a self-signed one is made at the first start")
    left = not_after - now
    ends = f"{not_after:%Y-%m-%d %H:%M} UTC"
    if left <= timedelta(0):
        return fail(check, f"{path} ended on {ends}: clients refuse it", renew)
    if left < WARN_BEFORE:
        return warning(check, f"{path} ends in {_days(left)} ({ends})", renew)
    return ok(check, f"{path} valid until {ends}")


def _days(left: timedelta) -> str:
    days = left.days
    if days >= 1:
        return f"{days} day{'s' if days > 1 else ''}"
    return f"{int(left.total_seconds() // 3600)} hour(s)"


def spool_finding(spool: Path, free: int | None, error: str | None, *, floor: int,
                  min_free: int, max_job: int) -> Finding:
    """`free` bytes on the spool's filesystem; `floor`: below it the gateway does not start
    (startup.MIN_FREE_BYTES); `min_free`: below it new jobs are refused
    (limits.min_free_disk_mb, 0 = off); `max_job`: the largest job taken (max_job_mb)."""
    check = "spool"
    if error is not None:
        return fail(check, f"{spool}: {error}",
                    "create the spool directory, make it writable by the gateway's account, "
                    "or set server.spool")
    assert free is not None
    room = f"{spool}: {_mb(free)} free"
    make_room = (f"free space on the disk of {spool} (old files, logs), or set server.spool "
                 "to a directory on a larger disk")
    if free < floor:
        return fail(check, f"{room}, under the {_mb(floor)} the gateway needs to start",
                    make_room)
    if min_free and free < min_free:
        return fail(check, f"{room}, under limits.min_free_disk_mb ({_mb(min_free)}): new "
                           "jobs are refused", make_room)
    if free < max_job:
        return warning(check, f"{room}, less than server.max_job_mb ({_mb(max_job)}): a "
                              "large job will be refused", make_room + ", or lower max_job_mb")
    return ok(check, room)


def _mb(size: int) -> str:
    return f"{size >> 20} MB"


def dnssd_finding(enabled: bool, responder: str, missing: Sequence[str],
                  present: Sequence[str], error: str | None, *, gateway_up: bool,
                  verified: bool) -> Finding:
    """`responder`: "avahi" or "zeroconf"; `missing`/`present`: instance names of the
    printers (`_ipp._tcp`); `verified`: the names were asked of the network (else only the
    gateway's own record, dnssd.json, was read)."""
    check = "dnssd"
    if not enabled:
        return ok(check, "off (dnssd.enabled = false)")
    if not gateway_up:
        return warning(check, "not checked: the gateway does not answer",
                       "start the gateway first (see the listen check)")
    if error is not None:
        return fail(check, f"{responder}: {error}",
                    "start avahi-daemon (systemctl start avahi-daemon), or set dnssd.backend "
                    "= \"zeroconf\"; the gateway's log says why it could not register")
    how = "resolved via " + responder if verified else "from the gateway's dnssd.json"
    if missing:
        names = ", ".join(f'"{name}"' for name in missing)
        return fail(check, f"not registered: {names} ({how})",
                    "read the gateway's log (dnssd: lines) for why; check that multicast is "
                    "allowed (UDP 5353) and dnssd.interfaces names existing interfaces")
    listed = ", ".join(f'"{name}"' for name in present)
    if not verified:
        return warning(check, f"{listed} recorded, not asked of the network ({how})",
                       "browse with avahi-browse -rt _ipp._tcp from another host to confirm")
    return ok(check, f"{listed} registered ({how})")


def ghostscript_finding(path: str | None, version: str | None, error: str | None,
                        needed_by: Sequence[str]) -> Finding:
    """`needed_by`: the printers whose driver converts (all but raw ones)."""
    check = "ghostscript"
    fix = "install Ghostscript: apt-get install ghostscript"
    if path is None or error is not None:
        found = "gs is not on PATH" if path is None else f"{path} does not run: {error}"
        if needed_by:
            return fail(check, f"{found}; printers {', '.join(needed_by)} convert documents "
                               "with it", fix)
        return warning(check, f"{found}; only raw printers now, which do not need it", fix)
    return ok(check, f"{path} version {version}")


# -- the report -------------------------------------------------------------------------------


def exit_status(findings: Sequence[Finding]) -> int:
    return 1 if any(f.level is Level.FAIL for f in findings) else 0


def render_text(findings: Sequence[Finding]) -> str:
    lines = []
    for finding in findings:
        line = f"{finding.level.value:<7} {finding.check}: {finding.found}"
        if finding.fix:
            line += f"; fix: {finding.fix}"
        lines.append(line)
    return "\n".join(lines)


def render_json(findings: Sequence[Finding]) -> str:
    return json.dumps({"status": exit_status(findings),
                       "findings": [dict(asdict(f), level=f.level.value) for f in findings]},
                      indent=2)


def printers_of(config: Config) -> tuple[PrinterConfig, ...]:
    """The printers a gateway with `config` serves (the built-in default when none)."""
    return config.printers or (default_printer(config.spool),)


def probe_host(address: ListenAddress) -> str:
    """Where to reach a listen address from this host: a wildcard through loopback."""
    if address.host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if address.host == "::":
        return "::1"
    return address.host


def wanted_names(printers: Sequence[PrinterConfig], kept: dict[str, tuple[str, str]]
                 ) -> dict[str, str]:
    """Printer name -> the instance name it is (or should be) registered under: the one the
    gateway chose (`kept`: printer -> (wanted, chosen), dnssd.json), else its wanted one."""
    from gateway.dnssd.names import numbered

    names = {}
    for printer in printers:
        wanted = numbered(printer.info.strip() or printer.name, 1)
        entry = kept.get(printer.name)
        names[printer.name] = entry[1] if entry is not None and entry[0] == wanted else wanted
    return names


# -- the probes (I/O) -------------------------------------------------------------------------


async def run_checks(config: Config, *, limit: float = DEFAULT_TIMEOUT,
                     now: datetime | None = None) -> list[Finding]:
    """Every check but the configuration's, in parallel; the findings in a stable order."""
    import trio

    now = now or datetime.now(UTC)
    printers = printers_of(config)
    slots: dict[str, list[Finding]] = {}

    async def run(key: str, check: str, probe: Callable[[], Awaitable[list[Finding]]]
                  ) -> None:
        # A probe stuck in a thread (a USB call, D-Bus) is abandoned, not waited for.
        with trio.move_on_after(limit * 2 + 1):
            slots[key] = await probe()
            return
        slots[key] = [fail(check, f"no answer within {limit * 2 + 1:g} s",
                           "run it again; if it persists, report it with the gateway's log")]

    async with trio.open_nursery() as nursery:
        for i, address in enumerate(config.listen):
            nursery.start_soon(run, f"0listen{i:04d}", f"listen {address}",
                               lambda a=address: _check_listener(a, limit))
        for i, printer in enumerate(printers):
            nursery.start_soon(run, f"1printer{i:04d}", f"printer {printer.name}",
                               lambda p=printer: _check_device(p, limit))
        nursery.start_soon(run, "2certificate", "certificate",
                           lambda: _check_certificate(config, now))
        nursery.start_soon(run, "3spool", "spool", lambda: _check_spool(config))
        nursery.start_soon(run, "5ghostscript", "ghostscript",
                           lambda: _check_ghostscript(printers, limit))
    gateway_up = all(f.level is Level.OK for key, found in slots.items()
                     if key.startswith("0listen") for f in found)
    await run("4dnssd", "dnssd", lambda: _check_dnssd(config, printers, limit, gateway_up))
    return [finding for key in sorted(slots) for finding in slots[key]]


async def _check_listener(address: ListenAddress, limit: float) -> list[Finding]:
    import trio

    if address.port == 0:
        return [ok(f"listen {address}", "port 0: drawn at each start, not checked")]
    host = probe_host(address)
    answered, error = await trio.to_thread.run_sync(
        _ask_ipp, host, address.port, limit, abandon_on_cancel=True)
    connected = False
    if answered is None:
        connected = await _tcp_connect(host, address.port, limit) == ""
    return [listener_finding(str(address), answered, connected, error)]


def _ask_ipp(host: str, port: int, limit: float) -> tuple[str | None, str]:
    """Get-Printer-Attributes of the default printer: (its status name, "") or (None, why)."""
    from gateway.authority import url
    from ippwire.enums import Operation, Status
    from ippwire.errors import IppProtocolError
    from ippwire.reader import decode_message
    from ippwire.writer import encode_message, request

    message = request(Operation.GET_PRINTER_ATTRIBUTES,
                      printer_uri=url("ipp", host, port, "/ipp/print"), user="doctor")
    connection = http.client.HTTPConnection(host, port, timeout=limit)
    try:
        connection.request("POST", "/ipp/print", body=encode_message(message),
                           headers={"Content-Type": "application/ipp"})
        response = connection.getresponse()
        body = response.read()
        if response.status != 200:
            return None, f"HTTP {response.status} {response.reason}"
        answer, _ = decode_message(body)
    except (OSError, http.client.HTTPException) as exc:
        return None, _reason(exc)
    except IppProtocolError as exc:
        return None, f"not IPP ({exc})"
    finally:
        connection.close()
    try:
        return Status(answer.code).name.lower().replace("_", "-"), ""
    except ValueError:
        return f"status 0x{answer.code:04x}", ""


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc) or type(exc).__name__


async def _tcp_connect(host: str, port: int, limit: float) -> str:
    """"" when a TCP connection to host:port is made within `limit`, else why not."""
    import trio

    with trio.move_on_after(limit):
        try:
            stream = await trio.open_tcp_stream(host, port)
        except OSError as exc:
            return _reason(exc)
        await trio.aclose_forcefully(stream)
        return ""
    return f"no answer within {limit:g} s"


async def _check_device(printer: PrinterConfig, limit: float) -> list[Finding]:
    import trio

    from drivers import DeviceUri, DriverError, UriError, probe

    check = f"printer {printer.name}"
    try:
        uri = DeviceUri.parse(printer.device_uri)
        result = await probe(printer.device_uri, timeout=limit)
    except (UriError, DriverError) as exc:
        return [fail(check, str(exc), "correct the printer's device URI in the config")]
    opened: str | None = None
    connected: str | None = None
    local = uri.scheme == "serial" or (uri.scheme == "file" and uri.path.startswith("/dev/"))
    if result.ok and local:
        opened = await trio.to_thread.run_sync(_open_device, uri.path, abandon_on_cancel=True)
    elif result.ok and result.reachable is None and uri.host and uri.scheme in ("lpd", "socket"):
        # The probe could not tell (status queries off): a connection at least.
        port = uri.port or (515 if uri.scheme == "lpd" else 9100)
        connected = await _tcp_connect(uri.host, port, limit)
    return [device_finding(printer.name, uri.scheme, result, opened, connected)]


def _open_device(path: str) -> str:
    """"" when the character device opens for writing, else why not. Non-blocking and no
    controlling terminal: a serial port with no carrier, or a printer that is off, must not
    hold the doctor."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.EBUSY:
            return "busy (in use by another program)"
        if exc.errno in (errno.EACCES, errno.EPERM):
            return f"permission denied for user {_me()}"
        return _reason(exc)
    os.close(fd)
    return ""


def _me() -> str:
    import pwd

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


async def _check_certificate(config: Config, now: datetime) -> list[Finding]:
    import trio

    from gateway.tls import CERTIFICATE_NAME, KEY_NAME, TLS_DIRECTORY, TlsError

    if not config.tls:
        return [certificate_finding(None, None, None, now, self_signed=False, tls=False)]
    self_signed = config.tls_certificate is None
    if self_signed:
        directory = config.spool / TLS_DIRECTORY
        certificate, key = directory / CERTIFICATE_NAME, directory / KEY_NAME
        if not certificate.exists() and not key.exists():
            return [certificate_finding(None, None, None, now, self_signed=True)]
    else:
        assert config.tls_certificate is not None and config.tls_key is not None
        certificate, key = config.tls_certificate, config.tls_key

    def load() -> datetime:
        from gateway.certificates import load_pair

        return load_pair(certificate, key, self_signed=self_signed).not_after

    try:
        not_after = await trio.to_thread.run_sync(load)
    except TlsError as exc:
        return [certificate_finding(certificate, None, str(exc), now, self_signed=self_signed)]
    return [certificate_finding(certificate, not_after, None, now, self_signed=self_signed)]


async def _check_spool(config: Config) -> list[Finding]:
    import trio

    from gateway.startup import MIN_FREE_BYTES

    def measure() -> tuple[int | None, str | None]:
        # A spool not made yet: the gateway makes it on the disk of its nearest parent.
        place = config.spool
        while not place.exists() and place != place.parent:
            place = place.parent
        if place.exists() and not place.is_dir():
            return None, f"{place} is not a directory"
        try:
            return shutil.disk_usage(place).free, None
        except OSError as exc:
            return None, _reason(exc)

    free, error = await trio.to_thread.run_sync(measure)
    return [spool_finding(config.spool, free, error, floor=MIN_FREE_BYTES,
                          min_free=config.limits.min_free_disk_mb << 20,
                          max_job=config.max_job_bytes)]


async def _check_ghostscript(printers: Sequence[PrinterConfig], limit: float
                             ) -> list[Finding]:
    import trio

    needed_by = [p.name for p in printers if p.driver != "raw"]
    path = shutil.which("gs")
    if path is None:
        return [ghostscript_finding(None, None, None, needed_by)]
    error: str | None = f"no answer within {limit:g} s"
    version = None
    with trio.move_on_after(limit):
        try:
            done = await trio.run_process([path, "--version"], capture_stdout=True,
                                          capture_stderr=True, check=False)
        except OSError as exc:
            error = _reason(exc)
        else:
            if done.returncode == 0:
                version, error = done.stdout.decode(errors="replace").strip(), None
            else:
                error = (f"exit {done.returncode}: "
                         f"{done.stderr.decode(errors='replace').strip()[-200:]}")
    return [ghostscript_finding(path, version, error, needed_by)]


async def _check_dnssd(config: Config, printers: Sequence[PrinterConfig], limit: float,
                       gateway_up: bool) -> list[Finding]:
    """Each printer's instance name asked of the responder the gateway uses: avahi-daemon
    over D-Bus (which answers for its own registrations too), else a python-zeroconf query on
    the network, which the gateway's own responder answers."""
    import trio

    from gateway.dnssd.advertiser import NAMES_FILE
    from gateway.dnssd.names import load_names

    if not config.dnssd.enabled or not gateway_up:
        return [dnssd_finding(config.dnssd.enabled, "", (), (), None, gateway_up=gateway_up,
                              verified=False)]
    try:
        text = (config.spool / NAMES_FILE).read_text(encoding="utf-8")
    except OSError:
        text = "{}"
    kept = {printer: (name.wanted, name.chosen) for printer, name in load_names(text).items()}
    names = wanted_names(printers, kept)
    from gateway.dnssd.avahi import avahi_running

    use_avahi = config.dnssd.backend == "avahi" or (
        config.dnssd.backend == "auto" and await avahi_running())
    responder = "avahi" if use_avahi else "zeroconf"
    try:
        if use_avahi:
            found = await _resolve_avahi(list(names.values()), limit)
        else:
            found = await trio.to_thread.run_sync(_resolve_zeroconf, list(names.values()),
                                                  config.dnssd.interfaces, limit,
                                                  abandon_on_cancel=True)
    except _ResponderError as exc:
        return [dnssd_finding(True, responder, (), (), str(exc), gateway_up=True,
                              verified=True)]
    missing = [name for name in names.values() if name not in found]
    present = [name for name in names.values() if name in found]
    return [dnssd_finding(True, responder, missing, present, None, gateway_up=True,
                          verified=True)]


class _ResponderError(Exception):
    """The mDNS responder could not be asked at all."""


async def _resolve_avahi(names: list[str], limit: float) -> set[str]:
    import trio
    from jeepney import new_method_call  # type: ignore[import-untyped]
    from jeepney.io.trio import open_dbus_router  # type: ignore[import-untyped]
    from jeepney.wrappers import DBusErrorResponse, unwrap_msg  # type: ignore[import-untyped]

    from gateway.dnssd.avahi import CONNECTION_ERRORS, IF_UNSPEC, PROTO_UNSPEC, SERVER

    found: set[str] = set()

    async def resolve(router: object, name: str) -> None:
        with trio.move_on_after(limit):
            call = new_method_call(SERVER, "ResolveService", "iisssiu",
                                   (IF_UNSPEC, PROTO_UNSPEC, name, IPP_SERVICE, "local",
                                    PROTO_UNSPEC, 0))
            try:
                unwrap_msg(await router.send_and_get_reply(call))  # type: ignore[attr-defined]
            except DBusErrorResponse as exc:  # Avahi's own timeout: not found
                log.debug("avahi: %s: %s", name, exc)
            else:
                found.add(name)

    try:
        with trio.move_on_after(limit):
            async with open_dbus_router("SYSTEM") as router, trio.open_nursery() as nursery:
                for name in names:
                    nursery.start_soon(resolve, router, name)
    except* CONNECTION_ERRORS as group:
        raise _ResponderError(f"cannot ask avahi-daemon over D-Bus: "
                              f"{group.exceptions[0]}") from None
    return found


def _resolve_zeroconf(names: list[str], interfaces: tuple[str, ...], limit: float
                      ) -> set[str]:
    from zeroconf import ServiceInfo, Zeroconf

    from gateway.dnssd.zeroconf_backend import interface_addresses

    service = f"{IPP_SERVICE}.local."
    try:
        zc = (Zeroconf(interfaces=interface_addresses(interfaces)) if interfaces
              else Zeroconf())
    except OSError as exc:
        raise _ResponderError(f"cannot open an mDNS socket: {_reason(exc)}") from None
    try:
        return {name for name in names
                if ServiceInfo(service, f"{name}.{service}").request(zc, int(limit * 1000))}
    finally:
        zc.close()


# -- the command line -------------------------------------------------------------------------


def add_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor", help="check the config, ports, devices, certificate, spool, DNS-SD and "
                       "Ghostscript; each problem with its fix",
        description="One line per check: ok, warning or FAIL, what was found, and the fix. "
                    "Exit status 1 when a check FAILed, 0 otherwise.")
    doctor.add_argument("--config", type=Path, help="TOML configuration file (default: the "
                                                    "built-in defaults)")
    doctor.add_argument("--json", action="store_true", help="the findings as JSON")
    doctor.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help=f"for each device and service asked (default {DEFAULT_TIMEOUT:g})")


def main(args: argparse.Namespace) -> int:
    import trio

    from gateway.config import load_config

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    source = str(args.config) if args.config else "built-in default"
    try:
        config = load_config(args.config) if args.config else Config()
    except ConfigError as exc:
        readable = args.config is None or os.access(args.config, os.R_OK)
        findings = [config_finding(source, str(exc), 0, readable=readable)]
    else:
        findings = [config_finding(source, None, len(config.printers))]
        limit = max(0.1, min(float(args.timeout), 60.0))
        findings += trio.run(lambda: run_checks(config, limit=limit))
    print(render_json(findings) if args.json else render_text(findings))
    sys.stdout.flush()
    return exit_status(findings)
