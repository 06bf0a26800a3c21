"""Setting printers up from the command line (issue 14): `ipp-gateway add [NAME] TARGET`,
`ipp-gateway remove NAME` and `ipp-gateway devices [--json]`.

`add` asks the device what it is (`drivers.probe_target`: PJL on 9100, LPD queue status,
...), prints what it tried and why it chose its driver, writes a `[[printer]]` table into the
configuration file through gateway.config_edit (comments kept), and tells the gateway running
on that configuration's spool to reload (SIGHUP). `remove` takes a printer out of the file, or
forgets a remembered hot-plugged USB printer (gateway.autoprinters), and reloads the same way.

Exit status: 0 done; 1 the device did not answer usefully, the name is taken, there is no
such printer, or the file cannot be written; 2 a usage error (a malformed target, an unknown
driver, a configuration file that does not load). The file is written only on success.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import functools
import logging
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import trio

from gateway import autoprinters
from gateway.config import NAME_PATTERN, Config, ConfigError, load_config
from gateway.config_edit import SETUP_KEYS, EditError, add_printer, remove_printer
from gateway.core.spool_lock import LOCK_NAME, LockInfo, read_lock_info

if TYPE_CHECKING:
    from drivers import SetupProbe

log = logging.getLogger("gateway.setup")

COMMANDS = ("add", "remove")
# Where deploy/install.sh puts the configuration, and where the systemd unit reads it.
DEFAULT_CONFIG = Path("/etc/ipp-gateway/gateway.toml")
DEFAULT_TIMEOUT = 10.0
MAX_TIMEOUT = 600.0
AUTO = "auto"
NEW_CONFIG_HEADER = """\
# ipp-gateway: made by `ipp-gateway add`, which appends a [[printer]] table for each printer it
# sets up (`ipp-gateway remove NAME` takes one out). Every other setting, explained:
# ipp-gateway.example.toml (in deploy/ of the source, /opt/ipp-gateway/share/ once installed).
# Check a change made by hand with `ipp-gateway check-config FILE`.
"""

Probe = Callable[..., Awaitable["SetupProbe"]]  # probe(target, timeout=seconds)


class CommandError(Exception):
    """Ends a command: `error: MESSAGE` on standard error and the exit status."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    add = commands.add_parser(
        "add", help="set up a network printer: probe it, choose its driver, add it to the config",
        description="Ask TARGET (HOST, HOST:PORT or a device URI such as lpd://HOST/QUEUE) "
                    "what it is, choose a driver from the languages it names, add it to the "
                    "configuration file and make the running gateway reload.")
    add.add_argument("name", nargs="?", metavar="NAME",
                     help="the printer's name (default: derived from its make and model)")
    add.add_argument("target", metavar="TARGET", help="HOST, HOST:PORT or a device URI")
    add.add_argument("--driver", default=AUTO, metavar="auto|DRIVER",
                     help="the driver (default auto: chosen from what the printer says)")
    add.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH",
                     help=f"the configuration file (default {DEFAULT_CONFIG}; made when missing)")
    add.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="S",
                     help=f"seconds the probe may take in all (default {DEFAULT_TIMEOUT:g})")
    remove = commands.add_parser(
        "remove", help="remove a printer (from the config, or a remembered USB printer)",
        description="Remove NAME from the configuration file, or forget a hot-plugged USB "
                    "printer the gateway remembers, and make the running gateway reload.")
    remove.add_argument("name", metavar="NAME")
    remove.add_argument("--config", type=Path, default=DEFAULT_CONFIG, metavar="PATH",
                        help=f"the configuration file (default {DEFAULT_CONFIG})")


def add_devices_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    devices = commands.add_parser(
        "devices", help="list attached USB printers and serial ports, with the driver chosen")
    devices.add_argument("--json", action="store_true",
                         help="one JSON document: each device with its device ID and driver")


def _timeout(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(f"{text}: give more than 0 and at most "
                                         f"{MAX_TIMEOUT:g} seconds")
    return value


def run(args: argparse.Namespace) -> int:
    """`add` or `remove` from parsed arguments."""
    if args.command == "add":
        return add_printer_command(args.target, name=args.name, driver=args.driver,
                                   config_path=args.config, timeout=args.timeout)
    return remove_printer_command(args.name, config_path=args.config)


def devices(args: argparse.Namespace) -> int:
    from drivers import devices_command

    return devices_command(json=args.json)


# -- add -----------------------------------------------------------------------------------------


def add_printer_command(target: str, *, name: str | None = None, driver: str = AUTO,
                        config_path: Path = DEFAULT_CONFIG, timeout: float = DEFAULT_TIMEOUT,
                        probe: Probe | None = None, out: TextIO | None = None,
                        err: TextIO | None = None) -> int:
    """`ipp-gateway add`: the exit status. `probe` defaults to `drivers.probe_target`."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        _add(target, name, driver, config_path, timeout, probe, out)
    except CommandError as exc:
        return _fail(exc, err)
    except KeyboardInterrupt:  # while probing: the file is written only after the probe
        return _fail(CommandError("interrupted; nothing changed"), err)
    return 0


def _add(target: str, name: str | None, driver: str, path: Path, timeout: float,
         probe: Probe | None, out: TextIO) -> None:
    from drivers import printer_name, shown_target

    config = _check_request(name, driver, path)
    result, driver = _probe(target, timeout, probe, driver, out)
    if name is None:
        # Clear of the remembered USB printers too: a configured name would replace one.
        taken = [*(p.name for p in config.printers),
                 *(p.name for p in autoprinters.load(config.spool) if not p.removed)]
        name = printer_name(result.make_and_model, taken=taken)
    # What an IPP device said of itself (media, duplex, color, resolutions; for a raw
    # pass-through, its formats), unless the driver was given otherwise.
    chosen = result.choice.driver if result.choice is not None else driver
    values: dict[str, object] = {
        **{key: value for key, value in result.config_values.items()
           if key not in ("driver", "formats") or driver == chosen},
        "name": name, "device": result.device_uri, "driver": driver,
        "make_and_model": result.make_and_model}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        written = add_printer(path, values, new_file=NEW_CONFIG_HEADER, keys=SETUP_KEYS)
    except EditError as exc:
        raise CommandError(str(exc) if str(exc).startswith(str(path)) else f"{path}: {exc}"
                           ) from None
    except OSError as exc:
        raise CommandError(_cannot_write(path, exc)) from None
    shown = shown_target(result.device_uri)  # the password stays in the file only
    log.info("added printer %s (%s, driver %s) to %s", name, shown, driver, path)
    print(f"added printer {name} ({shown}, driver {driver}) to {path}", file=out)
    print(reload_gateway(written.spool), file=out)


def _check_request(name: str | None, driver: str, path: Path) -> Config:
    """What can be refused before asking the device: the configuration as it is now."""
    from drivers import driver_names

    if driver != AUTO and driver not in driver_names():
        raise CommandError(f"--driver: unknown driver {driver!r}; the drivers are "
                           f"{AUTO}, {', '.join(sorted(driver_names()))}", 2)
    if name is not None and not NAME_PATTERN.match(name):
        raise CommandError(f"{name!r} cannot be a printer name: use 1-127 of A-Z a-z 0-9 _ . - "
                           "(starting with a letter or digit)", 2)
    config = _existing_config(path) or Config()
    if name is not None and any(p.name.lower() == name.lower() for p in config.printers):
        raise CommandError(f"a printer named {name!r} exists already in {path}; choose another "
                           f"name, or `ipp-gateway remove {name}` first")
    return config


def _probe(target: str, timeout: float, probe: Probe | None, driver: str,
           out: TextIO) -> tuple[SetupProbe, str]:
    """Ask the device, and print what was tried (whether or not it answered) and which
    driver: the one given with --driver instead of the probe's choice. The probe's result
    and the driver."""
    from drivers import DriverChoice, UriError, describe_setup, driver_names

    if probe is None:
        from drivers import probe_target

        probe = probe_target
    try:
        result: SetupProbe = trio.run(functools.partial(probe, target, timeout=timeout))
    except UriError as exc:
        raise CommandError(f"{target}: {exc}", 2) from None
    if result.ok and driver != AUTO:
        result = dataclasses.replace(result, choice=DriverChoice(driver, "", _overridden(result)))
    print(*describe_setup(result), sep="\n", file=out)
    if not result.ok:
        raise CommandError(result.error or f"{target}: nothing usable answered")
    if result.choice is None:
        raise CommandError(f"{target} did not say which printer language it speaks: give one "
                           f"with --driver ({', '.join(sorted(driver_names()))})")
    return result, result.choice.driver


def _overridden(result: SetupProbe) -> str:
    if result.choice is None:
        return "given with --driver"
    return f"given with --driver; the probe chose {result.choice.driver}"


def _existing_config(path: Path) -> Config | None:
    """The configuration as it is now, or None when the file does not exist yet."""
    if not path.exists():
        return None
    try:
        return load_config(path)
    except ConfigError as exc:
        raise CommandError(f"{exc} (fix it first: ipp-gateway check-config {path})", 2) from None


def _cannot_write(path: Path, exc: OSError) -> str:
    where = exc.filename or path
    advice = ": run as root, or give --config PATH" if exc.errno in (
        errno.EACCES, errno.EPERM, errno.EROFS) else ""
    return f"cannot write {where} ({exc.strerror}){advice}; nothing changed"


# -- remove --------------------------------------------------------------------------------------


def remove_printer_command(name: str, *, config_path: Path = DEFAULT_CONFIG,
                           out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`ipp-gateway remove`: the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    try:
        _remove(name, config_path, out)
    except CommandError as exc:
        return _fail(exc, err)
    return 0


def _remove(name: str, path: Path, out: TextIO) -> None:
    config = _existing_config(path) or Config()
    configured = any(p.name == name for p in config.printers)
    if configured:
        try:
            left = remove_printer(path, name, allow_last=True).printers
        except EditError as exc:
            raise CommandError(f"{path}: {exc}") from None
        except OSError as exc:
            raise CommandError(_cannot_write(path, exc)) from None
        log.info("removed printer %s from %s", name, path)
        print(f"removed printer {name} from {path}", file=out)
        if not left:
            print("no printer is configured now: the gateway serves the USB printers it "
                  "remembers, or else its built-in default printer", file=out)
    # Also when it was configured: a table of the same name hid the remembered printer, which
    # would come back in its place.
    if _forget(config.spool, name):
        log.info("forgot the USB printer %s remembered in %s", name, config.spool)
        print(f"removed the USB printer {name} (remembered in {config.spool})", file=out)
    elif not configured:
        raise CommandError(f"no printer named {name!r} in {path}, nor a USB printer "
                           f"remembered in {config.spool}")
    print(reload_gateway(config.spool, later="the change applies from its next start"),
          file=out)


def _forget(spool: Path, name: str) -> bool:
    try:
        return autoprinters.forget(spool, name)
    except OSError as exc:
        raise CommandError(f"cannot update the remembered USB printers in {spool} "
                           f"({exc.strerror})") from None


# -- telling the running gateway -----------------------------------------------------------------


def running_gateway(spool: Path) -> LockInfo | None:
    """Who holds `<spool>/gateway.lock` now, or None. The holder is tested with flock
    (read_lock_info), so a pid a dead gateway left in the file is never taken for a live one.
    CommandError when the lock cannot be read (a spool of another account): then we cannot
    tell, and must not say that nothing runs."""
    lock = spool / LOCK_NAME
    try:
        os.close(os.open(lock, os.O_RDONLY | os.O_CLOEXEC))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CommandError(f"cannot read {lock} ({exc.strerror}) to find the running gateway: "
                           "run as root or as the gateway's account, or reload it yourself "
                           "(systemctl reload ipp-gateway)") from None
    return read_lock_info(spool)


def reload_gateway(spool: Path, *, later: str = "the printer is served from its next start"
                   ) -> str:
    """SIGHUP to the gateway on `spool`, if one runs; the line that says what happened
    (`later`: what happens when none runs)."""
    running = running_gateway(spool)
    idle = f"no gateway is running on {spool}: {later}"
    if running is None:
        return idle
    try:
        os.kill(running.pid, signal.SIGHUP)
    except ProcessLookupError:  # it ended between the look and the signal
        return idle
    except PermissionError:
        raise CommandError(f"the configuration is changed, but this account may not signal "
                           f"the running gateway (pid {running.pid}): reload it as root "
                           "(systemctl reload ipp-gateway)") from None
    log.info("sent SIGHUP to the gateway (pid %d) on %s", running.pid, spool)
    return f"the running gateway (pid {running.pid}) reloads"


def _fail(exc: CommandError, err: TextIO) -> int:
    print(f"error: {exc}", file=err)
    return exc.status
