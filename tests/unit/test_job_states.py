"""The job state machine: one table, every other change refused."""

from __future__ import annotations

import pytest

from gateway.core.job import TRANSITIONS, InvalidTransition, Job, JobEvent
from ippwire.enums import JobState


def make_job(state: JobState) -> Job:
    return Job(id=1, printer="p", uuid="urn:uuid:x", name="n", user="u", state=state)


def test_happy_path() -> None:
    job = make_job(JobState.PENDING_HELD)
    job.apply(JobEvent.CLOSE)
    assert job.state is JobState.PENDING and job.reasons == ["job-queued"]
    job.apply(JobEvent.START, "job-printing")
    assert job.state is JobState.PROCESSING and job.processing_at is not None
    job.apply(JobEvent.COMPLETE, "job-completed-successfully")
    assert job.state is JobState.COMPLETED and job.completed_at is not None
    assert job.reasons == ["job-completed-successfully"]


@pytest.mark.parametrize("state", [JobState.CANCELED, JobState.ABORTED, JobState.COMPLETED])
def test_terminal_states_accept_nothing(state: JobState) -> None:
    for event in JobEvent:
        with pytest.raises(InvalidTransition):
            make_job(state).apply(event)


def test_table_covers_cancel_from_every_active_state() -> None:
    active = [s for s in JobState if not s.is_terminal]
    assert all(TRANSITIONS[(s, JobEvent.CANCEL)] is JobState.CANCELED for s in active)
    assert (JobState.PENDING, JobEvent.COMPLETE) not in TRANSITIONS


def test_record_round_trip() -> None:
    job = make_job(JobState.PENDING)
    job.template = {"copies": 2, "page-ranges": [[1, 3]]}
    assert Job.from_record(job.to_record()) == job
