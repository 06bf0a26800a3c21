"""Transport benchmark: a 200 MB job through our socket and lpd transports and through CUPS's
own backends (`/usr/lib/cups/backend/socket` and `lpd`, run by hand on the same file), to the
same peers in the same run: p910nd (with a FIFO sink) and BSD lpd (jobs kept in its spool).

    PYTHONPATH=. .venv/bin/python bench/bench_transports.py [--runs 7]

MB/s = job size / (last byte at the peer, or the sender's end if later, minus the start).
Time to first byte = first job byte at the peer minus the start: the sink's own timestamp for
p910nd, a 0.25 ms watch (another process) on lpd's spool directory for LPD (lpd writes the
data file as it reads).
Ours runs inside one Trio loop, two ways: "(pipeline)" is the gateway's own path for a raw
document (`print_document`, which hands the spooled file to the transport: read from the
page cache in 256 KiB blocks and sent), and "(memory)" sends one 1 MiB block over and over
(the transport alone, no file). CUPS's backends are separate processes, as cupsd runs them.
"lpd bare client" is the floor for the dialogue: blocking Python with nothing else (lpd's
own latency per ack), the data by sendfile(2).
One warm-up run of every case is not counted; medians of the runs; compare ratios within one
run, not figures across machines.
Needs root (lpd runs in a private mount namespace), p910nd, BSD lpd and CUPS's backends.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from drivers import PrintOptions, get_driver
from drivers.pipeline import print_document
from drivers.transport import JobInfo, open_transport
from tests.peers.bsd_lpd import BsdLpd
from tests.peers.p910nd import P910nd
from tests.support.big_job import big_file

CUPS_BACKENDS = Path("/usr/lib/cups/backend")
MODES = ("(pipeline)", "(memory)")


@dataclass
class Run:
    seconds: float
    ttfb: float


_WATCH_SCRIPT = """
import os, sys, time
spool = sys.argv[1]
print("ready", flush=True)
while True:
    with os.scandir(spool) as entries:
        for entry in entries:
            if entry.name.startswith("df") and entry.stat().st_size > 0:
                print(time.monotonic_ns(), flush=True)
                sys.exit(0)
    time.sleep(0.00025)
"""


class SpoolWatch:
    """The first moment a data file with content shows up in lpd's spool directory, seen by a
    process of its own (a thread here would take the GIL from the sender it measures)."""

    def __init__(self, spool: Path) -> None:
        self.spool, self.first_ns = spool, 0

    def __enter__(self) -> SpoolWatch:
        self._proc = subprocess.Popen([sys.executable, "-c", _WATCH_SCRIPT, str(self.spool)],
                                      stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        self._proc.stdout.readline()  # "ready"
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self._proc.communicate(timeout=60)
        self.first_ns = int(out.strip() or 0)


async def send_ours(uri: str, path: Path, job_id: int, mode: str) -> None:
    transport = open_transport(uri)
    size = (await trio.Path(path).stat()).st_size
    job = JobInfo(job_id=job_id, job_name=path.name, user="bench", data_length=size)
    await transport.start_job(job)
    if mode == "(pipeline)":
        raw = get_driver("raw")
        await print_document(path, "application/octet-stream", raw, raw.capabilities,
                             PrintOptions(), transport)
    else:
        async with await trio.open_file(path, "rb") as source:
            block = await source.read(1024 * 1024)
        for _ in range(size // len(block)):
            await transport.send_all(block)
    await transport.end_job()


def send_cups(backend: str, uri: str, path: Path, job_id: int) -> None:
    env = {**os.environ, "DEVICE_URI": uri}
    subprocess.run([str(CUPS_BACKENDS / backend), str(job_id), "bench", path.name, "1", "",
                    str(path)], env=env, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def send_bare_lpd(port: int, queue: str, path: Path, job_id: int) -> None:
    """The floor for LPD: the RFC 1179 dialogue with blocking sockets and nothing else (no
    options, no status, no error handling), the file by sendfile(2) (which on loopback makes
    lpd read every page cold: slower than a copy through a cache-sized block)."""
    size = path.stat().st_size
    control = b"Hbench\nPbench\nldfA%03dbench\nUdfA%03dbench\nN%s\n" % (
        job_id % 1000, job_id % 1000, path.name.encode())
    with socket.create_connection(("127.0.0.1", port)) as conn, path.open("rb") as source:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def step(message: bytes) -> None:
            conn.sendall(message)
            if conn.recv(1) != b"\0":
                raise RuntimeError(f"lpd refused {message[:20]!r}")

        step(b"\x02%s\n" % queue.encode())
        step(b"\x02%d cfA%03dbench\n" % (len(control), job_id % 1000))
        step(control + b"\0")
        step(b"\x03%d dfA%03dbench\n" % (size, job_id % 1000))
        offset = 0
        while offset < size:
            offset += os.sendfile(conn.fileno(), source.fileno(), offset, size - offset)
        step(b"\0")


Sender = Callable[[], Awaitable[None]]


async def timed(send: Sender) -> tuple[int, int]:
    start = time.monotonic_ns()
    await send()
    return start, time.monotonic_ns()


async def socket_run(p910nd: P910nd, send: Sender, size: int) -> Run:
    index = len(p910nd.records()) + 1
    start, end = await timed(send)
    record = await trio.to_thread.run_sync(p910nd.wait_record, index, 120)
    if record.size != size:
        raise RuntimeError(f"p910nd received {record.size} bytes of {size}")
    finish = max(end, record.last_byte_ns)
    return Run((finish - start) / 1e9, (record.first_byte_ns - start) / 1e9)


async def lpd_run(lpd: BsdLpd, send: Sender, size: int) -> Run:
    lpd.clear_spool()
    with SpoolWatch(lpd.spool) as watch:
        start, end = await timed(send)
    received = sum(p.stat().st_size for p in lpd.spool.glob("dfA*"))
    if received != size:
        raise RuntimeError(f"lpd spooled {received} bytes of {size}")
    lpd.clear_spool()
    return Run((end - start) / 1e9, (watch.first_ns - start) / 1e9)


def median_run(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), statistics.median(r.ttfb for r in runs))


def cases(path: Path, p910nd: P910nd, lpd: BsdLpd) -> dict[str, Callable[[int], Awaitable[Run]]]:
    size = path.stat().st_size

    def cups(backend: str, uri: str, job: int) -> Sender:
        return partial(trio.to_thread.run_sync, send_cups, backend, uri, path, job)

    def ours(uri: str, job: int, mode: str) -> Sender:
        return partial(send_ours, uri, path, job, mode)

    found: dict[str, Callable[[int], Awaitable[Run]]] = {
        "socket CUPS": lambda n: socket_run(p910nd, cups("socket", p910nd.uri, n), size),
        "lpd CUPS": lambda n: lpd_run(lpd, cups("lpd", lpd.uri, n), size),
        "lpd bare client": lambda n: lpd_run(lpd, partial(
            trio.to_thread.run_sync, send_bare_lpd, lpd.port, lpd.queue, path, n), size),
    }
    for mode in MODES:
        found[f"socket ours {mode}"] = partial(
            lambda n, m: socket_run(p910nd, ours(p910nd.uri, n, m), size), m=mode)
        found[f"lpd ours {mode}"] = partial(
            lambda n, m: lpd_run(lpd, ours(lpd.uri, n, m), size), m=mode)
    return found


async def measure(runs: int, path: Path, p910nd: P910nd, lpd: BsdLpd) -> dict[str, Run]:
    todo = cases(path, p910nd, lpd)
    for case in todo.values():
        # Warm-up, not counted: our first job in a process pays lazy imports and the transport
        # registry (~30 ms), which a running gateway pays once at start; the peers and the
        # CUPS backends get their page cache warm.
        await case(99)
    results: dict[str, list[Run]] = {name: [] for name in todo}
    for attempt in range(runs):
        for name, case in todo.items():  # interleaved, so drifts hit every row alike
            results[name].append(await case(100 + attempt))
    return {name: median_run(results[name]) for name in sorted(results)}


def table(medians: dict[str, Run], size: int) -> list[str]:
    lines = [f"{'transport':<22}{'MB/s':>8}{'first byte ms':>15}{'MB/s vs CUPS':>14}"
             f"{'first byte vs CUPS':>20}"]
    for name, run in medians.items():
        cups = medians[name.split()[0] + " CUPS"]
        rate, cups_rate = size / run.seconds / 1e6, size / cups.seconds / 1e6
        lines.append(f"{name:<22}{rate:>8.1f}{run.ttfb * 1000:>15.2f}{rate / cups_rate:>13.2f}x"
                     f"{run.ttfb / cups.ttfb:>19.2f}x")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description="transport benchmark vs CUPS backends")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    missing = [p for p in (CUPS_BACKENDS / "socket", CUPS_BACKENDS / "lpd") if not p.exists()]
    if missing or os.geteuid() != 0:
        print(f"needs root and {', '.join(map(str, missing)) or 'CUPS backends'}",
              file=sys.stderr)
        return 2
    path, _ = big_file()
    if path.stat().st_size % (1024 * 1024):
        raise SystemExit("the job size must be a whole number of MiB")
    p910nd, lpd = P910nd(hash_only=True), BsdLpd()
    try:
        p910nd.start()
        lpd.start()
        medians = trio.run(measure, args.runs, path, p910nd, lpd)
    finally:
        p910nd.stop()
        lpd.stop()
    print(f"{path.stat().st_size / 1e6:.0f} MB job, median of {args.runs} runs")
    print("\n".join(table(medians, path.stat().st_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
