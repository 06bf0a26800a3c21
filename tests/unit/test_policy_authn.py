"""The operation policy (gateway.policy) and the pure parts of authentication
(gateway.authn: Basic parsing, the per-address backoff), plus the Authenticator's shell on
Trio's clock with a real password file."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
import trio
import trio.testing

from gateway.audit import AuditLog
from gateway.authn import (
    Authenticator,
    Backoff,
    BadCredentials,
    NotAuthenticated,
    address_of,
    is_loopback,
    parse_basic,
)
from gateway.config import AuthConfig, Config, ConfigError, config_from_dict
from gateway.passwords import Account, PasswordFile
from gateway.policy import (
    ANYONE,
    NEEDS,
    JobOwner,
    Need,
    Outcome,
    decide,
    may_print,
    needs_login,
)
from gateway.privacy import Viewer
from ippwire.enums import Operation

ALICE = Viewer("alice", authenticated=True, groups=frozenset({"staff"}))
BOB = Viewer("bob", authenticated=True)
ADMIN = Viewer("root", is_admin=True, authenticated=True)
CLAIMS_ALICE = Viewer("alice")  # requesting-user-name only


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


# -- policy ------------------------------------------------------------------------------

def test_every_changing_operation_has_a_need() -> None:
    for operation in (Operation.PRINT_JOB, Operation.CREATE_JOB, Operation.VALIDATE_JOB):
        assert NEEDS[operation] is Need.PRINT
    for operation in (Operation.CANCEL_JOB, Operation.HOLD_JOB, Operation.RELEASE_JOB,
                      Operation.SEND_DOCUMENT, Operation.CLOSE_JOB):
        assert NEEDS[operation] is Need.OWNER
    for operation in (Operation.PAUSE_PRINTER, Operation.RESUME_PRINTER,
                      Operation.IDENTIFY_PRINTER):
        assert NEEDS[operation] is Need.ADMIN
    assert Operation.GET_JOBS not in NEEDS and Operation.GET_PRINTER_ATTRIBUTES not in NEEDS


@pytest.mark.parametrize(("print_by", "viewer", "allowed"), [
    (ANYONE, CLAIMS_ALICE, True),
    (("authenticated",), CLAIMS_ALICE, False),
    (("authenticated",), BOB, True),
    (("alice",), ALICE, True),
    (("alice",), BOB, False),
    (("@staff",), ALICE, True),
    (("@staff",), BOB, False),
    (("@admin",), ADMIN, True),
    (("bob",), ADMIN, True),  # an administrator may do anything
])
def test_who_may_print(print_by: tuple[str, ...], viewer: Viewer, allowed: bool) -> None:
    assert may_print(viewer, print_by) is allowed


def test_printing_refusals_challenge_only_those_not_logged_in() -> None:
    listed = ("alice",)
    assert decide(Need.PRINT, CLAIMS_ALICE, auth_enabled=True, print_by=listed).outcome \
        is Outcome.CHALLENGE
    refused = decide(Need.PRINT, BOB, auth_enabled=True, print_by=listed)
    assert refused.outcome is Outcome.FORBIDDEN and "alice" in refused.reason
    assert needs_login(listed) and not needs_login(ANYONE)


def test_owner_rules_with_authentication_on() -> None:
    logged_in_job = JobOwner("alice", authenticated=True)
    assert decide(Need.OWNER, ALICE, auth_enabled=True, owner=logged_in_job).allowed
    assert decide(Need.OWNER, ADMIN, auth_enabled=True, owner=logged_in_job).allowed
    assert decide(Need.OWNER, BOB, auth_enabled=True, owner=logged_in_job).outcome \
        is Outcome.FORBIDDEN
    # A bare name does not own a job made logged in: log in first.
    assert decide(Need.OWNER, CLAIMS_ALICE, auth_enabled=True, owner=logged_in_job).outcome \
        is Outcome.CHALLENGE
    # A job made without a login is owned by its name, as on an unauthenticated CUPS queue.
    assert decide(Need.OWNER, CLAIMS_ALICE, auth_enabled=True,
                  owner=JobOwner("alice")).allowed


def test_with_authentication_off_the_owner_is_the_name_and_admin_is_local() -> None:
    assert decide(Need.OWNER, CLAIMS_ALICE, auth_enabled=False, owner=JobOwner("alice")).allowed
    other = decide(Need.OWNER, Viewer("mallory"), auth_enabled=False, owner=JobOwner("alice"))
    assert other.outcome is Outcome.FORBIDDEN  # nothing to log in to: no challenge
    assert decide(Need.ADMIN, Viewer("x", is_admin=True), auth_enabled=False).allowed
    remote = decide(Need.ADMIN, Viewer("x"), auth_enabled=False)
    assert remote.outcome is Outcome.FORBIDDEN and "own host" in remote.reason
    assert decide(Need.ADMIN, BOB, auth_enabled=True).outcome is Outcome.FORBIDDEN
    assert decide(Need.ADMIN, Viewer("x"), auth_enabled=True).outcome is Outcome.CHALLENGE


def test_the_print_key_is_checked_in_the_config() -> None:
    printer = {"name": "p", "device": "file:///tmp/out/", "print": ["alice", "@staff"]}
    with pytest.raises(ConfigError, match=r"needs authentication"):
        config_from_dict({"printer": [printer]})
    config = config_from_dict({"printer": [printer], "auth": {"enabled": True}})
    assert config.printers[0].print_by == ("alice", "@staff")
    for bad in (["anyone", "alice"], [], ["a:b"], ["@"]):
        with pytest.raises(ConfigError, match=r"printer\[0\]\.print"):
            config_from_dict({"printer": [dict(printer, print=bad)], "auth": {"enabled": True}})
    with pytest.raises(ConfigError, match=r"auth\.enabled"):
        config_from_dict({"auth": {"enabled": "yes"}})
    with pytest.raises(ConfigError, match=r"auth\.realm"):
        config_from_dict({"auth": {"realm": 'a"b'}})


# -- Basic and the backoff ---------------------------------------------------------------

def test_basic_credentials_are_parsed() -> None:
    assert parse_basic(basic("alice:pa:ss word")) == ("alice", "pa:ss word")
    assert parse_basic("basic " + base64.b64encode("zoë:ünï".encode()).decode()) == (
        "zoë", "ünï")


@pytest.mark.parametrize("value", [
    "Bearer abc", "Basic", "Basic !!!", basic("no-colon"), basic(":nouser"), basic("user:"),
    "Basic " + base64.b64encode(b"\xff\xfe:x").decode(), basic("a\x1bb:x"),
    "Basic " + "A" * 5000,
])
def test_bad_credentials_are_refused(value: str) -> None:
    with pytest.raises(BadCredentials):
        parse_basic(value)


def test_backoff_doubles_per_address_and_forgets() -> None:
    backoff = Backoff(first=0.5, ceiling=4.0, forget_after=100.0, max_addresses=2)
    assert backoff.delay("10.0.0.1", 0.0) == 0.0
    for count, wanted in ((1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 4.0)):
        assert backoff.failed("10.0.0.1", 10.0) == count
        assert backoff.delay("10.0.0.1", 10.0) == wanted
    assert backoff.delay("10.0.0.2", 10.0) == 0.0  # other addresses are not slowed
    assert backoff.delay("10.0.0.1", 13.0) == 1.0  # time served counts
    assert backoff.delay("10.0.0.1", 200.0) == 0.0  # forgotten after a quiet spell
    backoff.failed("a", 0.0)
    backoff.failed("b", 0.0)
    backoff.failed("c", 0.0)
    assert len(backoff) == 2 and backoff.delay("a", 0.0) == 0.0  # bounded: oldest goes
    backoff.succeeded("b")
    assert backoff.delay("b", 0.0) == 0.0


def test_addresses() -> None:
    assert address_of("192.0.2.1:631") == "192.0.2.1"
    assert address_of("[2001:db8::1]:631") == "2001:db8::1"
    assert is_loopback("127.0.0.5") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert not is_loopback("192.0.2.1") and not is_loopback("") and not is_loopback("x")


# -- the Authenticator -------------------------------------------------------------------

@pytest.fixture
def passwords(tmp_path: Path) -> PasswordFile:
    file = PasswordFile(tmp_path / "passwd")
    file.set("alice", "right", admin=False)
    file.set("root", "boss", admin=True)
    return file


async def test_authenticator_identifies_and_slows_guessing(
        passwords: PasswordFile, tmp_path: Path, autojump_clock: trio.testing.MockClock) -> None:
    with AuditLog.for_config(Config(spool=tmp_path)).install():
        auth = Authenticator(AuthConfig(enabled=True), passwords, clock=trio.current_time)
        viewer = await auth.identify(authorization=basic("alice:right"), secure=True,
                                     client="192.0.2.1:5000", requested_user="claimed")
        assert viewer == Viewer("alice", authenticated=True)
        admin = await auth.identify(authorization=basic("root:boss"), secure=True,
                                    client="192.0.2.1:5000", requested_user="x")
        assert admin.is_admin and admin.authenticated
        # No credentials: the claimed name, unproven.
        assert await auth.identify(authorization=None, secure=True, client="192.0.2.1:1",
                                   requested_user="bob") == Viewer("bob")
        started = trio.current_time()
        for _ in range(3):
            with pytest.raises(NotAuthenticated) as refused:
                await auth.identify(authorization=basic("alice:wrong"), secure=True,
                                    client="192.0.2.9:1", requested_user="alice")
            assert refused.value.http_status == 401
        # The second and third wrong guesses waited 0.5 s and 1 s (on Trio's mock clock).
        assert trio.current_time() - started >= 1.5
        assert auth.backoff.delay("192.0.2.9", trio.current_time()) > 0
        # Over plain HTTP credentials are not even checked: 426 to move to TLS.
        with pytest.raises(NotAuthenticated) as plain:
            await auth.identify(authorization=basic("alice:right"), secure=False,
                                client="192.0.2.1:1", requested_user="alice")
        assert plain.value.http_status == 426
        assert ("Upgrade", "TLS/1.2, HTTP/1.1") in plain.value.headers
    failed = [line for line in (tmp_path / "audit.log").read_text().splitlines()
              if '"kind":"auth"' in line]
    assert len(failed) == 4 and '"address":"192.0.2.9"' in failed[0]


async def test_a_changed_password_ends_a_remembered_login(passwords: PasswordFile) -> None:
    checks: list[str] = []
    auth = Authenticator(AuthConfig(enabled=True), passwords)
    verify = passwords.verify

    def counting(user: str, password: str) -> Account | None:
        checks.append(user)
        return verify(user, password)

    passwords.verify = counting  # type: ignore[method-assign]
    assert await auth.verify("alice", "right", "192.0.2.1") is not None
    assert await auth.verify("alice", "right", "192.0.2.1") is not None
    assert checks == ["alice"]  # remembered: one scrypt for two requests
    passwords.set("alice", "new-one")
    assert await auth.verify("alice", "right", "192.0.2.1") is None
    assert await auth.verify("alice", "new-one", "192.0.2.1") is not None


async def test_with_authentication_off_loopback_is_the_administrator(
        passwords: PasswordFile) -> None:
    auth = Authenticator(AuthConfig(enabled=False), passwords)
    local = await auth.identify(authorization=basic("alice:wrong"), secure=False,
                                client="127.0.0.1:5", requested_user="me")
    assert local == Viewer("me", is_admin=True)  # credentials are ignored with auth off
    remote = await auth.identify(authorization=None, secure=False, client="192.0.2.1:5",
                                 requested_user="me")
    assert remote == Viewer("me")
