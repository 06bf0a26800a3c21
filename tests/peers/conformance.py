"""One directory holding the suite copies and every document they name, shared by a session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.peers import documents
from tests.peers.ipptool import IpptoolRun, query_capabilities, run_ipptool
from tests.peers.suites import EVERYWHERE, Capabilities, expected_print_tests, write_suites

# ipp-1.1.test prints $filename; ipptool derives document-format from the extension.
DEFAULT_DOCUMENT = "document-a4.pdf"
IPPTOOL_TIMEOUT = 300.0


@dataclass
class IppTarget:
    """A printer the conformance suites run against: our gateway or ippeveprinter."""

    name: str
    printer_uri: str
    log: Path


@dataclass
class PrintPlan:
    """What a target advertises and the raster print tests ipp-everywhere.test owes it."""

    capabilities: Capabilities
    print_tests: list[str]
    samples: list[str]


@dataclass
class ConformanceDir:
    root: Path
    suites: dict[str, Path]

    @property
    def document(self) -> Path:
        return self.root / DEFAULT_DOCUMENT

    def plan_for(self, uri: str) -> PrintPlan:
        """Ask the target what it prints and make the raster samples it will be sent.

        Samples already made for an earlier target are kept, so this is cheap after the first.
        """
        capabilities = query_capabilities(uri, self.root)
        suite_text = self.suites[EVERYWHERE].read_text()
        made = documents.ensure_raster_samples(
            self.root, suite_text, capabilities.resolutions, capabilities.raster_types)
        return PrintPlan(capabilities, expected_print_tests(suite_text, capabilities),
                         [sample.path for sample in made])

    def run(self, uri: str, suite: str) -> IpptoolRun:
        return run_ipptool(uri, self.suites[suite], document=self.document,
                           timeout=IPPTOOL_TIMEOUT)


def make_conformance_dir(root: Path) -> ConformanceDir:
    suites = write_suites(root)
    documents.ensure_plain_documents(root)
    return ConformanceDir(root, suites)
