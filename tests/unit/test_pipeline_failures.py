"""Which failure a job reports when several stages of its pipeline fail at once: the earliest
stage's, the cause, whatever order Trio (which shuffles its run queue) happens to end them in."""

from __future__ import annotations

from pathlib import Path

import trio

from drivers.errors import ConversionError
from drivers.filters.planner import Context, Plan
from drivers.filters.stage import Inbox, Outbox, Progress, Stage
from drivers.model.capabilities import PrintOptions
from drivers.pipeline import _run
from drivers.registry import get_driver
from drivers.transport import JobInfo, open_transport


class FailsAtOnce(Stage):
    def __init__(self, message: str) -> None:
        self.name = message

    async def run(self, inbox: Inbox, outbox: Outbox, progress: Progress) -> None:
        raise ConversionError(self.name)  # before any checkpoint: nobody is cancelled first


async def test_the_earliest_failing_stage_is_the_cause(tmp_path: Path) -> None:
    source = tmp_path / "doc"
    source.write_bytes(b"%!PS\n")
    driver = get_driver("pcl5")
    plan = Plan("application/postscript", "application/vnd.hp-PCL", "test",
                lambda context: [FailsAtOnce("the cause"), FailsAtOnce("a consequence"),
                                 FailsAtOnce("another consequence")])
    context = Context(driver, driver.capabilities, PrintOptions(), source)
    reported: set[str] = set()
    for attempt in range(30):  # Trio's scheduler reverses its batches at random
        transport = open_transport(f"file://{tmp_path}/out/")
        await transport.start_job(JobInfo(job_id=attempt + 1))
        try:
            await _run(plan, context, source, transport, Progress())
        except ConversionError as failure:
            reported.add(failure.message)
        await transport.abort_job()
        await trio.lowlevel.checkpoint()
    assert reported == {"the cause"}
