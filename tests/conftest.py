"""Ordering for a parallel run: the tests marked `slow` start first.

`make test` spreads the tests over worker processes (pytest-xdist, one test handed out at a
time). Started last, a 60 s self-certification run would keep one worker busy after the others
ran dry; started first, the slow tests run side by side with the many short ones.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: order kept
