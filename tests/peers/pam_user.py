"""A real system account and a real PAM service for the PAM tests (root only): `useradd` and
`chpasswd` make a user with a password in /etc/shadow, `/etc/pam.d/<service>` checks it with
pam_unix, and both are removed again when the block ends, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PAM_DIR = Path("/etc/pam.d")
# pam_unix alone, nodelay: the gateway keeps its own backoff, and a test must not sleep 2 s
# per wrong password.
SERVICE_TEXT = ("auth    required pam_unix.so nodelay\n"
                "account required pam_unix.so\n")


@dataclass(frozen=True)
class SystemUser:
    name: str
    password: str
    groups: tuple[str, ...]


def _run(*argv: str, stdin: str | None = None) -> None:
    subprocess.run(argv, input=stdin, text=True, check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def pam_service(name: str) -> Iterator[str]:
    """/etc/pam.d/<name> with pam_unix, for the life of the block."""
    path = PAM_DIR / name
    if path.exists():
        raise RuntimeError(f"{path} exists already; not touching it")
    path.write_text(SERVICE_TEXT)
    try:
        yield name
    finally:
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def system_group() -> Iterator[str]:
    """A new unix group with a random name, removed afterwards."""
    name = f"ippgwg{secrets.token_hex(4)}"
    _run("groupadd", name)
    try:
        yield name
    finally:
        subprocess.run(["groupdel", name], capture_output=True, timeout=30, check=False)


@contextlib.contextmanager
def system_user(groups: tuple[str, ...] = ()) -> Iterator[SystemUser]:
    """A new account (no home, no login shell) with a random name and password."""
    name = f"ippgw{secrets.token_hex(4)}"
    password = f"pw-{secrets.token_urlsafe(12)}"
    argv = ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "--user-group"]
    if groups:
        argv += ["--groups", ",".join(groups)]
    _run(*argv, name)
    try:
        _run("chpasswd", stdin=f"{name}:{password}\n")
        yield SystemUser(name, password, groups)
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=30, check=False)
