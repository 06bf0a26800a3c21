"""CUPS as the real driverless client: `lpadmin -m everywhere`, then `lp` through the gateway."""

from __future__ import annotations

import pytest

from tests.peers import CORPUS_DIR
from tests.peers.cupsd import Cupsd, expected_output_format
from tests.peers.documents import sniff_format
from tests.peers.gateway_proc import GatewayProcess
from tests.peers.procs import log_tail

QUEUE = "gw"
DOCUMENTS = {
    "application/pdf": CORPUS_DIR / "testpage-1p-vector.pdf",
    "image/jpeg": CORPUS_DIR / "ladybird-2560x1600.jpg",
}
COMPLETION_TIMEOUT = 120.0


def diagnostics(cupsd: Cupsd, gateway: GatewayProcess) -> str:
    jobs = cupsd.client("lpstat", "-W", "all", "-l", "-o", QUEUE)
    return (f"lpstat:\n{jobs}\ncupsd error_log:\n{log_tail(cupsd.error_log, 40)}\n"
            f"gateway log:\n{log_tail(gateway.log, 40)}")


@pytest.mark.peers
def test_cups_prints_pdf_and_jpeg_through_the_gateway(
    gateway: GatewayProcess, cupsd: Cupsd
) -> None:
    ppd = cupsd.add_everywhere_queue(QUEUE, gateway.printer_uri)
    ppd_text = ppd.read_text(errors="replace")
    job_ids = {cupsd.submit(QUEUE, document) for document in DOCUMENTS.values()}
    assert len(job_ids) == len(DOCUMENTS)

    completed = cupsd.wait_completed(QUEUE, job_ids, COMPLETION_TIMEOUT)

    assert completed == job_ids, diagnostics(cupsd, gateway)
    outputs = gateway.output_files()
    assert len(outputs) == len(DOCUMENTS), (outputs, diagnostics(cupsd, gateway))
    sent = sorted(expected_output_format(ppd_text, mime) for mime in DOCUMENTS)
    received = sorted(str(sniff_format(path.read_bytes()[:16])) for path in outputs)
    assert received == sent, (
        [(path.name, path.stat().st_size, path.read_bytes()[:16]) for path in outputs],
        diagnostics(cupsd, gateway),
    )
