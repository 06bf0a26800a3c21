"""Issue 9, found as a new user would: two gateways on one spool, a renamed printer, job
numbers that start again, the quick path to a legacy printer, typos in device URIs, a spool or
port the gateway cannot use, SIGHUP. Real gateway processes; each test names its finding."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from ippwire.enums import JobState, Operation, PrinterState, Status, ValueTag
from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import (
    RAW_TEST_FORMATS,
    GatewayProcess,
    PrinterTable,
    start_command_line,
    start_configured_gateway,
    start_gateway,
    wait_until_serving,
    write_config,
)
from tests.peers.p910nd import running_p910nd
from tests.peers.procs import LOOPBACK, free_port, stop_process, wait_for_port
from tests.support.ipp_client import submit, wait_job, wait_printer
from tests.support.ipp_jobs import IppPrinter

T = ValueTag
PDF = (Path(__file__).resolve().parents[3] / "shared" / "corpus" / "testpage-1p-vector.pdf")
START_FAILURE_TIMEOUT = 30.0


def run_gateway(*args: str, timeout: float = START_FAILURE_TIMEOUT
                ) -> subprocess.CompletedProcess[str]:
    """`python -m gateway ARGS` that is expected to end by itself (a refusal to start)."""
    # DNS-SD off: nothing multicasts on this machine's own network.
    args = (*args, "--no-dnssd") if args[:1] == ("run",) else args
    return subprocess.run([sys.executable, "-m", "gateway", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO_ROOT, check=False)


def pause(gateway: GatewayProcess, printer: str) -> None:
    assert IppPrinter(gateway.port, printer).send(Operation.PAUSE_PRINTER).status == 0
    wait_printer(gateway.port, printer, lambda s: s.state == PrinterState.STOPPED, timeout=10,
                 what="paused printer")


def wait_completed(gateway: GatewayProcess, job_id: int, printer: str) -> None:
    wait_job(gateway.port, job_id, printer, lambda s: s.state == JobState.COMPLETED,
             timeout=60, what=f"job {job_id} completed")


# -- 1. one gateway per spool -------------------------------------------------------------

def test_second_gateway_on_the_same_spool_refuses_and_names_the_first(tmp_path: Path) -> None:
    first = start_gateway(tmp_path / "gw")
    with first:
        second = run_gateway("run", "--listen", f"{LOOPBACK}:{free_port()}", "--spool",
                             str(first.spool), "--user", "root" if os.geteuid() == 0 else "")
        assert second.returncode == 1, second
        assert f"is in use by ipp-gateway pid {first.pid}" in second.stderr, second.stderr
        assert "Traceback" not in second.stderr
        # The first one is untouched: it still prints, and its job is the one and only 1.
        document = b"first gateway keeps its spool\n" * 100
        job_id = submit(first.port, document)
        assert job_id == 1
        wait_completed(first, job_id, "default")
        assert first.output_file(None, job_id).read_bytes() == document


# -- 2. jobs of a printer that is not configured are kept ---------------------------------

def test_renamed_printer_keeps_its_jobs_until_it_returns(tmp_path: Path) -> None:
    work = tmp_path / "gw"
    documents = [b"held across a rename %d\n" % n * 50 for n in range(2)]
    office = PrinterTable("office")
    with start_configured_gateway(work, [office]) as gateway:
        pause(gateway, "office")
        ids = [submit(gateway.port, doc, printer="office") for doc in documents]
    # Renamed: the jobs are orphans, kept on disk and named in the log.
    with start_configured_gateway(work, [PrinterTable("front")]) as renamed:
        reply = IppPrinter(renamed.port, "front").send(
            Operation.GET_JOBS, {"which-jobs": (T.KEYWORD, "all")})
        assert reply.status == 0 and not reply.job
    log = renamed.log.read_text()
    assert re.search(r"WARNING gateway.store: spool: printer 'office' is not configured; its "
                     r"2 job\(s\) \(2 not finished: 1, 2\) are kept", log), log
    for job_id in ids:
        assert (renamed.spool / "jobs" / f"{job_id:05d}.doc").exists()
    # Back under its name: the jobs print, byte for byte.
    with start_configured_gateway(work, [office]) as back:
        assert IppPrinter(back.port, "office").send(Operation.RESUME_PRINTER).status == 0
        for job_id, document in zip(ids, documents, strict=True):
            wait_completed(back, job_id, "office")
            assert back.output_file("office", job_id).read_bytes() == document


def test_command_line_printer_does_not_delete_configured_printers_jobs(tmp_path: Path) -> None:
    work = tmp_path / "gw"
    with start_configured_gateway(work, [PrinterTable("office")]) as gateway:
        pause(gateway, "office")
        job_id = submit(gateway.port, b"survives a --printer run\n", printer="office")
    with start_gateway(work, printer_name="quick"):
        pass
    assert (work / "spool" / "jobs" / f"{job_id:05d}.json").exists()
    assert (work / "spool" / "jobs" / f"{job_id:05d}.doc").exists()


# -- 3. job numbers never start again -----------------------------------------------------

def test_job_ids_never_repeat_after_the_history_is_trimmed(tmp_path: Path) -> None:
    work = tmp_path / "gw"
    config_args = ("--config", str(_server_config(work, "job_history = 0")))
    outputs = {}
    for round_ in range(2):
        with start_gateway(work, extra_args=config_args) as gateway:
            document = b"round %d\n" % round_ * 20
            job_id = submit(gateway.port, document)
            wait_completed_or_trimmed(gateway, job_id)
            outputs[job_id] = document
    assert sorted(outputs) == [1, 2]
    for job_id, document in outputs.items():
        assert (work / "output" / f"job-{job_id:05d}.prn").read_bytes() == document


def wait_completed_or_trimmed(gateway: GatewayProcess, job_id: int) -> None:
    """With job_history = 0 a finished job leaves at once: wait for its output instead."""
    path = gateway.output_file(None, job_id)
    deadline = time.monotonic() + 60
    while not path.exists():
        assert time.monotonic() < deadline, f"job {job_id} never printed"
        time.sleep(0.05)


def _server_config(work: Path, *lines: str) -> Path:
    work.mkdir(parents=True, exist_ok=True)
    path = work / "server.toml"
    path.write_text("[server]\n" + "\n".join(lines) + "\n")
    return path


# -- 4. the quick path is safe for a legacy printer ---------------------------------------

def test_quick_path_raw_printer_takes_only_octet_stream(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with start_command_line(tmp_path, ["--printer", f"laser={out.as_uri()}/"],
                            printer_name="laser") as gateway:
        printer = IppPrinter(gateway.port, "laser")
        reply = printer.send(Operation.GET_PRINTER_ATTRIBUTES, {
            "requested-attributes": (T.KEYWORD, "document-format-supported")})
        assert reply.message.group(1) is not None
        formats = reply.message.groups[1].get("document-format-supported")
        assert formats is not None and formats.plain == ["application/octet-stream"]
        refused = printer.print_job(PDF.read_bytes(), "application/pdf")
        assert refused.status == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED
        assert not list(out.glob("*"))


def test_readme_quick_start_prints_pdf_to_pcl5_on_p910nd_as_pcl(tmp_path: Path) -> None:
    """The README's own command, `make run ARGS="--printer laser=socket://PRINTER:9100,
    driver=pcl5"`, with a port and spool of the test's (and, as root, the hand-over to lp
    that `make run` does)."""
    readme = (REPO_ROOT / "README.md").read_text()
    command = 'make run ARGS="--printer laser=socket://PRINTER:9100,driver=pcl5"'
    assert command in readme
    if shutil.which("make") is None:
        pytest.skip("needs make")
    work = Path(tempfile.mkdtemp(prefix="ipp-gw-quick-"))  # reachable by lp, unlike tmp_path
    work.chmod(0o755)
    port = free_port()
    log = work / "make-run.log"
    try:
        with running_p910nd() as peer:
            args = (f"--listen {LOOPBACK}:{port} --spool {work / 'spool'} "
                    f"--printer laser={peer.uri},driver=pcl5 --no-dnssd")
            with log.open("wb") as sink:
                make = subprocess.Popen(["make", "--no-print-directory", "run", f"ARGS={args}"],
                                        cwd=REPO_ROOT, stdout=sink, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_for_port(make, port, log, 120)
                wait_until_serving(port, 30)
                job_id = IppPrinter(port, "laser").print_job(PDF.read_bytes(),
                                                             "application/pdf").job_id
                wait_job(port, job_id, "laser", lambda s: s.state == JobState.COMPLETED,
                         timeout=60, what=f"job {job_id} completed")
            finally:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(make.pid, signal.SIGTERM)
                make.wait(timeout=30)
            record = peer.wait_record(1)
            assert record.data is not None
            data = record.data.read_bytes()
        assert data.startswith(b"\x1bE"), data[:40]
        assert b"%PDF" not in data
        assert b"\x1b*r" in data and b"\x1b*b" in data  # PCL raster graphics
        if os.geteuid() == 0:
            assert "ports bound; running as user lp" in log.read_text()
        assert "Traceback" not in log.read_text()
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- 5. device URIs are checked when the configuration is -----------------------------------

BAD_DEVICES = [
    ("socket://127.0.0.1:9100?pjll=on", "pjll"),
    ("socket://127.0.0.1:9100?contimeout=abc", "contimeout"),
    ("lpd://127.0.0.1/queue?mode=fast", "mode"),
    ("serial:/dev/ttyS0?flow=xon", "flow"),
    ("lpd://127.0.0.1", "queue"),
]


@pytest.mark.parametrize(("device", "named"), BAD_DEVICES)
def test_check_config_and_start_refuse_bad_device_uris(tmp_path: Path, device: str,
                                                       named: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(f'[[printer]]\nname = "p"\ndevice = "{device}"\ndriver = "pcl5"\n')
    checked = run_gateway("check-config", str(config))
    assert checked.returncode == 2, checked
    assert "printer[0].device" in checked.stderr and named in checked.stderr, checked.stderr
    started = run_gateway("run", "--config", str(config), "--spool", str(tmp_path / "spool"),
                          "--listen", f"{LOOPBACK}:{free_port()}")
    assert started.returncode == 2 and named in started.stderr, started
    quick = run_gateway("run", "--printer", f"p={device},driver=pcl5", "--spool",
                        str(tmp_path / "spool"), "--listen", f"{LOOPBACK}:{free_port()}")
    assert quick.returncode == 2 and named in quick.stderr, quick


# -- 6. start-up checks its own resources ---------------------------------------------------

def test_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_gateway("run", "--listen", f"{LOOPBACK}:{port}", "--spool",
                             str(tmp_path / "spool"), *_root_user())
    assert result.returncode == 1, result
    assert (f"cannot start: port {port} on {LOOPBACK}:{port} is already in use"
            in result.stderr), result.stderr
    assert "Errno" not in result.stderr and "Traceback" not in result.stderr


def _root_user() -> tuple[str, ...]:
    return ("--user", "root") if os.geteuid() == 0 else ()


def _lp_ids() -> tuple[int, int]:
    import pwd

    try:
        entry = pwd.getpwnam("lp")
    except KeyError:
        pytest.skip("needs the lp account")
    return entry.pw_uid, entry.pw_gid


def test_spool_not_writable_by_the_service_user_is_named(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root: the gateway hands itself to lp")
    _lp_ids()
    spool = tmp_path / "spool"
    spool.mkdir(mode=0o755)  # root's, and chosen by the user: checked, never chowned
    result = run_gateway("run", "--listen", f"{LOOPBACK}:{free_port()}", "--spool",
                         str(spool), "--user", "lp")
    assert result.returncode == 1, result
    assert f"spool {spool} is not writable by user lp" in result.stderr, result.stderr
    assert f"chown -R lp: {spool}" in result.stderr
    assert "Traceback" not in result.stderr


def test_read_only_spool_is_refused_at_start(tmp_path: Path) -> None:
    """Root ignores file modes, not a read-only mount: bind-mount the spool read-only in a
    private mount namespace (nothing outside this test sees it) and start there."""
    if os.geteuid() != 0 or not Path("/usr/bin/unshare").exists():
        pytest.skip("needs root and unshare for a private read-only mount")
    spool = tmp_path / "spool"
    (spool / "jobs").mkdir(parents=True)
    script = (f'mount --bind "{spool}" "{spool}" && mount -o remount,ro,bind "{spool}" && '
              f'exec "{sys.executable}" -m gateway run --user root --spool "{spool}" '
              f'--listen {LOOPBACK}:{free_port()}')
    result = subprocess.run(["/usr/bin/unshare", "--mount", "--propagation", "private", "sh",
                             "-c", script], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=START_FAILURE_TIMEOUT, check=False)
    assert result.returncode == 1, result
    assert f"cannot start: spool {spool} is not usable: Read-only file system" in result.stderr
    assert "Traceback" not in result.stderr


def test_privileged_port_without_root_is_named(tmp_path: Path) -> None:
    if os.geteuid() != 0 or not Path("/usr/bin/setpriv").exists():
        pytest.skip("needs root and setpriv to start the gateway as an ordinary user")
    uid, gid = _lp_ids()
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"ipp-gw-lp-{os.getpid()}"
    home.mkdir(mode=0o755, exist_ok=True)
    os.chown(home, uid, gid)
    probe = subprocess.run(["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}",
                            "--clear-groups", sys.executable, "-c", "import gateway"],
                           capture_output=True, cwd=REPO_ROOT, check=False)
    if probe.returncode != 0:
        pytest.skip("the Python installation is not readable by lp here")
    try:
        result = subprocess.run(
            ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups",
             sys.executable, "-m", "gateway", "run", "--listen", f"{LOOPBACK}:631",
             "--spool", str(home / "spool")],
            capture_output=True, text=True, timeout=START_FAILURE_TIMEOUT, cwd=REPO_ROOT,
            env=dict(os.environ, HOME=str(home)), check=False)
    finally:
        subprocess.run(["rm", "-rf", str(home)], check=False)
    assert result.returncode == 1, result
    assert ("cannot start: port 631 needs root or CAP_NET_BIND_SERVICE; use --listen "
            f"{LOOPBACK}:8631") in result.stderr, result.stderr


# -- 7. SIGHUP re-reads the configuration -------------------------------------------------

def test_sighup_reloads_printers_and_keeps_every_job(tmp_path: Path) -> None:
    work = tmp_path / "gw"
    office = PrinterTable("office")
    with start_configured_gateway(work, [office]) as gateway:
        pause(gateway, "office")
        document = b"pending across a reload\n" * 40
        job_id = submit(gateway.port, document, printer="office")
        write_config(work, gateway.port, [office, PrinterTable("annex")])
        os.kill(gateway.pid, signal.SIGHUP)
        annex = IppPrinter(gateway.port, "annex")
        deadline = time.monotonic() + 20
        while annex.send(Operation.GET_PRINTER_ATTRIBUTES).status != 0:
            assert gateway.alive(), gateway.log.read_text()
            assert time.monotonic() < deadline, "the new printer never appeared"
            time.sleep(0.1)
        # A broken configuration is refused and the running one stays.
        (work / "gateway.toml").write_text("[server\n")
        os.kill(gateway.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while "reload refused" not in gateway.log.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert gateway.alive()
        # The job waited through both, still paused (the pause is kept in the spool).
        office_printer = IppPrinter(gateway.port, "office")
        assert office_printer.send(Operation.RESUME_PRINTER).status == 0
        wait_completed(gateway, job_id, "office")
        assert gateway.output_file("office", job_id).read_bytes() == document
        assert stop_process(gateway.proc) == 0
    log = gateway.log.read_text()
    assert "received SIGHUP: reloading the configuration" in log
    assert "Traceback" not in log


# -- 11. the log names the host as phones resolve it --------------------------------------

def test_log_names_printer_uris_with_a_resolvable_host(tmp_path: Path) -> None:
    with start_gateway(tmp_path / "gw") as gateway:
        pass
    name = socket.gethostname()
    host = name if "." in name else f"{name}.local"
    assert f"default printer: ipp://{host}:{gateway.port}/ipp/print" in gateway.log.read_text()
    assert RAW_TEST_FORMATS  # the launcher's raw queue lists its formats explicitly
