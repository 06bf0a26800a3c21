#!/usr/bin/env python3
"""Get-Printer-Attributes throughput: our gateway against ippeveprinter, with wrk.

Run from the repository root: `.venv/bin/python bench/bench_gpa.py` (see bench/README.md).
Both servers and wrk share this machine's cores, so read the ratios, not the absolute figures.
"""

from __future__ import annotations

import argparse
import http.client
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.peers.gateway_proc import (
    LOG_NAME,
    START_TIMEOUT,
    GatewayProcess,
    gateway_argv,
    start_gateway,
    wait_until_serving,
)
from tests.peers.ippeveprinter import (
    PrivateBus,
    start_ippeveprinter,
    start_private_bus,
)
from tests.peers.procs import find_program, free_port, spawn_logged, stop_process, wait_for_port

VARIANTS: dict[str, tuple[str, ...]] = {
    "all": ("all",),
    "status": ("printer-state", "printer-state-reasons", "printer-is-accepting-jobs"),
}
RESULT_PREFIX = "RESULT "
LUA_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d duration_us=%d p50_us=%.0f p99_us=%.0f bytes=%d "
    .. "connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    summary.bytes, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- a tiny IPP encoder: enough for one Get-Printer-Attributes request -----------------

def ipp_attribute(tag: int, name: str, values: Sequence[str]) -> bytes:
    out = b""
    for index, value in enumerate(values):
        encoded_name = name.encode() if index == 0 else b""
        data = value.encode()
        out += struct.pack(">BH", tag, len(encoded_name)) + encoded_name
        out += struct.pack(">H", len(data)) + data
    return out


def get_printer_attributes(printer_uri: str, requested: Sequence[str]) -> bytes:
    """IPP/2.0 Get-Printer-Attributes (0x000B), request-id 1."""
    return b"".join([
        struct.pack(">BBHI", 2, 0, 0x000B, 1),
        b"\x01",  # operation-attributes-tag
        ipp_attribute(0x47, "attributes-charset", ["utf-8"]),
        ipp_attribute(0x48, "attributes-natural-language", ["en"]),
        ipp_attribute(0x45, "printer-uri", [printer_uri]),
        ipp_attribute(0x42, "requesting-user-name", ["bench"]),
        ipp_attribute(0x44, "requested-attributes", list(requested)),
        b"\x03",  # end-of-attributes-tag
    ])


def lua_script(body: bytes) -> str:
    # Three-digit decimal escapes cannot run into a following digit.
    literal = "".join(f"\\{byte:03d}" for byte in body)
    return (f'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/ipp"\n'
            f'wrk.body = "{literal}"\n{LUA_DONE}')


# --- targets ----------------------------------------------------------------------------

@dataclass
class Server:
    pid: int
    port: int
    stop: Callable[[], object]
    alive: Callable[[], bool]

    @property
    def uri(self) -> str:
        return f"ipp://127.0.0.1:{self.port}/ipp/print"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/ipp/print"


def start_ours(workdir: Path) -> Server:
    gateway = start_gateway(workdir)
    return Server(gateway.pid, gateway.port, gateway.stop, lambda: gateway.proc.poll() is None)


def checkout_starter(checkout: Path) -> Callable[[Path], Server]:
    """start_ours with the gateway's code from `checkout` (its cwd and PYTHONPATH): the same
    command line, so that two versions are compared on the same printer."""
    def start(workdir: Path) -> Server:
        for directory in (workdir / "spool", workdir / "output"):
            directory.mkdir(parents=True, exist_ok=True)
        port = free_port()
        argv = gateway_argv(port, workdir / "spool", workdir / "output", "default", ())
        if "no-dnssd" in (checkout / "gateway" / "cli.py").read_text():
            argv.append("--no-dnssd")  # nothing multicasts on this machine's own network
        env = dict(os.environ, PYTHONUNBUFFERED="1", PYTHONPATH=str(checkout),
                   PYTHONPYCACHEPREFIX=str(workdir.parent / "pycache"))  # none in the checkout
        proc = spawn_logged(argv, workdir / LOG_NAME, env=env, cwd=checkout)
        answered = False
        try:
            wait_for_port(proc, port, workdir / LOG_NAME, START_TIMEOUT)
            wait_until_serving(port, START_TIMEOUT)
            answered = True
        finally:
            if not answered:
                stop_process(proc)
        gateway = GatewayProcess(proc, port, workdir)
        return Server(gateway.pid, port, gateway.stop, gateway.alive)
    return start


def ippeveprinter_starter(bus: PrivateBus) -> Callable[[Path], Server]:
    def start(workdir: Path) -> Server:
        printer = start_ippeveprinter(workdir, bus)
        return Server(printer.pid, printer.port, printer.stop,
                      lambda: printer.proc.poll() is None)
    return start


@contextmanager
def started(start: Callable[[Path], Server], workdir: Path) -> Iterator[Server]:
    server = start(workdir)
    try:
        yield server
    finally:
        server.stop()


def idle_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


def probe(server: Server, body: bytes) -> int:
    """One request by hand: insist on HTTP 200 and IPP successful-ok; return the size."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        connection.request("POST", "/ipp/print", body, {"Content-Type": "application/ipp"})
        response = connection.getresponse()
        payload = response.read()
    finally:
        connection.close()
    status = struct.unpack(">H", payload[2:4])[0] if len(payload) >= 8 else -1
    if response.status != 200 or status != 0:
        raise RuntimeError(f"{server.url}: HTTP {response.status}, IPP status {status:#06x}")
    return len(payload)


# --- measuring ----------------------------------------------------------------------------

@dataclass
class Measurement:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    socket_errors: int
    non_2xx: int
    crashed: bool


def run_wrk(server: Server, script: Path, connections: int, seconds: int) -> Measurement:
    threads = 1 if connections == 1 else 2
    argv = [find_program("wrk") or "wrk", f"-t{threads}", f"-c{connections}",
            f"-d{seconds}s", "-s", str(script), server.url]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30,
                          check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_PREFIX)]
    if not lines:
        raise RuntimeError(f"wrk gave no result: {done.stdout}{done.stderr}")
    fields = dict(item.split("=") for item in lines[-1][len(RESULT_PREFIX):].split())
    numbers = {key: float(value) for key, value in fields.items()}
    socket_errors = sum(numbers[key] for key in ("connect", "read", "write", "timeout"))
    return Measurement(
        requests_per_s=numbers["requests"] / (numbers["duration_us"] / 1e6),
        p50_ms=numbers["p50_us"] / 1000, p99_ms=numbers["p99_us"] / 1000,
        socket_errors=int(socket_errors), non_2xx=int(numbers["status"]),
        crashed=not server.alive(),
    )


def measure(start: Callable[[Path], Server], workdir: Path, variant: str, connections: int,
            seconds: int) -> Measurement:
    """A fresh server for every run: ippeveprinter has crashed here under load."""
    with started(start, workdir) as server:
        body = get_printer_attributes(server.uri, VARIANTS[variant])
        probe(server, body)
        script = workdir / f"gpa-{variant}.lua"
        script.write_text(lua_script(body))
        return run_wrk(server, script, connections, seconds)


def idle_rss(start: Callable[[Path], Server], workdir: Path) -> int:
    with started(start, workdir) as server:
        probe(server, get_printer_attributes(server.uri, VARIANTS["all"]))
        time.sleep(0.5)
        return idle_rss_kib(server.pid)


# --- report -------------------------------------------------------------------------------

def cell(m: Measurement) -> str:
    note = " CRASHED" if m.crashed else ""
    errors = f"{m.socket_errors}/{m.non_2xx}"
    return f"{m.requests_per_s:9.0f} {m.p50_ms:7.2f} {m.p99_ms:7.2f} {errors:>9}{note}"


def ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:6.2f}" if theirs else "   n/a"


def print_table(names: tuple[str, str], rows: list[tuple[str, int, Measurement, Measurement]],
                rss: tuple[int, int]) -> None:
    head = "     req/s  p50 ms  p99 ms sock/!2xx"
    print(f"{'variant':8} {'conns':>5} | {names[0]:^37} | {names[1]:^37} | ours/theirs")
    print(f"{'':8} {'':>5} |{head} |{head} |  req/s")
    for variant, connections, ours, theirs in rows:
        print(f"{variant:8} {connections:5d} | {cell(ours)} | {cell(theirs)} |"
              f" {ratio(ours.requests_per_s, theirs.requests_per_s)}")
    print(f"idle RSS: {names[0]} {rss[0] / 1024:.1f} MiB, {names[1]} {rss[1] / 1024:.1f} MiB,"
          f" ratio {ratio(rss[0], rss[1]).strip()}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--connections", default="1,8,64", help="comma-separated levels")
    parser.add_argument("--variants", default="all,status", help=f"of {sorted(VARIANTS)}")
    parser.add_argument("--ours", choices=("gateway", "ippeveprinter"), default="gateway",
                        help="what plays 'ours' (ippeveprinter checks the bench itself)")
    parser.add_argument("--checkout", type=Path, action="append", default=[],
                        help="run our gateway from this checkout (repeat: one table each)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [int(level) for level in args.connections.split(",")]
    variants = args.variants.split(",")
    workdir = Path(tempfile.mkdtemp(prefix="bench-gpa-"))
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, workdir, True)
        bus = start_private_bus(workdir / "dbus")
        stack.callback(bus.stop)
        theirs = ippeveprinter_starter(bus)
        for checkout in args.checkout or [None]:
            ours = start_ours if args.ours == "gateway" else theirs
            if checkout is not None:
                print(f"gateway from {checkout}:")
                ours = checkout_starter(checkout.resolve())
            rss = (idle_rss(ours, workdir / "ours"), idle_rss(theirs, workdir / "theirs"))
            rows = []
            for variant in variants:
                for connections in levels:
                    rows.append((variant, connections,
                                 measure(ours, workdir / "ours", variant, connections,
                                         args.duration),
                                 measure(theirs, workdir / "theirs", variant, connections,
                                         args.duration)))
            print_table((args.ours, "ippeveprinter"), rows, rss)
    return 0


if __name__ == "__main__":
    sys.exit(main())
