#!/usr/bin/env python3
"""Profile our gateway under wrk load with Get-Printer-Attributes and print the top functions.

Run from the repository root: `.venv/bin/python bench/profile_gpa.py` (see bench/README.md).
`--tool py-spy` (the default when `py-spy` is installed in the venv or on PATH) samples the
running process and barely slows it; the table gives self and inclusive shares of the samples.
`--tool cprofile` runs the gateway under `python -m cProfile` (SIGTERM stops it cleanly, so
the profile is written); it slows Python code down about three times and inflates small
functions, so its req/s is not comparable with bench_gpa.py. `--tool none` measures req/s only.
"""

from __future__ import annotations

import argparse
import collections
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_gpa import VARIANTS, Server, get_printer_attributes, lua_script, probe, run_wrk
from tests.peers.gateway_proc import gateway_argv
from tests.peers.procs import find_program, free_port, spawn_logged, stop_process, wait_for_port

PY_SPY_RATE = 1000  # samples per second


def py_spy_program() -> str | None:
    beside_python = Path(sys.executable).parent / "py-spy"
    return str(beside_python) if beside_python.exists() else find_program("py-spy")


def start_profiled(workdir: Path, tool: str, profile: Path) -> tuple[Server, Path]:
    """The gateway on a free port, under `tool` (cprofile, py-spy or none) writing `profile`."""
    spool, output = workdir / "spool", workdir / "output"
    for directory in (spool, output):
        directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    argv = gateway_argv(port, spool, output, "default", ())
    if tool == "cprofile":
        argv[1:1] = ["-m", "cProfile", "-o", str(profile)]
    log = workdir / "gateway.log"
    proc = spawn_logged(argv, log, cwd=Path(__file__).resolve().parents[1])
    try:
        wait_for_port(proc, port, log, 30.0)
    except BaseException:
        stop_process(proc)
        raise
    server = Server(proc.pid, port, lambda: stop_process(proc, grace=15.0),
                    lambda: proc.poll() is None)
    return server, log


def start_py_spy(pid: int, seconds: int, profile: Path) -> subprocess.Popen[bytes]:
    """py-spy attached to `pid` for `seconds`; it writes collapsed stacks to `profile`."""
    argv = [py_spy_program() or "py-spy", "record", "--pid", str(pid), "--rate",
            str(PY_SPY_RATE), "--duration", str(seconds), "--format", "raw",
            "--output", str(profile)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--variant", default="status", choices=sorted(VARIANTS))
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk load")
    parser.add_argument("--top", type=int, default=30, help="functions to print")
    parser.add_argument("--tool", choices=("py-spy", "cprofile", "none"),
                        default="py-spy" if py_spy_program() else "cprofile")
    parser.add_argument("--sort", default="tottime", help="cProfile sort key (tottime, cumtime)")
    parser.add_argument("--save", type=Path, help="keep the raw profile here")
    return parser.parse_args(argv)


def print_py_spy(raw: Path, top: int) -> None:
    """Self and inclusive sample shares per function from py-spy's collapsed stacks."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in stack.split(";")]
        total += count
        own[frames[-1]] += count
        inclusive.update(dict.fromkeys(frames, count))
    print(f"{total} samples")
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"--- {title}")
        for frame, count in counter.most_common(top):
            print(f"{100 * count / total:5.1f}%  {frame}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="profile-gpa-"))
    try:
        profile = args.save or workdir / "gateway.prof"
        server, _log = start_profiled(workdir, args.tool, profile)
        try:
            body = get_printer_attributes(server.uri, VARIANTS[args.variant])
            size = probe(server, body)
            script = workdir / "gpa.lua"
            script.write_text(lua_script(body))
            spy = start_py_spy(server.pid, args.duration, profile) if args.tool == "py-spy" \
                else None
            try:
                result = run_wrk(server, script, args.connections, args.duration)
            finally:
                if spy is not None:
                    spy.wait(timeout=args.duration + 30)
        finally:
            server.stop()
        print(f"{args.variant}, {args.connections} connections, response {size} bytes:"
              f" {result.requests_per_s:.0f} req/s, p50 {result.p50_ms:.2f} ms,"
              f" p99 {result.p99_ms:.2f} ms, errors {result.socket_errors}/{result.non_2xx}"
              + ("" if args.tool == "none" else f" (under {args.tool})"))
        if args.tool == "cprofile":
            stats = pstats.Stats(str(profile))
            stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
        elif args.tool == "py-spy":
            print_py_spy(profile, args.top)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
