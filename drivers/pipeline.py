"""Print one document: the driver plans the stages for the format, the document streams
through them into a Transport, and progress is reported.

The caller owns the transport's job: it calls `start_job` before and `end_job` (or
`abort_job`) after `print_document`, which only sends. Failures surface as one DriverError:
ConversionError (abort with document-format-error) or the transport's TransportError.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable, AsyncIterator, Callable
from functools import partial
from pathlib import Path

import trio

from drivers import localfile
from drivers.driver import Driver
from drivers.errors import ConversionError, DriverError
from drivers.filters.planner import Context, Plan
from drivers.filters.sniff import SNIFF_BYTES, sniff_format
from drivers.filters.stage import CHUNK, Inbox, Outbox, Progress, Stage, open_channel
from drivers.model.capabilities import Capabilities, PrintOptions
from drivers.model.formats import OCTET_STREAM, TEXT, canonical_format
from drivers.transport import Transport

log = logging.getLogger(__name__)
PASSTHROUGH_READ = 1 << 20

Source = Path | AsyncIterable[bytes]


async def print_document(
    source: Source,
    fmt: str,
    driver: Driver,
    caps: Capabilities,
    options: PrintOptions,
    transport: Transport,
    progress_callback: Callable[[Progress], None] | None = None,
) -> Progress:
    """Convert `source` (the spooled file, or a stream of chunks) and send it to `transport`."""
    progress = Progress(on_change=progress_callback)
    head, source = await _peek(source)
    if not head:
        raise ConversionError("the document is empty")
    concrete, chosen = _choose_plan(canonical_format(fmt), head, driver, caps)
    copies = driver.copy_plan(chosen, concrete, caps, options)
    log.info("printing %s on %s: %s%s", fmt, driver.name, chosen.steps,
             f" (sent {copies.passes} times for collated copies)" if copies.passes > 1 else "")
    path = source if isinstance(source, Path) else None
    context = Context(driver, caps, copies.options, path)
    progress.copies_each = copies.copies_each
    progress.path = chosen.steps
    if copies.passes > 1 and path is None:
        raise ConversionError("copies of a streamed document need it spooled to a file")
    transport.set_document_format(chosen.output_format)
    for _ in range(copies.passes):
        await _run(chosen, context, source, transport, progress)
    return progress


def _choose_plan(fmt: str, head: bytes, driver: Driver, caps: Capabilities) -> tuple[str, Plan]:
    """The format the document is printed as (octet-stream sniffed), and its plan."""
    sniffed = sniff_format(head[:SNIFF_BYTES])
    if fmt == OCTET_STREAM:
        direct = driver.plan(fmt, caps)  # a raw queue takes anything as it is
        if direct is not None:
            return fmt, direct
        if sniffed is None:
            raise ConversionError("cannot tell the document's format from its first bytes")
        fmt = sniffed
    elif sniffed not in (None, TEXT, fmt):
        raise ConversionError(f"the document is {sniffed}, not the {fmt} it was sent as")
    chosen = driver.plan(fmt, caps)
    if chosen is None:
        supported = ", ".join(driver.accepted_formats(caps))
        raise ConversionError(f"{driver.name} printers cannot print {fmt} (only {supported})")
    return fmt, chosen


async def _peek(source: Source) -> tuple[bytes, Source]:
    """The document's first bytes, and a source that still yields all of them."""
    if isinstance(source, Path):
        return await localfile.read_head(source, SNIFF_BYTES), source
    iterator = aiter(source)
    head = b""
    async for chunk in iterator:
        head += chunk
        if len(head) >= SNIFF_BYTES:
            break

    async def replay() -> AsyncIterator[bytes]:
        if head:
            yield head
        async for rest in iterator:
            yield rest

    return head, replay()


async def _run(chosen: Plan, context: Context, source: Source, transport: Transport,
               progress: Progress) -> None:
    stages = chosen.stages(context)
    if not stages and isinstance(source, Path):
        await transport.send_file(source, progress.sent)  # pass-through: the kernel copies
        return
    reporter = next((s for s in reversed(stages) if s.reports_pages), None)
    idle = Progress()
    reads_path = chosen.reads_path and context.input_path is not None
    failures: dict[int, DriverError] = {}  # by stage position
    try:
        async with trio.open_nursery() as nursery:
            send, receive = open_channel()
            if reads_path:
                await send.aclose()
            else:
                # A streamed pass-through takes big pieces (each send is a round trip).
                nursery.start_soon(_feed, source, send, PASSTHROUGH_READ if not stages else CHUNK)
            for position, stage in enumerate(stages):
                next_send, next_receive = open_channel()
                tracker = progress if stage is reporter else idle
                nursery.start_soon(_run_stage, stage, receive, next_send, tracker,
                                   partial(failures.setdefault, position))
                receive = next_receive
            await _deliver(receive, transport, progress)
    except ExceptionGroup as group:
        # The earliest stage that failed is the cause: the stages after it fail for want of
        # its output ("no readable raster" after Ghostscript gave up), in whatever order the
        # tasks happen to end. A stage whose neighbour went away raises a Broken/Closed
        # channel error, never a DriverError, so it cannot mask the cause.
        if failures:
            raise failures[min(failures)] from None
        raise _first_driver_error(group) from None


async def _run_stage(stage: Stage, inbox: Inbox, outbox: Outbox, progress: Progress,
                     record: Callable[[DriverError], object]) -> None:
    try:
        await stage.run(inbox, outbox, progress)
    except DriverError as failure:
        record(failure)
        raise


async def _feed(source: Source, outbox: Outbox, read_size: int) -> None:
    async with outbox:
        if isinstance(source, Path):
            async with await trio.open_file(source, "rb") as file:
                while chunk := await file.read(read_size):
                    await outbox.send(chunk)
        else:
            async for chunk in source:
                if chunk:
                    await outbox.send(bytes(chunk))


async def _deliver(inbox: Inbox, transport: Transport, progress: Progress) -> None:
    async with inbox:
        async for chunk in inbox:
            await transport.send_all(chunk)
            progress.sent(len(chunk))


def _first_driver_error(group: ExceptionGroup) -> Exception:
    """The failure that matters: the first DriverError (a stage's or the transport's), not the
    broken channels it left behind; anything else is a bug and stays as it is."""
    errors: list[Exception] = []
    pending: list[Exception] = [group]
    while pending:
        error = pending.pop(0)
        if isinstance(error, ExceptionGroup):
            pending[:0] = list(error.exceptions)
        else:
            errors.append(error)
    for error in errors:
        if isinstance(error, DriverError):
            return error
    for error in errors:
        if not isinstance(error, trio.BrokenResourceError | trio.ClosedResourceError):
            return error
    return errors[0]
