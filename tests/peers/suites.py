"""Working copies of CUPS's ipptool suites, and which of their print tests must run.

The copies are written next to the sample documents because ipptool resolves `FILE` and
`INCLUDE` paths relative to the suite file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

STOCK_DIR = Path("/usr/share/cups/ipptool")
SUITES = ("ipp-1.1.test", "ipp-2.0.test", "ipp-everywhere.test")
EVERYWHERE = "ipp-everywhere.test"
EVERYWHERE_FIXED = "ipp-everywhere-fixed.test"

# ipptool waits 5 s between server-error-busy retries; a quoted "initial,repeat" DELAY in
# every test cuts a one-job-at-a-time printer's run from minutes to seconds.
DELAY_LINE = '\tDELAY "0,0.25"'
TEST_START = re.compile(r"^\{[ \t]*$", re.MULTILINE)

# CUPS 2.4.2's ipp-everywhere.test wants the keyword "document-number" in
# overrides-supported; PWG 5100.6 names it "document-numbers".
WRONG_OVERRIDES_EXPECTATION = (
    "\tEXPECT overrides-supported OF-TYPE keyword IN-GROUP printer-attributes-tag"
    ' WITH-VALUE "document-number"\n'
)
FIXED_OVERRIDES_EXPECTATION = WRONG_OVERRIDES_EXPECTATION.replace(
    '"document-number"', '"document-numbers"'
)

TEST_BLOCK = re.compile(r"^\{[ \t]*$(.*?)^\}[ \t]*$", re.MULTILINE | re.DOTALL)
TEST_NAME = re.compile(r'^\s*NAME\s+"([^"]*)"', re.MULTILINE)
NEEDED_DEFINE = re.compile(r"^\s*SKIP-IF-NOT-DEFINED\s+(\S+)", re.MULTILINE)
# ipptool cuts names to this width in its -t report.
REPORT_NAME_WIDTH = 68


@dataclass(frozen=True)
class Capabilities:
    """What the target advertises that decides which print tests ipp-everywhere.test runs."""

    resolutions: frozenset[int]
    raster_types: frozenset[str]
    compressions: frozenset[str]

    def defines(self) -> set[str]:
        """The HAVE_* variables ipp-everywhere.test's first test would define."""
        names = {f"HAVE_{dpi}DPI" for dpi in self.resolutions}
        names |= {f"HAVE_{kind.upper()}" for kind in self.raster_types}
        names |= {f"HAVE_{method.upper()}" for method in self.compressions & {"deflate", "gzip"}}
        return names


def add_delays(text: str) -> str:
    blocks = len(TEST_START.findall(text))
    patched, count = TEST_START.subn("{\n" + DELAY_LINE, text)
    assert count == blocks > 0, f"expected test blocks to patch, found {count}"
    return patched


def fix_overrides_expectation(text: str) -> str:
    """Change only the known-wrong expectation; insist it occurs exactly once."""
    occurrences = text.count(WRONG_OVERRIDES_EXPECTATION)
    assert occurrences == 1, f"known-wrong overrides expectation found {occurrences} times"
    fixed = text.replace(WRONG_OVERRIDES_EXPECTATION, FIXED_OVERRIDES_EXPECTATION)
    changed = [pair for pair in zip(text.splitlines(), fixed.splitlines(), strict=True)
               if pair[0] != pair[1]]
    assert len(changed) == 1, changed
    return fixed


def write_suites(dest: Path, stock_dir: Path = STOCK_DIR) -> dict[str, Path]:
    """Write DELAY-patched copies of SUITES plus EVERYWHERE_FIXED into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    written = {}
    for name in SUITES:
        written[name] = dest / name
        written[name].write_text(add_delays((stock_dir / name).read_text()))
    fixed = fix_overrides_expectation(written[EVERYWHERE].read_text())
    written[EVERYWHERE_FIXED] = dest / EVERYWHERE_FIXED
    written[EVERYWHERE_FIXED].write_text(fixed)
    return written


def report_name(name: str) -> str:
    return name[:REPORT_NAME_WIDTH].rstrip()


def expected_print_tests(suite_text: str, capabilities: Capabilities) -> list[str]:
    """Names (as ipptool reports them) of the raster print tests the target should get."""
    defined = capabilities.defines()
    names = []
    for block in TEST_BLOCK.findall(suite_text):
        if "SKIP-IF-MISSING" not in block:
            continue
        needed = set(NEEDED_DEFINE.findall(block))
        name = TEST_NAME.search(block)
        if name and needed <= defined:
            names.append(report_name(name[1]))
    return names
