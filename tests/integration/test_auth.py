"""Authentication and the operation policy against a real gateway process (issue 12):
HTTP Basic over TLS against the password file, 401 challenges, 426 for credentials over
plain HTTP, owner/admin rules, the audit log, job privacy with logins, and the real peers:
ipptool's ipp-everywhere suite with a login, and a CUPS client printing over ipps:// with
the user and password in its device URI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.passwords import PasswordFile, hash_password
from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import Message
from ippwire.writer import request
from tests.peers import CORPUS_DIR
from tests.peers.conformance import ConformanceDir
from tests.peers.cupsd import Cupsd
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.procs import LOOPBACK, log_tail
from tests.peers.suites import EVERYWHERE_FIXED
from tests.support.ipps_client import Answer, send

PDF = CORPUS_DIR / "testpage-1p-vector.pdf"
USERS = {"alice": ("alice-pw", False), "bob": ("bob-pw", False), "root-admin": ("admin-pw", True)}
ALICE, BOB, ADMIN = (("alice", "alice-pw"), ("bob", "bob-pw"), ("root-admin", "admin-pw"))
AUTH_TOML = "[auth]\nenabled = true\n"


def accounts(spool: Path) -> None:
    passwords = PasswordFile(spool / "passwd")
    for user, (password, admin) in USERS.items():
        passwords.set(user, password, admin=admin)


def start(tmp_path: Path, printers: tuple[PrinterTable, ...],
          extra_toml: str = AUTH_TOML) -> GatewayProcess:
    accounts(tmp_path / "spool")
    return start_configured_gateway(tmp_path, printers, log_level="info",
                                    extra_toml=extra_toml)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """`open` takes anyone's jobs; `secure` and `suite` (where the real clients print, with
    no held jobs of other tests in its queue) only logged-in users'."""
    printers = (PrinterTable("open"),
                PrinterTable("secure", extra={"print": "authenticated"}),
                PrinterTable("suite", extra={"print": "authenticated"}))
    with start(tmp_path_factory.mktemp("auth"), printers) as running:
        yield running


def uri(gateway: GatewayProcess, printer: str, scheme: str = "ipps") -> str:
    return f"{scheme}://{LOOPBACK}:{gateway.port}/ipp/print/{printer}"


def print_request(gateway: GatewayProcess, printer: str, user: str = "someone") -> Message:
    return request(Operation.PRINT_JOB, printer_uri=uri(gateway, printer), user=user, attrs={
        "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")})


def job_request(gateway: GatewayProcess, operation: Operation, printer: str, job_id: int,
                user: str = "someone") -> Message:
    return request(operation, printer_uri=uri(gateway, printer), user=user,
                   attrs={"job-id": (ValueTag.INTEGER, job_id)})


def job_id_of(answer: Answer) -> int:
    assert answer.http_status == 200 and answer.ipp_status == Status.OK, answer
    assert answer.message is not None
    group = answer.message.group(GroupTag.JOB)
    assert group is not None
    job_id = group.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


def held_job(gateway: GatewayProcess, printer: str, credentials: tuple[str, str] | None,
             user: str = "someone") -> int:
    """A job held at creation (job-hold-until indefinite): it stays for the test to act on."""
    message = request(Operation.PRINT_JOB, printer_uri=uri(gateway, printer), user=user, attrs={
        "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")},
        job_attrs={"job-hold-until": (ValueTag.KEYWORD, "indefinite")})
    return job_id_of(send(gateway.port, f"/ipp/print/{printer}", message, b"held job",
                          credentials=credentials))


def audit_lines(gateway: GatewayProcess) -> list[dict[str, object]]:
    path = gateway.spool / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_no_credentials_get_a_401_challenge(gateway: GatewayProcess) -> None:
    before = gateway.output_files("secure")
    answer = send(gateway.port, "/ipp/print/secure", print_request(gateway, "secure"), b"x")
    assert answer.http_status == 401
    assert answer.headers["www-authenticate"].startswith('Basic realm="ipp-gateway"')
    assert answer.ipp_status == Status.CLIENT_ERROR_NOT_AUTHENTICATED
    assert gateway.output_files("secure") == before


def test_a_wrong_password_is_401_and_audited(gateway: GatewayProcess) -> None:
    before = gateway.output_files("secure")
    answer = send(gateway.port, "/ipp/print/secure", print_request(gateway, "secure"), b"x",
                  credentials=("alice", "not-her-password"))
    assert answer.http_status == 401 and "www-authenticate" in answer.headers
    assert answer.ipp_status == Status.CLIENT_ERROR_NOT_AUTHENTICATED
    failed = [line for line in audit_lines(gateway)
              if line["kind"] == "auth" and line["user"] == "alice"]
    assert failed and failed[-1]["outcome"] == "failed"
    assert failed[-1]["address"] == LOOPBACK
    assert gateway.output_files("secure") == before


def test_the_right_password_prints_as_the_logged_in_user(gateway: GatewayProcess) -> None:
    job_id = job_id_of(send(gateway.port, "/ipp/print/secure",
                            print_request(gateway, "secure", user="claimed-name"),
                            b"alice's document", credentials=ALICE))
    status = send(gateway.port, "/ipp/print/secure", request(
        Operation.GET_JOB_ATTRIBUTES, printer_uri=uri(gateway, "secure"), attrs={
            "job-id": (ValueTag.INTEGER, job_id),
            "requested-attributes": (ValueTag.KEYWORD, "job-originating-user-name")}),
        credentials=ALICE)
    assert status.message is not None
    group = status.message.group(GroupTag.JOB)
    assert group is not None
    owner = group.get("job-originating-user-name")
    # The owner is who logged in, not the requesting-user-name the request claimed.
    assert owner is not None and owner.value == "alice"


def test_credentials_over_plain_http_are_refused(gateway: GatewayProcess) -> None:
    before = gateway.output_files("secure")
    message = print_request(gateway, "secure")
    answer = send(gateway.port, "/ipp/print/secure", message, b"x", tls=False,
                  credentials=ALICE)
    assert answer.http_status == 426
    assert "TLS/1.2" in answer.headers["upgrade"]
    assert answer.ipp_status == Status.CLIENT_ERROR_NOT_AUTHENTICATED
    # ... and a printer that needs a login sends a plain-HTTP client to TLS first, so that
    # it never sends its password in the clear.
    unasked = send(gateway.port, "/ipp/print/secure", message, b"x", tls=False)
    assert unasked.http_status == 426 and "www-authenticate" not in unasked.headers
    assert gateway.output_files("secure") == before


def test_printing_for_anyone_needs_no_login(gateway: GatewayProcess) -> None:
    job_id_of(send(gateway.port, "/ipp/print/open", print_request(gateway, "open"), b"x",
                   tls=False))


def test_another_users_job_is_refused_the_owner_and_an_admin_succeed(
        gateway: GatewayProcess) -> None:
    path = "/ipp/print/secure"
    first, second = held_job(gateway, "secure", ALICE), held_job(gateway, "secure", ALICE)
    # Bob, logged in: not authorized, with no challenge (logging in again would not help).
    refused = send(gateway.port, path, job_request(gateway, Operation.CANCEL_JOB, "secure",
                                                   first), credentials=BOB)
    assert refused.http_status == 200
    assert refused.ipp_status == Status.CLIENT_ERROR_NOT_AUTHORIZED
    # Claiming to be alice without logging in: a challenge; her job was made logged in.
    claimed = send(gateway.port, path, job_request(gateway, Operation.RELEASE_JOB, "secure",
                                                   first, user="alice"))
    assert claimed.http_status == 401
    assert send(gateway.port, path, job_request(gateway, Operation.RELEASE_JOB, "secure",
                                                first), credentials=ALICE).ipp_status \
        == Status.OK
    assert send(gateway.port, path, job_request(gateway, Operation.CANCEL_JOB, "secure",
                                                second), credentials=ADMIN).ipp_status \
        == Status.OK
    lines = [(line["operation"], line["user"], line["job"], line["outcome"])
             for line in audit_lines(gateway) if line["kind"] == "operation"]
    assert ("Cancel-Job", "bob", first, "client-error-not-authorized") in lines
    assert ("Cancel-Job", "root-admin", second, "successful-ok") in lines


def test_pausing_needs_an_administrator(gateway: GatewayProcess) -> None:
    path = "/ipp/print/open"
    pause = request(Operation.PAUSE_PRINTER, printer_uri=uri(gateway, "open"))
    resume = request(Operation.RESUME_PRINTER, printer_uri=uri(gateway, "open"))
    assert send(gateway.port, path, pause).http_status == 401
    assert send(gateway.port, path, pause, credentials=BOB).ipp_status \
        == Status.CLIENT_ERROR_NOT_AUTHORIZED
    assert send(gateway.port, path, pause, credentials=ADMIN).ipp_status == Status.OK
    assert send(gateway.port, path, resume, credentials=ADMIN).ipp_status == Status.OK


def test_a_second_user_sees_the_first_users_job_redacted(gateway: GatewayProcess) -> None:
    job_id = held_job(gateway, "secure", ALICE)
    listing = request(Operation.GET_JOBS, printer_uri=uri(gateway, "secure"), user="alice",
                      attrs={"which-jobs": (ValueTag.KEYWORD, "all"),
                             "requested-attributes": (ValueTag.KEYWORD, "all")})

    def names_of(credentials: tuple[str, str] | None) -> dict[str, object]:
        answer = send(gateway.port, "/ipp/print/secure", listing, credentials=credentials)
        assert answer.message is not None and answer.ipp_status == Status.OK
        for group in answer.message.groups_of(GroupTag.JOB):
            listed = group.get("job-id")
            if listed is not None and listed.value == job_id:
                found = {name: group.get(name) for name in
                         ("job-name", "job-originating-user-name")}
                return {name: attr.value for name, attr in found.items() if attr is not None}
        raise AssertionError(f"job {job_id} is not listed")

    assert names_of(ALICE) == {"job-name": "Untitled", "job-originating-user-name": "alice"}
    assert names_of(BOB) == {}
    # Naming herself without logging in does not show a job she made logged in.
    assert names_of(None) == {}
    assert names_of(ADMIN)["job-originating-user-name"] == "alice"


def test_a_printer_for_listed_users_only(tmp_path: Path) -> None:
    printers = (PrinterTable("staff", extra={"print": ("alice", "@ops")}),)
    accounts(tmp_path / "spool")
    with (tmp_path / "spool" / "passwd").open("a") as file:  # groups follow the flags
        file.write(f"dave:{hash_password('dave-pw')}:ops\n")
    with start(tmp_path, printers) as gateway:
        path = "/ipp/print/staff"
        job_id_of(send(gateway.port, path, print_request(gateway, "staff"), b"a",
                       credentials=ALICE))
        job_id_of(send(gateway.port, path, print_request(gateway, "staff"), b"d",
                       credentials=("dave", "dave-pw")))
        refused = send(gateway.port, path, print_request(gateway, "staff"), b"b",
                       credentials=BOB)
        assert refused.ipp_status == Status.CLIENT_ERROR_NOT_AUTHORIZED
        assert refused.message is not None
        message = refused.message.operation_attributes.get("status-message")
        assert message is not None and "alice, @ops" in str(message.value)
        assert len(gateway.output_files("staff")) == 2


@pytest.mark.peers
def test_ipptool_passes_ipp_everywhere_with_a_login(
        gateway: GatewayProcess, conformance_dir: ConformanceDir,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """ipptool (CUPS 2.4) has no -U: it logs in with the user and password of the
    printer URI, which the shell takes from the environment; $user (requesting-user-name)
    is CUPS_USER."""
    monkeypatch.setenv("CUPS_USER", "alice")
    login = f"ipps://alice:{USERS['alice'][0]}@{LOOPBACK}:{gateway.port}/ipp/print/suite"
    plan = conformance_dir.plan_for(login)
    run = conformance_dir.run(login, EVERYWHERE_FIXED)
    context = f"{run.describe_failures()}\n{log_tail(gateway.log)}"
    assert not run.errors and run.outcomes and not run.failures, context
    seen = {o.name: o.status for o in run.outcomes}
    assert plan.print_tests and all(seen.get(name) == "PASS" for name in plan.print_tests)
    # It printed as alice, logged in: the challenge was met, not skipped.
    created = [line for line in audit_lines(gateway)
               if line["operation"] == "job-created" and line["printer"] == "suite"]
    assert created and {line["user"] for line in created} == {"alice"}


@pytest.mark.peers
def test_cupsd_prints_over_ipps_with_a_password_in_its_uri(gateway: GatewayProcess,
                                                            cupsd: Cupsd) -> None:
    before = len(gateway.output_files("suite"))
    device = f"ipps://bob:{USERS['bob'][0]}@{LOOPBACK}:{gateway.port}/ipp/print/suite"
    cupsd.add_everywhere_queue("gwauth", device)
    job = cupsd.submit("gwauth", PDF)
    done = cupsd.wait_completed("gwauth", {job}, 120)
    assert done == {job}, log_tail(cupsd.error_log, 40) + log_tail(gateway.log)
    assert len(gateway.output_files("suite")) == before + 1
    created = [line for line in audit_lines(gateway)
               if line["operation"] == "job-created" and line["user"] == "bob"]
    assert created
