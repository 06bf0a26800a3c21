"""Issue 15: a device that refuses the format we sent (client-error-document-format-not-
supported) gets the job converted once more, in a format it lists, and sent again; a device
that refuses every format we can make gets the job aborted with the reason.

The gateway's core runs in this process (System, the printer worker, IPP through `dispatch`);
the device is tests/support/ipp_device.py on loopback, reached through the real ipp transport.
"""

from __future__ import annotations

from pathlib import Path

import trio

from gateway.config import Config, PrinterConfig
from gateway.core.system import System
from ippwire.enums import GroupTag, JobState, Operation, Status, ValueTag
from ippwire.model import Group
from ippwire.writer import request
from tests.peers import CORPUS_DIR
from tests.support.ipp_device import DeviceConfig, IppDevice
from tests.support.ipp_dispatch import call, job_attr
from tests.support.serving import serving

URI = "ipp://localhost:8631/ipp/print"
PDF = "application/pdf"
T = ValueTag


async def _print_pdf(tmp_path: Path, device: IppDevice) -> tuple[int, str]:
    """Print the corpus PDF on a raw printer passing PDF through to `device`; the job's end
    state and message."""
    printer = PrinterConfig("dev", device.uri(query="poll=0.1"), driver="raw", formats=(PDF,),
                            status_interval=0)
    system = System(Config(spool=tmp_path / "spool", printers=(printer,)))
    document = (CORPUS_DIR / "testpage-1p-vector.pdf").read_bytes()
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        reply = await call(system, request(Operation.PRINT_JOB, printer_uri=URI, attrs={
            "document-format": (T.MIME_MEDIA_TYPE, PDF)}), document)
        assert reply.code == Status.OK, reply
        job_id = job_attr(reply, "job-id")
        assert isinstance(job_id, int)
        job = system.jobs[job_id]
        with trio.fail_after(60):
            while not job.state.is_terminal:  # noqa: ASYNC110 - the worker moves it
                await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    return job.state, job.message


async def test_a_refused_pdf_is_converted_once_and_sent_again(tmp_path: Path) -> None:
    config = DeviceConfig(formats=(PDF, "application/postscript"), refuse_formats=(PDF,),
                          create_job=False)
    async with serving(IppDevice(config)) as device:
        state, message = await _print_pdf(tmp_path, device)
    assert state == JobState.COMPLETED, message
    [job] = device.jobs  # the refused attempt made no job there
    assert job.document_format == "application/postscript" and job.complete
    assert bytes(job.data).startswith(b"%!PS")


async def test_a_device_that_takes_nothing_else_aborts_the_job(tmp_path: Path) -> None:
    config = DeviceConfig(formats=(PDF,), refuse_formats=(PDF,), create_job=False)
    async with serving(IppDevice(config)) as device:
        state, message = await _print_pdf(tmp_path, device)
    assert state == JobState.ABORTED
    assert "does not print application/pdf" in message
    assert device.jobs == []


async def test_the_device_state_reasons_and_supplies_show_on_our_printer(tmp_path: Path) -> None:
    """Their printer-state-reasons (toner-low here) and marker-* values become ours."""
    async with serving(IppDevice()) as device:
        printer = PrinterConfig("dev", device.uri(), driver="postscript", status_interval=0.2)
        system = System(Config(spool=tmp_path / "spool", printers=(printer,)))
        async with trio.open_nursery() as nursery:
            await nursery.start(system.run)
            with trio.fail_after(30):
                while not system.printers["dev"].supplies:  # noqa: ASYNC110 - its poll
                    await trio.sleep(0.05)
            reply = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES,
                                               printer_uri=URI))
            nursery.cancel_scope.cancel()
    group = reply.group(GroupTag.PRINTER)
    assert group is not None, reply
    assert "toner-low-report" in _plain(group, "printer-state-reasons")
    assert _plain(group, "marker-names") == ["Black Toner", "Drum"]
    assert _plain(group, "marker-levels") == [7, 80]
    assert _plain(group, "marker-types") == ["toner", "opc"]
    supply = [v for v in _plain(group, "printer-supply") if isinstance(v, bytes)]
    assert supply[0].startswith(b"index=1;class=supplyThatIsConsumed;type=toner;")
    assert b"level=7;" in supply[0]


def _plain(group: Group, name: str) -> list[object]:
    attribute = group.get(name)
    assert attribute is not None, name
    return list(attribute.plain)
