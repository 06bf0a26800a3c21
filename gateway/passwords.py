"""The gateway's own users: `<spool>/passwd`, one line per user, scrypt hashes (stdlib).

    alice:$scrypt$ln=14,r=8,p=1$<salt>$<key>:admin,staff

The second field carries its scrypt parameters, so they can be raised later without breaking
the lines already written; salt and key are unpadded base64. The third field is a comma
separated list: the word `admin` marks an administrator, every other word is a group name.
Blank lines and lines starting with `#` are ignored (and kept when the file is rewritten).

The running gateway only reads the file: `PasswordFile.accounts()` re-reads it whenever its
inode, size or mtime changed, so `ipp-gateway passwd` takes effect without a restart. A
malformed line is skipped with one warning per change of the file, never an exception in the
server; the writer (`set`, `delete`) refuses to rewrite a file it cannot fully understand.

Writes are atomic (a temporary file in the same directory, fsynced, renamed over the old one,
then the directory fsynced) and always mode 0600. Run as root, a rewrite keeps the file's
owner, and a new file takes the owner of its directory (the spool, which start-up hands to
the gateway's account), so the unprivileged gateway can still read it.

Passwords and user names are compared in Unicode NFC (RFC 8265), so a password typed on a
system that sends decomposed characters still matches.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import stat
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("gateway")

PASSWD_FILE = "passwd"
ADMIN_FLAG = "admin"
SCHEME = "scrypt"
# scrypt cost: 2**14 * 8 * 128 bytes = 16 MiB and some 50 ms per check on a small machine.
DEFAULT_LOG_N = 14
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Bounds on what a line may ask for, so that a hand-edited file cannot make one check take
# gigabytes or minutes (the caps are far above anything worth configuring).
MAX_LOG_N = 20
MAX_R = 32
MAX_P = 16
KEY_LENGTHS = range(16, 65)
MAX_NAME_CHARS = 256
FILE_MODE = 0o600
_LOCK_TRIES = 50  # re-opens while another writer keeps replacing the file under us


class PasswordFileError(Exception):
    """The file, or one line of it, cannot be used; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    admin: bool = False
    groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class _Params:
    log_n: int
    r: int
    p: int

    def text(self) -> str:
        return f"ln={self.log_n},r={self.r},p={self.p}"


DEFAULT_PARAMS = _Params(DEFAULT_LOG_N, DEFAULT_R, DEFAULT_P)


@dataclass(frozen=True, slots=True)
class _Entry:
    account: Account
    stored: str  # the hash field, as written


# --- hashing -------------------------------------------------------------------------------


def _secret(password: str) -> bytes:
    # surrogatepass: any str encodes, so an odd client string is a wrong password, not a crash.
    return unicodedata.normalize("NFC", password).encode("utf-8", "surrogatepass")


def _derive(password: str, salt: bytes, params: _Params, length: int) -> bytes:
    n = 1 << params.log_n
    # hashlib's default maxmem (32 MiB) would refuse raised parameters; give what they need.
    needed = 128 * params.r * (n + params.p + 2) + (1 << 20)
    return hashlib.scrypt(_secret(password), salt=salt, n=n, r=params.r, p=params.p,
                          dklen=length, maxmem=needed)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def hash_password(password: str) -> str:
    """The stored form of `password` with a fresh salt and the default parameters."""
    if not password:
        raise ValueError("the password is empty")
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(password, salt, DEFAULT_PARAMS, KEY_BYTES)
    return f"${SCHEME}${DEFAULT_PARAMS.text()}${_b64(salt)}${_b64(key)}"


def _parse_hash(stored: str) -> tuple[_Params, bytes, bytes]:
    """(parameters, salt, key) of a stored hash; ValueError says what is wrong."""
    parts = stored.split("$")
    if len(parts) != 5 or parts[0] != "" or parts[1] != SCHEME:
        raise ValueError(f"the hash is not ${SCHEME}$<params>$<salt>$<key>")
    values: dict[str, int] = {}
    for item in parts[2].split(","):
        label, sep, number = item.partition("=")
        digits = number.isascii() and number.isdigit()
        if not sep or label not in ("ln", "r", "p") or label in values or not digits:
            raise ValueError(f"bad scrypt parameter {item!r} (want ln=N,r=N,p=N)")
        values[label] = int(number)
    if set(values) != {"ln", "r", "p"}:
        raise ValueError("the scrypt parameters need ln, r and p")
    params = _Params(values["ln"], values["r"], values["p"])
    if not (1 <= params.log_n <= MAX_LOG_N and 1 <= params.r <= MAX_R
            and 1 <= params.p <= MAX_P):
        raise ValueError(f"scrypt parameters {params.text()} are out of range (ln 1-{MAX_LOG_N},"
                         f" r 1-{MAX_R}, p 1-{MAX_P})")
    try:
        salt, key = _unb64(parts[3]), _unb64(parts[4])
    except ValueError:
        raise ValueError("salt or key is not base64") from None
    if not salt or len(key) not in KEY_LENGTHS:
        raise ValueError(f"the salt is empty or the key is not {KEY_LENGTHS.start}-"
                         f"{KEY_LENGTHS.stop - 1} bytes")
    return params, salt, key


def check_password(stored: str, password: str) -> bool:
    """Whether `password` matches `stored` (BLOCKING: one scrypt). ValueError if `stored` is
    not a hash this module writes."""
    params, salt, key = _parse_hash(stored)
    return hmac.compare_digest(_derive(password, salt, params, len(key)), key)


# An unknown user costs the same scrypt as a known one: the answer's timing must not say
# which names exist. The dummy key is random, so nothing ever matches it.
_DUMMY_SALT = secrets.token_bytes(SALT_BYTES)
_DUMMY_KEY = secrets.token_bytes(KEY_BYTES)


def _spend_like_a_check(password: str) -> None:
    hmac.compare_digest(_derive(password, _DUMMY_SALT, DEFAULT_PARAMS, KEY_BYTES), _DUMMY_KEY)


# --- lines -----------------------------------------------------------------------------------


def _name_problem(name: str) -> str | None:
    if not name:
        return "the user name is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"the user name is longer than {MAX_NAME_CHARS} characters"
    if ":" in name:
        return f"the user name {name!r} contains ':'"
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in name):
        return f"the user name {name!r} contains a control character"
    if name != name.strip():
        return f"the user name {name!r} starts or ends with white space"
    if name.startswith("#"):
        return f"the user name {name!r} starts with '#', which marks a comment"
    return None


def check_user_name(name: str) -> str:
    """`name` in the form it is stored and looked up in; ValueError says what is wrong."""
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    return unicodedata.normalize("NFC", name)


def _word_problem(word: str) -> str | None:
    if not word or any(c in ":, " or not c.isprintable() for c in word):
        return f"bad group or flag {word!r}"
    return None


def _parse_line(line: str) -> _Entry:
    """One user line; ValueError says what is wrong with it."""
    fields = line.split(":")
    if len(fields) != 3:
        raise ValueError(f"want user:hash:flags, found {len(fields)} field(s)")
    name, stored, flag_text = fields
    problem = _name_problem(name)
    if problem is not None:
        raise ValueError(problem)
    _parse_hash(stored)
    words = [word.strip() for word in flag_text.split(",")] if flag_text.strip() else []
    for word in words:
        if (problem := _word_problem(word)) is not None:
            raise ValueError(problem)
    groups = frozenset(word for word in words if word != ADMIN_FLAG)
    account = Account(unicodedata.normalize("NFC", name), ADMIN_FLAG in words, groups)
    return _Entry(account, stored)


def _format_line(entry: _Entry) -> str:
    words = ([ADMIN_FLAG] if entry.account.admin else []) + sorted(entry.account.groups)
    return f"{entry.account.name}:{entry.stored}:{','.join(words)}"


def _is_comment(line: str) -> bool:
    return not line.strip() or line.lstrip().startswith("#")


@dataclass(slots=True)
class _Parsed:
    lines: list[str]  # the file's lines, comments included, without line ends
    entries: dict[str, tuple[int, _Entry]]  # name -> (index in lines, entry)
    problems: list[PasswordFileError]
    changed: bool = True  # an edit that found nothing to do clears it: no rewrite


def _parse(path: Path, text: str) -> _Parsed:
    # Split on "\n" alone (not str.splitlines, which also splits on \f, \x1c, U+2028 ...):
    # the line numbers in messages must be the ones an editor shows.
    lines = [line.removesuffix("\r") for line in text.split("\n")]
    if lines[-1] == "":
        lines.pop()
    parsed = _Parsed(lines, {}, [])
    for index, line in enumerate(parsed.lines):
        if _is_comment(line):
            continue
        try:
            entry = _parse_line(line)
        except ValueError as exc:
            parsed.problems.append(PasswordFileError(f"{path} line {index + 1}: {exc}"))
            continue
        if entry.account.name in parsed.entries:
            earlier = parsed.entries[entry.account.name][0] + 1
            parsed.problems.append(PasswordFileError(
                f"{path} line {index + 1}: user {entry.account.name!r} is already on line "
                f"{earlier}"))
            continue
        parsed.entries[entry.account.name] = (index, entry)
    return parsed


def _decode(path: Path, data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise PasswordFileError(f"{path} line {line}: not UTF-8") from None


# --- the file --------------------------------------------------------------------------------


class PasswordFile:
    """`<spool>/passwd`: read (and cached) by the gateway, rewritten by `ipp-gateway passwd`.

    Safe to share between threads: `verify` runs in worker threads.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # None: no file (no users); else what identifies the version last read
        self._signature: tuple[int, int, int, int] | None = None
        self._entries: dict[str, _Entry] = {}
        self._accounts: dict[str, Account] = {}
        self._stat_errno: int | None = None  # the last failure to stat, logged once

    # reading ---------------------------------------------------------------------------

    def _current(self) -> dict[str, _Entry]:
        """The entries as the file is now, re-read only when it changed."""
        with self._lock:
            try:
                info = os.stat(self.path)
            except FileNotFoundError:
                if self._signature is not None or self._entries:
                    self._signature = None
                    self._set_entries({})
                return self._entries
            except OSError as exc:
                # Kept as it was: a passing failure must not log every user out.
                if exc.errno != self._stat_errno:
                    log.warning("password file %s: cannot read it (%s); keeping %d user(s) "
                                "known", self.path, exc.strerror, len(self._entries))
                self._stat_errno = exc.errno
                return self._entries
            self._stat_errno = None
            signature = (info.st_dev, info.st_ino, info.st_size, info.st_mtime_ns)
            if signature != self._signature:
                self._set_entries(self._load())
                self._signature = signature
            return self._entries

    def _set_entries(self, entries: dict[str, _Entry]) -> None:
        self._entries = entries
        self._accounts = {name: entry.account for name, entry in entries.items()}

    def _load(self) -> dict[str, _Entry]:
        try:
            text = _decode(self.path, self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            log.warning("password file %s: cannot read it (%s); no users until it is fixed",
                        self.path, exc.strerror)
            return {}
        except PasswordFileError as exc:
            log.warning("%s; no users until it is fixed", exc)
            return {}
        parsed = _parse(self.path, text)
        for problem in parsed.problems:
            log.warning("%s; line skipped", problem)
        return {name: entry for name, (_, entry) in parsed.entries.items()}

    def accounts(self) -> dict[str, Account]:
        """Every user in the file now (a missing file: none). The same dict until the file
        changes, a new one after each change seen, so a cache can key on its identity; it
        must not be changed."""
        self._current()
        return self._accounts

    def verify(self, user: str, password: str) -> Account | None:
        """The account if `password` is `user`'s, else None. BLOCKING (one scrypt, also for
        an unknown user, so the time taken does not tell which names exist)."""
        entry = self._current().get(unicodedata.normalize("NFC", user))
        if entry is None:
            _spend_like_a_check(password)
            return None
        try:
            matched = check_password(entry.stored, password)
        except ValueError:  # cannot happen for a parsed line; never crash a request on it
            _spend_like_a_check(password)
            return None
        return entry.account if matched else None

    # writing ---------------------------------------------------------------------------

    def set(self, user: str, password: str, *, admin: bool | None = None) -> bool:
        """Add `user` or change their password (and, unless `admin` is None, the flag).
        True if the user is new. ValueError for a bad name or an empty password;
        PasswordFileError if the file has a line it cannot keep safely."""
        name = check_user_name(user)
        stored = hash_password(password)
        with self._editing() as parsed:
            found = parsed.entries.get(name)
            if found is None:
                account = Account(name, bool(admin))
                parsed.lines.append(_format_line(_Entry(account, stored)))
                return True
            index, old = found
            account = Account(name, old.account.admin if admin is None else admin,
                              old.account.groups)
            parsed.lines[index] = _format_line(_Entry(account, stored))
            return False

    def delete(self, user: str) -> bool:
        """Remove `user`; False if there was no such user."""
        name = unicodedata.normalize("NFC", user)
        if not os.path.lexists(self.path):
            return False
        with self._editing() as parsed:
            found = parsed.entries.get(name)
            if found is None:
                parsed.changed = False
                return False
            del parsed.lines[found[0]]
            return True

    @contextlib.contextmanager
    def _editing(self) -> Iterator[_Parsed]:
        """The parsed file, locked against other writers; written back when the block ends
        without an exception, unless it cleared `changed`."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = self._open_locked()
        try:
            with os.fdopen(os.dup(fd), "rb") as current:
                text = _decode(self.path, current.read())
            parsed = _parse(self.path, text)
            if parsed.problems:
                raise PasswordFileError(f"{parsed.problems[0]}; fix or remove that line first")
            yield parsed
            if not parsed.changed:
                return
            body = "".join(line + "\n" for line in parsed.lines)
            _replace(self.path, body.encode("utf-8"), os.fstat(fd))
        finally:
            os.close(fd)  # drops the lock

    def _open_locked(self) -> int:
        """An fd of the file itself holding flock(LOCK_EX). The lock is on the inode, and a
        writer replaces the inode: so after locking, check that the name still points to
        ours, else try again on the new one."""
        for _ in range(_LOCK_TRIES):
            try:
                # O_NOFOLLOW: a symlink planted in the spool is never written through.
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                             FILE_MODE)
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    raise PasswordFileError(f"{self.path} is a symbolic link; remove it") from None
                raise PasswordFileError(f"cannot open {self.path}: {exc.strerror}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                now = os.stat(self.path, follow_symlinks=False)
            except FileNotFoundError:
                os.close(fd)
                continue
            except BaseException:
                os.close(fd)
                raise
            mine = os.fstat(fd)
            if (now.st_dev, now.st_ino) == (mine.st_dev, mine.st_ino):
                # An empty file is one we just made (or one with no users): either way it
                # may go to the directory's owner.
                if os.geteuid() == 0 and mine.st_size == 0 and mine.st_nlink == 1:
                    _own_like_directory(fd, self.path.parent)
                return fd
            os.close(fd)
        raise PasswordFileError(f"{self.path} keeps changing under us; try again")


def _own_like_directory(fd: int, directory: Path) -> None:
    """A file root just created goes to the owner of its directory (the gateway's account,
    for a spool start-up prepared), so that the unprivileged gateway can read it."""
    owner = os.stat(directory)
    mine = os.fstat(fd)
    if (mine.st_uid, mine.st_gid) != (owner.st_uid, owner.st_gid):
        os.fchown(fd, owner.st_uid, owner.st_gid)


def _replace(path: Path, data: bytes, old: os.stat_result) -> None:
    """Write `data` to `path` atomically, mode 0600, with the old file's owner."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), FILE_MODE)
            if os.geteuid() == 0:
                os.fchown(out.fileno(), old.st_uid, old.st_gid)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def hand_over(path: Path, uid: int, gid: int) -> None:
    """Give the password file to the gateway's account (start-up, as root, before the drop),
    as `startup.hand_over_audit_log` does for the audit log. Nothing is followed: a symlink
    or a hard link in the spool, which that account can write, is refused, not changed
    (it could point to /etc/shadow). OSError or PasswordFileError says why it failed."""
    try:
        info = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        raise PasswordFileError(f"{path} is not a plain file with one link; remove it and "
                                "add the users again")
    if (info.st_uid, info.st_gid) != (uid, gid):
        os.chown(path, uid, gid, follow_symlinks=False)
    if stat.S_IMODE(info.st_mode) != FILE_MODE:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fchmod(fd, FILE_MODE)
        finally:
            os.close(fd)
