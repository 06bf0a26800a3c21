"""DNS-SD: the printers advertised for IPP Everywhere, AirPrint and Mopria clients.

`Advertiser` (gateway.dnssd.advertiser) is loaded on first use, so that importing the pure
`gateway.dnssd.txt` (which runs this file first) never reaches trio; `_LAZY_EXPORTS` says
where each name lives, as in `drivers/__init__.py`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.dnssd.advertiser import Advertiser

_LAZY_EXPORTS: dict[str, str] = {
    "Advertiser": "gateway.dnssd.advertiser",
}

__all__ = ["Advertiser"]


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups do not come here
    return value
