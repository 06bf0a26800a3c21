"""Job privacy (gateway.privacy and the job listings built on it): another user sees a job
without its name, its owner and its document's name; the owner and an administrator see it
whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS
from gateway.config import Config, PrinterConfig
from gateway.core.job import Job
from gateway.core.system import System
from gateway.privacy import ANONYMOUS, NOBODY, PRIVATE_JOB_VALUES, Viewer, visible
from gateway.server.job_attributes import encoded_job_attributes, job_attributes
from ippwire.enums import GroupTag
from ippwire.model import Group, Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message

URI = "ipp://localhost:8631/ipp/print/office"
PRIVATE_ANSWERED = {"job-name", "job-originating-user-name", "document-name-supplied"}


@pytest.fixture
def system(tmp_path: Path) -> System:
    config = Config(spool=tmp_path / "spool", printers=(
        PrinterConfig("office", f"file://{tmp_path}/out/", formats=RAW_PASSTHROUGH_FORMATS),),
        multiple_operation_timeout=60)
    return System(config)


def alice_job(system: System, user: str = "alice") -> Job:
    return system.create_job(system.printers["office"], name="salaries.pdf", user=user,
                             template={"copies": 2}, document_format="application/pdf",
                             document_name="salaries-2026.pdf")


def names(system: System, job: Job, viewer: Viewer) -> dict[str, object]:
    return {a.name: a.plain for a in job_attributes(system, job, URI, viewer=viewer)}


def decoded(encoded: list[bytes] | None) -> dict[str, object]:
    """The attributes `encoded_job_attributes` answered, read back as a client would."""
    assert encoded is not None
    body = encode_message(Message((2, 0), 0, 1, [Group(GroupTag.JOB, [])]))
    message, _ = decode_message(body[:-1] + b"".join(encoded) + body[-1:])
    (group,) = message.groups
    return {a.name: a.plain for a in group}


def test_the_owner_sees_the_private_values(system: System) -> None:
    attrs = names(system, alice_job(system), Viewer("alice"))
    assert attrs["job-name"] == ["salaries.pdf"]
    assert attrs["job-originating-user-name"] == ["alice"]
    assert attrs["document-name-supplied"] == ["salaries-2026.pdf"]


@pytest.mark.parametrize("viewer", [Viewer("bob"), Viewer("Alice"), Viewer(ANONYMOUS),
                                    Viewer("")])
def test_anyone_else_sees_the_job_without_them(system: System, viewer: Viewer) -> None:
    job = alice_job(system)
    whole = names(system, job, Viewer("alice"))
    seen = names(system, job, viewer)
    assert set(whole) >= PRIVATE_ANSWERED
    assert set(seen) == set(whole) - PRIVATE_ANSWERED  # left out, every other one kept
    assert seen["job-id"] == [job.id] and seen["copies"] == [2]
    assert seen["job-state"] == whole["job-state"]


def test_an_admin_sees_every_job_whole(system: System) -> None:
    job = alice_job(system)
    admin = Viewer("root", is_admin=True, authenticated=True)
    assert names(system, job, admin) == names(system, job, Viewer("alice"))
    # An administrator by being on the gateway's host (authentication off) sees no more
    # than any user there.
    assert "job-name" not in names(system, job, Viewer("root", is_admin=True))


def test_a_caller_that_does_not_say_who_asks_shows_no_private_value(system: System) -> None:
    job = alice_job(system)
    attrs = {a.name for a in job_attributes(system, job, URI)}
    assert attrs == set(names(system, job, NOBODY)) and "job-name" not in attrs
    listed = decoded(encoded_job_attributes(system, job, URI, {"all"}))
    assert "job-originating-user-name" not in listed and listed["job-id"] == [job.id]


def test_a_nameless_request_owns_no_job_not_even_a_nameless_one(system: System) -> None:
    job = alice_job(system, user=ANONYMOUS)
    assert "job-name" not in names(system, job, Viewer(ANONYMOUS))
    assert "job-name" in names(system, job, Viewer("", is_admin=True, authenticated=True))


@pytest.mark.parametrize("requested", [{"all"}, {"job-name", "job-id"},
                                       {"job-description"}])
def test_a_listing_answers_others_what_they_may_see(system: System,
                                                    requested: set[str]) -> None:
    job = alice_job(system)
    mine = decoded(encoded_job_attributes(system, job, URI, requested, viewer=Viewer("alice")))
    theirs = decoded(encoded_job_attributes(system, job, URI, requested,
                                            viewer=Viewer("bob")))
    assert mine["job-name"] == ["salaries.pdf"]
    assert "job-name" not in theirs and "job-originating-user-name" not in theirs
    assert theirs["job-id"] == [job.id]


def test_a_private_value_in_the_template_is_left_out_too() -> None:
    # A record whose template carries a name (an older version, or a future option) must
    # not leak it through the template half of the list.
    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

    attrs = [Named("job-id"), Named("job-name"), Named("phone"), Named("copies")]
    assert [a.name for a in visible(attrs, "alice", Viewer("bob"))] == ["job-id", "copies"]
    assert [a.name for a in visible(attrs, "alice", Viewer("alice"))] == [
        "job-id", "job-name", "phone", "copies"]


def test_the_private_set_is_cups_default_and_the_document_names() -> None:
    assert {"job-name", "job-originating-user-name", "job-originating-host-name",
            "phone"} <= PRIVATE_JOB_VALUES  # CUPS' JobPrivateValues default
    assert {"document-name-supplied", "document-name"} <= PRIVATE_JOB_VALUES
    assert not {"job-id", "job-uri", "job-state"} & PRIVATE_JOB_VALUES
