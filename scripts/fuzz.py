"""`make fuzz`: run every fuzz target of tests/fuzz/targets.py for a given time.

    .venv/bin/python scripts/fuzz.py [--seconds 600] [--engine auto|atheris|hypothesis]
                                     [--timeout 10] [TARGET ...]

Engines:
- atheris (libFuzzer, coverage-guided over the parser's module), when it is installed: each
  target runs in its own process, from a corpus seeded with the valid inputs of
  tests/fuzz/seeds.py. libFuzzer stops a target at its first failure and saves the input
  under --artifacts.
- hypothesis: the target's strategy (tests/fuzz/strategies.py, mutated valid inputs), in
  batches with fresh seeds until the time is up; a failure is shrunk, printed, and counted.

An input that runs longer than --timeout seconds is a failure (a hang). Prints one line per
target: inputs tried and failures; exits 1 if any target failed.
"""

from __future__ import annotations

import argparse
import importlib
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

HYPOTHESIS_BATCH = 500
MAX_LEN = 64 * 1024


class InputTimeout(Exception):
    """One input ran longer than the per-input timeout: the parser hangs."""


def _alarm(signum: int, frame: FrameType | None) -> None:
    raise InputTimeout("input took longer than the per-input timeout")


def _with_timeout(run: Callable[[bytes, int], None], seconds: float) -> Callable[[bytes, int],
                                                                                  None]:
    def guarded(data: bytes, chunk: int) -> None:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            run(data, chunk)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    return guarded


# -- Hypothesis ------------------------------------------------------------------------------


def run_hypothesis(name: str, seconds: float, timeout: float,
                   max_failures: int = 3) -> tuple[int, int]:
    from hypothesis import HealthCheck, given, seed, settings
    from hypothesis.errors import HypothesisException

    from tests.fuzz.strategies import CHUNKS, INPUTS
    from tests.fuzz.targets import TARGETS

    signal.signal(signal.SIGALRM, _alarm)
    run = _with_timeout(TARGETS[name].run, timeout)
    tried = failures = 0

    def count_and_run(data: bytes, chunk: int) -> None:
        nonlocal tried
        tried += 1
        run(data, chunk)

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and failures < max_failures:
        test = seed(random.getrandbits(64))(settings(
            max_examples=HYPOTHESIS_BATCH, deadline=None, database=None,
            suppress_health_check=list(HealthCheck), print_blob=True,
        )(given(INPUTS[name], CHUNKS)(count_and_run)))
        try:
            test()
        except HypothesisException:
            raise  # a broken strategy, not a finding
        except Exception:  # the target's contract failed: report it and go on
            failures += 1
            print(f"--- {name}: failure {failures}", file=sys.stderr)
            traceback.print_exc()
    return tried, failures


# -- atheris ---------------------------------------------------------------------------------


def child_atheris(name: str, seconds: float, timeout: float, corpus: Path,
                  artifacts: Path) -> None:
    """In the child process: instrument the parser's package and hand over to libFuzzer."""
    atheris: Any = importlib.import_module("atheris")
    with atheris.instrument_imports(include=["gateway", "drivers", "ippwire"]):
        from tests.fuzz.targets import TARGETS
    target = TARGETS[name].run

    def one_input(data: bytes) -> None:
        target(data[1:], data[0] if data else 0)

    artifacts.mkdir(parents=True, exist_ok=True)
    atheris.Setup([sys.argv[0], str(corpus), f"-max_total_time={int(seconds)}",
                   f"-max_len={MAX_LEN}", f"-timeout={int(timeout)}", "-rss_limit_mb=2048",
                   "-print_final_stats=1", f"-artifact_prefix={artifacts}/{name}-"], one_input)
    atheris.Fuzz()


def _write_seeds(name: str, corpus: Path) -> None:
    from tests.fuzz import seeds

    inputs = {"ipp": seeds.ipp_seeds(), "http": seeds.http_seeds(), "pwg": seeds.pwg_seeds(),
              "urf": seeds.urf_seeds(), "lpd": seeds.LPD_SEEDS, "pjl": seeds.PJL_SEEDS,
              "http-response": seeds.http_response_seeds(),
              "http-auth": seeds.AUTH_SEEDS}[name]
    corpus.mkdir(parents=True, exist_ok=True)
    for index, data in enumerate(inputs):
        for chunk in (0, 7):  # the first byte is the chunk size
            (corpus / f"seed-{index}-{chunk}").write_bytes(bytes([chunk]) + data)


def run_atheris(name: str, seconds: float, timeout: float, corpus_root: Path,
                artifacts: Path) -> tuple[int, int]:
    corpus = corpus_root / name
    _write_seeds(name, corpus)
    argv = [sys.executable, __file__, "--child", name, "--seconds", str(seconds),
            "--timeout", str(timeout), "--corpus", str(corpus), "--artifacts", str(artifacts)]
    done = subprocess.run(argv, capture_output=True, text=True, errors="replace", check=False)
    found = re.search(r"stat::number_of_executed_units:\s*(\d+)", done.stderr) or \
        re.search(r"^#(\d+)\s", done.stderr, re.MULTILINE)
    tried = int(found[1]) if found else 0
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-6000:])
    return tried, int(done.returncode != 0)


def _engine(choice: str) -> str:
    if choice != "auto":
        return choice
    try:
        importlib.import_module("atheris")
    except ImportError:
        return "hypothesis"
    return "atheris"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="targets to run (default: all)")
    parser.add_argument("--seconds", type=float,
                        default=float(os.environ.get("FUZZ_SECONDS", "600")))
    parser.add_argument("--engine", choices=("auto", "atheris", "hypothesis"), default="auto")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--corpus", type=Path, help="atheris corpus directory (default: temp)")
    parser.add_argument("--artifacts", type=Path, default=ROOT / "fuzz-artifacts")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_atheris(args.child, args.seconds, args.timeout, args.corpus, args.artifacts)
        return 0
    from tests.fuzz.targets import TARGETS

    names = args.targets or list(TARGETS)
    unknown = set(names) - set(TARGETS)
    if unknown:
        parser.error(f"unknown targets {sorted(unknown)}; choose from {list(TARGETS)}")
    engine = _engine(args.engine)
    print(f"engine {engine}, {args.seconds:g} s per target", flush=True)
    failed = 0
    with tempfile.TemporaryDirectory(prefix="fuzz-corpus-") as scratch:
        corpus_root = args.corpus or Path(scratch)
        for name in names:
            if engine == "atheris":
                tried, failures = run_atheris(name, args.seconds, args.timeout, corpus_root,
                                              args.artifacts)
            else:
                tried, failures = run_hypothesis(name, args.seconds, args.timeout)
            failed += failures
            print(f"{name:13} {tried:>10} inputs  {failures} failures", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
