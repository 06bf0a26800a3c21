"""HTTP authentication for a client, sans-I/O: challenges read, Authorization values written.

`parse_challenges` reads WWW-Authenticate values (RFC 7235: several challenges in one value,
auth-params with token or quoted-string values, token68); `preferred` picks the challenge to
answer; `Credentials.authorization` answers it with Basic (RFC 7617) or Digest (RFC 7616, and
the RFC 2069 form for servers that offer no qop, which old CUPS and embedded servers do).

Devices get HTTP wrong in small ways, so parsing is lenient: a malformed piece of a header is
skipped, never an exception, and an unquoted value may hold characters a token may not (a
base64 nonce sent bare). What cannot be answered correctly is refused instead: a Digest
challenge with no nonce, an algorithm we do not implement, a qop list without "auth".
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

_TOKEN = re.compile(r"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
# auth-param: name BWS "=" BWS; the value follows (quoted string or a bare run).
_PARAM_START = re.compile(r"([-!#$%&'*+.^_`|~0-9a-zA-Z]+)[ \t]*=[ \t]*")
_BARE_VALUE = re.compile(r'[^\s,"]+')
_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*(?=[ \t]*(?:,|$))")
_JUNK = re.compile(r'(?:[^,"]|"(?:[^"\\]|\\.)*"?)*')  # up to the next comma outside quotes
# What a quoted-string cannot carry, even escaped (RFC 9110 5.6.4): a server's realm, nonce or
# opaque holding one cannot be echoed back, and a CR or LF would break the request head.
_UNQUOTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

# The key under which a challenge's token68 (e.g. Negotiate's blob) is kept in `params`: no
# auth-param can be named with the empty string.
TOKEN68 = ""

_DIGEST_HASHES: dict[str, Callable[[bytes], str]] = {
    "md5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "sha-256": lambda data: hashlib.sha256(data).hexdigest(),
}
_NONCES_KEPT = 16  # nonce counts remembered: a server hands out one nonce at a time


@dataclass(frozen=True)
class Challenge:
    scheme: str  # lower-case: "basic", "digest", ...
    params: dict[str, str]  # names lower-cased, values unquoted; first of a repeated name kept


def parse_challenges(values: Sequence[str]) -> list[Challenge]:
    """Every challenge in the WWW-Authenticate (or Proxy-Authenticate) values, in order."""
    found: list[Challenge] = []
    for value in values:
        found.extend(_parse_value(value))
    return found


def _parse_value(text: str) -> list[Challenge]:
    challenges: list[Challenge] = []
    pos, end = 0, len(text)
    current: Challenge | None = None
    # Bounded: every pass consumes at least one character or leaves the loop.
    while pos < end:
        if text[pos] in " \t,":
            pos += 1
            continue
        param = _PARAM_START.match(text, pos)
        if param is not None:
            if current is None:  # a parameter with no challenge to belong to
                pos = _skip_junk(text, pos)
                continue
            value, pos = _param_value(text, param.end())
            if value is not None:
                current.params.setdefault(param.group(1).lower(), value)
            continue
        scheme = _TOKEN.match(text, pos)
        if scheme is None:
            pos = _skip_junk(text, pos)
            continue
        current = Challenge(scheme.group().lower(), {})
        challenges.append(current)
        pos = _skip_ows(text, scheme.end())
        token68 = _TOKEN68.match(text, pos)
        if token68 is not None:
            current.params[TOKEN68] = token68.group()
            pos = token68.end()
    return challenges


def _skip_ows(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t":
        pos += 1
    return pos


def _param_value(text: str, pos: int) -> tuple[str | None, int]:
    """The value at `pos` and where parsing goes on; None for a value that is not one."""
    if text.startswith('"', pos):
        chars: list[str] = []
        i = pos + 1
        while i < len(text):
            c = text[i]
            if c == '"':
                return "".join(chars), i + 1
            if c == "\\" and i + 1 < len(text):
                i += 1
                c = text[i]
            chars.append(c)
            i += 1
        return None, len(text)  # an unterminated string swallows the rest: drop it
    bare = _BARE_VALUE.match(text, pos)
    if bare is None:
        return None, _skip_junk(text, pos)
    return bare.group(), bare.end()


def _skip_junk(text: str, pos: int) -> int:
    junk = _JUNK.match(text, pos)
    return max(junk.end() if junk else pos, pos + 1)


def _digest_usable(challenge: Challenge) -> bool:
    params = challenge.params
    if not params.get("nonce"):
        return False
    if any(_UNQUOTABLE.search(params.get(name, "")) for name in ("realm", "nonce", "opaque")):
        return False
    if _digest_algorithm(challenge)[0] not in _DIGEST_HASHES:
        return False
    qop = params.get("qop")
    return qop is None or "auth" in _qop_tokens(qop)


def _rank(challenge: Challenge) -> int:
    """Bigger is better; 0 means we cannot answer it."""
    if challenge.scheme == "digest" and _digest_usable(challenge):
        return 3 if _digest_algorithm(challenge)[0] == "sha-256" else 2
    if challenge.scheme == "basic":
        return 1
    return 0


def preferred(challenges: Sequence[Challenge]) -> Challenge | None:
    """The challenge to answer: Digest SHA-256 (or -sess), then Digest MD5 (or -sess), then
    Basic; the first listed among equals. None when none of them can be answered."""
    best: Challenge | None = None
    best_rank = 0
    for challenge in challenges:
        rank = _rank(challenge)
        if rank > best_rank:
            best, best_rank = challenge, rank
    return best


def _digest_algorithm(challenge: Challenge) -> tuple[str, bool]:
    """(hash name, session variant) of a Digest challenge; MD5 when it names none."""
    name = challenge.params.get("algorithm", "MD5").strip().lower()
    session = name.endswith("-sess")
    return name.removesuffix("-sess"), session


def _qop_tokens(qop: str) -> list[str]:
    return [token.strip().lower() for token in qop.split(",") if token.strip()]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Credentials:
    """A user name and password for one device, answering its challenges.

    Digest nonce counts are kept per nonce, so one Credentials should serve one device."""

    def __init__(self, user: str, password: str, *,
                 cnonce: Callable[[], str] = lambda: secrets.token_hex(16)) -> None:
        self.user = user
        self._password = password
        self._cnonce = cnonce
        self._counts: OrderedDict[str, int] = OrderedDict()

    def __repr__(self) -> str:
        return f"Credentials(user={self.user!r}, password=<hidden>)"

    def authorization(self, challenge: Challenge, method: str, target: str) -> str:
        """The Authorization value answering `challenge` for a request `method target`
        (`target` exactly as on the request line). ValueError when it cannot be answered."""
        if challenge.scheme == "basic":
            if ":" in self.user:
                raise ValueError("a Basic user name cannot contain ':' (RFC 7617)")
            pair = f"{self.user}:{self._password}".encode()
            return "Basic " + base64.b64encode(pair).decode("ascii")
        if challenge.scheme == "digest":
            return self._digest(challenge, method, target)
        raise ValueError(f"cannot answer a {challenge.scheme!r} challenge")

    def _digest(self, challenge: Challenge, method: str, target: str) -> str:
        params = challenge.params
        if not _digest_usable(challenge):
            raise ValueError("a Digest challenge without a nonce, with an algorithm we do not "
                             "implement, with no qop we support, or with a control character "
                             "in its realm, nonce or opaque")
        name, session = _digest_algorithm(challenge)
        digest = _DIGEST_HASHES[name]
        realm, nonce = params.get("realm", ""), params["nonce"]
        ha1 = digest(f"{self.user}:{realm}:{self._password}".encode())
        qop = "auth" if "qop" in params else None
        cnonce = self._cnonce() if (qop or session) else None
        if session:
            ha1 = digest(f"{ha1}:{nonce}:{cnonce}".encode())
        ha2 = digest(f"{method}:{target}".encode())
        fields = [f"username={_quote(self.user)}", f"realm={_quote(realm)}",
                  f"nonce={_quote(nonce)}", f"uri={_quote(target)}"]
        if "algorithm" in params:
            fields.append(f"algorithm={params['algorithm'].strip()}")
        if qop is not None:
            nc = f"{self._next_count(nonce):08x}"
            response = digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())
            fields += [f"qop={qop}", f"nc={nc}", f"cnonce={_quote(str(cnonce))}"]
        else:
            # RFC 2069: no qop, no nonce count (a -sess algorithm still sends its cnonce).
            response = digest(f"{ha1}:{nonce}:{ha2}".encode())
            if cnonce is not None:
                fields.append(f"cnonce={_quote(cnonce)}")
        fields.append(f"response={_quote(response)}")
        if "opaque" in params:
            fields.append(f"opaque={_quote(params['opaque'])}")
        return "Digest " + ", ".join(fields)

    def _next_count(self, nonce: str) -> int:
        count = self._counts.pop(nonce, 0) + 1
        self._counts[nonce] = count
        while len(self._counts) > _NONCES_KEPT:
            self._counts.popitem(last=False)
        return count
