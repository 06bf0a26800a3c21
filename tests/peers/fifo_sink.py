"""The device behind p910nd: a FIFO whose every writer session becomes one job file.

p910nd opens its device for each connection and writes from offset 0 without truncating, so a
plain file would mix jobs. Run as `python -m tests.peers.fifo_sink FIFO OUTDIR
[--hash-only]`: for connection N it writes OUTDIR/job-N.data (unless --hash-only) and then,
atomically, OUTDIR/job-N.json with size, sha256 and the monotonic times of the first and last
byte (comparable across processes on Linux, for time-to-first-byte).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
from pathlib import Path

CHUNK = 256 * 1024


def receive_one(fifo: Path, data_path: Path | None) -> dict[str, object]:
    digest = hashlib.sha256()
    size, first, last = 0, 0, 0
    with open(fifo, "rb", buffering=0) as source, open(data_path or os.devnull, "wb") as out:
        while chunk := source.read(CHUNK):
            last = time.monotonic_ns()
            first = first or last
            digest.update(chunk)
            size += len(chunk)
            out.write(chunk)
    return {"size": size, "sha256": digest.hexdigest(), "first_byte_ns": first,
            "last_byte_ns": last, "closed_ns": time.monotonic_ns()}


def main(argv: list[str]) -> None:
    fifo, outdir = Path(argv[0]), Path(argv[1])
    hash_only = "--hash-only" in argv[2:]
    number = 0
    while True:
        number += 1
        data_path = None if hash_only else outdir / f"job-{number:04d}.data"
        record = receive_one(fifo, data_path)
        partial = outdir / f".job-{number:04d}.json"
        partial.write_text(json.dumps(record))
        os.replace(partial, outdir / f"job-{number:04d}.json")


if __name__ == "__main__":
    main(sys.argv[1:])
