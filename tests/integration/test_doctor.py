"""Issue 13, `ipp-gateway doctor` as a person runs it, beside a real gateway process: a dead
LPD peer, a USB printer that is not attached, a certificate that ends in five days and a full
spool disk (a small tmpfs, filled) are each reported with their fix and a non-zero exit; a
healthy setup exits 0."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import CONFIG_NAME, PrinterTable, start_configured_gateway
from tests.peers.netns import two_host_lan
from tests.peers.procs import LOOPBACK, free_port, wait_until
from tests.peers.require import require_programs, require_root
from tests.support.tmpfs import tmpfs

TMPFS_MB = 40  # the gateway starts on it (32 MB floor); the test then fills it
ABSENT_USB = "usb://1d6b:f00d"  # the Linux Foundation's vendor id, a product nobody attached


def run_doctor(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway", "doctor", "--config", str(config),
                           *extra], capture_output=True, text=True, timeout=60, check=False,
                          cwd=REPO_ROOT)


def findings(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    """The exit status and the JSON findings by check (a printer's by "printer NAME")."""
    done = run_doctor(config, "--json")
    report = json.loads(done.stdout)
    assert report["status"] == done.returncode, done.stdout
    by_check = {}
    for finding in report["findings"]:
        check = finding["check"]
        key = " ".join(check.split()[:2]) if check.startswith("printer ") else check
        by_check[key] = finding
    return done.returncode, by_check


def certificate_pair(directory: Path, days_left: float) -> tuple[Path, Path]:
    """A self-signed localhost certificate ending `days_left` days from now, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                   .public_key(key.public_key()).serial_number(x509.random_serial_number())
                   .not_valid_before(now - timedelta(days=30))
                   .not_valid_after(now + timedelta(days=days_left))
                   .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                                  critical=False)
                   .sign(key, hashes.SHA256()))
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def fill(directory: Path, leave_mb: int) -> None:
    """Write a file that leaves about `leave_mb` MB free on `directory`'s filesystem."""
    stats = os.statvfs(directory)
    free = stats.f_bavail * stats.f_frsize
    (directory / "filler").write_bytes(b"\0" * max(0, free - (leave_mb << 20)))


def test_doctor_reports_each_provoked_problem_with_its_fix(tmp_path: Path) -> None:
    require_root("a tmpfs mounted as the spool, to fill it")
    require_programs("gs")
    work = tmp_path / "gw"
    certificate, key = certificate_pair(tmp_path / "tls", days_left=5)
    dead_lpd = f"lpd://{LOOPBACK}:{free_port()}/office"  # a port nothing listens on
    printers = [PrinterTable.on_device("office", dead_lpd),
                PrinterTable.on_device("label", ABSENT_USB),
                PrinterTable("files")]
    # Written straight after the [server] table's own keys, so these two belong to it.
    toml = (f"tls_certificate = {json.dumps(str(certificate))}\n"
            f"tls_key = {json.dumps(str(key))}\n\n[dnssd]\nenabled = false\n")
    with tmpfs(work / "spool", TMPFS_MB) as spool, \
            start_configured_gateway(work, printers, extra_toml=toml):
        fill(spool, leave_mb=1)
        config = work / CONFIG_NAME
        status, found = findings(config)
        text = run_doctor(config)

    assert status == 1
    assert found["config"]["level"] == "ok"
    assert [f["level"] for check, f in found.items() if check.startswith("listen ")] == ["ok"]
    office = found["printer office"]
    assert (office["level"], "connection refused" in office["found"]) == ("FAIL", True), office
    assert "LPD server on" in office["fix"], office
    label = found["printer label"]
    assert (label["level"], "not connected" in label["found"]) == ("FAIL", True), label
    assert "plug the printer in" in label["fix"], label
    assert found["printer files"]["level"] == "ok"
    cert = found["certificate"]
    assert cert["level"] == "warning", cert
    assert f"{certificate} ends in 4 days" in cert["found"], cert
    assert "server.tls_certificate" in cert["fix"], cert
    full = found["spool"]
    assert full["level"] == "FAIL", full
    assert full["found"].startswith(f"{spool}: 1 MB free") or \
        full["found"].startswith(f"{spool}: 0 MB free"), full
    assert "free space" in full["fix"], full
    assert found["ghostscript"]["level"] == "ok"

    # The same, for people: one line each, its level first and its fix last.
    assert text.returncode == 1
    lines = {" ".join(line.split()[1:3]): line for line in text.stdout.splitlines()}
    for check, level in (("printer office", "FAIL"), ("printer label", "FAIL"),
                         ("certificate: " + str(certificate), "warning"),
                         ("spool: " + f"{spool}:", "FAIL")):
        assert lines[check].startswith(f"{level} ") and "; fix: " in lines[check], lines
    assert len(lines) == len(found)


def test_doctor_exits_0_when_all_is_well(tmp_path: Path) -> None:
    require_programs("gs")
    with socket.socket() as printer:  # an AppSocket printer that takes connections
        printer.bind((LOOPBACK, 0))
        printer.listen(4)
        device = f"socket://{LOOPBACK}:{printer.getsockname()[1]}"
        printers = [PrinterTable.on_device("laser", device, driver="pcl5"),
                    PrinterTable("files")]
        work = tmp_path / "gw"
        with start_configured_gateway(work, printers, extra_toml="[dnssd]\nenabled = false"):
            status, found = findings(work / CONFIG_NAME)
    assert status == 0, found
    assert {finding["level"] for finding in found.values()} <= {"ok", "warning"}, found
    assert found["printer laser"]["level"] == "ok"
    assert found["certificate"]["level"] == "ok"  # the self-signed one made at the start
    assert "valid until" in found["certificate"]["found"]
    assert found["ghostscript"]["found"].startswith(("/", "gs"))


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["avahi", "zeroconf"])
def test_doctor_finds_the_printer_registered_on_dns_sd(tmp_path: Path, backend: str) -> None:
    """In a network namespace of its own (nothing multicasts on this machine's network): the
    gateway registers through `backend`, and doctor asks the same responder for the name."""
    require_root("network namespaces and avahi-daemon")
    require_programs("ip", "avahi-daemon", "dbus-daemon", "gs")
    with two_host_lan() as lan:
        if backend == "avahi":
            lan.gateway.start_avahi(f"doctor{os.getpid() % 10000}")
        work = tmp_path / "gw"
        printer = PrinterTable("office", extra={"info": "Doctor office"})
        with start_configured_gateway(work, [printer], netns=lan.gateway,
                                      extra_toml=f'[dnssd]\nbackend = "{backend}"') as gateway:
            wait_until(lambda: "dnssd: printer office: registered" in gateway.log.read_text(
                errors="replace"), 30.0, "the DNS-SD registration")
            argv = [sys.executable, "-m", "gateway", "doctor", "--config",
                    str(work / CONFIG_NAME), "--json"]
            done = lan.gateway.run(argv, cwd=REPO_ROOT)
            # The gateway's record now claims a name nobody registered: asked, it is missing.
            (gateway.spool / "dnssd.json").write_text(json.dumps(
                {"office": {"wanted": "Doctor office", "chosen": "Doctor office (7)"}}))
            wrong = lan.gateway.run(argv, cwd=REPO_ROOT)
    report = json.loads(done.stdout)
    [dnssd] = [f for f in report["findings"] if f["check"] == "dnssd"]
    assert dnssd == {"check": "dnssd", "level": "ok", "fix": "",
                     "found": f'"Doctor office" registered (resolved via {backend})'}, report
    assert done.returncode == 0, report
    [missing] = [f for f in json.loads(wrong.stdout)["findings"] if f["check"] == "dnssd"]
    assert missing["level"] == "FAIL", missing
    assert missing["found"] == f'not registered: "Doctor office (7)" (resolved via {backend})'
    assert wrong.returncode == 1
