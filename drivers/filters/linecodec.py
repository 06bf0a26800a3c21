"""The PWG/URF line codec: PWG 5102.4 / Apple raster compression (protocols.md 9.4).

A line-repeat byte, then packets of pixel units — 0x00-0x7F repeat the next unit n+1 times,
0x81-0xFF copy 257-n units, 0x80 (URF) fills the rest of the line with white. The raster model
it codes is `drivers.model.raster`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from drivers.model import accel
from drivers.model.accel import LineOverflow as LineOverflow  # next to the C codec raising it
from drivers.model.raster import Row

# Every run packet of one byte-sized unit, prebuilt: index (count - 1) << 8 | value. Made on
# the pure-Python decoder's first use: 32768 bytes objects are 3.4 MB of the gateway's idle
# memory, which the C codec (the usual case) never needs.
_runs_of_bytes: list[bytes] | None = None


def _byte_runs() -> list[bytes]:
    global _runs_of_bytes
    runs = _runs_of_bytes
    if runs is None:  # two threads may both build it: the same table, either one kept
        runs = [bytes([value]) * (count + 1) for count in range(128) for value in range(256)]
        _runs_of_bytes = runs
    return runs


def decode_line_py(data: bytes, pos: int, size: int, unit: int, fill: int) -> tuple[bytes, int]:
    """Decode the packets of one line of `size` bytes starting at `pos` (after the repeat byte).

    Returns the line and the position after it. Raises IndexError when `data` ends inside the
    line and LineOverflow when the packets do not add up to the line. The reference for the
    C `decode_line` of drivers.model.accel (which also wants pos >= 0, unit >= 1).
    """
    out: list[bytes] = []
    append = out.append
    done = 0
    if unit == 1:
        runs = _byte_runs()
        while done < size:
            control = data[pos]
            if control < 128:
                append(runs[(control << 8) | data[pos + 1]])
                pos += 2
                done += control + 1
            elif control > 128:
                end = pos + 258 - control
                append(data[pos + 1 : end])
                done += 257 - control
                pos = end
            else:
                append(bytes([fill]) * (size - done))
                pos += 1
                done = size
    else:
        while done < size:
            control = data[pos]
            if control < 128:
                end = pos + 1 + unit
                append(data[pos + 1 : end] * (control + 1))
                done += unit * (control + 1)
            elif control > 128:
                end = pos + 1 + unit * (257 - control)
                append(data[pos + 1 : end])
                done += unit * (257 - control)
            else:
                append(bytes([fill]) * (size - done))
                end = pos + 1
                done = size
            pos = end
    line = b"".join(out)
    if len(line) != size:
        if done == size:  # a literal ran past the end of the data
            raise IndexError("line data ends early")
        raise LineOverflow(f"packets make {done} bytes in a line of {size}")
    return line, pos


decode_line = accel.choose("decode_line", decode_line_py)


def max_encoded_line(size: int, unit: int) -> int:
    """An upper bound of one encoded line, repeat byte included, plus one overflowing packet."""
    return 1 + size + size // unit + 1 + 128 * unit


_BYTE_RUNS = re.compile(rb"(.)\1+", re.DOTALL)
_UNIT_RUNS: dict[int, re.Pattern[bytes]] = {}


def _runs(line: bytes, unit: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of two or more equal units, aligned to unit boundaries."""
    if unit == 1:
        for byte_run in _BYTE_RUNS.finditer(line):
            yield byte_run.span()
        return
    pattern = _UNIT_RUNS.setdefault(unit, re.compile(rb"(.{%d})\1+" % unit, re.DOTALL))
    pos = 0
    while (match := pattern.search(line, pos)) is not None:
        start, end = match.span()
        aligned = -(-start // unit) * unit
        aligned_end = aligned + (end - aligned) // unit * unit
        if aligned_end - aligned >= 2 * unit:
            yield aligned, aligned_end
            pos = aligned_end
        else:
            pos = start + 1


def _literal_packets(out: bytearray, chunk: bytes, unit: int) -> None:
    step = 128 * unit
    for offset in range(0, len(chunk), step):
        piece = chunk[offset : offset + step]
        count = len(piece) // unit
        out.append(0 if count == 1 else 257 - count)
        out += piece


def encode_packets(line: bytes, unit: int) -> bytes:
    """One line as packets (no repeat byte). Never emits 0x80, which PWG does not define."""
    out = bytearray()
    pos = 0
    for start, end in _runs(line, unit):
        if start > pos:
            _literal_packets(out, line[pos:start], unit)
        pixel = line[start : start + unit]
        count = (end - start) // unit
        while count > 0:
            take = min(count, 128)
            out.append(take - 1)
            out += pixel
            count -= take
        pos = end
    if pos < len(line):
        _literal_packets(out, line[pos:], unit)
    return bytes(out)


def encode_rows(rows: Iterable[Row], unit: int) -> bytes:
    """Lines with their repeat bytes: consecutive equal lines share one record of up to 256."""
    out = bytearray()
    previous: bytes | None = None
    pending = 0
    for line, count in rows:
        if line is not previous and line != previous:
            if previous is not None:
                _flush_rows(out, previous, pending, unit)
            previous, pending = line, 0
        pending += count
    if previous is not None:
        _flush_rows(out, previous, pending, unit)
    return bytes(out)


def _flush_rows(out: bytearray, line: bytes, count: int, unit: int) -> None:
    packets = encode_packets(line, unit)
    while count > 0:
        take = min(count, 256)
        out.append(take - 1)
        out += packets
        count -= take
