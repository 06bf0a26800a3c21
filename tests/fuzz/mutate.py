"""Hypothesis strategies for the fuzz targets: valid inputs, then a few mutations of the kinds
that break parsers (bit flips, truncations, length fields at extremes, repeated pieces,
splices of two inputs), chunked at random boundaries. Coverage guidance is libFuzzer's job
(scripts/fuzz.py --engine atheris); these strategies make plain random search go deep."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from hypothesis import strategies as st

MAX_INPUT = 64 * 1024  # every target reads at most this much: no hang, bounded work

EXTREMES = (0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
            0x7FFFFFFF, 0x80000000, 0xFFFFFFFF)


@st.composite
def _mutation(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes],
              fields: Sequence[tuple[int, int]], kind: str = "") -> bytearray:
    """One mutation of `data` (never longer than MAX_INPUT)."""
    size = len(data)
    kind = kind or draw(st.sampled_from(
        ["flip", "byte", "truncate", "delete", "insert", "repeat", "field", "splice"]))
    at = draw(st.integers(0, max(0, size - 1)))
    if kind == "flip" and size:
        data[at] ^= 1 << draw(st.integers(0, 7))
    elif kind == "byte" and size:
        data[at] = draw(st.sampled_from([0x00, 0x01, 0x03, 0x0A, 0x0D, 0x20, 0x34, 0x37, 0x4A,
                                         0x7F, 0x80, 0xFF]))
    elif kind == "truncate":
        del data[at:]
    elif kind == "delete":
        del data[at : at + draw(st.integers(1, 16))]
    elif kind == "insert":
        data[at:at] = draw(st.binary(min_size=1, max_size=16))
    elif kind == "repeat" and size:
        piece = bytes(data[at : at + draw(st.integers(1, 64))])
        data[at:at] = piece * draw(st.integers(1, 200))
    elif kind == "field" and fields and max(o + w for o, w in fields) <= size:
        offset, width = draw(st.sampled_from(list(fields)))
        value = draw(st.sampled_from(EXTREMES)) % (1 << (8 * width))
        data[offset : offset + width] = value.to_bytes(width, "big")
    elif kind == "splice":
        other = draw(st.sampled_from(list(seeds)))
        cut = draw(st.integers(0, len(other)))
        data[at:] = other[cut:]
    del data[MAX_INPUT:]
    return data


Fields = Callable[[bytes], Sequence[tuple[int, int]]]


def no_fields(seed: bytes) -> Sequence[tuple[int, int]]:
    return ()


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], fields: Fields = no_fields,
            max_mutations: int = 4) -> bytes:
    """A seed, unchanged or after up to `max_mutations` mutations; sometimes plain noise.
    `fields(seed)` are the (offset, width) of the seed's length fields; the first mutation
    is more often one of them, while they still point where they did."""
    if draw(st.integers(0, 15)) == 0:
        return draw(st.binary(max_size=256))
    seed = draw(st.sampled_from(list(seeds)))
    data = bytearray(seed)
    if draw(st.booleans()):
        data = draw(_mutation(data, seeds, fields(seed), "field"))
    for _ in range(draw(st.integers(0, max_mutations))):
        data = draw(_mutation(data, seeds, ()))
    return bytes(data)


