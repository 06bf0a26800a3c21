"""Chooses between the C raster codec and the pure-Python reference implementations.

`drivers.filters._rastercodec` is built by setup.py when a compiler is there (optional; it is
built next to the filters, its first users, and loaded here by name only). When
it is missing, fails to import, or `IPP_GATEWAY_PURE_PYTHON=1` is set, every caller gets the
Python functions, which stay the specification the C code is tested against.

This module imports nothing of ours, so the modules holding the references can import it:

    decode_line = accel.choose("decode_line", decode_line_py)
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any, TypeVar

PURE_PYTHON_ENV = "IPP_GATEWAY_PURE_PYTHON"
EXTENSION_NAME = "drivers.filters._rastercodec"


class LineOverflow(Exception):
    """Packets describe more (or fewer) pixels than the line holds."""


def load_extension() -> ModuleType | None:
    """The C codec, ready to use, whatever the environment says; None if it is not built."""
    try:
        codec = importlib.import_module(EXTENSION_NAME)
    except ImportError:
        return None
    codec.set_line_overflow(LineOverflow)
    return codec


def _pure_python_forced() -> bool:
    return os.environ.get(PURE_PYTHON_ENV, "").strip() not in ("", "0")


_extension = None if _pure_python_forced() else load_extension()

ACCELERATED: bool = _extension is not None
"""True when the callers use the C codec."""

Function = TypeVar("Function", bound=Callable[..., Any])


def choose(name: str, reference: Function) -> Function:
    """The C function `name` when the codec is active, otherwise `reference`."""
    if _extension is None:
        return reference
    native: Function = getattr(_extension, name)
    return native


def native(name: str) -> Callable[..., Any] | None:
    """A C function with no Python twin (a caller keeps its own loop as the reference)."""
    if _extension is None:
        return None
    function: Callable[..., Any] = getattr(_extension, name)
    return function
