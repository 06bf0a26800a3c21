"""Fuzz a running gateway over loopback and report.

    .venv/bin/python scripts/netfuzz.py --requests 100000 [--seed 1] [--batch 5000]
    .venv/bin/python scripts/netfuzz.py --port 8631 --pid PID --log gateway.log ...
    .venv/bin/python scripts/netfuzz.py --pipeline 0 --batch 200 ...

By default the mutations of tests/fuzz/netfuzz.py are sent pipelined over --parallel
persistent connections (tests/support/netload.py); --pipeline 0 sends one request per
connection, as tests/fuzz/netfuzz.py does.

Without --port it starts a gateway (tests/peers/gateway_proc.py) with one file printer in a
temporary directory. Reports the request count, the HTTP statuses and IPP server errors seen,
failed health checks, tracebacks in the gateway log and the gateway's RSS at start and end.
Exits 1 on a failed health check, an undocumented 5xx or a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.fuzz import netfuzz  # noqa: E402
from tests.peers.gateway_proc import proc_status_kb, start_gateway  # noqa: E402
from tests.support import netload  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5000,
                        help="requests between two health checks (and RSS readings)")
    parser.add_argument("--pipeline", type=int, default=32,
                        help="at most this many requests per connection; 0: one, unpipelined")
    parser.add_argument("--parallel", type=int, default=4, help="connections at a time")
    parser.add_argument("--port", type=int, help="a running gateway's port on 127.0.0.1")
    parser.add_argument("--pid", type=int, help="its process id, for RSS")
    parser.add_argument("--log", type=Path, help="its log file, for tracebacks")
    parser.add_argument("--keep", action="store_true", help="keep the started gateway's files")
    args = parser.parse_args(argv)
    with contextlib.ExitStack() as stack:
        if args.port is None:
            workdir = Path(tempfile.mkdtemp(prefix="netfuzz-")) if args.keep else Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="netfuzz-")))
            gateway = stack.enter_context(start_gateway(workdir, extra_args=["--log-level",
                                                                             "info"]))
            port, pid, log = gateway.port, gateway.pid, gateway.log
            print(f"gateway pid {pid} on port {port}, files in {workdir}", flush=True)
        else:
            port, pid, log = args.port, args.pid, args.log
        return _fuzz(args, port, pid, log)
    return 1  # unreachable; mypy wants a return after the with


def _rss(pid: int | None) -> int | None:
    return proc_status_kb(pid, "VmRSS") if pid is not None else None


def _fuzz(args: argparse.Namespace, port: int, pid: int | None, log: Path | None) -> int:
    log_start = log.stat().st_size if log is not None else 0
    problem = netfuzz.health_check(port, f"ipp://127.0.0.1:{port}/ipp/print")
    if problem is not None:
        print(f"the gateway does not answer before fuzzing: {problem}")
        return 1
    rss_start = _rss(pid)
    started = time.monotonic()

    def progress(report: netfuzz.Report) -> None:
        if args.pipeline or report.batches % 25 == 0:
            print(f"  {report.requests} requests, RSS {_rss(pid)} kB, "
                  f"{report.requests / (time.monotonic() - started):.0f}/s", flush=True)

    if args.pipeline:
        report = netload.run(port, args.requests, seed=args.seed, batch=args.batch,
                             parallel=args.parallel, pipeline=args.pipeline,
                             after_batch=lambda runner: progress(runner.report)).report
    else:
        report = netfuzz.run(port, args.requests, seed=args.seed, batch=args.batch,
                             after_batch=progress)
    seconds = time.monotonic() - started
    rss_end = _rss(pid)
    found = netfuzz.tracebacks(log, log_start) if log is not None else []
    print(report.summary())
    print(f"{report.requests} requests in {seconds:.1f} s")
    print(f"RSS start {rss_start} kB, end {rss_end} kB"
          + (f" ({(rss_end - rss_start) / 1024:+.1f} MB)" if rss_start and rss_end else ""))
    print(f"tracebacks in the log: {len(found)}")
    for line in found[:10]:
        print(f"  {line}")
    for problem in report.unanswered_checks[:10]:
        print(f"  health check failed {problem}")
    for what, request in report.samples.items():
        print(f"  {what} for {request[:300]!r}")
    return 1 if found or report.unanswered_checks or report.undocumented_5xx else 0


if __name__ == "__main__":
    sys.exit(main())
