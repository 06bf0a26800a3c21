"""Job privacy over IPP against a real gateway process: a second user's Get-Jobs and
Get-Job-Attributes show the first user's job without its name, its owner and its document's
name; the owner sees it whole; the printer advertises the policy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ippwire.enums import GroupTag, Operation, ValueTag
from ippwire.model import Message, Value
from ippwire.writer import AttributeSpec, request
from tests.peers.gateway_proc import GatewayProcess, start_gateway
from tests.support.ipp_client import ipp, printer_uri

T = ValueTag
PRIVATE = ("job-name", "job-originating-user-name", "document-name-supplied")


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    with start_gateway(tmp_path) as running:
        yield running


def ask(gateway: GatewayProcess, operation: int, user: str | None, attrs: AttributeSpec,
        document: bytes = b"") -> Message:
    response = ipp(gateway.port, request(operation, printer_uri=printer_uri(gateway.port),
                                         user=user, attrs=attrs), document)
    assert response.code == 0, response
    return response


def print_as(gateway: GatewayProcess, user: str) -> int:
    response = ask(gateway, Operation.PRINT_JOB, user, {
        "job-name": (T.NAME, f"{user}-salaries"), "document-name": (T.NAME, "salaries.pdf"),
        "document-format": (T.MIME_MEDIA_TYPE, "application/octet-stream")}, b"payroll\n")
    group = response.group(GroupTag.JOB)
    assert group is not None
    job_id = group.get("job-id")
    assert job_id is not None and isinstance(job_id.value, int)
    return job_id.value


def listing(gateway: GatewayProcess, user: str | None) -> dict[int, dict[str, list[Value]]]:
    """Get-Jobs (every job, every attribute) as `user`: each job's attributes by job-id."""
    response = ask(gateway, Operation.GET_JOBS, user, {
        "which-jobs": (T.KEYWORD, "all"), "requested-attributes": (T.KEYWORD, "all")})
    jobs = {}
    for group in response.groups:
        if group.tag == GroupTag.JOB:
            attrs = {a.name: a.plain for a in group}
            job_id = attrs["job-id"][0]
            assert isinstance(job_id, int)
            jobs[job_id] = attrs
    return jobs


def job_as(gateway: GatewayProcess, job_id: int, user: str | None) -> dict[str, list[Value]]:
    response = ask(gateway, Operation.GET_JOB_ATTRIBUTES, user, {
        "job-id": (T.INTEGER, job_id),
        "requested-attributes": (T.KEYWORD, ["job-id", "job-state", *PRIVATE])})
    group = response.group(GroupTag.JOB)
    assert group is not None
    return {a.name: a.plain for a in group}


def test_another_users_listing_shows_the_job_redacted(gateway: GatewayProcess) -> None:
    alices, bobs = print_as(gateway, "alice"), print_as(gateway, "bob")
    as_bob = listing(gateway, "bob")
    assert set(as_bob) == {alices, bobs}  # every job is listed ...
    assert not set(PRIVATE) & set(as_bob[alices])  # ... alice's without what names it
    assert as_bob[alices]["job-state"] and as_bob[alices]["job-uri"]
    assert as_bob[bobs]["job-name"] == ["bob-salaries"]
    as_alice = listing(gateway, "alice")
    assert as_alice[alices]["job-name"] == ["alice-salaries"]
    assert as_alice[alices]["job-originating-user-name"] == ["alice"]
    assert as_alice[alices]["document-name-supplied"] == ["salaries.pdf"]
    assert not set(PRIVATE) & set(as_alice[bobs])


def test_get_job_attributes_answers_the_owner_alone_in_full(gateway: GatewayProcess) -> None:
    job_id = print_as(gateway, "alice")
    assert job_as(gateway, job_id, "alice")["job-originating-user-name"] == ["alice"]
    for stranger in ("bob", None):  # None: a request that names no user
        seen = job_as(gateway, job_id, stranger)
        assert seen["job-id"] == [job_id]
        assert not set(PRIVATE) & set(seen)


def test_the_printer_advertises_its_privacy_policy(gateway: GatewayProcess) -> None:
    response = ask(gateway, Operation.GET_PRINTER_ATTRIBUTES, "bob", {
        "requested-attributes": (T.KEYWORD, ["job-privacy-attributes", "job-privacy-scope"])})
    group = response.group(GroupTag.PRINTER)
    assert group is not None
    attrs = {a.name: a.plain for a in group}
    assert attrs == {"job-privacy-attributes": ["default"], "job-privacy-scope": ["owner"]}
