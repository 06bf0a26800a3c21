"""IPPS on the IPP port, against real peers: openssl s_client, ipptool's suites over ipps://,
a private cupsd printing over ipps:// across a gateway restart, and the certificate's life."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.peers import CORPUS_DIR, REPO_ROOT
from tests.peers.conformance import ConformanceDir
from tests.peers.cupsd import Cupsd
from tests.peers.gateway_proc import GatewayProcess, start_gateway
from tests.peers.procs import LOOPBACK, find_program, free_port, log_tail
from tests.peers.suites import EVERYWHERE_FIXED

PDF = CORPUS_DIR / "testpage-1p-vector.pdf"
FINGERPRINT = re.compile(r"TLS certificate \S+: SHA-256 fingerprint ([0-9A-F:]{95})")


def ipps(uri: str) -> str:
    return uri.replace("ipp://", "ipps://", 1)


def s_client(port: int, version: str) -> subprocess.CompletedProcess[str]:
    # SECLEVEL=0 lets this client offer TLS 1.0/1.1 at all: the refusal must be the server's.
    argv = [find_program("openssl") or "openssl", "s_client", "-connect", f"{LOOPBACK}:{port}",
            f"-{version}", "-cipher", "DEFAULT@SECLEVEL=0"]
    return subprocess.run(argv, input="", capture_output=True, text=True, timeout=30,
                          check=False)


@pytest.mark.peers
@pytest.mark.parametrize(("version", "negotiated"),
                         [("tls1_2", "TLSv1.2"), ("tls1_3", "TLSv1.3"),
                          ("tls1", None), ("tls1_1", None)])
def test_openssl_negotiates_tls_1_2_and_1_3_only(
        gateway: GatewayProcess, version: str, negotiated: str | None) -> None:
    done = s_client(gateway.port, version)
    output = done.stdout + done.stderr
    if negotiated is not None:
        assert done.returncode == 0, output
        assert f"New, {negotiated}, Cipher is " in output, output
    else:
        assert done.returncode != 0, output
        assert "Cipher is (NONE)" in output, output
        assert "TLS handshake failed: UNSUPPORTED_PROTOCOL" in gateway.log.read_text()
    assert "Traceback" not in gateway.log.read_text()


@pytest.mark.peers
def test_certificate_is_reused_unchanged_after_a_restart(tmp_path: Path) -> None:
    port = free_port()
    with start_gateway(tmp_path, port=port) as first:
        made = FINGERPRINT.findall(first.log.read_text())
    certificate = tmp_path / "spool" / "tls" / "server.crt"
    key = tmp_path / "spool" / "tls" / "server.key"
    kept = certificate.read_bytes(), key.read_bytes()
    assert key.stat().st_mode & 0o777 == 0o600
    with start_gateway(tmp_path, port=port) as second:
        again = FINGERPRINT.findall(second.log.read_text())
        served = s_client(second.port, "tls1_2").stdout
    assert len(made) == 1 and again == made * 2  # the log is appended to across restarts
    assert (certificate.read_bytes(), key.read_bytes()) == kept
    assert ("-----BEGIN CERTIFICATE-----" + certificate.read_text().split(
        "-----BEGIN CERTIFICATE-----")[1].split("-----END")[0]) in served


@pytest.mark.peers
@pytest.mark.parametrize("suite", ["ipp-1.1.test", "ipp-2.0.test"])
def test_ipp_suites_over_ipps(gateway: GatewayProcess, conformance_dir: ConformanceDir,
                              suite: str) -> None:
    run = conformance_dir.run(ipps(gateway.printer_uri), suite)
    context = f"{run.describe_failures()}\n{log_tail(gateway.log)}"
    assert not run.errors and run.outcomes and not run.failures, context
    assert {o.name: o.status for o in run.outcomes}[
        "RFC 8011 section 4.2.1: Print-Job Operation"] == "PASS"


@pytest.mark.peers
def test_ipp_everywhere_over_ipps(gateway: GatewayProcess,
                                  conformance_dir: ConformanceDir) -> None:
    uri = ipps(gateway.printer_uri)
    plan = conformance_dir.plan_for(uri)
    run = conformance_dir.run(uri, EVERYWHERE_FIXED)
    context = f"{run.describe_failures()}\n{log_tail(gateway.log)}"
    assert not run.errors and run.outcomes and not run.failures, context
    seen = {o.name: o.status for o in run.outcomes}
    assert plan.print_tests and all(seen.get(name) == "PASS" for name in plan.print_tests)


@pytest.mark.peers
def test_ipptool_http_upgrade_to_tls(gateway: GatewayProcess,
                                     conformance_dir: ConformanceDir) -> None:
    """`ipptool -E` (RFC 2817 upgrade, as self-cert B-5.1): the answer says ipps."""
    argv = [find_program("ipptool") or "ipptool", "-E", "-t", "-v", gateway.printer_uri,
            "get-printer-attributes.test"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr + log_tail(gateway.log)
    assert re.search(r"printer-more-info \(uri\) = https://", done.stdout), done.stdout
    assert re.search(r"uri-security-supported \(1setOf keyword\) = tls,none", done.stdout)


@pytest.mark.peers
def test_cupsd_prints_over_ipps_across_a_gateway_restart(tmp_path: Path, cupsd: Cupsd) -> None:
    port = free_port()
    queue = "gwtls"
    with start_gateway(tmp_path, port=port) as first:
        cupsd.add_everywhere_queue(queue, ipps(first.printer_uri))
        job = cupsd.submit(queue, PDF)
        assert cupsd.wait_completed(queue, {job}, 120) == {job}, log_tail(cupsd.error_log, 40)
    with start_gateway(tmp_path, port=port) as second:
        job = cupsd.submit(queue, PDF)
        done = cupsd.wait_completed(queue, {job}, 120)
        assert done == {job}, log_tail(cupsd.error_log, 40) + log_tail(second.log)
        assert len(second.output_files()) == 2
        # What cupsd pinned on the first job is what the restarted gateway served.
        served = FINGERPRINT.findall(second.log.read_text())
        assert len(served) == 2 and served[0] == served[1]
    # The ipp backend reports a refused or changed certificate by setting a cups-pki-*
    # reason (it clears them all, "-cups-pki-...", on every connection).
    set_reasons = re.findall(r'[+"]cups-pki-[a-z]+', cupsd.error_log.read_text(errors="replace"))
    assert set_reasons == []


def run_gateway(tmp_path: Path, toml: str) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "gateway.toml"
    config.write_text(toml)
    argv = [sys.executable, "-m", "gateway", "run", "--config", str(config), "--no-dnssd"]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False,
                          cwd=REPO_ROOT)


def test_mismatched_configured_pair_is_a_startup_error(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from gateway.certificates import make_self_signed
    from gateway.tls import host_identity

    certificate_pem, _ = make_self_signed(host_identity(), datetime.now(UTC))
    _, key_pem = make_self_signed(host_identity(), datetime.now(UTC))
    (tmp_path / "c.pem").write_bytes(certificate_pem)
    (tmp_path / "k.pem").write_bytes(key_pem)
    done = run_gateway(tmp_path, f"""[server]
listen = ["{LOOPBACK}:{free_port()}"]
spool = "{tmp_path / 'spool'}"
user = "{'root' if __import__('os').geteuid() == 0 else ''}"
tls_certificate = "{tmp_path / 'c.pem'}"
tls_key = "{tmp_path / 'k.pem'}"
""")
    assert done.returncode == 1, done.stderr
    assert re.search(r"cannot start: server.tls_key \S+k.pem does not belong to the "
                     r"certificate", done.stderr), done.stderr
    assert "Traceback" not in done.stderr
