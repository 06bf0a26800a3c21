"""The command line: `ipp-gateway run | check-config | devices | probe`."""

from __future__ import annotations

import argparse
import dataclasses
import functools
import logging
import signal
import socket
import sys
from pathlib import Path

import trio

from gateway import logs
from gateway.config import (
    Config,
    ConfigError,
    load_config,
    parse_listen,
    parse_printer_arg,
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
    run.add_argument("--printer", action="append", default=[], metavar="NAME=DEVICE_URI",
                     help="a printer (repeatable; replaces the config's printers)")
    run.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", type=Path)
    commands.add_parser("devices", help="list attached USB printers and serial ports")
    probe = commands.add_parser("probe", help="connect to a device and report its status")
    probe.add_argument("uri")
    return parser


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
    if args.log_level:
        changes["log_level"] = args.log_level
    return dataclasses.replace(config, **changes)  # type: ignore[arg-type]


async def serve(config: Config) -> None:
    from drivers.filters import accel
    from gateway.core.system import System
    from gateway.server.http import HttpLimits
    from gateway.server.ipp_endpoint import IppApp
    from gateway.server.listener import serve_http

    system = System(config)
    app = IppApp(system)
    limits = HttpLimits(read_timeout=config.read_timeout)
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        bound = await nursery.start(
            functools.partial(serve_http, limits=limits), app,
            [(a.host, a.port) for a in config.listen])
        host = socket.gethostname()
        port = bound[0][1]
        for printer in system.printers.values():
            log.info("printer %s: ipp://%s:%d%s -> %s (driver %s)", printer.name, host, port,
                     system.printer_path(printer), printer.device_uri.redacted(),
                     printer.driver.name)
        log.info("default printer: ipp://%s:%d/ipp/print (spool %s)", host, port, config.spool)
        log.info("raster codec: %s", "C (drivers.filters._rastercodec)" if accel.ACCELERATED
                 else "pure Python (the C extension is not built, or IPP_GATEWAY_PURE_PYTHON)")
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for signum in signals:
                log.info("received %s: stopping; pending jobs stay in the spool",
                         signal.Signals(signum).name)
                nursery.cancel_scope.cancel()
                break


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
    if args.command in ("devices", "probe"):
        from drivers.__main__ import main as drivers_main

        return drivers_main([args.command] + ([args.uri] if args.command == "probe" else []))
    try:
        config = config_from_args(args)
    except ConfigError as exc:
        print(f"ipp-gateway: {exc}", file=sys.stderr)
        return 2
    logs.configure(config.log_level)
    failed = False
    try:
        trio.run(serve, config)
    except* OSError as group:  # e.g. the port is taken: say so in one line, no traceback
        for error in group.exceptions:
            log.error("cannot start: %s", error)
        failed = True
    return 1 if failed else 0
