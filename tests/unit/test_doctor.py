"""The rules of `ipp-gateway doctor` (gateway.doctor): what was observed -> level, words, fix."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from drivers import DeviceStatus, ProbeResult
from gateway import doctor
from gateway.cli import build_parser
from gateway.config import Config, ListenAddress, PrinterConfig
from gateway.doctor import Finding, Level

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
CERT = Path("/etc/ipp-gateway/server.crt")
MB = 1 << 20
OFFLINE = frozenset({"offline-report"})


def test_certificate_levels_follow_its_end() -> None:
    def at(left: timedelta, self_signed: bool = False) -> Finding:
        return doctor.certificate_finding(CERT, NOW + left, None, NOW, self_signed=self_signed)

    assert at(timedelta(days=400)).level is Level.OK
    assert "valid until 2026-04-05" in at(timedelta(days=400)).found
    soon = at(timedelta(days=5))
    assert (soon.level, soon.found) == (
        Level.WARNING, f"{CERT} ends in 5 days (2025-03-06 12:00 UTC)")
    assert "server.tls_certificate" in soon.fix
    assert at(timedelta(days=29, hours=23)).level is Level.WARNING
    assert at(timedelta(days=30)).level is Level.OK
    assert "ends in 3 hour(s)" in at(timedelta(hours=3)).found
    ended = at(timedelta(seconds=-1))
    assert ended.level is Level.FAIL and "clients refuse it" in ended.found
    assert "restart" in at(timedelta(days=-1), self_signed=True).fix


def test_unreadable_certificate_fails_and_a_missing_self_signed_one_is_fine() -> None:
    broken = doctor.certificate_finding(CERT, None, "certificate: not a PEM certificate", NOW,
                                        self_signed=False)
    assert broken.level is Level.FAIL and "server.tls_key" in broken.fix
    kept = Path("/var/spool/ipp-gateway/tls/server.crt")
    mine = doctor.certificate_finding(kept, None, "cannot read it", NOW, self_signed=True)
    assert mine.level is Level.FAIL and "remove /var/spool/ipp-gateway/tls" in mine.fix
    assert doctor.certificate_finding(None, None, None, NOW, self_signed=True).level is Level.OK
    off = doctor.certificate_finding(None, None, None, NOW, self_signed=False, tls=False)
    assert (off.level, off.found) == (Level.OK, "TLS is off (server.tls = false): ipp:// only")


@pytest.mark.parametrize(("free_mb", "level", "words"), [
    (2000, Level.OK, "2000 MB free"),
    (500, Level.WARNING, "less than server.max_job_mb (1024 MB)"),
    (40, Level.FAIL, "under limits.min_free_disk_mb (64 MB): new jobs are refused"),
    (10, Level.FAIL, "under the 32 MB the gateway needs to start"),
])
def test_spool_space_against_the_start_floor_the_job_floor_and_the_largest_job(
        free_mb: int, level: Level, words: str) -> None:
    finding = doctor.spool_finding(Path("/spool"), free_mb * MB, None, floor=32 * MB,
                                   min_free=64 * MB, max_job=1024 * MB)
    assert finding.level is level and words in finding.found, finding
    assert (finding.fix == "") == (level is Level.OK)


def test_spool_floor_off_and_spool_unreadable() -> None:
    off = doctor.spool_finding(Path("/s"), 40 * MB, None, floor=32 * MB, min_free=0,
                               max_job=MB)
    assert off.level is Level.OK
    bad = doctor.spool_finding(Path("/s"), None, "/s is not a directory", floor=0,
                               min_free=0, max_job=0)
    assert bad.level is Level.FAIL and "server.spool" in bad.fix


def probe(uri: str, reachable: bool | None, message: str = "", reasons: frozenset[str] =
          frozenset(), error: str = "") -> ProbeResult:
    status = None if reachable is None and not message else DeviceStatus(
        reasons, message, online=bool(reachable))
    return ProbeResult(uri, reachable, status, None, error)


def test_device_failures_by_transport_carry_their_own_fix() -> None:
    lpd = doctor.device_finding("office", "lpd", probe(
        "lpd://10.0.0.5/q", False, "lpd: cannot connect to 10.0.0.5:515: connection refused",
        OFFLINE), None, None)
    assert lpd.level is Level.FAIL and lpd.check == "printer office (lpd://10.0.0.5/q)"
    assert "connection refused" in lpd.found and "LPD server on" in lpd.fix
    usb = doctor.device_finding("label", "usb", probe(
        "usb://04f9:2042", False, "usb 04f9:2042: not connected", OFFLINE), None, None)
    assert usb.level is Level.FAIL and "plug the printer in" in usb.fix
    assert "ipp-gateway devices" in usb.fix
    queue = doctor.device_finding("office", "lpd", probe(
        "lpd://h/nope", True, "lpd: no such queue", frozenset({"other-error"})), None, None)
    assert queue.level is Level.FAIL and "queue name" in queue.fix
    denied = doctor.device_finding("label", "usb", probe(
        "usb://04f9:2042", False, error="usb 04f9:2042: access denied"), None, None)
    assert "udev rule" in denied.fix
    late = doctor.device_finding("laser", "socket", probe(
        "socket://h:9100", False, error="no answer within 3 s"), None, None)
    assert late.level is Level.FAIL and "9100" in late.fix


def test_device_that_answers_or_opens_is_ok_and_one_that_does_not_open_fails() -> None:
    serial = probe("serial:/dev/ttyUSB0", True, "serial /dev/ttyUSB0: port present")
    assert doctor.device_finding("tty", "serial", serial, "", None) == Finding(
        "printer tty (serial:/dev/ttyUSB0)", Level.OK, "serial /dev/ttyUSB0: port present; opens")
    busy = doctor.device_finding("tty", "serial", serial, "busy (in use by another program)",
                                 None)
    assert busy.level is Level.FAIL and "another program holds the port" in busy.fix
    denied = doctor.device_finding("tty", "serial", serial, "permission denied for user lp",
                                   None)
    assert "dialout" in denied.fix
    silent = probe("lpd://h/q?status=off", None)
    assert doctor.device_finding("q", "lpd", silent, None, "").found == "connects"
    assert doctor.device_finding("q", "lpd", silent, None, "connection refused"
                                 ).level is Level.FAIL
    assert doctor.device_finding("f", "file", probe("file:///out/", None), None, None
                                 ).found == "cannot tell without printing"
    jam = doctor.device_finding("laser", "socket", probe(
        "socket://h", True, "paper jam", frozenset({"media-jam-warning"})), None, None)
    assert jam.level is Level.WARNING


def test_listener_ipp_answer_other_program_and_nothing() -> None:
    assert doctor.listener_finding("*:631", "successful-ok", True, "").level is Level.OK
    other = doctor.listener_finding("*:631", None, True, "HTTP 404 Not Found")
    assert other.level is Level.FAIL and "no IPP answer (HTTP 404 Not Found)" in other.found
    down = doctor.listener_finding("*:631", None, False, "connection refused")
    assert down.level is Level.FAIL and "start the gateway" in down.fix


def test_dnssd_findings() -> None:
    assert doctor.dnssd_finding(False, "", (), (), None, gateway_up=False,
                                verified=False).level is Level.OK
    assert doctor.dnssd_finding(True, "", (), (), None, gateway_up=False,
                                verified=False).level is Level.WARNING
    gone = doctor.dnssd_finding(True, "avahi", ["Office"], ["Labels"], None, gateway_up=True,
                                verified=True)
    assert gone.level is Level.FAIL and '"Office"' in gone.found and "5353" in gone.fix
    seen = doctor.dnssd_finding(True, "zeroconf", [], ["Office"], None, gateway_up=True,
                                verified=True)
    assert (seen.level, seen.found) == (Level.OK, '"Office" registered (resolved via zeroconf)')
    broken = doctor.dnssd_finding(True, "avahi", [], [], "no bus", gateway_up=True,
                                  verified=True)
    assert broken.level is Level.FAIL and "avahi-daemon" in broken.fix


def test_dnssd_names_come_from_the_kept_record_while_the_wanted_name_is_the_same() -> None:
    printers = [PrinterConfig("office", "file:///o/", info="Office laser"),
                PrinterConfig("label", "file:///l/")]
    kept = {"office": ("Office laser", "Office laser (2)"), "label": ("old name", "old name")}
    assert doctor.wanted_names(printers, kept) == {"office": "Office laser (2)",
                                                   "label": "label"}


def test_ghostscript_is_needed_only_by_converting_printers() -> None:
    assert doctor.ghostscript_finding("/usr/bin/gs", "10.00.0", None, ["laser"]) == Finding(
        "ghostscript", Level.OK, "/usr/bin/gs version 10.00.0")
    missing = doctor.ghostscript_finding(None, None, None, ["laser"])
    assert missing.level is Level.FAIL and missing.fix == (
        "install Ghostscript: apt-get install ghostscript")
    assert doctor.ghostscript_finding(None, None, None, []).level is Level.WARNING
    assert doctor.ghostscript_finding("/usr/bin/gs", None, "exit 1: oops", ["x"]
                                      ).level is Level.FAIL


def test_report_lines_json_and_exit_status() -> None:
    findings = [doctor.ok("config", "valid"),
                doctor.warning("certificate", "ends in 5 days", "renew it"),
                doctor.fail("spool", "1 MB free", "free space")]
    assert doctor.render_text(findings).splitlines() == [
        "ok      config: valid",
        "warning certificate: ends in 5 days; fix: renew it",
        "FAIL    spool: 1 MB free; fix: free space"]
    assert doctor.exit_status(findings) == 1
    assert doctor.exit_status(findings[:2]) == 0
    report = json.loads(doctor.render_json(findings))
    assert report["status"] == 1
    assert report["findings"][1] == {"check": "certificate", "level": "warning",
                                     "found": "ends in 5 days", "fix": "renew it"}


def test_config_finding_and_what_is_probed() -> None:
    bad = doctor.config_finding("/etc/g.toml", "printer[0].driver: 'x' is not one of raw", 0)
    assert bad.level is Level.FAIL and "check-config /etc/g.toml" in bad.fix
    absent = doctor.config_finding("/etc/g.toml", "cannot read", 0, readable=False)
    assert "--config FILE" in absent.fix
    assert doctor.probe_host(ListenAddress("", 631)) == "127.0.0.1"
    assert doctor.probe_host(ListenAddress("::", 631)) == "::1"
    assert doctor.probe_host(ListenAddress("192.0.2.7", 631)) == "192.0.2.7"
    config = Config(spool=Path("/s"))
    assert [p.name for p in doctor.printers_of(config)] == ["default"]


def test_doctor_command_line() -> None:
    args = build_parser().parse_args(["doctor", "--config", "/g.toml", "--json",
                                      "--timeout", "1.5"])
    assert (args.command, args.config, args.json, args.timeout) == (
        "doctor", Path("/g.toml"), True, 1.5)
    assert build_parser().parse_args(["doctor"]).timeout == doctor.DEFAULT_TIMEOUT
