"""Fixtures that start real processes: our gateway, ippeveprinter, a private cupsd.

Tests that need peers skip with the reason when a program is missing (or root is needed and
we are not root; tests/peers/require.py); `scripts/install-peers.sh` installs them.
`IPP_TARGETS=gateway,ippeveprinter` runs the conformance tests against the reference printer
too.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.peers.conformance import ConformanceDir, IppTarget, make_conformance_dir
from tests.peers.cupsd import PROGRAMS as CUPS_PROGRAMS
from tests.peers.cupsd import Cupsd, running_cupsd
from tests.peers.gateway_proc import GatewayProcess, start_gateway
from tests.peers.ippeveprinter import IppEvePrinter, running_ippeveprinter
from tests.peers.require import require_programs, require_root
from tests.support.driver_printing import Document, make_documents
from tests.support.fake_lpd import FakeLpd
from tests.support.serving import serving


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """Our gateway on 127.0.0.1:<free port> printing into a file-transport directory."""
    process = start_gateway(tmp_path / "gateway")
    try:
        yield process
    finally:
        process.stop()
        # Conformance runs leave hundreds of MB of raster jobs; the log stays for post-mortems.
        shutil.rmtree(process.output_dir, ignore_errors=True)
        shutil.rmtree(process.spool, ignore_errors=True)


@pytest.fixture
async def fake_lpd() -> AsyncIterator[FakeLpd]:
    """A fault-injecting LPD server in this process (set its `faults` to misbehave)."""
    async with serving(FakeLpd()) as peer:
        yield peer


@pytest.fixture
def ippeveprinter(tmp_path: Path) -> Iterator[IppEvePrinter]:
    require_programs("ippeveprinter", "dbus-daemon")
    with running_ippeveprinter(tmp_path / "ippeveprinter") as printer:
        yield printer


def ipp_target_names() -> list[str]:
    names = os.environ.get("IPP_TARGETS", "gateway").split(",")
    return [name.strip() for name in names if name.strip()]


@pytest.fixture(params=ipp_target_names())
def ipp_target(request: pytest.FixtureRequest) -> IppTarget:
    """The printer under test: our gateway, or ippeveprinter when IPP_TARGETS names it."""
    name: str = request.param
    if name not in ("gateway", "ippeveprinter"):
        raise ValueError(f"IPP_TARGETS: unknown target {name!r}")
    process: GatewayProcess | IppEvePrinter = request.getfixturevalue(name)
    return IppTarget(name, process.printer_uri, process.log)


@pytest.fixture(scope="session")
def conformance_dir(tmp_path_factory: pytest.TempPathFactory) -> ConformanceDir:
    """Suite copies and their documents, made once per session."""
    require_programs("ipptool", "gs")
    return make_conformance_dir(tmp_path_factory.mktemp("ipptool"))


@pytest.fixture
def cupsd() -> Iterator[Cupsd]:
    require_root("cupsd runs as root and its filters as lp")
    require_programs(*CUPS_PROGRAMS)
    with running_cupsd() as server:
        yield server


@pytest.fixture(scope="module")
def documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Document]:
    """The driver-level pipeline tests' documents by name (tests/support/driver_printing.py)."""
    return make_documents(tmp_path_factory.mktemp("corpus"))
