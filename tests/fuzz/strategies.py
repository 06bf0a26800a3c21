"""What Hypothesis feeds each fuzz target: mutated valid inputs, and a chunk size."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import strategies as st

from ippwire.writer import encode_message
from tests.fuzz import seeds
from tests.fuzz.mutate import Fields, mutated
from tests.support.ipp_strategies import MESSAGES


def _fixed(offsets: Sequence[int], width: int = 4) -> Fields:
    def fields(seed: bytes) -> Sequence[tuple[int, int]]:
        return [(offset, width) for offset in offsets]
    return fields


def _ipp() -> st.SearchStrategy[bytes]:
    generated = MESSAGES.map(encode_message).flatmap(
        lambda message: mutated([message, *seeds.ipp_seeds()], seeds.ipp_length_fields))
    return st.one_of(mutated(seeds.ipp_seeds(), seeds.ipp_length_fields), generated)


INPUTS: dict[str, st.SearchStrategy[bytes]] = {
    "ipp": _ipp(),
    "http": mutated(seeds.http_seeds()),
    "pwg": mutated(seeds.pwg_seeds(), _fixed(seeds.PWG_HEADER_FIELDS)),
    "urf": mutated(seeds.urf_seeds(), _fixed(seeds.URF_HEADER_FIELDS)),
    "lpd": mutated(seeds.LPD_SEEDS),
    "pjl": mutated(seeds.PJL_SEEDS),
    "http-response": mutated(seeds.http_response_seeds()),
    "http-auth": mutated(seeds.AUTH_SEEDS),
}

CHUNKS = st.integers(0, 70)  # 0: the input in one piece
