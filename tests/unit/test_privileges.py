"""gateway.privileges: the switch to an unprivileged user, checked from /proc and by trying.

Each switch happens in a forked child (a switch cannot be undone, and the test process must
stay root); the child reports through a pipe as JSON and always leaves through os._exit,
with an alarm as the bound if it hangs.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from gateway.privileges import (
    Account,
    PrivilegeError,
    drop_privileges,
    prepare_directory,
    resolve_account,
    running_as_root,
    writable_by,
)

CAP_NET_BIND_SERVICE_MASK = 1 << 10


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


needs_root = pytest.mark.skipif(
    not running_as_root() or not _has_user("lp"),
    reason="switching users needs root and the Debian user lp")


def in_child(body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run `body` in a forked child and return what it returned (or fail with its traceback)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        report: dict[str, Any]
        try:
            os.close(read_end)
            signal.alarm(30)  # the bound: SIGALRM's default action ends a hung child
            report = {"result": body()}
            status = 0
        except Exception:
            report = {"error": traceback.format_exc()}
        finally:
            try:
                os.write(write_end, json.dumps(report).encode())
            finally:
                os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        data = pipe.read()
    _, wait_status = os.waitpid(pid, 0)
    assert data, f"child sent nothing, exit status {os.waitstatus_to_exitcode(wait_status)}"
    report = json.loads(data)
    assert "error" not in report, report["error"]
    assert os.waitstatus_to_exitcode(wait_status) == 0
    result: dict[str, Any] = report["result"]
    return result


def proc_status(text: str) -> dict[str, str]:
    fields = (line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {key: value.strip() for key, value in fields}


def try_bind_low_port() -> str:
    """'bound <port>' for the first free port from 721 (LPD's own), else the errno name."""
    for port in range(721, 1024):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    continue  # another test's LPD client holds it: try the next
                return errno.errorcode[exc.errno or 0]
            return f"bound {port}"
    return "all ports busy"


def switched(keep_bind: bool) -> dict[str, Any]:
    """Drop to lp in this (child) process, then report what the kernel says."""
    drop_privileges(resolve_account("lp"), keep_bind=keep_bind)
    try:
        os.setuid(0)
        back_to_root = "succeeded"
    except PermissionError:
        back_to_root = "EPERM"
    child = subprocess.run(["sh", "-c", "grep -E '^(Uid|Cap|NoNewPrivs)' /proc/self/status"],
                           capture_output=True, text=True, timeout=20, check=True)
    return {
        "status": proc_status(Path("/proc/self/status").read_text()),
        "bind": try_bind_low_port(),
        "setuid0": back_to_root,
        "child": proc_status(child.stdout),
        "env": [os.environ.get(key) for key in ("HOME", "USER", "LOGNAME")],
    }


@needs_root
def test_drop_keeps_only_bind_service_and_no_child_inherits_it() -> None:
    lp = pwd.getpwnam("lp")
    report = in_child(lambda: switched(keep_bind=True))
    status = report["status"]
    assert status["Uid"].split() == [str(lp.pw_uid)] * 4  # real, effective, saved, filesystem
    assert status["Gid"].split() == [str(lp.pw_gid)] * 4
    assert set(status["Groups"].split()) == {str(g) for g in resolve_account("lp").groups}
    assert int(status["CapEff"], 16) == CAP_NET_BIND_SERVICE_MASK
    assert int(status["CapPrm"], 16) == CAP_NET_BIND_SERVICE_MASK
    assert int(status["CapInh"], 16) == 0
    assert int(status["CapAmb"], 16) == 0
    assert status["NoNewPrivs"] == "1"
    assert report["bind"].startswith("bound ")
    assert report["setuid0"] == "EPERM"
    child = report["child"]
    assert child["Uid"].split() == [str(lp.pw_uid)] * 4
    for capability_set in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
        assert int(child[capability_set], 16) == 0, capability_set
    assert child["NoNewPrivs"] == "1"
    assert report["env"] == [lp.pw_dir, "lp", "lp"]


@needs_root
def test_drop_without_bind_keeps_no_capability() -> None:
    report = in_child(lambda: switched(keep_bind=False))
    assert int(report["status"]["CapEff"], 16) == 0
    assert int(report["status"]["CapPrm"], 16) == 0
    assert report["bind"] == "EACCES"
    assert report["setuid0"] == "EPERM"


@needs_root
def test_drop_refuses_while_another_thread_runs() -> None:
    def body() -> dict[str, Any]:
        release = threading.Event()
        thread = threading.Thread(target=release.wait)
        thread.start()
        try:
            drop_privileges(resolve_account("lp"))
        except PrivilegeError as exc:
            message = str(exc)
        else:
            message = "switched"
        finally:
            release.set()
            thread.join()
        return {"message": message, "uids": os.getresuid()}

    report = in_child(body)
    assert report["message"] == (
        "cannot switch to user lp with 2 threads running; switch before any thread starts")
    assert report["uids"] == [0, 0, 0]  # nothing was changed


@needs_root
def test_drop_twice_is_refused_by_name() -> None:
    def body() -> dict[str, Any]:
        account = resolve_account("lp")
        drop_privileges(account)
        try:
            drop_privileges(account)
        except PrivilegeError as exc:
            return {"message": str(exc)}
        return {"message": "switched again"}

    lp_uid = pwd.getpwnam("lp").pw_uid
    assert in_child(body)["message"] == (
        f"cannot switch to user lp: this process is uid {lp_uid}, not root")


# --- accounts ------------------------------------------------------------------------------


def test_missing_user_names_the_user_and_the_fix() -> None:
    with pytest.raises(PrivilegeError) as caught:
        resolve_account("ipp-gw-no-such-user")
    assert str(caught.value) == (
        "user 'ipp-gw-no-such-user' does not exist; create it "
        "(adduser --system ipp-gw-no-such-user) or set server.user")


def test_root_is_not_an_unprivileged_user() -> None:
    with pytest.raises(PrivilegeError, match="uid 0"):
        resolve_account("root")


@pytest.mark.skipif(not _has_user("lp"), reason="needs the Debian user lp")
def test_account_joins_the_device_groups_that_exist() -> None:
    entry = pwd.getpwnam("lp")
    account = resolve_account("lp")
    assert (account.name, account.uid, account.gid, account.home) == (
        "lp", entry.pw_uid, entry.pw_gid, entry.pw_dir)
    expected = set(os.getgrouplist("lp", entry.pw_gid))
    for group in ("lp", "dialout"):
        with contextlib.suppress(KeyError):  # a host without this group
            expected.add(grp.getgrnam(group).gr_gid)
    assert set(account.groups) == expected
    assert len(account.groups) == len(set(account.groups))


# --- directories ---------------------------------------------------------------------------


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A directory lp can traverse (pytest's tmp_path sits under a 0700 root directory)."""
    path = Path(tempfile.mkdtemp(prefix="ipp-gw-priv-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path)


@needs_root
def test_writable_by_asks_as_the_user(scratch: Path) -> None:
    lp = resolve_account("lp")
    private = scratch / "private"
    private.mkdir(mode=0o700)
    assert writable_by(private, lp, what="spool") == (
        f"spool {private} is not writable by user lp (Permission denied)")
    assert os.access(private, os.W_OK)  # what a check as root would have said
    spool = scratch / "spool"
    prepare_directory(spool, lp)
    assert writable_by(spool, lp) is None
    assert list(spool.iterdir()) == []  # the check leaves nothing behind
    missing = scratch / "missing"
    assert writable_by(missing, lp) == (
        f"directory {missing} is not writable by user lp (No such file or directory)")


@needs_root
def test_writable_by_as_the_user_itself(scratch: Path) -> None:
    spool = scratch / "spool"
    prepare_directory(spool, resolve_account("lp"))
    private = scratch / "private"
    private.mkdir(mode=0o700)

    def body() -> dict[str, Any]:
        lp = resolve_account("lp")
        drop_privileges(lp)
        stranger = Account("stranger", 54321, 54321, (54321,), "/")
        try:
            writable_by(spool, stranger)
            refused = ""
        except PrivilegeError as exc:
            refused = str(exc)
        return {"spool": writable_by(spool, lp), "private": writable_by(private, lp),
                "stranger": refused}

    report = in_child(body)
    assert report["spool"] is None
    assert report["private"] == (
        f"directory {private} is not writable by user lp (Permission denied)")
    assert report["stranger"].startswith(f"cannot check directory {spool} as user stranger")


@needs_root
def test_prepare_directory_gives_the_tree_and_follows_no_link(scratch: Path) -> None:
    lp = resolve_account("lp")
    outside = scratch / "outside"
    outside.write_bytes(b"root's")
    spool = scratch / "spool"
    (spool / "jobs").mkdir(parents=True)
    (spool / "jobs" / "00001.json").write_text("{}")
    (spool / "documents").mkdir()
    (spool / "documents" / "link").symlink_to(outside)
    (spool / "dirlink").symlink_to(scratch)

    prepare_directory(spool, lp)

    entries = [spool, *spool.rglob("*")]
    assert len(entries) == 6
    for entry in entries:
        info = entry.lstat()
        assert (info.st_uid, info.st_gid) == (lp.uid, lp.gid), entry
    for untouched in (outside, scratch):
        assert untouched.stat().st_uid == 0, untouched


@needs_root
def test_prepare_directory_creates_a_missing_directory(scratch: Path) -> None:
    lp = resolve_account("lp")
    spool = scratch / "a" / "spool"
    prepare_directory(spool, lp)
    assert spool.is_dir()
    assert (spool.stat().st_uid, spool.stat().st_gid) == (lp.uid, lp.gid)
    assert writable_by(spool, lp) is None


@needs_root
def test_prepare_directory_refuses_a_hard_link_by_name(scratch: Path) -> None:
    lp = resolve_account("lp")
    outside = scratch / "shadow"
    outside.write_bytes(b"secret")
    spool = scratch / "spool"
    spool.mkdir()
    (spool / "job").hardlink_to(outside)
    with pytest.raises(PrivilegeError) as caught:
        prepare_directory(spool, lp)
    assert str(caught.value) == (
        f"refusing to give {spool}/job to user lp: it has 2 hard links "
        f"(remove it or the other links)")
    assert outside.stat().st_uid == 0


@needs_root
def test_prepare_directory_names_a_path_it_cannot_create(scratch: Path) -> None:
    blocker = scratch / "file"
    blocker.write_bytes(b"")
    with pytest.raises(PrivilegeError) as caught:
        prepare_directory(blocker / "spool", resolve_account("lp"))
    assert str(caught.value) == f"cannot create directory {blocker}/spool: Not a directory"
