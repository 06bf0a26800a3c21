"""Run ipptool against a printer URI and read its `-t` report.

The report looks like::

    "ipp-1.1.test":
        RFC 8011 section 4.1.1: Bad request-id value 0                       [PASS]
        Get-Job-Attributes Until Job Complete                                [0001]
        RFC 8011 section 4.2.6: Get-Jobs Operation (which-jobs=completed)    [FAIL]
            RECEIVED: 72 bytes in response
            EXPECTED: job-id
    Summary: 37 tests, 28 passed, 4 failed, 5 skipped

Numbered brackets are repeats of a test still in progress; indented lines under a test are its
details (EXPECTED/GOT lines, DISPLAYed attributes). Errors such as an unreadable FILE go to
stderr and end the file early.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.procs import find_program
from tests.peers.suites import Capabilities

RUN_TIMEOUT = 600.0
RESULT_LINE = re.compile(r"^    (?P<name>\S.*?)\s*\[(?P<status>PASS|FAIL|SKIP|\d{4})\]$")
DETAIL_LINE = re.compile(r"^        (?P<text>\S.*)$")
SUMMARY_LINE = re.compile(
    r"^Summary: (?P<total>\d+) tests, (?P<passed>\d+) passed, "
    r"(?P<failed>\d+) failed, (?P<skipped>\d+) skipped$",
    re.MULTILINE,
)
DISPLAY_LINE = re.compile(r"^\s+(?P<name>[a-z0-9-]+) \((?P<syntax>[^)]*)\) = (?P<values>.*)$")
FAILURE_DETAIL = ("EXPECTED:", "GOT:", "status-code", "RECEIVED:", "BAD ")
MAX_DETAILS_SHOWN = 12


@dataclass
class TestOutcome:
    name: str
    status: str  # PASS, FAIL or SKIP
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Summary:
    total: int
    passed: int
    failed: int
    skipped: int


@dataclass
class IpptoolRun:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    outcomes: list[TestOutcome]
    summary: Summary | None

    def with_status(self, status: str) -> list[TestOutcome]:
        return [outcome for outcome in self.outcomes if outcome.status == status]

    @property
    def failures(self) -> list[TestOutcome]:
        return self.with_status("FAIL")

    @property
    def errors(self) -> list[str]:
        """ipptool's own complaints (unreadable files, connection errors, bad suites)."""
        return [line for line in self.stderr.splitlines() if line.strip()]

    def describe_failures(self) -> str:
        lines = [f"{' '.join(self.argv)}  ->  {self.summary}"]
        lines += [f"ipptool: {error}" for error in self.errors]
        for outcome in self.failures:
            lines.append(f"FAIL {outcome.name}")
            expectations = [d for d in outcome.details if d.startswith(FAILURE_DETAIL)]
            lines += [f"    {detail}" for detail in expectations[:MAX_DETAILS_SHOWN]]
        return "\n".join(lines)


def parse_report(text: str) -> tuple[list[TestOutcome], Summary | None]:
    outcomes: list[TestOutcome] = []
    current: TestOutcome | None = None
    for line in text.splitlines():
        result = RESULT_LINE.match(line)
        if result:
            status = result["status"]
            current = None if status.isdigit() else TestOutcome(result["name"], status)
            if current:
                outcomes.append(current)
            continue
        detail = DETAIL_LINE.match(line)
        if detail and current is not None:
            current.details.append(detail["text"])
    found = SUMMARY_LINE.search(text)
    summary = None
    if found:
        total, passed, failed, skipped = (int(found[key]) for key in
                                          ("total", "passed", "failed", "skipped"))
        summary = Summary(total, passed, failed, skipped)
    return outcomes, summary


def run_ipptool(
    uri: str,
    suite: Path,
    *,
    document: Path | None = None,
    options: tuple[str, ...] = ("-t", "-I", "-R"),
    timeout: float = RUN_TIMEOUT,
) -> IpptoolRun:
    """Run one suite with cwd = its directory (where the documents it names live)."""
    argv = [find_program("ipptool") or "ipptool", *options]
    if document is not None:
        argv += ["-f", str(document)]
    argv += [uri, suite.name]
    done = subprocess.run(argv, cwd=suite.parent, capture_output=True, text=True,
                          timeout=timeout, check=False)
    outcomes, summary = parse_report(done.stdout)
    return IpptoolRun(argv, done.returncode, done.stdout, done.stderr, outcomes, summary)


CAPABILITY_QUERY = """{
\tNAME "Capabilities for the harness"
\tOPERATION Get-Printer-Attributes
\tGROUP operation-attributes-tag
\tATTR charset attributes-charset utf-8
\tATTR naturalLanguage attributes-natural-language en
\tATTR uri printer-uri $uri
\tATTR name requesting-user-name $user
\tATTR keyword requested-attributes %s
\tSTATUS successful-ok
%s}
"""
CAPABILITY_ATTRIBUTES = (
    "pwg-raster-document-resolution-supported",
    "pwg-raster-document-type-supported",
    "compression-supported",
)


def query_attributes(uri: str, workdir: Path, names: tuple[str, ...]) -> dict[str, list[str]]:
    """Get-Printer-Attributes for `names`, as ipptool prints their values."""
    suite = workdir / "harness-query.test"
    displays = "".join(f"\tDISPLAY {name}\n" for name in names)
    suite.write_text(CAPABILITY_QUERY % (",".join(names), displays))
    run = run_ipptool(uri, suite, options=("-t",), timeout=30.0)
    # ipptool prints no summary line for a single test.
    assert [o.status for o in run.outcomes] == ["PASS"], run.stdout + run.stderr
    values: dict[str, list[str]] = {}
    for detail in run.outcomes[0].details:
        shown = DISPLAY_LINE.match(" " + detail)
        if shown:
            values[shown["name"]] = shown["values"].split(",")
    return values


def query_capabilities(uri: str, workdir: Path) -> Capabilities:
    values = query_attributes(uri, workdir, CAPABILITY_ATTRIBUTES)
    square = [v.removesuffix("dpi") for v in values.get(CAPABILITY_ATTRIBUTES[0], [])]
    return Capabilities(
        resolutions=frozenset(int(v) for v in square if v.isdigit()),
        raster_types=frozenset(values.get(CAPABILITY_ATTRIBUTES[1], [])),
        compressions=frozenset(values.get(CAPABILITY_ATTRIBUTES[2], [])),
    )
