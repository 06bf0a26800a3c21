"""CUPS's ipptool conformance suites (ipp-1.1, ipp-2.0, ipp-everywhere) against the target."""

from __future__ import annotations

import struct

import pytest

from tests.peers.conformance import ConformanceDir, IppTarget
from tests.peers.documents import (
    RASTER_TYPES,
    ensure_raster_samples,
    missing_files,
    raster_samples,
    sniff_format,
)
from tests.peers.ipptool import IpptoolRun, parse_report
from tests.peers.suites import (
    DELAY_LINE,
    EVERYWHERE,
    EVERYWHERE_FIXED,
    FIXED_OVERRIDES_EXPECTATION,
    STOCK_DIR,
    WRONG_OVERRIDES_EXPECTATION,
    add_delays,
    fix_overrides_expectation,
)

REQUIRED_ATTRIBUTES_TEST = "PWG 5100.14 section 5.1/5.2 - Required Operations and Attributes"
KNOWN_WRONG_EXPECTATION = 'EXPECTED: overrides-supported WITH-VALUE "document-number"'


def assert_clean(run: IpptoolRun, target: IppTarget) -> None:
    context = f"{run.describe_failures()}\n(target {target.name} log: {target.log})"
    assert not run.errors, context
    assert run.outcomes, f"no tests reported:\n{run.stdout}\n{context}"
    assert run.failures == [], context


def statuses(run: IpptoolRun) -> dict[str, str]:
    return {outcome.name: outcome.status for outcome in run.outcomes}


@pytest.mark.peers
@pytest.mark.parametrize("suite", ["ipp-1.1.test", "ipp-2.0.test"])
def test_ipp_suite(ipp_target: IppTarget, conformance_dir: ConformanceDir, suite: str) -> None:
    run = conformance_dir.run(ipp_target.printer_uri, suite)
    assert_clean(run, ipp_target)
    assert statuses(run)["RFC 8011 section 4.2.1: Print-Job Operation"] == "PASS"


@pytest.mark.peers
def test_ipp_everywhere(ipp_target: IppTarget, conformance_dir: ConformanceDir) -> None:
    """ipp-everywhere.test with the one known-wrong expectation corrected: nothing fails."""
    plan = conformance_dir.plan_for(ipp_target.printer_uri)
    assert plan.print_tests, f"the target advertises no raster to print: {plan.capabilities}"
    assert not missing_files(conformance_dir.root, plan.samples)
    run = conformance_dir.run(ipp_target.printer_uri, EVERYWHERE_FIXED)
    assert_clean(run, ipp_target)
    seen = statuses(run)
    not_passed = {name: seen.get(name, "missing") for name in plan.print_tests
                  if seen.get(name) != "PASS"}
    assert not not_passed, (
        f"print tests for advertised {plan.capabilities} did not pass: {not_passed}"
    )


@pytest.mark.peers
def test_stock_ipp_everywhere_fails_only_the_known_wrong_expectation(
    ipp_target: IppTarget, conformance_dir: ConformanceDir
) -> None:
    """CUPS 2.4.2 wants overrides-supported "document-number"; PWG 5100.6 says
    "document-numbers". The unpatched suite (only DELAYs added) must fail on that alone."""
    conformance_dir.plan_for(ipp_target.printer_uri)
    run = conformance_dir.run(ipp_target.printer_uri, EVERYWHERE)
    assert not run.errors, run.describe_failures()
    expectations = [(outcome.name, detail) for outcome in run.failures
                    for detail in outcome.details if detail.startswith("EXPECTED:")]
    assert expectations == [(REQUIRED_ATTRIBUTES_TEST, KNOWN_WRONG_EXPECTATION)], (
        run.describe_failures()
    )


@pytest.mark.peers
def test_raster_samples_are_what_their_names_say(conformance_dir: ConformanceDir) -> None:
    suite_text = conformance_dir.suites[EVERYWHERE].read_text()
    made = ensure_raster_samples(conformance_dir.root, suite_text, {300}, {"black_1", "sgray_8"})
    assert len(made) == 2 * 6  # six sample names per type
    for sample in made:
        data = (conformance_dir.root / sample.path).read_bytes()
        assert sniff_format(data) == "image/pwg-raster"
        header = data[4:4 + 1796]
        assert header.startswith(b"PwgRaster\0")
        assert struct.unpack(">II", header[276:284]) == (300, 300), sample
        bits, _, _, _, color_space = struct.unpack(">5I", header[384:404])
        assert (color_space, bits) == RASTER_TYPES[sample.raster_type], sample
    skipped = [s for s in raster_samples(suite_text) if s not in made]
    assert all((conformance_dir.root / s.path).is_file() for s in skipped)


@pytest.mark.skipif(not (STOCK_DIR / EVERYWHERE).is_file(),
                    reason=f"needs {STOCK_DIR} (cups-ipp-utils); run scripts/install-peers.sh")
def test_suite_copies_change_only_delays_and_one_expectation() -> None:
    stock = (STOCK_DIR / EVERYWHERE).read_text()
    delayed = add_delays(stock)
    undelayed = "".join(line for line in delayed.splitlines(keepends=True)
                        if line != DELAY_LINE + "\n")
    assert undelayed == stock
    assert delayed.count(DELAY_LINE) == stock.count("\n{\n") + stock.startswith("{\n")
    fixed = fix_overrides_expectation(delayed)
    changed = [(old, new) for old, new in zip(delayed.splitlines(), fixed.splitlines(),
                                              strict=True) if old != new]
    assert changed == [(WRONG_OVERRIDES_EXPECTATION.rstrip("\n"),
                        FIXED_OVERRIDES_EXPECTATION.rstrip("\n"))]
    assert changed[0][1].endswith('WITH-VALUE "document-numbers"')
    with pytest.raises(AssertionError):
        fix_overrides_expectation(fixed)


REPORT = '''"ipp-1.1.test":
    RFC 8011 section 4.1.1: Bad request-id value 0                       [PASS]
        job-state (enum) = processing
    Get-Job-Attributes Until Job Complete                                [0001]
        job-state (enum) = processing
    Get-Job-Attributes Until Job Complete                                [FAIL]
        RECEIVED: 753 bytes in response
        status-code = successful-ok (successful-ok)
        EXPECTED: job-state WITH-VALUE ">6"
        GOT: job-state=5
    RFC 8011 section 4.2.2: Print-URI Operation                          [SKIP]

Summary: 3 tests, 1 passed, 1 failed, 1 skipped
Score: 66%
'''


def test_report_parser_reads_results_details_and_summary() -> None:
    outcomes, summary = parse_report(REPORT)
    assert [(o.name, o.status) for o in outcomes] == [
        ("RFC 8011 section 4.1.1: Bad request-id value 0", "PASS"),
        ("Get-Job-Attributes Until Job Complete", "FAIL"),
        ("RFC 8011 section 4.2.2: Print-URI Operation", "SKIP"),
    ]
    assert outcomes[1].details[2:] == ['EXPECTED: job-state WITH-VALUE ">6"', "GOT: job-state=5"]
    assert summary is not None and (summary.total, summary.failed) == (3, 1)
