"""gateway.passwords: the scrypt hashes, the file's lines, and its atomic 0600 rewrites, on
real files in a temporary directory with the real hashlib.scrypt."""

from __future__ import annotations

import base64
import hashlib
import logging
import os
import re
import stat
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from gateway import passwords
from gateway.passwords import (
    Account,
    PasswordFile,
    PasswordFileError,
    check_password,
    hash_password,
)

HASH_SHAPE = re.compile(r"^\$scrypt\$ln=14,r=8,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def hashed_with(password: str, log_n: int, r: int, p: int, length: int = 32) -> str:
    """A hash made here, straight from hashlib, with chosen parameters."""
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode(), salt=salt, n=1 << log_n, r=r, p=p, dklen=length)
    return f"$scrypt$ln={log_n},r={r},p={p}${b64(salt)}${b64(key)}"


@pytest.fixture
def users(tmp_path: Path) -> PasswordFile:
    return PasswordFile(tmp_path / "passwd")


class ScryptCalls:
    """hashlib.scrypt, counted: the real one still runs."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[dict[str, Any]] = []
        real: Callable[..., bytes] = hashlib.scrypt

        def counted(password: bytes, **kwargs: Any) -> bytes:
            self.calls.append(kwargs)
            return real(password, **kwargs)

        monkeypatch.setattr(passwords.hashlib, "scrypt", counted)


# --- hashes ---------------------------------------------------------------------------


def test_a_hash_has_its_parameters_a_fresh_salt_and_matches_only_its_password() -> None:
    first, second = hash_password("correct horse"), hash_password("correct horse")
    assert HASH_SHAPE.match(first), first
    assert first != second  # a new salt each time
    assert check_password(first, "correct horse")
    assert check_password(second, "correct horse")
    assert not check_password(first, "correct horsE")
    assert not check_password(first, "correct horse ")


def test_a_hash_made_with_other_parameters_still_checks() -> None:
    stored = hashed_with("tuned", log_n=10, r=4, p=2, length=48)
    assert check_password(stored, "tuned")
    assert not check_password(stored, "tune")


def test_raised_parameters_above_hashlibs_default_memory_cap_work() -> None:
    # 2**15 * 8 * 128 = 32 MiB: hashlib's default maxmem refuses it, ours must not.
    salt = os.urandom(16)
    key = hashlib.scrypt(b"big", salt=salt, n=1 << 15, r=8, p=1, dklen=32, maxmem=64 << 20)
    stored = f"$scrypt$ln=15,r=8,p=1${b64(salt)}${b64(key)}"
    assert check_password(stored, "big")


def test_passwords_compare_in_nfc() -> None:
    stored = hash_password("caf\u00e9")
    assert check_password(stored, unicodedata.normalize("NFD", "caf\u00e9"))


def test_any_string_is_a_password_even_an_unencodable_one() -> None:
    stored = hash_password("colon:dollar$newline\n\x00tab\t")
    assert check_password(stored, "colon:dollar$newline\n\x00tab\t")
    assert not check_password(stored, "\udcff lone surrogate")


def test_an_empty_password_is_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        hash_password("")


@pytest.mark.parametrize("stored", [
    "", "plain", "$2b$12$bcrypt", "$scrypt$ln=14,r=8$c2FsdA$a2V5",
    "$scrypt$ln=14,r=8,p=1,x=2$c2FsdGNzYWx0c2FsdA$" + "A" * 43,
    "$scrypt$ln=99,r=8,p=1$c2FsdGNzYWx0c2FsdA$" + "A" * 43,
    "$scrypt$ln=\u00b2,r=8,p=1$c2FsdGNzYWx0c2FsdA$" + "A" * 43,
    "$scrypt$ln=14,r=8,p=1$not base64!$" + "A" * 43,
    "$scrypt$ln=14,r=8,p=1$c2FsdGNzYWx0c2FsdA$QUJD",  # a 3-byte key
])
def test_a_malformed_hash_is_a_value_error(stored: str) -> None:
    with pytest.raises(ValueError):
        check_password(stored, "x")


# --- reading ----------------------------------------------------------------------------


def test_a_missing_file_has_no_users(users: PasswordFile) -> None:
    assert users.accounts() == {}
    assert users.verify("alice", "x") is None
    assert not users.path.exists()


def test_lines_give_accounts_with_admin_and_groups(users: PasswordFile) -> None:
    users.path.write_text(
        "# the gateway's users\n"
        "\n"
        f"alice:{hashed_with('a', 10, 8, 1)}:admin,staff\n"
        f"bob:{hashed_with('b', 10, 8, 1)}:\n"
        f"carol:{hashed_with('c', 10, 8, 1)}: staff , lab \n")
    assert users.accounts() == {
        "alice": Account("alice", admin=True, groups=frozenset({"staff"})),
        "bob": Account("bob"),
        "carol": Account("carol", groups=frozenset({"staff", "lab"})),
    }
    assert users.verify("alice", "a") == Account("alice", True, frozenset({"staff"}))
    assert users.verify("bob", "a") is None


def test_line_numbers_count_newlines_only_and_crlf_is_read(
        users: PasswordFile, caplog: pytest.LogCaptureFixture) -> None:
    users.path.write_bytes(
        f"# a \f form feed\r\nalice:{hashed_with('a', 10, 8, 1)}:admin\r\nbroken\r\n".encode())
    caplog.set_level(logging.WARNING, logger="gateway")
    assert users.accounts() == {"alice": Account("alice", admin=True)}
    assert [r.getMessage().split(":")[0] for r in caplog.records] == [f"{users.path} line 3"]


def test_malformed_lines_are_skipped_with_one_warning_each(
        users: PasswordFile, caplog: pytest.LogCaptureFixture) -> None:
    good = hashed_with("a", 10, 8, 1)
    users.path.write_text(
        f"alice:{good}:admin\n"
        "just-a-name\n"
        f"bad:{good}:ad min\n"
        f"alice:{good}:\n"
        "mallory:$scrypt$garbage:admin\n")
    caplog.set_level(logging.WARNING, logger="gateway")
    for _ in range(3):  # repeated checks re-use the parsed file: no new warnings
        assert users.verify("alice", "a") == Account("alice", admin=True)
        assert users.verify("mallory", "x") is None
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 4, warnings
    for line, text in zip((2, 3, 4, 5), warnings, strict=True):
        assert text.startswith(f"{users.path} line {line}: "), text
        assert text.endswith("line skipped"), text
    assert "already on line 1" in warnings[2]
    assert set(users.accounts()) == {"alice"}


def test_a_file_that_is_not_utf8_is_no_users_and_one_warning(
        users: PasswordFile, caplog: pytest.LogCaptureFixture) -> None:
    users.path.write_bytes(f"alice:{hashed_with('a', 10, 8, 1)}:\n".encode() + b"\xff:x:\n")
    caplog.set_level(logging.WARNING, logger="gateway")
    assert users.accounts() == {}
    assert [r.getMessage() for r in caplog.records] == [
        f"{users.path} line 2: not UTF-8; no users until it is fixed"]


def test_the_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    reader, writer = PasswordFile(tmp_path / "passwd"), PasswordFile(tmp_path / "passwd")
    assert reader.accounts() == {}
    writer.set("alice", "one")
    assert reader.verify("alice", "one") == Account("alice")
    writer.set("alice", "two", admin=True)
    assert reader.verify("alice", "one") is None
    assert reader.verify("alice", "two") == Account("alice", admin=True)
    writer.delete("alice")
    assert reader.accounts() == {}
    reader.path.unlink()
    assert reader.accounts() == {}


def test_accounts_is_the_same_dict_until_the_file_changes(users: PasswordFile) -> None:
    """A cache of checked passwords keys on its identity (gateway.authn)."""
    empty = users.accounts()
    assert users.accounts() is empty  # no file, and still none
    users.set("alice", "a")
    first = users.accounts()
    assert first is not empty and users.accounts() is first
    users.verify("alice", "a")
    assert users.accounts() is first
    users.set("alice", "b")
    assert users.accounts() is not first
    users.path.unlink()
    assert users.accounts() == {}


# --- timing paths ---------------------------------------------------------------------------


def test_an_unknown_user_costs_the_same_scrypt_as_a_wrong_password(
        users: PasswordFile, monkeypatch: pytest.MonkeyPatch) -> None:
    users.set("alice", "right")
    scrypt = ScryptCalls(monkeypatch)
    assert users.verify("nobody-here", "right") is None
    assert users.verify("alice", "wrong") is None
    assert users.verify("alice", "right") == Account("alice")
    assert len(scrypt.calls) == 3
    shapes = {(c["n"], c["r"], c["p"], c["dklen"], len(c["salt"])) for c in scrypt.calls}
    assert shapes == {(1 << 14, 8, 1, 32, 16)}


def test_an_empty_file_still_spends_scrypt(users: PasswordFile,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    scrypt = ScryptCalls(monkeypatch)
    assert users.verify("alice", "x") is None
    assert len(scrypt.calls) == 1


# --- writing ----------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_set_adds_then_changes_and_keeps_or_sets_the_admin_flag(users: PasswordFile) -> None:
    assert users.set("alice", "one") is True
    assert users.accounts()["alice"] == Account("alice", admin=False)
    assert users.set("alice", "two", admin=True) is False
    assert users.set("alice", "three") is False  # admin=None keeps the flag
    assert users.verify("alice", "three") == Account("alice", admin=True)
    assert users.verify("alice", "two") is None
    assert users.set("alice", "four", admin=False) is False
    assert users.accounts()["alice"].admin is False
    assert users.set("bob", "b", admin=True) is True
    assert sorted(users.accounts()) == ["alice", "bob"]


def test_set_keeps_groups_comments_and_the_order_of_other_lines(users: PasswordFile) -> None:
    bob = f"bob:{hashed_with('b', 10, 8, 1)}:lab"
    users.path.write_text(f"# keep me\n{bob}\n\n")
    users.set("alice", "a")
    users.path.write_text(users.path.read_text().replace(":\n", ":admin,staff\n"))
    users.set("alice", "new")
    lines = users.path.read_text().splitlines()
    assert lines[:3] == ["# keep me", bob, ""]
    assert re.fullmatch(r"alice:\$scrypt\$[^:]+:admin,staff", lines[3])
    assert users.verify("alice", "new") == Account("alice", True, frozenset({"staff"}))


def test_delete(users: PasswordFile) -> None:
    assert users.delete("alice") is False
    assert not users.path.exists()  # deleting from nothing makes no file
    users.set("alice", "a")
    users.set("bob", "b")
    assert users.delete("alice") is True
    assert users.delete("alice") is False
    assert set(users.accounts()) == {"bob"}


@pytest.mark.parametrize("name", ["", "a:b", "a\nb", "a\x00b", "a\x7fb", "tab\there",
                                  " alice", "alice ", "#alice", "a\u2028b", "x" * 257])
def test_bad_user_names_are_refused(users: PasswordFile, name: str) -> None:
    with pytest.raises(ValueError):
        users.set(name, "pw")
    assert not users.path.exists()


def test_user_names_are_kept_in_nfc(users: PasswordFile) -> None:
    users.set(unicodedata.normalize("NFD", "jos\u00e9"), "pw")
    assert set(users.accounts()) == {"jos\u00e9"}
    assert users.verify(unicodedata.normalize("NFD", "jos\u00e9"), "pw") is not None
    assert users.verify("user name with spaces", "pw") is None


def test_an_empty_password_changes_nothing(users: PasswordFile) -> None:
    users.set("alice", "a")
    before = users.path.read_bytes()
    with pytest.raises(ValueError):
        users.set("alice", "")
    assert users.path.read_bytes() == before


def test_every_write_is_a_new_0600_file_and_leaves_no_temporary(users: PasswordFile) -> None:
    old_umask = os.umask(0)
    try:
        users.set("alice", "a")
    finally:
        os.umask(old_umask)
    assert mode(users.path) == 0o600
    users.path.chmod(0o644)
    first = users.path.stat().st_ino
    users.set("bob", "b")
    assert mode(users.path) == 0o600
    assert users.path.stat().st_ino != first  # renamed into place, not written over
    assert sorted(p.name for p in users.path.parent.iterdir()) == ["passwd"]


def test_writers_at_the_same_time_lose_no_user(tmp_path: Path) -> None:
    """Each writer holds flock on the file it read, so no rewrite drops another's user."""
    names = [f"user{i}" for i in range(6)]
    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        added = list(pool.map(lambda n: PasswordFile(tmp_path / "passwd").set(n, n), names))
    assert added == [True] * len(names)
    users = PasswordFile(tmp_path / "passwd")
    assert sorted(users.accounts()) == names
    assert users.verify("user3", "user3") == Account("user3")


def test_a_failed_write_leaves_the_old_file_whole(users: PasswordFile,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    users.set("alice", "a")
    before = users.path.read_bytes()

    def no_disk(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(passwords.os, "fsync", no_disk)
    with pytest.raises(OSError):
        users.set("bob", "b")
    monkeypatch.undo()
    assert users.path.read_bytes() == before
    assert sorted(p.name for p in users.path.parent.iterdir()) == ["passwd"]
    assert set(PasswordFile(users.path).accounts()) == {"alice"}


def test_the_writer_refuses_a_malformed_file_naming_the_line(users: PasswordFile) -> None:
    users.path.write_text(f"alice:{hashed_with('a', 10, 8, 1)}:\nbroken line\n")
    before = users.path.read_bytes()
    with pytest.raises(PasswordFileError, match=rf"^{re.escape(str(users.path))} line 2: "):
        users.set("bob", "b")
    assert users.path.read_bytes() == before


def test_the_writer_does_not_write_through_a_symlink(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("precious\n")
    (tmp_path / "passwd").symlink_to(target)
    with pytest.raises(PasswordFileError, match="symbolic link"):
        PasswordFile(tmp_path / "passwd").set("alice", "a")
    assert target.read_text() == "precious\n"


# --- ownership (root) ------------------------------------------------------------------


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: files are handed to another account")


def test_as_root_a_new_file_takes_the_directorys_owner_and_keeps_it(tmp_path: Path) -> None:
    need_root()
    spool = tmp_path / "spool"
    spool.mkdir()
    os.chown(spool, 65534, 65534)
    users = PasswordFile(spool / "passwd")
    users.set("alice", "a")
    info = users.path.stat()
    assert (info.st_uid, info.st_gid, mode(users.path)) == (65534, 65534, 0o600)
    os.chown(users.path, 65533, 65533)  # an owner chosen by hand stays
    users.set("alice", "b")
    assert (users.path.stat().st_uid, users.path.stat().st_gid) == (65533, 65533)


def test_hand_over_gives_the_file_and_refuses_links(tmp_path: Path) -> None:
    need_root()
    path = tmp_path / "passwd"
    passwords.hand_over(path, 65534, 65534)  # missing: nothing to do
    PasswordFile(path).set("alice", "a")
    path.chmod(0o640)
    passwords.hand_over(path, 65534, 65534)
    assert (path.stat().st_uid, mode(path)) == (65534, 0o600)
    victim = tmp_path / "shadow-like"
    victim.write_text("x")
    path.unlink()
    path.symlink_to(victim)
    with pytest.raises(PasswordFileError):
        passwords.hand_over(path, 65534, 65534)
    path.unlink()
    os.link(victim, path)
    with pytest.raises(PasswordFileError):
        passwords.hand_over(path, 65534, 65534)
    assert victim.stat().st_uid == 0
