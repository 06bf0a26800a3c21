"""The command line: `ipp-gateway run | check-config | devices | probe`, setting printers up
(`add`, `remove`: gateway.setup_cmd) and the everyday actions on a running gateway (`jobs`,
`cancel`, `hold`, `release`, `pause`, `resume`, `status`: gateway.ctl)."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import sys
from pathlib import Path

import trio

from gateway import ctl, doctor, logs, setup_cmd
from gateway.config import (
    Config,
    ConfigError,
    load_config,
    parse_listen,
    parse_printer_arg,
    parse_user,
)

log = logging.getLogger("gateway")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ipp-gateway",
                                     description="An IPP Everywhere front for legacy printers.")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="serve printers over IPP")
    run.add_argument("--config", type=Path, help="TOML configuration file")
    run.add_argument("--listen", action="append", default=[], metavar="HOST:PORT",
                     help="address to listen on (repeatable; default *:8631)")
    run.add_argument("--spool", type=Path, help="spool directory")
    run.add_argument("--printer", action="append", default=[],
                     metavar="NAME=DEVICE_URI[,driver=D]",
                     help="a printer (repeatable; replaces the config's printers); the driver "
                          "defaults to raw, which passes application/octet-stream only")
    run.add_argument("--user", help="when started as root, the account to run as after "
                                    "binding the ports (default lp; root keeps root)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    run.add_argument("--no-dnssd", action="store_true",
                     help="do not advertise the printers over DNS-SD (dnssd.enabled = false)")
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    setup_cmd.add_devices_command(commands)
    probe = commands.add_parser("probe", help="connect to a device and report its status")
    probe.add_argument("uri")
    setup_cmd.add_commands(commands)
    add_passwd_command(commands)
    doctor.add_command(commands)
    ctl.add_commands(commands)
    return parser


def add_passwd_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    passwd = commands.add_parser(
        "passwd", help="add a user, change a password, or delete a user (<spool>/passwd)",
        description="Add USER or change their password: asked twice on a terminal, else one "
                    "line read from standard input (echo secret | ipp-gateway passwd alice). "
                    "A running gateway sees the change at once.")
    passwd.add_argument("name", metavar="USER")
    role = passwd.add_mutually_exclusive_group()
    role.add_argument("--admin", dest="admin", action="store_const", const=True,
                      help="make the user an administrator")
    role.add_argument("--no-admin", dest="admin", action="store_const", const=False,
                      help="make the user an ordinary user (default for a new user; an "
                           "existing user keeps their role unless one of these is given)")
    role.add_argument("--delete", action="store_true", help="delete the user")
    where = passwd.add_mutually_exclusive_group()
    where.add_argument("--spool", type=Path, help="spool directory (default: the config's)")
    where.add_argument("--config", type=Path, help="TOML configuration file naming the spool")


def config_from_args(args: argparse.Namespace) -> Config:
    config = load_config(args.config) if args.config else Config()
    changes: dict[str, object] = {}
    if args.listen:
        changes["listen"] = tuple(parse_listen(text, "--listen") for text in args.listen)
    if args.spool:
        changes["spool"] = args.spool
    if args.printer:
        printers = tuple(parse_printer_arg(text) for text in args.printer)
        names = [p.name for p in printers]
        if len(set(names)) != len(names):
            raise ConfigError("--printer: printer names must be unique")
        changes["printers"] = printers
    if args.user is not None:
        changes["user"] = parse_user(args.user, "--user")
    if args.log_level:
        changes["log_level"] = args.log_level
    if args.no_dnssd:
        changes["dnssd"] = dataclasses.replace(config.dnssd, enabled=False)
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


async def serve(config: Config, args: argparse.Namespace) -> None:
    from gateway import autoprinters, preload, startup
    from gateway.core.system import System
    from gateway.privileges import PrivilegeError, drop_privileges
    from gateway.service import Gateway

    account = startup.target_account(config)
    startup.prepare_log_file(config.log_file, account)
    lock = startup.prepare_spool(config, account)
    try:
        tls = startup.prepare_tls(config, account)
        listeners = await startup.open_listeners(config.listen)
        if account is not None:
            preload.import_everything()
            try:
                drop_privileges(account)
            except PrivilegeError as exc:
                raise startup.StartupError(str(exc)) from None
            log.info("ports bound; running as user %s (uid %d)", account.name, account.uid)
            if (warning := preload.unreadable_installation()) is not None:
                log.warning("%s", warning)
        # The USB printers set up by plugging them in are served beside the configured ones.
        running = await trio.to_thread.run_sync(autoprinters.with_remembered, config)
        system = await System.open(running)
        await Gateway(running, lambda: config_from_args(args), lock, listeners, system,
                      tls, configured=config).run()
    finally:
        lock.release()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "check-config":
        try:
            config = load_config(args.file)
        except ConfigError as exc:
            print(f"ipp-gateway: {exc}", file=sys.stderr)
            return 2
        print(f"{args.file}: OK ({len(config.printers)} printer(s))")
        return 0
    if args.command == "devices":
        return setup_cmd.devices(args)
    if args.command == "probe":
        from drivers import probe_command

        return probe_command(args.uri)
    if args.command in setup_cmd.COMMANDS:
        return setup_cmd.run(args)
    if args.command in ctl.COMMANDS:
        return ctl.run(args)
    if args.command == "passwd":
        return passwd(args)
    if args.command == "doctor":
        return doctor.main(args)
    return run(args)


def read_new_password() -> str:
    """The new password: typed twice on a terminal, else one line of standard input (its
    line end removed, nothing else). ValueError says what is wrong."""
    if sys.stdin.isatty():
        import getpass

        first = getpass.getpass("New password: ")
        if getpass.getpass("Repeat it: ") != first:
            raise ValueError("the passwords do not match")
        password = first
    else:
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        raise ValueError("the password is empty")
    return password


def passwd(args: argparse.Namespace) -> int:
    from gateway.passwords import PASSWD_FILE, PasswordFile, PasswordFileError, check_user_name

    try:
        spool = args.spool or (load_config(args.config) if args.config else Config()).spool
        name = check_user_name(args.name)
        users = PasswordFile(spool / PASSWD_FILE)
        if args.delete:
            if not users.delete(name):
                raise ValueError(f"no user {name!r} in {users.path}")
            print(f"deleted user {name} from {users.path}")
            return 0
        added = users.set(name, read_new_password(), admin=args.admin)
    except (ConfigError, ValueError, PasswordFileError) as exc:
        print(f"ipp-gateway passwd: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ipp-gateway passwd: {exc.filename or 'the spool'}: {exc.strerror}",
              file=sys.stderr)
        return 2
    except (EOFError, KeyboardInterrupt):
        print("\nipp-gateway passwd: interrupted; nothing changed", file=sys.stderr)
        return 1
    role = "an administrator" if users.accounts()[name].admin else "not an administrator"
    print(f"{'added user' if added else 'changed the password of'} {name} ({role}) in "
          f"{users.path}")
    return 0


def run(args: argparse.Namespace) -> int:
    # Until the signal receiver is up, a SIGHUP (a reload sent too early) must not kill us.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"ipp-gateway: {exc}", file=sys.stderr)
        return 2
    try:
        logs.configure(config.log_level, config.log_file)
    except OSError as exc:
        print(f"ipp-gateway: server.log_file {config.log_file}: {exc.strerror}", file=sys.stderr)
        return 2
    from gateway.startup import StartupError

    failures: list[BaseException] = []
    try:
        trio.run(serve, config, args)
    except* StartupError as group:
        failures.extend(group.exceptions)
    for error in failures:
        log.error("cannot start: %s", error)
        if config.log_file is not None:
            print(f"ipp-gateway: cannot start: {error}", file=sys.stderr)
    return 1 if failures else 0
