"""Start-up to the first DNS-SD announcement: ours (python-zeroconf and Avahi backends) and
ippeveprinter's (through Avahi), on a two-host LAN of network namespaces (tests/peers/netns.py).

    PYTHONPATH=. .venv/bin/python bench/bench_dnssd.py [--runs 5]

Each run: a fresh python-zeroconf browser for `_ipp._tcp` in the client namespace is started
and ready first; then the printer process is started in the gateway namespace (t0, just before
the spawn); the figure is the moment the browser first sees the printer's instance (its own
CLOCK_MONOTONIC stamp, the same clock as t0) minus t0. So it counts the interpreter's start,
the gateway's own start and the responder's probing, as a person starting it would wait.
For the Avahi rows avahi-daemon already runs in the gateway namespace (as on a desktop); its
own start is not counted. Each run uses a new instance name, so no cache answers for it.
Then, with the responder running and the gateway idle, its RSS. Targets (issue 11): under
2 s; under 45 MB. Needs root, avahi-daemon, ippeveprinter, python-zeroconf.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import PrinterTable, write_config
from tests.peers.ippeveprinter import FORMATS, INSTANT_COMMAND
from tests.peers.netns import (
    NetNamespace,
    TwoHostLan,
    two_host_lan,
    zeroconf_browser,
    zeroconf_result,
)
from tests.peers.procs import free_port, stop_process

TARGET = 2.0
RSS_TARGET = 45.0  # MB, idle with TLS and DNS-SD on (issue 11)
IDLE_WAIT = 3.0
SERVICE = "_ipp._tcp.local."
BROWSE_TIMEOUT = 20.0

Starter = Callable[[NetNamespace, Path, str], subprocess.Popen[bytes]]


def start_ours(backend: str) -> Starter:
    def start(host: NetNamespace, workdir: Path, instance: str) -> subprocess.Popen[bytes]:
        workdir.mkdir(parents=True)
        config = write_config(workdir, free_port(), [PrinterTable("bench", extra={
            "info": instance})], log_level="info", listen_host="*",
            extra_toml=f'[dnssd]\nbackend = "{backend}"')
        return host.spawn([sys.executable, "-m", "gateway", "run", "--config", str(config)],
                          workdir / "gateway.log", env={"PYTHONUNBUFFERED": "1"},
                          cwd=REPO_ROOT)
    return start


def start_ippeveprinter(host: NetNamespace, workdir: Path,
                        instance: str) -> subprocess.Popen[bytes]:
    spool = workdir / "spool"
    spool.mkdir(parents=True)
    return host.spawn(["ippeveprinter", "-p", str(free_port()), "-f", FORMATS,
                       "-c", INSTANT_COMMAND, "-d", str(spool), instance],
                      workdir / "ippeveprinter.log")


def wait_ready(browser: subprocess.Popen[bytes], log: Path, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while "browsing" not in log.read_text(errors="replace"):
        if browser.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the browser did not start: {log.read_text()[-2000:]}")
        time.sleep(0.01)


def rss_mb(pid: int) -> float | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kb = next(int(line.split()[1]) for line in status.splitlines()
              if line.startswith("VmRSS:"))
    return kb / 1024


def one_run(lan: TwoHostLan, starter: Starter, workdir: Path,
            instance: str) -> tuple[float | None, float | None]:
    """Seconds from the spawn to the first announcement seen; then the idle RSS (MB), read
    IDLE_WAIT seconds after it, as the responder runs."""
    log = workdir.with_suffix(".browser.log")
    browser = zeroconf_browser(lan.client, [SERVICE], instance, log, BROWSE_TIMEOUT)
    wait_ready(browser, log)
    started = time.monotonic()
    server = starter(lan.gateway, workdir, instance)
    try:
        sighting = zeroconf_result(browser, BROWSE_TIMEOUT + 15.0)
        time.sleep(IDLE_WAIT)
        rss = rss_mb(server.pid)
    finally:
        stop_process(server)
    seen = sighting.at.get(SERVICE)
    return (None if seen is None else seen - started), rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    rows: list[tuple[str, list[float | None], list[float | None]]] = []
    with two_host_lan() as lan:
        cases: list[tuple[str, Starter, bool]] = [
            ("ours, python-zeroconf", start_ours("zeroconf"), False),
            ("ours, avahi (D-Bus)", start_ours("avahi"), True),
            ("ippeveprinter, avahi", start_ippeveprinter, True),
        ]
        for label, starter, needs_avahi in cases:
            if needs_avahi and lan.gateway.avahi is None:
                lan.gateway.start_avahi(f"bench-{lan.gateway.name}")
            times, sizes = [], []
            for run in range(args.runs):
                tag = label.split(",")[0].replace(" ", "")
                workdir = lan.workdir / f"{tag}-{len(rows)}-{run}"
                took, rss = one_run(lan, starter, workdir, f"Bench {tag} {len(rows)}-{run}")
                times.append(took)
                sizes.append(rss)
            rows.append((label, times, sizes))
    print(f"Start-up to the first DNS-SD announcement ({args.runs} runs; target < {TARGET} s), "
          f"and idle RSS {IDLE_WAIT:g} s later (target < {RSS_TARGET:g} MB, TLS on)")
    print(f"{'responder':<24} {'median s':>9} {'min s':>7} {'max s':>7} {'missed':>7} "
          f"{'RSS MB':>7}")
    for label, times, sizes in rows:
        seen = [t for t in times if t is not None]
        known = [m for m in sizes if m is not None]
        rss_text = f"{statistics.median(known):>7.1f}" if known else f"{'-':>7}"
        if not seen:
            print(f"{label:<24} {'-':>9} {'-':>7} {'-':>7} {len(times):>7} {rss_text}")
            continue
        print(f"{label:<24} {statistics.median(seen):>9.2f} {min(seen):>7.2f} "
              f"{max(seen):>7.2f} {len(times) - len(seen):>7} {rss_text}")


if __name__ == "__main__":
    main()
