"""URI authorities and URLs built from a host and a port, in one place.

An IPv6 literal needs brackets in a URI ("[::1]:631") and a host name or IPv4 address must
not have them; every URI, log line and Location the gateway writes goes through here.
"""

from __future__ import annotations


def bracketed(host: str) -> str:
    """`host` as it stands in a URI: IPv6 literals (they hold a colon) in brackets."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


def authority(host: str, port: int | None = None) -> str:
    """"host:port", "[v6]:port", or the bare (bracketed) host when `port` is None."""
    shown = bracketed(host)
    return shown if port is None else f"{shown}:{port}"


def url(scheme: str, host: str, port: int | None, path: str = "") -> str:
    """"scheme://authority/path"; `path` starts with "/" or is empty."""
    return f"{scheme}://{authority(host, port)}{path}"
