"""`python -m drivers send DEVICE_URI FILE` (no IPP at all), `probe DEVICE_URI`, `devices`.

The file goes to the device as it is (raw), through the same transport code the gateway uses.
Exit status: 0 done, 1 the device failed (the message says what the gateway would do next),
2 bad usage or URI.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import trio

from drivers import discovery
from drivers.errors import DriverError, UriError
from drivers.transport import JobInfo, Transport, open_transport

CHUNK = 64 * 1024


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drivers", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each transport step")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="send a file to a device, raw")
    send.add_argument("uri", metavar="DEVICE_URI")
    send.add_argument("file", type=Path, metavar="FILE")
    send.add_argument("--job-id", type=int, default=os.getpid() % 1000)
    send.add_argument("--job-name", default=None, help="default: the file name")
    send.add_argument("--user", default=None, help="default: the login name")
    send.add_argument("--copies", type=int, default=1)
    send.add_argument("--unknown-length", action="store_true",
                      help="do not announce the length (LPD spools or streams, as configured)")
    probe = commands.add_parser("probe", help="connect to a device, report status and id")
    probe.add_argument("uri", metavar="DEVICE_URI")
    commands.add_parser("devices", help="list USB printers and serial ports")
    return parser


async def send_file(args: argparse.Namespace, transport: Transport) -> int:
    path: Path = args.file
    size = path.stat().st_size
    job = JobInfo(
        job_id=args.job_id,
        job_name=args.job_name or path.name,
        user=args.user or getpass.getuser(),
        copies=args.copies,
        data_length=None if args.unknown_length else size,
    )
    started = time.monotonic()
    try:
        await transport.start_job(job)
        async with await trio.open_file(path, "rb") as source:
            while chunk := await source.read(CHUNK):
                await transport.send_all(chunk)
        await transport.end_job()
    finally:
        await transport.abort_job()  # a no-op once end_job returned
    elapsed = time.monotonic() - started
    rate = size / elapsed / 1e6 if elapsed else 0.0
    print(f"sent {size} bytes to {transport.uri.redacted()} in {elapsed:.3f} s ({rate:.1f} MB/s)")
    return 0


async def run(args: argparse.Namespace, transport: Transport | None) -> int:
    if transport is not None:
        return await send_file(args, transport)
    if args.command == "probe":
        result = await discovery.probe(args.uri)
        print("\n".join(discovery.describe_probe(result)))
        return 0 if result.reachable is not False else 1
    print("\n".join(discovery.describe_devices(await discovery.devices())))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        transport = open_transport(args.uri) if args.command == "send" else None
    except (UriError, DriverError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        return trio.run(run, args, transport)
    except DriverError as exc:
        why = f"{exc.outcome.value}" + (f", {exc.reason}" if exc.reason else "")
        print(f"error: {exc.message} ({why})", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
