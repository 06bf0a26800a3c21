"""Privilege separation: started as root, the gateway binds its ports, then runs as an
unprivileged account, so that Ghostscript and Pillow never parse a network document as root.

- `resolve_account(name)` looks the account up (with the `lp` and `dialout` groups, which
  own the usblp nodes and the serial ports).
- `prepare_directory(path, account)` hands a directory (the spool) to the account.
- `writable_by(path, account)` asks, as that user, whether it can create and remove a file.
- `drop_privileges(account)` switches user for good, keeping only CAP_NET_BIND_SERVICE in the
  gateway's own permitted and effective sets (LPD source ports 721-731, RFC 1179), never in a
  set that an exec'd child inherits.

Linux only (prctl, capset), stdlib plus ctypes; every failure is a `PrivilegeError` whose
message is one line naming the user or the path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

# <linux/prctl.h>
_PR_SET_KEEPCAPS = 8
_PR_SET_NO_NEW_PRIVS = 38
_PR_GET_NO_NEW_PRIVS = 39
_PR_CAP_AMBIENT = 47
_PR_CAP_AMBIENT_IS_SET = 1
_PR_CAP_AMBIENT_CLEAR_ALL = 4
# <linux/capability.h>
_LINUX_CAPABILITY_VERSION_3 = 0x20080522
CAP_NET_BIND_SERVICE = 10

# Groups that own printer devices on Debian: usblp nodes (/dev/usb/lp*) and serial ports.
DEVICE_GROUPS = ("lp", "dialout")


class PrivilegeError(Exception):
    """Switching to, or checking as, the unprivileged account failed; one line for the log."""


@dataclass(frozen=True)
class Account:
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]  # supplementary gids, the primary one included
    home: str


def running_as_root() -> bool:
    return os.geteuid() == 0


def resolve_account(name: str) -> Account:
    """The account `name` from the password and group databases."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise PrivilegeError(
            f"user {name!r} does not exist; create it (adduser --system {name}) "
            f"or set server.user") from None
    if entry.pw_uid == 0:
        raise PrivilegeError(
            f"user {name!r} is uid 0, which separates nothing; set server.user to an "
            f"unprivileged user such as lp")
    groups = list(os.getgrouplist(name, entry.pw_gid))
    for group in DEVICE_GROUPS:
        with contextlib.suppress(KeyError):  # a host without the group: nothing to join
            groups.append(grp.getgrnam(group).gr_gid)
    return Account(name=name, uid=entry.pw_uid, gid=entry.pw_gid,
                   groups=tuple(dict.fromkeys(groups)), home=entry.pw_dir)


# --- directories -------------------------------------------------------------------------


def prepare_directory(path: Path, account: Account) -> None:
    """Create `path` if missing and give it, and everything under it, to `account`.

    The directory itself is reached as configured (it may be a symlink the administrator
    made); below it nothing is followed: entries are changed with lchown relative to an open
    directory, so a symlink planted by the account cannot redirect a chown to /etc. A file
    with more than one hard link is refused, not changed: it could be a link to a file
    outside the directory (say /etc/shadow), and chown would hand that file over.
    """
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)  # job documents are private
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise PrivilegeError(f"cannot create directory {path}: {_reason(exc)}") from None
    try:
        _give(top, None, path, account)
        walk = os.fwalk(".", dir_fd=top, onerror=_raise, follow_symlinks=False)
        for relative, dirs, files, dir_fd in walk:
            for name in dirs + files:
                _give(dir_fd, name, path / relative / name, account)
    except OSError as exc:
        where = exc.filename or path
        raise PrivilegeError(f"cannot give {where} to user {account.name}: {_reason(exc)}"
                             ) from None
    finally:
        os.close(top)


def _give(dir_fd: int, name: str | None, shown: Path, account: Account) -> None:
    """lchown `name` in `dir_fd` (or `dir_fd` itself) to `account`; `shown` is for errors."""
    try:
        if name is None:
            info = os.fstat(dir_fd)
        else:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        if not stat.S_ISDIR(info.st_mode) and info.st_nlink > 1:
            raise PrivilegeError(
                f"refusing to give {os.path.normpath(shown)} to user {account.name}: it has "
                f"{info.st_nlink} hard links (remove it or the other links)")
        if (info.st_uid, info.st_gid) == (account.uid, account.gid):
            return
        if name is None:
            os.fchown(dir_fd, account.uid, account.gid)
        else:
            os.chown(name, account.uid, account.gid, dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        exc.filename = os.path.normpath(shown)
        raise


def _raise(exc: OSError) -> None:
    raise exc


def writable_by(path: Path, account: Account, what: str = "directory") -> str | None:
    """None if `account` can create and remove a file in directory `path`, else one line.

    Asked for real, as the account: os.access answers for the real uid only and knows
    nothing of read-only mounts seen by another user, ACLs, or the search permission on
    every parent. As root, a forked child switches to the account and tries; as the account
    itself, this process tries.
    """
    if os.geteuid() == account.uid:
        failure = _try_create(path)
    elif running_as_root():
        failure = _try_create_as(path, account)
    else:
        raise PrivilegeError(
            f"cannot check {what} {path} as user {account.name}: this process is uid "
            f"{os.geteuid()}, not root")
    if failure is None:
        return None
    return f"{what} {path} is not writable by user {account.name} ({failure})"


_PROBE_NAME = ".ipp-gateway-write-test"
_LEFT_BEHIND = "created a file but cannot remove it"


def _try_create(path: Path) -> str | None:
    """Create then remove a file in `path`; None on success, else the reason."""
    probe = path / f"{_PROBE_NAME}.{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                     0o600)
    except OSError as exc:
        return _reason(exc)
    os.close(fd)
    try:
        os.unlink(probe)
    except OSError as exc:
        return f"{_LEFT_BEHIND}: {_reason(exc)}"
    return None


def _try_create_as(path: Path, account: Account) -> str | None:
    """`_try_create` in a child switched to `account`, its answer sent back through a pipe."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: whatever happens, it leaves through os._exit
        status = 1
        try:
            os.close(read_end)
            _switch_user(account)
            failure = _try_create(path)
            os.write(write_end, b"ok" if failure is None else failure.encode())
            status = 0
        except Exception as exc:
            os.write(write_end, f"cannot check as this user: {exc}".encode())
        finally:  # never back into the caller's code, whatever was raised
            os._exit(status)
    os.close(write_end)
    try:
        answer = _read_all(read_end)
    finally:
        os.close(read_end)
        _, wait_status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(wait_status)
    if answer == "ok" and code == 0:
        return None
    if answer.startswith(_LEFT_BEHIND):  # removed here, as root, so the check leaves nothing
        with contextlib.suppress(OSError):
            os.unlink(path / f"{_PROBE_NAME}.{pid}")
    return answer or f"the check as this user failed, exit status {code}"


def _read_all(fd: int) -> str:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def _reason(exc: OSError) -> str:
    return exc.strerror or str(exc)


# --- switching user ----------------------------------------------------------------------


def _switch_user(account: Account) -> None:
    """Groups first (they need root), then gid, then uid: real, effective and saved."""
    os.setgroups(list(account.groups))
    os.setresgid(account.gid, account.gid, account.gid)
    os.setresuid(account.uid, account.uid, account.uid)


def drop_privileges(account: Account, keep_bind: bool = True) -> None:
    """Become `account` for good; with `keep_bind`, keep only CAP_NET_BIND_SERVICE.

    Must run while this process has one thread: uid and gid changes reach every thread
    (glibc signals them all), but capabilities, keep-caps and no-new-privs are per thread,
    and a thread left out could start a child that keeps what this one gave up. Bind the
    listening sockets before trio.run (or before any worker thread starts), then call this.
    After a PrivilegeError the process is half switched: it must exit, not carry on.
    """
    if not running_as_root():
        raise PrivilegeError(
            f"cannot switch to user {account.name}: this process is uid {os.geteuid()}, "
            f"not root")
    threads = _thread_count()
    if threads != 1:
        raise PrivilegeError(
            f"cannot switch to user {account.name} with {threads} threads running; switch "
            f"before any thread starts")
    wanted = 1 << CAP_NET_BIND_SERVICE if keep_bind else 0
    try:
        # Keep the permitted set across setuid (the kernel clears it otherwise); capset then
        # narrows it to CAP_NET_BIND_SERVICE (or nothing) and turns that one on.
        _prctl(_PR_SET_KEEPCAPS, 1)
        _switch_user(account)
        _capset(effective=wanted, permitted=wanted, inheritable=0)
        _prctl(_PR_SET_KEEPCAPS, 0)
        _clear_ambient()
        # No new privileges: no exec from here on (Ghostscript, or whatever a hostile
        # document makes it start) can gain a uid or a capability through a setuid binary or
        # file capabilities. The gateway never needs to exec one: it talks LPD, USB and
        # serial itself. It also lets a later seccomp filter be installed without root.
        _prctl(_PR_SET_NO_NEW_PRIVS, 1)
    except OSError as exc:
        raise PrivilegeError(f"cannot switch to user {account.name}: {_reason(exc)}") from None
    # PR_SET_DUMPABLE is left as the uid change set it (0 with the default fs.suid_dumpable):
    # other processes of the account (a Ghostscript fed a hostile document) cannot ptrace
    # this one or read its memory and environment in /proc; this process still reads its
    # own /proc/self, `ps` still shows the account, and an exec'd child is dumpable again.
    _verify(account, wanted)
    os.environ.update(HOME=account.home, USER=account.name, LOGNAME=account.name)


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError as exc:
        raise PrivilegeError(f"cannot count threads in /proc/self/task: {_reason(exc)}"
                             ) from None


def _verify(account: Account, wanted: int) -> None:
    """Raise unless the switch is complete and cannot be undone."""
    ids = (os.getresuid(), os.getresgid())
    expected = ((account.uid,) * 3, (account.gid,) * 3)
    if ids != expected:
        raise PrivilegeError(f"switch to user {account.name} incomplete: uids, gids {ids}")
    if set(os.getgroups()) != set(account.groups):
        raise PrivilegeError(
            f"switch to user {account.name} incomplete: groups {sorted(os.getgroups())}")
    try:
        os.setuid(0)
    except PermissionError:
        pass
    else:
        raise PrivilegeError(f"switched to user {account.name}, yet setuid(0) succeeded")
    effective, permitted, inheritable = capget()
    if (effective, permitted, inheritable) != (wanted, wanted, 0):
        raise PrivilegeError(
            f"user {account.name}: capabilities effective {effective:#x}, permitted "
            f"{permitted:#x}, inheritable {inheritable:#x}; wanted {wanted:#x}, {wanted:#x}, 0")
    if _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE) != 0:
        raise PrivilegeError(f"user {account.name}: CAP_NET_BIND_SERVICE is still ambient")
    if _prctl(_PR_GET_NO_NEW_PRIVS) != 1:
        raise PrivilegeError(f"user {account.name}: no_new_privs is not set")


# --- libc --------------------------------------------------------------------------------


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


_CapDataV3 = _CapData * 2  # version 3: two 32-bit words per set, low word first

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> int:
    if result == -1:
        code = ctypes.get_errno()
        raise OSError(code, f"{what}: {os.strerror(code)}")
    return result


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> int:
    args = (ctypes.c_ulong(arg2), ctypes.c_ulong(arg3), ctypes.c_ulong(0), ctypes.c_ulong(0))
    return _check(int(_libc.prctl(ctypes.c_int(option), *args)), f"prctl({option})")


def _clear_ambient() -> None:
    try:
        _prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError as exc:
        # Kernels before 4.3 have no ambient set, so nothing to clear.
        if exc.errno != errno.EINVAL:
            raise


def _capset(effective: int, permitted: int, inheritable: int) -> None:
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataV3()
    for word in range(2):
        shift = 32 * word
        data[word].effective = (effective >> shift) & 0xFFFFFFFF
        data[word].permitted = (permitted >> shift) & 0xFFFFFFFF
        data[word].inheritable = (inheritable >> shift) & 0xFFFFFFFF
    _check(int(_libc.capset(ctypes.byref(header), ctypes.byref(data))), "capset")


def capget() -> tuple[int, int, int]:
    """This thread's (effective, permitted, inheritable) capability sets as bit masks."""
    header = _CapHeader(_LINUX_CAPABILITY_VERSION_3, 0)
    data = _CapDataV3()
    _check(int(_libc.capget(ctypes.byref(header), ctypes.byref(data))), "capget")
    sets = [0, 0, 0]
    for word in range(2):
        shift = 32 * word
        sets[0] |= int(data[word].effective) << shift
        sets[1] |= int(data[word].permitted) << shift
        sets[2] |= int(data[word].inheritable) << shift
    return sets[0], sets[1], sets[2]

