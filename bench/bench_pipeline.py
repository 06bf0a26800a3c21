"""Pipeline benchmark: our conversion paths against the CUPS / cups-filters programs that do
the same job, in the same run, on the same inputs.

    .venv/bin/python bench/bench_pipeline.py [--pages 10] [--dpi 300] [--repeat 3]
        [--checkout DIR ...]

Each path runs in a fresh process. Ours is timed inside the process, around
`print_document` (a gateway converts in a long-running process, so interpreter start-up is
not per job); the C filters are timed around the whole program. Peak memory is the process's
own high-water mark (VmHWM / ru_maxrss); Ghostscript, where a path uses it, is shown apart.
"job MB" is what a job costs a running gateway: the peak during `print_document` above the
RSS just before it (the peak is reset through /proc/self/clear_refs), plus our Ghostscript's
peak; the interpreter and imports are the gateway's idle RSS, paid once (bench_gpa.py).
The machine is shared: compare ratios within one run, not figures across runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / ".." / "shared" / "corpus"
FILTERS = Path("/usr/lib/cups/filter")
GS = ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE"]
# Whose code "ours" runs (--checkout; cwd and PYTHONPATH of its process): this repo by default.
CODE = ROOT

OURS = """
import re, sys, time, trio
from pathlib import Path
from drivers import PrintOptions, get_driver  # the facade: the same in every checkout
from drivers.pipeline import print_document
from drivers.transport import JobInfo, open_transport

source, fmt, driver_name, out, dpi = sys.argv[1:6]
driver = get_driver(driver_name)
caps = driver.capabilities.with_changes(resolutions=(int(dpi),), default_resolution=int(dpi))

def status_kb(field):
    return int(re.search(field + r":\\s+(\\d+) kB", Path("/proc/self/status").read_text()).group(1))

async def main():
    transport = open_transport("file://" + out)
    await transport.start_job(JobInfo(job_id=1))
    global start_peak
    start_peak = status_kb("VmHWM")  # interpreter, imports: the gateway pays them once
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    before = status_kb("VmRSS")
    start = time.perf_counter()
    progress = await print_document(Path(source), fmt, driver, caps, PrintOptions(), transport)
    elapsed = time.perf_counter() - start
    added = status_kb("VmHWM") - before
    await transport.end_job()
    return elapsed, progress.pages, added

elapsed, pages, added = trio.run(main)
print(elapsed, pages, max(start_peak, status_kb("VmHWM")), added)
"""


@dataclass
class Result:
    seconds: float
    pages: int
    peak_kb: int  # the whole process: interpreter and imports included
    added_kb: int = 0  # ours: the peak during the job above the process's RSS before it
    helper_kb: int = 0  # Ghostscript started by our pipeline


def run_ours(source: Path, fmt: str, driver: str, out: Path, dpi: int,
             gs_device: str = "") -> Result:
    done = subprocess.run(
        [sys.executable, "-c", OURS, str(source), fmt, driver, str(out), str(dpi)],
        check=True, capture_output=True, text=True, cwd=CODE, timeout=900,
        env={**os.environ, "PYTHONPATH": str(CODE),
             "PYTHONPYCACHEPREFIX": str(out.parent / "pycache")},  # none in the checkout
    )
    seconds, pages, hwm, added = done.stdout.split()
    helper = our_ghostscript_peak(source, gs_device, dpi, out.parent) if gs_device else 0
    return Result(float(seconds), int(pages), int(hwm), int(added), helper)


def run_program(argv: list[str], out: Path, env: dict[str, str] | None = None) -> Result:
    """Wall time and peak RSS of one program run. /usr/bin/time measures the memory: a child
    forked from this (bigger) Python process would report our RSS as its own peak."""
    report = out.with_suffix(".rss")
    with out.open("wb") as sink:
        start = time.perf_counter()
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", str(report), *argv], stdout=sink,
                       stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})},
                       check=True, timeout=900)
        seconds = time.perf_counter() - start
    return Result(seconds, 0, int(report.read_text().split()[-1]))


def our_ghostscript_peak(source: Path, device: str, dpi: int, tmp: Path) -> int:
    """Peak RSS of the Ghostscript our pipeline starts, run alone with the same arguments."""
    from drivers.filters.ghostscript import GhostscriptJob
    from drivers.model.capabilities import MEDIA_SIZES

    job = GhostscriptJob(device, MEDIA_SIZES["iso_a4_210x297mm"], dpi)
    return run_program(job.arguments(str(source)), tmp / "gs.out").peak_kb


def best(runs: list[Result]) -> Result:
    return min(runs, key=lambda r: r.seconds)


def make_inputs(tmp: Path, pages: int, dpi: int) -> dict[str, Path]:
    bash = str(CORPUS / "bash-87p-text.pdf")
    mixed = str(CORPUS / "gs9-colormgmt-42p-mixed.pdf")
    page_list = f"-sPageList=1-{pages}"

    def gs(name: str, source: str, *args: str) -> Path:
        out = tmp / name
        subprocess.run([*GS, f"-r{dpi}", "-sPAPERSIZE=a4", "-dFIXEDMEDIA", page_list,
                        f"-sOutputFile={out}", *args, source], check=True, capture_output=True)
        return out

    pdf = tmp / "doc.pdf"
    subprocess.run([*GS, "-sDEVICE=pdfwrite", page_list, f"-sOutputFile={pdf}", bash],
                   check=True, capture_output=True)
    return {
        "pwg-gray": gs("gray.pwg", bash, "-sDEVICE=pwgraster", "-dcupsColorSpace=18",
                       "-dcupsBitsPerColor=8"),
        "pwg-black": gs("black.pwg", bash, "-sDEVICE=pwgraster", "-dcupsColorSpace=3",
                        "-dcupsBitsPerColor=1"),
        "pwg-rgb": gs("rgb.pwg", mixed, "-sDEVICE=pwgraster", "-dcupsColorSpace=19",
                      "-dcupsBitsPerColor=8"),
        "pdf": pdf,
        "jpeg": CORPUS / "ladybird-2560x1600.jpg",
    }


def filter_argv(name: str, source: Path, options: str = "") -> list[str]:
    return [str(FILTERS / name), "1", "bench", "bench", "1", options, str(source)]


Runner = Callable[[], Result]


def paths(inputs: dict[str, Path], tmp: Path, dpi: int) -> list[tuple[str, Runner, Runner]]:
    """(label, our run, their run) thunks."""
    res = f"Resolution={dpi}dpi media=iso_a4_210x297mm"
    pcl_env = {"CONTENT_TYPE": "image/pwg-raster"}
    o = tmp / "ours.out"
    t = tmp / "theirs.out"
    return [
        ("PWG sgray_8 -> PCL  vs ippevepcl",
         lambda: run_ours(inputs["pwg-gray"], "image/pwg-raster", "pcl5", o, dpi),
         lambda: run_program(["ippevepcl", str(inputs["pwg-gray"])], t, pcl_env)),
        ("PWG black_1 -> PCL  vs ippevepcl",
         lambda: run_ours(inputs["pwg-black"], "image/pwg-raster", "pcl5", o, dpi),
         lambda: run_program(["ippevepcl", str(inputs["pwg-black"])], t, pcl_env)),
        ("PWG srgb_8 -> PS L3 vs rastertops",
         lambda: run_ours(inputs["pwg-rgb"], "image/pwg-raster", "postscript", o, dpi),
         lambda: run_program(filter_argv("rastertops", inputs["pwg-rgb"]), t)),
        ("PWG srgb_8 -> PS L2 vs rastertops",
         lambda: run_ours(inputs["pwg-rgb"], "image/pwg-raster", "postscript2", o, dpi),
         lambda: run_program(filter_argv("rastertops", inputs["pwg-rgb"]), t)),
        ("PDF -> PS           vs pdftops",
         lambda: run_ours(inputs["pdf"], "application/pdf", "postscript", o, dpi, "ps2write"),
         lambda: run_program(filter_argv("pdftops", inputs["pdf"]), t)),
        ("PDF -> PS           vs gs ps2write alone",
         lambda: run_ours(inputs["pdf"], "application/pdf", "postscript", o, dpi, "ps2write"),
         lambda: run_program([*GS, "-sDEVICE=ps2write", "-sOutputFile=%stdout",
                              str(inputs["pdf"])], t)),
        ("PDF -> raster (PCL) vs gstoraster",
         lambda: run_ours(inputs["pdf"], "application/pdf", "pcl5", o, dpi, "pbmraw"),
         lambda: run_program(filter_argv("gstoraster", inputs["pdf"], res), t)),
        ("PDF -> raster (PCL) vs gs pbmraw alone",
         lambda: run_ours(inputs["pdf"], "application/pdf", "pcl5", o, dpi, "pbmraw"),
         lambda: run_program([*GS, "-sDEVICE=pbmraw", f"-r{dpi}", "-sOutputFile=%stdout",
                              str(inputs["pdf"])], t)),
        ("JPEG -> PS          vs imagetops",
         lambda: run_ours(inputs["jpeg"], "image/jpeg", "postscript", o, dpi),
         lambda: run_program(filter_argv("imagetops", inputs["jpeg"]), t,
                             {"CUPS_SERVERBIN": "/usr/lib/cups"})),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10)
    parser.add_argument("--dpi", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--checkout", type=Path, action="append", default=[],
                        help="run ours from this checkout (repeat: one table each)")
    args = parser.parse_args()
    global CODE
    for checkout in args.checkout or [ROOT]:
        CODE = checkout.resolve()
        if args.checkout:
            print(f"ours from {CODE}:")
        run_paths(args)


def run_paths(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as directory:
        tmp = Path(directory)
        inputs = make_inputs(tmp, args.pages, args.dpi)
        print(f"{args.pages} pages at {args.dpi} dpi, best of {args.repeat}; "
              "ms/page (ours in-process, theirs whole program); peak RSS in MB: ours for the "
              "whole process (+ our Ghostscript), and what the job added to it; theirs whole")
        print(f"{'path':40} {'ours':>8} {'theirs':>8} {'ratio':>6}  "
              f"{'ours MB (+gs)':>14} {'job MB':>7} {'theirs MB':>9} {'job/theirs':>10}")
        for label, ours, theirs in paths(inputs, tmp, args.dpi):
            mine = best([ours() for _ in range(args.repeat)])
            other = best([theirs() for _ in range(args.repeat)])
            pages = max(mine.pages, 1)
            ms_ours, ms_theirs = 1000 * mine.seconds / pages, 1000 * other.seconds / pages
            helper = f"+{mine.helper_kb // 1024}" if mine.helper_kb else ""
            job_kb = mine.added_kb + mine.helper_kb  # the job's cost, Ghostscript included
            print(f"{label:40} {ms_ours:8.1f} {ms_theirs:8.1f} {ms_ours / ms_theirs:6.2f}  "
                  f"{mine.peak_kb // 1024:>8}{helper:>6} {job_kb / 1024:7.1f} "
                  f"{other.peak_kb / 1024:9.1f} {job_kb / other.peak_kb:10.2f}")


if __name__ == "__main__":
    main()
