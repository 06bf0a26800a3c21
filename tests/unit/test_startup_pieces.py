"""Issue 9, the pure parts: the quick-path printer argument, the raw queue's formats, the
spool lock and its holder, job-ids that never repeat, orphaned jobs, the log limiter and
rotation, the stalled-job status line, the swappable app, bind failures in words."""

from __future__ import annotations

import errno
import logging
import os
import re
import subprocess
from pathlib import Path

import pytest
import trio

from drivers.driver import accepted_formats
from drivers.registry import get_driver
from drivers.transport import DeviceStatus
from gateway import logs
from gateway.config import (
    DEFAULT_PRINTER_DRIVER,
    Config,
    ConfigError,
    ListenAddress,
    PrinterConfig,
    config_from_dict,
    default_printer,
    parse_printer_arg,
)
from gateway.core.job import Job
from gateway.core.printer import capabilities_for
from gateway.core.spool import Spool
from gateway.core.spool_lock import LockInfo, SpoolInUse, SpoolLock, read_lock_info
from gateway.core.store import JOB_ID_BLOCK
from gateway.core.system import System
from gateway.privileges import Account
from gateway.ratelimit import LogRateLimiter, client_key
from gateway.server.http import HttpRequest, HttpResponse, RequestBody
from gateway.server.switch import SwitchableApp
from gateway.startup import hand_over_audit_log, listen_failure

REPO = Path(__file__).resolve().parents[2]


# -- the quick path -------------------------------------------------------------------------

def test_printer_argument_takes_a_driver_after_a_uri_with_commas() -> None:
    printer = parse_printer_arg("laser=lpd://host/q?order=data,control,driver=pcl5")
    assert printer.device_uri == "lpd://host/q?order=data,control"
    assert printer.driver == "pcl5" and printer.formats == ()


def test_printer_argument_lists_raw_formats() -> None:
    printer = parse_printer_arg(
        "box=socket://h:9100,driver=raw,formats=application/pdf,image/jpeg")
    assert printer.formats == ("application/pdf", "image/jpeg")


@pytest.mark.parametrize(("text", "message"), [
    ("laser", "is not NAME=DEVICE_URI"),
    ("laser=socket://h:9100,driver=pcl6", "driver: 'pcl6' is not one of"),
    ("laser=socket://h:9100,driver=pcl5,speed=9", "'speed=9' is not one of driver=..."),
    ("laser=socket://h:9100,driver=pcl5,driver=raw", "driver= is given twice"),
    ("laser=socket://h:9100,driver=pcl5,formats=application/pdf", "only a raw printer"),
    ("laser=socket://h:9100,formats=application/x-nope", "'application/x-nope' is not one of"),
])
def test_printer_argument_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_printer_arg(text)


def test_raw_queue_passes_only_octet_stream_unless_told() -> None:
    raw = get_driver("raw")
    bare = capabilities_for(raw, PrinterConfig("p", "file:///tmp/x/"))
    assert accepted_formats(raw, bare) == ("application/octet-stream",)
    listed = capabilities_for(raw, parse_printer_arg(
        "p=file:///tmp/x/,formats=application/pdf,application/octet-stream"))
    assert set(accepted_formats(raw, listed)) == {"application/pdf",
                                                          "application/octet-stream"}


def test_default_printer_converts(tmp_path: Path) -> None:
    printer = default_printer(tmp_path)
    assert printer.driver == DEFAULT_PRINTER_DRIVER != "raw"
    caps = capabilities_for(get_driver(printer.driver), printer)
    assert "application/pdf" in accepted_formats(get_driver(printer.driver), caps)


def test_server_user_and_log_file_keys() -> None:
    config = config_from_dict({"server": {"user": "lp", "log_file": "/var/log/gw/gw.log"}})
    assert config.user == "lp" and config.log_file == Path("/var/log/gw/gw.log")
    with pytest.raises(ConfigError,
                       match=re.escape("server.user: 'Not A User' is not a user name")):
        config_from_dict({"server": {"user": "Not A User"}})
    with pytest.raises(ConfigError,
                       match=re.escape("server.log_file: 'gw.log' must be an absolute")):
        config_from_dict({"server": {"log_file": "gw.log"}})


def test_make_run_does_not_install_the_test_tools(tmp_path: Path) -> None:
    dry = subprocess.run(["make", "-n", "run", f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "pip install --quiet -e ." in dry and "[test]" not in dry
    tests = subprocess.run(["make", "-n", "pytest", f"VENV={tmp_path / 'venv'}"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout
    assert "'.[test]'" in tests


# -- one gateway per spool ------------------------------------------------------------------

def test_spool_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    first = SpoolLock(tmp_path)
    first.acquire()
    first.update(LockInfo(pid=os.getpid(), urls=("ipp://127.0.0.1:8631",), printers=("a",)))
    assert read_lock_info(tmp_path) == LockInfo(
        pid=os.getpid(), urls=("ipp://127.0.0.1:8631",), printers=("a",),
        started=read_lock_info(tmp_path).started)  # type: ignore[union-attr]
    with pytest.raises(SpoolInUse, match=rf"in use by ipp-gateway pid {os.getpid()}, serving "
                                         r"ipp://127\.0\.0\.1:8631"):
        SpoolLock(tmp_path).acquire()
    first.release()
    assert read_lock_info(tmp_path) is None  # the file stays; nobody holds it
    second = SpoolLock(tmp_path)
    second.acquire()
    second.release()


def test_lock_of_a_killed_process_is_free(tmp_path: Path) -> None:
    with subprocess.Popen(["python3", "-c", (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(tmp_path / 'gateway.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\nos.write(fd, b'{\"pid\": 1}')\n"
        "print('locked', flush=True)\ntime.sleep(60)\n")], stdout=subprocess.PIPE) as child:
        assert child.stdout is not None and child.stdout.readline() == b"locked\n"
        assert read_lock_info(tmp_path) is not None
        child.kill()
        child.wait()
    assert read_lock_info(tmp_path) is None
    lock = SpoolLock(tmp_path)
    lock.acquire()
    lock.release()


# -- job-ids and orphans ---------------------------------------------------------------------

def _system(spool: Path, *printers: str, history: int = 200) -> System:
    return System(Config(spool=spool, job_history=history, printers=tuple(
        PrinterConfig(name, f"file://{spool}/out/{name}/") for name in printers)))


async def _new_job(system: System, printer: str) -> Job:
    job = system.create_job(system.printers[printer], name="n", user="u", template={},
                            document_format="application/octet-stream")
    await system.store.flushed()  # as the request that creates it does before answering
    return job


async def test_job_ids_survive_a_crash_and_a_clean_stop(tmp_path: Path) -> None:
    system = _system(tmp_path, "a", history=0)
    assert [(await _new_job(system, "a")).id for _ in range(3)] == [1, 2, 3]
    for job_id in list(system.jobs):  # every record gone, as a trimmed history leaves it
        system.spool.delete(job_id)
    crashed = _system(tmp_path, "a", history=0)  # no close(): the reserved block is skipped
    assert (await _new_job(crashed, "a")).id == 1 + JOB_ID_BLOCK
    await crashed.store.close()
    for job_id in list(crashed.jobs):
        crashed.spool.delete(job_id)
    assert (await _new_job(_system(tmp_path, "a"), "a")).id == 2 + JOB_ID_BLOCK


async def test_jobs_of_an_unconfigured_printer_are_kept(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    system = _system(tmp_path, "office")
    job = await _new_job(system, "office")
    spool = Spool(tmp_path)
    spool.open_document(job.id).close()
    await system.store.close()
    with caplog.at_level(logging.WARNING):
        renamed = _system(tmp_path, "front")
    assert list(renamed.orphans) == [job.id] and not renamed.jobs
    assert "printer 'office' is not configured; its 1 job(s)" in caplog.text
    assert spool.record_path(job.id).exists() and spool.document_path(job.id).exists()
    assert (await _new_job(renamed, "front")).id == job.id + 1  # never the orphan's id again
    back = _system(tmp_path, "office", "front")
    assert job.id in back.jobs and not back.orphans


# -- logs --------------------------------------------------------------------------------------

def test_log_limiter_allows_a_burst_then_one_per_interval() -> None:
    now = [0.0]
    limiter = LogRateLimiter(burst=3, interval=10.0, clock=lambda: now[0])
    assert [limiter.allow("a")[0] for _ in range(5)] == [True, True, True, False, False]
    assert limiter.allow("b") == (True, 0)  # another client has its own budget
    now[0] = 10.0
    assert limiter.allow("a") == (True, 2)  # and says how many were held back
    assert limiter.allow("a") == (False, 0)


def test_log_limiter_forgets_old_clients() -> None:
    limiter = LogRateLimiter(burst=1, interval=60.0, max_keys=2, clock=lambda: 0.0)
    for key in ("a", "b", "c"):
        limiter.allow(key)
    assert limiter.allow("a") == (True, 0)  # evicted, so it starts afresh


def test_client_key_is_the_host() -> None:
    assert client_key("192.0.2.1:4711") == "192.0.2.1"
    assert client_key("[2001:db8::1]:631") == "2001:db8::1"


def test_log_file_rotates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs, "LOG_FILE_BYTES", 20_000)
    path = tmp_path / "logs" / "gateway.log"
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        logs.configure("info", path)
        line = "x" * 1000
        for _ in range((logs.LOG_FILE_BYTES // 1000) * (logs.LOG_FILE_BACKUPS + 2)):
            logging.getLogger("gateway.test").info(line)
        files = sorted(p.name for p in path.parent.iterdir())
        assert files == ["gateway.log", *[f"gateway.log.{n}" for n in
                                          range(1, logs.LOG_FILE_BACKUPS + 1)]]
        assert all(p.stat().st_size <= logs.LOG_FILE_BYTES + 2000 for p in path.parent.iterdir())
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved[0]:
            root.addHandler(handler)
        root.setLevel(saved[1])


async def test_stalled_job_status_logs_reasons_not_every_message(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    system = _system(tmp_path, "a")
    printer = system.printers["a"]

    class Stalled:
        def __init__(self) -> None:
            self.seconds = 0

        async def query_status(self) -> DeviceStatus:
            self.seconds += 1
            return DeviceStatus(frozenset({"other"}), f"no data taken for {self.seconds} s")

    transport = Stalled()
    printer._job_transport = transport  # type: ignore[assignment]
    with caplog.at_level(logging.INFO, logger="gateway.printer"):
        for _ in range(30):
            await printer.refresh_status(transport)  # type: ignore[arg-type]
    lines = [r for r in caplog.records if r.levelno >= logging.INFO]
    assert len(lines) == 1 and "other-report" in lines[0].getMessage()
    assert printer.device_message == "no data taken for 30 s"  # still shown over IPP


# -- the swappable app ------------------------------------------------------------------------

class _SlowApp:
    def __init__(self, name: str, release: trio.Event) -> None:
        self.name, self.release = name, release

    async def handle(self, request: HttpRequest, body: RequestBody) -> HttpResponse:
        if request.method == "POST":
            await self.release.wait()
        return HttpResponse(200, [], self.name.encode())


async def test_switch_waits_for_requests_in_flight_and_holds_new_ones() -> None:
    release = trio.Event()
    app = SwitchableApp(_SlowApp("old", release))
    request = HttpRequest("POST", "/", "/", [], "h", 1, "ipp", "c")
    answers: list[HttpResponse] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: _collect(answers, app.handle(request, None)))  # type: ignore[arg-type]
        await trio.testing.wait_all_tasks_blocked()
        assert app.in_flight == 1
        with trio.move_on_after(1) as quick:
            async with app.closed(drain_timeout=0.05) as drained:
                assert not drained  # the slow request is still in flight
        assert not quick.cancelled_caught
        release.set()
        async with app.closed() as drained:
            assert drained
            get = HttpRequest("GET", "/", "/", [], "h", 1, "ipp", "c")
            nursery.start_soon(lambda: _collect(answers, app.handle(get, None)))  # type: ignore[arg-type]
            await trio.testing.wait_all_tasks_blocked()
            assert len(answers) == 1  # held at the door while closed
            app.current = _SlowApp("new", release)
    assert [answer.body for answer in answers] == [b"old", b"new"]


async def _collect(answers: list, call) -> None:  # type: ignore[no-untyped-def, type-arg]
    answers.append(await call)


# -- bind failures in words ---------------------------------------------------------------------

def test_bind_failures_name_the_port_and_the_fix() -> None:
    assert listen_failure(ListenAddress("", 631), OSError(errno.EACCES, "Permission denied")) == (
        "port 631 needs root or CAP_NET_BIND_SERVICE; use --listen 0.0.0.0:8631")
    assert listen_failure(ListenAddress("::1", 631), OSError(errno.EACCES, "x")).endswith(
        "use --listen [::1]:8631")
    used = listen_failure(ListenAddress("", 8631), OSError(errno.EADDRINUSE, "in use"))
    assert used.startswith("port 8631 on *:8631 is already in use by another program")
    assert listen_failure(ListenAddress("192.0.2.7", 8631), OSError(
        errno.EADDRNOTAVAIL, "x")) == ("192.0.2.7 is not an address of this machine; use "
                                       "--listen *:8631")


def test_an_audit_log_made_as_root_is_handed_to_the_account(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another account needs root")
    for name in ("audit.log", "audit.log.1"):
        (tmp_path / name).write_text("{}\n")
    (tmp_path / "other.txt").write_text("")
    account = Account("stranger", 54321, 54321, (54321,), "/")
    hand_over_audit_log(tmp_path, account)
    owners = {p.name: (p.stat().st_uid, p.stat().st_gid) for p in tmp_path.iterdir()}
    assert owners["audit.log"] == owners["audit.log.1"] == (54321, 54321)
    assert owners["other.txt"] == (0, 0)
