"""`python -m drivers send DEVICE_URI FILE [--driver NAME]` (no IPP at all), `probe DEVICE_URI`,
`devices [--json]`, `setup TARGET` (what `ipp-gateway add` would choose).

`send` prints the file through the same pipeline and transport code the gateway uses: with the
default `raw` driver the bytes go as they are; with another driver (`pcl5`, `postscript`, ...)
the document is converted to the printer's language first, its format given by `--format` or
told from its first bytes. Exit status: 0 done, 1 the device or the conversion failed (the
message says what the gateway would do next), 2 bad usage or URI. `probe` exits 1 when the
device cannot print (unreachable, or it reports an error such as an unknown LPD queue).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import trio

from drivers import discovery, netprobe
from drivers.errors import DriverError, UriError
from drivers.model.capabilities import PrintOptions
from drivers.model.formats import OCTET_STREAM
from drivers.pipeline import print_document
from drivers.registry import driver_names, get_driver
from drivers.transport import JobInfo, Transport, check_device_uri, open_transport


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m drivers", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log each transport step")
    commands = parser.add_subparsers(dest="command", required=True)
    send = commands.add_parser("send", help="print a file on a device, with no IPP")
    send.add_argument("uri", metavar="DEVICE_URI")
    send.add_argument("file", type=Path, metavar="FILE")
    send.add_argument("--driver", default="raw", choices=driver_names(),
                      help="the printer's language (default raw: the bytes as they are)")
    send.add_argument("--format", default=OCTET_STREAM, metavar="MIME",
                      help="the file's format, e.g. application/pdf (default: told from its "
                           "first bytes where the driver needs to know)")
    send.add_argument("--job-id", type=int, default=os.getpid() % 1000)
    send.add_argument("--job-name", default=None, help="default: the file name")
    send.add_argument("--user", default=None, help="default: the login name")
    send.add_argument("--copies", type=int, default=1)
    send.add_argument("--unknown-length", action="store_true",
                      help="do not announce the length (LPD spools or streams, as configured)")
    probe = commands.add_parser("probe", help="connect to a device, report status and id")
    probe.add_argument("uri", metavar="DEVICE_URI")
    devices = commands.add_parser("devices", help="list USB printers and serial ports")
    devices.add_argument("--json", action="store_true",
                         help="a JSON array: uri, kind, name, device_id, make_and_model, "
                              "driver, reason")
    setup = commands.add_parser(
        "setup", help="probe a host or URI: the device URI and driver `ipp-gateway add` picks")
    setup.add_argument("target", metavar="HOST-OR-URI")
    setup.add_argument("--timeout", type=float, default=10.0, help="seconds in all (default 10)")
    return parser


def setup_command(target: str, timeout: float, *, verbose: bool = False) -> int:
    """`setup TARGET`: what was found and why that driver. Exit status 0 usable, 1 not, 2 not
    a target."""
    discovery.configure_logging(verbose)

    async def report() -> int:
        try:
            result = await netprobe.probe_target(target, timeout=timeout)
        except UriError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print("\n".join(netprobe.describe_setup(result)))
        return 0 if result.ok else 1

    return discovery.run_command(report)


async def send_file(args: argparse.Namespace, transport: Transport) -> int:
    path: Path = args.file
    size = (await trio.Path(path).stat()).st_size
    driver = get_driver(args.driver)
    raw = driver.passes_through
    name, user = args.job_name or path.name, args.user or getpass.getuser()
    # As the gateway's printer worker: a raw document goes as it is, its length known (LPD
    # announces it) and its copies asked of the device; a converted one carries its copies in
    # the printer's language, its length unknown until converted.
    job = JobInfo(
        job_id=args.job_id, job_name=name, user=user, document_format=args.format,
        copies=args.copies if raw else 1,
        data_length=None if args.unknown_length or not raw else size,
    )
    options = PrintOptions(copies=1 if raw else args.copies, job_name=name, user=user)
    started = time.monotonic()
    try:
        await transport.start_job(job)
        progress = await print_document(path, args.format, driver, driver.capabilities,
                                        options, transport)
        await transport.end_job()
    finally:
        await transport.abort_job()  # a no-op once end_job returned
    elapsed = time.monotonic() - started
    sent = progress.bytes_sent
    rate = sent / elapsed / 1e6 if elapsed else 0.0
    how = "" if raw else f" as {driver.name}, {progress.pages} page(s)"
    print(f"sent {sent} bytes to {transport.uri.redacted()}{how} in {elapsed:.3f} s "
          f"({rate:.1f} MB/s)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "probe":
        return netprobe.probe_command(args.uri, verbose=args.verbose)
    if args.command == "devices":
        return discovery.devices_command(verbose=args.verbose, json=args.json)
    if args.command == "setup":
        return setup_command(args.target, args.timeout, verbose=args.verbose)
    discovery.configure_logging(args.verbose)
    try:
        check_device_uri(args.uri)  # the gateway's own check: exit 2, not a device failure
        transport = open_transport(args.uri)
    except (UriError, DriverError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return discovery.run_command(partial(send_file, args, transport))


if __name__ == "__main__":
    sys.exit(main())
