"""TIFF PackBits, which is both PCL compression mode 2 and PostScript's RunLengthDecode.

Control byte n: 0-127 copy the next n+1 bytes, 129-255 repeat the next byte 257-n times,
128 is a no-op in PCL and end-of-data in PostScript. Runs are found by a regular expression,
so the Python work is per run, not per byte; the C codec does the same in one pass.
"""

from __future__ import annotations

import re

from drivers.model import accel

_REPEATS = re.compile(rb"((.)\2{2,})", re.DOTALL)  # 3+ equal bytes: shorter goes as literal
# 1-bit rows repeat only white and black bytes; a simpler pattern splits twice as fast.
_BILEVEL_REPEATS = re.compile(rb"(\x00\x00\x00+|\xff\xff\xff+)")
_LITERAL_HEADS = [b""] + [bytes([n - 1]) for n in range(1, 129)]
_RUN_HEADS = [b"", b"\x00"] + [bytes([257 - n]) for n in range(2, 129)]


def _long_literal(out: list[bytes], data: bytes) -> None:
    for start in range(0, len(data), 128):
        piece = data[start : start + 128]
        out.append(_LITERAL_HEADS[len(piece)])
        out.append(piece)


def _long_run(out: list[bytes], value: bytes, length: int) -> None:
    while length > 128:
        out.append(b"\x81")
        out.append(value)
        length -= 128
    out.append(_RUN_HEADS[length])
    out.append(value)


def _encode(parts: list[bytes], step: int) -> bytes:
    """Encode re.split() output: literal stretch, run (and, with step 3, the run's byte)."""
    out: list[bytes] = []
    append = out.append
    literal_heads, run_heads = _LITERAL_HEADS, _RUN_HEADS
    last = len(parts) - 1
    for i in range(0, last, step):
        literal, run = parts[i], parts[i + 1]
        if literal:
            if len(literal) <= 128:
                append(literal_heads[len(literal)])
                append(literal)
            else:
                _long_literal(out, literal)
        if len(run) <= 128:
            append(run_heads[len(run)])
            append(run[:1])
        else:
            _long_run(out, run[:1], len(run))
    if parts[last]:
        _long_literal(out, parts[last])
    return b"".join(out)


def packbits_py(data: bytes) -> bytes:
    return _encode(_REPEATS.split(data), 3)


def packbits_bilevel_py(data: bytes) -> bytes:
    """The same format, faster for 1-bit rows: only runs of 0x00 and 0xFF become repeats, so
    the bytes differ from packbits() where other bytes repeat."""
    return _encode(_BILEVEL_REPEATS.split(data), 2)


# The C versions (drivers.model.accel) when built; the functions above are their reference.
packbits = accel.choose("packbits", packbits_py)
packbits_bilevel = accel.choose("packbits_bilevel", packbits_bilevel_py)


def unpackbits(data: bytes, limit: int | None = None) -> bytes:
    """Decode PackBits (tests and the PCL test decoder); stops at `limit` output bytes."""
    out = bytearray()
    pos = 0
    while pos < len(data) and (limit is None or len(out) < limit):
        control = data[pos]
        if control < 128:
            out += data[pos + 1 : pos + 2 + control]
            pos += control + 2
        elif control > 128:
            out += data[pos + 1 : pos + 2] * (257 - control)
            pos += 2
        else:
            pos += 1
    return bytes(out)
