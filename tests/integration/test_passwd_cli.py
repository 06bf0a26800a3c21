"""`ipp-gateway passwd` as a real process (`python -m gateway passwd ...`), its file checked
with gateway.passwords; and system accounts through real PAM (pam_unix and /etc/shadow) with a
user made for the test."""

from __future__ import annotations

import grp
import io
import os
import signal
import stat
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway import cli
from gateway.pam_auth import ADMIN_GROUPS, pam_available, pam_verify, system_account
from gateway.passwords import Account, PasswordFile
from tests.peers import REPO_ROOT
from tests.peers.pam_user import SystemUser, pam_service, system_group, system_user
from tests.peers.require import require_programs, require_root

NOBODY = 65534


def passwd(*argv: str, stdin: str | None = "") -> subprocess.CompletedProcess[str]:
    """The CLI in a process of its own; `stdin` None is /dev/null: not a terminal."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", "passwd", *argv], cwd=REPO_ROOT, input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None, capture_output=True, text=True,
        timeout=60)


def as_nobody(body: Callable[[], str], groups: tuple[int, ...] = ()) -> str:
    """`body()` in a forked child that switched to nobody for good (the interpreter may sit
    under /root, which nobody cannot exec from); its result, or its traceback as a failure."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.close(read_end)
            signal.alarm(30)  # the bound: SIGALRM's default action ends a hung child
            os.setgroups(list(groups))
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            answer, status = body(), 0
        except BaseException:
            answer = traceback.format_exc()
        finally:
            try:
                os.write(write_end, answer.encode())
            finally:
                os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        text = pipe.read().decode()
    _, wait_status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(wait_status) == 0, text
    return text


def cli_in_process(*argv: str, stdin: str) -> str:
    """`ipp-gateway passwd` run by gateway.cli.main in this process; its one output line."""
    sys.stdin, sys.stdout = io.StringIO(stdin), io.StringIO()
    code = cli.main(["passwd", *argv])
    assert code == 0, code
    return sys.stdout.getvalue().strip()


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert (result.returncode, result.stderr) == (0, ""), result
    lines = result.stdout.splitlines()
    assert len(lines) == 1, result.stdout
    return lines[0]


def refused(result: subprocess.CompletedProcess[str], message: str) -> None:
    assert result.returncode == 2, result
    assert message in result.stderr, result.stderr
    assert result.stdout == ""


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    return tmp_path / "spool"


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory every account can reach (pytest's tmp_path sits under a 0700 one)."""
    with tempfile.TemporaryDirectory(prefix="passwd-cli-") as name:
        os.chmod(name, 0o755)
        yield Path(name)


def test_add_change_and_delete_through_the_cli(spool: Path) -> None:
    path = spool / "passwd"
    running = PasswordFile(path)  # as a running gateway holds it: must see every change
    assert running.accounts() == {}
    said = ok(passwd("alice", "--spool", str(spool), stdin="s3cret: with $ and spaces \n"))
    assert said == f"added user alice (not an administrator) in {path}"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert running.verify("alice", "s3cret: with $ and spaces ") == Account("alice")

    said = ok(passwd("alice", "--admin", "--spool", str(spool), stdin="next\n"))
    assert said == f"changed the password of alice (an administrator) in {path}"
    assert running.verify("alice", "s3cret: with $ and spaces ") is None
    assert running.verify("alice", "next") == Account("alice", admin=True)

    ok(passwd("alice", "--spool", str(spool), stdin="third"))  # no line end: fine
    assert running.verify("alice", "third") == Account("alice", admin=True)  # role kept
    ok(passwd("alice", "--no-admin", "--spool", str(spool), stdin="third\r\n"))
    assert running.verify("alice", "third") == Account("alice", admin=False)

    ok(passwd("bob", "--spool", str(spool), stdin="b\n"))
    said = ok(passwd("alice", "--delete", "--spool", str(spool), stdin=None))
    assert said == f"deleted user alice from {path}"
    assert set(running.accounts()) == {"bob"}


def test_the_spool_comes_from_the_config_file(tmp_path: Path, spool: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text(f'[server]\nspool = "{spool}"\n')
    ok(passwd("carol", "--config", str(config), stdin="pw\n"))
    assert PasswordFile(spool / "passwd").verify("carol", "pw") == Account("carol")


@pytest.mark.parametrize(("argv", "stdin", "message"), [
    (("alice",), "", "the password is empty"),
    (("alice",), "\n", "the password is empty"),
    (("alice",), None, "the password is empty"),
    (("a:b",), "pw\n", "contains ':'"),
    (("",), "pw\n", "the user name is empty"),
    (("a\tb",), "pw\n", "control character"),
    (("nobody-here", "--delete"), None, "no user 'nobody-here'"),
    (("alice", "--admin", "--delete"), "pw\n", "not allowed with argument"),
    (("alice", "--admin", "--no-admin"), "pw\n", "not allowed with argument"),
])
def test_bad_input_exits_2_and_changes_nothing(
        spool: Path, argv: tuple[str, ...], stdin: str | None, message: str) -> None:
    PasswordFile(spool / "passwd").set("keep", "pw")
    before = (spool / "passwd").read_bytes()
    refused(passwd(*argv, "--spool", str(spool), stdin=stdin), message)
    assert (spool / "passwd").read_bytes() == before


def test_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_text("[server]\nspool = 3\n")
    refused(passwd("alice", "--config", str(config), stdin="pw\n"), "server.spool")


def test_a_malformed_file_is_named_with_its_line(spool: Path) -> None:
    spool.mkdir()
    (spool / "passwd").write_text("# users\nnot a user line\n")
    refused(passwd("alice", "--spool", str(spool), stdin="pw\n"),
            f"{spool / 'passwd'} line 2: ")


def test_without_spool_or_config_the_default_spool_is_used(
        open_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root's default spool is /var/spool/ipp-gateway, not to be touched by a test: so as
    root this runs as nobody, whose default spool is under XDG_STATE_HOME."""
    state = open_dir / "state"
    state.mkdir()
    monkeypatch.setenv("XDG_STATE_HOME", str(state))
    path = state / "ipp-gateway" / "passwd"
    if os.geteuid() == 0:
        os.chown(state, NOBODY, NOBODY)
        said = as_nobody(lambda: cli_in_process("dave", stdin="pw\n"))
    else:
        said = ok(passwd("dave", stdin="pw\n"))
    assert said == f"added user dave (not an administrator) in {path}"
    assert PasswordFile(path).verify("dave", "pw") == Account("dave")


def test_as_root_the_file_goes_to_the_spools_owner(open_dir: Path) -> None:
    """Run by root next to a spool that start-up gave to the gateway's account, the new file
    is that account's, so the unprivileged gateway can read it (0600) and nobody else can."""
    require_root("the file is handed to another account")
    spool = open_dir / "spool"
    spool.mkdir()
    os.chown(spool, NOBODY, NOBODY)
    ok(passwd("erin", "--spool", str(spool), stdin="pw\n"))
    info = (spool / "passwd").stat()
    assert (info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode)) == (NOBODY, NOBODY, 0o600)
    users = PasswordFile(spool / "passwd")
    assert as_nobody(lambda: repr(users.verify("erin", "pw"))) == repr(Account("erin"))


# --- PAM ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PamSetup:
    service: str
    admin: SystemUser  # in the lab group and in an administrators' group
    plain: SystemUser  # in the lab group only
    lab: str


@pytest.fixture
def pam_setup() -> Iterator[PamSetup]:
    """Two system users and a pam_unix service, removed again after the test."""
    require_root("creates system users and /etc/pam.d/ipp-gateway-test")
    require_programs("useradd", "chpasswd", "userdel", "groupadd", "groupdel")
    if not pam_available():
        pytest.skip("needs the PAM binding and libpam: pip install -e '.[pam]'")
    admins = [name for name in sorted(ADMIN_GROUPS) if group_exists(name)]
    if not admins:
        pytest.skip(f"none of the groups {', '.join(sorted(ADMIN_GROUPS))} exists here")
    with system_group() as lab, pam_service(f"ipp-gateway-test-{os.getpid()}") as service, \
            system_user((lab, admins[0])) as admin, system_user((lab,)) as plain:
        yield PamSetup(service, admin, plain, lab)


def group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def test_pam_accepts_the_right_password_with_groups_and_admin(pam_setup: PamSetup) -> None:
    admin = pam_verify(pam_setup.admin.name, pam_setup.admin.password, pam_setup.service)
    plain = pam_verify(pam_setup.plain.name, pam_setup.plain.password, pam_setup.service)
    assert admin == Account(pam_setup.admin.name, admin=True, groups=frozenset(
        {pam_setup.admin.name, *pam_setup.admin.groups}))  # its own group: --user-group
    assert plain == Account(pam_setup.plain.name, admin=False, groups=frozenset(
        {pam_setup.plain.name, pam_setup.lab}))


def test_pam_refuses_wrong_passwords_and_unknown_users(pam_setup: PamSetup) -> None:
    user, service = pam_setup.plain, pam_setup.service
    assert pam_verify(user.name, user.password, service) is not None
    assert pam_verify(user.name, user.password + "x", service) is None
    assert pam_verify(user.name, user.password[:-1], service) is None
    assert pam_verify(user.name, pam_setup.admin.password, service) is None
    assert pam_verify(user.name, "", service) is None
    # C strings end at NUL: what follows one must not be cut off and ignored.
    assert pam_verify(user.name, user.password + "\0tail", service) is None
    assert pam_verify(user.name + "\0tail", user.password, service) is None
    assert pam_verify("ippgw-no-such-user", user.password, service) is None


def test_pam_as_the_dropped_account_needs_the_shadow_group(pam_setup: PamSetup) -> None:
    """After the drop, pam_unix reads /etc/shadow itself, which takes the `shadow` group; its
    setgid helper checks only the caller's own password, never another user's."""
    if not group_exists("shadow"):
        pytest.skip("no shadow group here: /etc/shadow is readable by root alone")
    user, service = pam_setup.plain, pam_setup.service

    def check() -> str:
        return repr(pam_verify(user.name, user.password, service))

    assert as_nobody(check) == "None"
    assert as_nobody(check, groups=(grp.getgrnam("shadow").gr_gid,)) != "None"


def test_pam_root_is_an_administrator() -> None:
    root = system_account("root")
    assert root.admin and "root" in root.groups
