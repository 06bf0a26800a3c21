"""Dashboard session tokens: proof, for the page's script, that it logged in as a user.

`/api/login` answers a logged-in browser (HTTP Basic, gateway.authn) with a token: the
user, whether an administrator, an expiry, and an HMAC over them with a key made at start
(so tokens end with the process). The page sends it:
- on its WebSocket, to see jobs as that user (gateway.dashboard.live);
- in the `X-CSRF-Token` header of every action, beside its Basic credentials: another
  site's page can make the browser send the credentials, but it cannot read the token, so
  an action without the token, or with one of another user, is refused (403).

Pure apart from the clock and the random key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable

from gateway.privacy import Viewer

TOKEN_SECONDS = 12 * 3600
MAX_TOKEN = 2048


class Sessions:
    def __init__(self, *, key: bytes | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self._key = key or os.urandom(32)
        self._clock = clock

    def issue(self, viewer: Viewer) -> str:
        body = json.dumps({"u": viewer.user, "a": viewer.is_admin,
                           "g": sorted(viewer.groups),
                           "e": int(self._clock() + TOKEN_SECONDS)},
                          separators=(",", ":")).encode()
        return _b64(body) + "." + _b64(self._sign(body))

    def viewer(self, token: str) -> Viewer | None:
        """The logged-in viewer a token stands for; None for a forged, garbled or expired
        one."""
        if len(token) > MAX_TOKEN or token.count(".") != 1:
            return None
        encoded, signature = token.split(".")
        try:
            body, mac = _unb64(encoded), _unb64(signature)
        except (binascii.Error, ValueError):
            return None
        if not hmac.compare_digest(mac, self._sign(body)):
            return None
        try:
            fields = json.loads(body)
            user, admin, groups, expires = fields["u"], fields["a"], fields["g"], fields["e"]
        except (ValueError, KeyError, TypeError):
            return None
        if not (isinstance(user, str) and isinstance(admin, bool) and isinstance(expires, int)
                and isinstance(groups, list) and all(isinstance(g, str) for g in groups)):
            return None
        if expires < self._clock():
            return None
        return Viewer(user, is_admin=admin, authenticated=True, groups=frozenset(groups))

    def matches(self, token: str | None, viewer: Viewer) -> bool:
        """Whether `token` was issued to the logged-in `viewer` (the CSRF check)."""
        if token is None or not viewer.authenticated:
            return False
        holder = self.viewer(token)
        return holder is not None and holder.user == viewer.user

    def _sign(self, body: bytes) -> bytes:
        return hmac.new(self._key, body, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
