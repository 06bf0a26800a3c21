#!/usr/bin/env python3
"""IPPS: our gateway against ippeveprinter over TLS on the same port as IPP.

Run from the repository root: `.venv/bin/python bench/bench_tls.py [--duration 5]`.

- Get-Printer-Attributes over ipps:// (`wrk` to https://, keep-alive, 8 connections by
  default), variants as bench_gpa.py ("status", "all");
- full TLS handshakes per second: `openssl s_time -new` (a new handshake per connection, no
  session reuse) for `--duration` seconds, TLS 1.2 and TLS 1.3.

Each server is started fresh per measurement; the peer's figure is printed beside ours. Both
servers and the clients share this machine's cores: read the ratios.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_gpa import (
    VARIANTS,
    Measurement,
    Server,
    get_printer_attributes,
    ippeveprinter_starter,
    lua_script,
    ratio,
    run_wrk,
    start_ours,
    started,
)

from tests.peers.ippeveprinter import start_private_bus
from tests.peers.procs import find_program


class HttpsServer(Server):
    """A `Server` whose URL wrk is pointed at is https://."""

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}/ipp/print"


def over_tls(start: Callable[[Path], Server]) -> Callable[[Path], Server]:
    def start_tls(workdir: Path) -> Server:
        server = start(workdir)
        return HttpsServer(server.pid, server.port, server.stop, server.alive)
    return start_tls


def gpa_over_tls(start: Callable[[Path], Server], workdir: Path, variant: str,
                 connections: int, seconds: int) -> Measurement:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    with started(over_tls(start), workdir) as server:
        body = get_printer_attributes(server.uri.replace("ipp://", "ipps://"), VARIANTS[variant])
        script = workdir / f"gpa-{variant}.lua"
        script.write_text(lua_script(body))
        measurement = run_wrk(server, script, connections, seconds)
        return replace(measurement, crashed=not server.alive())


S_TIME = re.compile(r"(\d+) connections in ([\d.]+) real seconds")


def handshakes_per_second(start: Callable[[Path], Server], workdir: Path, version: str,
                          seconds: int) -> float:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    with started(start, workdir) as server:
        argv = [find_program("openssl") or "openssl", "s_time", "-connect",
                f"127.0.0.1:{server.port}", "-new", f"-{version}", "-time", str(seconds)]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60,
                              check=False)
        found = S_TIME.search(done.stdout)
        if found is None:
            raise RuntimeError(f"openssl s_time gave no result: {done.stdout}{done.stderr}")
        return int(found[1]) / float(found[2])


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--connections", default="8", help="comma-separated levels for GPA")
    parser.add_argument("--variants", default="status,all", help=f"of {sorted(VARIANTS)}")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bench-tls-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        bus = start_private_bus(workdir / "dbus")
        stack.callback(bus.stop)
        theirs = ippeveprinter_starter(bus)
        print("GPA over ipps (wrk, keep-alive)")
        print(f"{'variant':8} {'conns':>5} | {'gateway req/s':>13} {'p99 ms':>7} {'err':>5} | "
              f"{'ippeveprinter req/s':>19} {'p99 ms':>7} {'err':>5} | ours/theirs")
        for variant in args.variants.split(","):
            for connections in (int(level) for level in args.connections.split(",")):
                ours_m = gpa_over_tls(start_ours, workdir / "ours", variant, connections,
                                      args.duration)
                theirs_m = gpa_over_tls(theirs, workdir / "theirs", variant, connections,
                                        args.duration)
                print(f"{variant:8} {connections:5} | {ours_m.requests_per_s:13.0f} "
                      f"{ours_m.p99_ms:7.2f} {ours_m.socket_errors + ours_m.non_2xx:5} | "
                      f"{theirs_m.requests_per_s:19.0f} {theirs_m.p99_ms:7.2f} "
                      f"{theirs_m.socket_errors + theirs_m.non_2xx:5} | "
                      f"{ratio(ours_m.requests_per_s, theirs_m.requests_per_s)}")
        print("\nfull TLS handshakes per second (openssl s_time -new)")
        for version in ("tls1_2", "tls1_3"):
            ours_h = handshakes_per_second(start_ours, workdir / "ours", version, args.duration)
            theirs_h = handshakes_per_second(theirs, workdir / "theirs", version, args.duration)
            print(f"{version:8} | gateway {ours_h:8.0f}/s | ippeveprinter {theirs_h:8.0f}/s | "
                  f"ours/theirs {ratio(ours_h, theirs_h)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
