"""Rate limits for log lines a client can cause: a hostile or broken client must not fill the
disk with one line per bad request.

`LogRateLimiter` keeps a token bucket per key (a client address, say): `burst` lines pass at
once, then one per `interval` seconds. When a line passes after others were held back, the
caller is told how many, so the log says "(N similar lines suppressed)" instead of nothing.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    tokens: float
    updated: float
    suppressed: int = 0


class LogRateLimiter:
    """Token buckets by key, at most `max_keys` of them (the least recently used go first)."""

    def __init__(self, burst: int = 10, interval: float = 6.0, max_keys: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if burst < 1 or interval <= 0:
            raise ValueError("burst must be at least 1 and interval above 0")
        self.burst = burst
        self.interval = interval
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def allow(self, key: str) -> tuple[bool, int]:
        """(whether to log this line, how many lines of `key` were suppressed before it)."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
            bucket.tokens = min(float(self.burst),
                                bucket.tokens + (now - bucket.updated) / self.interval)
            bucket.updated = now
        if bucket.tokens < 1.0:
            bucket.suppressed += 1
            return False, 0
        bucket.tokens -= 1.0
        suppressed, bucket.suppressed = bucket.suppressed, 0
        return True, suppressed

    def log(self, logger: logging.Logger, level: int, key: str, message: str,
            *args: object, exc_info: bool = False) -> None:
        """`logger.log(level, message, *args)` unless `key` is over its rate (with the
        traceback being handled when `exc_info`)."""
        if not logger.isEnabledFor(level):
            return
        allowed, suppressed = self.allow(key)
        if not allowed:
            return
        if suppressed:
            message += " (%d similar lines from %s suppressed)"
            args = (*args, suppressed, key)
        logger.log(level, message, *args, exc_info=exc_info)


def client_key(client: str) -> str:
    """The address part of "ip:port" / "[v6]:port": one bucket per host, not per connection."""
    if client.startswith("["):
        return client[1:].partition("]")[0]
    host, sep, _ = client.rpartition(":")
    return host if sep else client


# One limiter for every line a remote client can trigger (bad HTTP, refused IPP requests).
CLIENT_LOG_LIMITER = LogRateLimiter()
# Refused connections (access rules, connection caps): a flood of them is one event, so one
# line per key at first, then one every 10 s counting the rest.
REFUSAL_LOG_LIMITER = LogRateLimiter(burst=1, interval=10.0)
