"""The everyday-actions CLI without a gateway: argument parsing, finding the gateway through
the spool lock, orphaned jobs read from (and purged in) a hand-made spool, output formats."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateway import ctl
from gateway.core.job import Job
from gateway.core.spool_lock import LockInfo, SpoolLock
from gateway.ipp_client import Answer, GatewayUrl
from ippwire.enums import GroupTag, JobState, ValueTag
from ippwire.model import Attribute, Group, Message

T = ValueTag


def write_record(spool: Path, job_id: int, printer: str, *, state: JobState = JobState.PENDING,
                 name: str = "report.pdf", document: bytes = b"%PDF-1.4\n") -> tuple[Path, Path]:
    jobs = spool / "jobs"
    jobs.mkdir(parents=True, exist_ok=True)
    job = Job(id=job_id, printer=printer, uuid=f"urn:uuid:{job_id}", name=name, user="alice",
              state=state, document_bytes=len(document), has_document=True,
              created=datetime(2024, 5, 1, 10, 0, tzinfo=UTC).timestamp())
    record, doc = jobs / f"{job_id:05d}.json", jobs / f"{job_id:05d}.doc"
    record.write_text(json.dumps(job.to_record()))
    doc.write_bytes(document)
    return record, doc


def write_config(tmp_path: Path, spool: Path, *printers: str) -> Path:
    lines = ["[server]", f'spool = "{spool}"', ""]
    for name in printers:
        lines += ["[[printer]]", f'name = "{name}"',
                  f'device = "{(tmp_path / "out" / name).as_uri()}/"', 'driver = "raw"', ""]
    path = tmp_path / "gateway.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture
def lock(tmp_path: Path) -> Iterator[SpoolLock]:
    held = SpoolLock(tmp_path)
    held.acquire()
    try:
        yield held
    finally:
        held.release()


def context_for(*argv: str) -> ctl.Context:
    return ctl.Context.from_args(ctl.build_parser().parse_args(list(argv)))


# -- arguments ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("42", (None, 42)), ("front-42", ("front", 42)), ("front-desk-7", ("front-desk", 7)),
    ("a.b_c-2147483647", ("a.b_c", 2**31 - 1)),
])
def test_job_specs_as_lpstat_prints_them(text: str, expected: tuple[str | None, int]) -> None:
    assert ctl.parse_job(text) == expected


@pytest.mark.parametrize("text", ["", "front", "front-", "-5", "0", "front-0", "2147483648",
                                  "front-\u00b2", "front-1x", "4 2", "+3"])
def test_bad_job_specs_are_usage_errors(text: str) -> None:
    with pytest.raises(ctl.UsageError, match="job"):
        ctl.parse_job(text)


def test_bad_job_spec_exits_2_before_any_connection(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # --url names a port nobody listens on: a parse error must come first, and alone.
    assert ctl.main(["cancel", "front-x", "--spool", str(tmp_path),
                     "--url", "ipp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'front-x' is not a job" in err


@pytest.mark.parametrize(("text", "host", "port", "uri"), [
    ("ipp://127.0.0.1:8631", "127.0.0.1", 8631, "ipp://127.0.0.1:8631/ipp/print/front"),
    ("ipp://[::1]:8631/ipp/print", "::1", 8631, "ipp://[::1]:8631/ipp/print/front"),
    ("ipp://printhost", "printhost", 631, "ipp://printhost:631/ipp/print/front"),
    ("http://localhost:8000", "localhost", 8000, "ipp://localhost:8000/ipp/print/front"),
])
def test_gateway_urls(text: str, host: str, port: int, uri: str) -> None:
    url = GatewayUrl.parse(text)
    assert (url.host, url.port, url.printer_uri("front")) == (host, port, uri)


@pytest.mark.parametrize("text", ["8631", "lpd://host/q", "ipp://[::1:8631", "ipp://h:port",
                                  "ipp://", "ipp://h:99999"])
def test_bad_urls_exit_2(tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main(["status", "--spool", str(tmp_path), "--url", text]) == 2
    assert "--url:" in capsys.readouterr().err


def test_printer_names_are_quoted_in_paths() -> None:
    url = GatewayUrl("127.0.0.1", 8631)
    assert url.printer_path("a b/c") == "/ipp/print/a%20b%2Fc"
    assert url.printer_path(None) == "/ipp/print"


def test_commands_plug_into_another_parser() -> None:
    parser = argparse.ArgumentParser(prog="ipp-gateway")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run")
    ctl.add_commands(commands)
    for argv in (["jobs", "front", "--all", "--purge-orphans"], ["cancel", "1", "front-2"],
                 ["hold", "3"], ["release", "3"], ["pause", "front"], ["resume", "front"],
                 ["status", "--url", "ipp://h:1", "--user", "bob"]):
        args = parser.parse_args(argv)
        assert args.command in ctl.COMMANDS
    assert {"jobs", "cancel", "hold", "release", "pause", "resume", "status"} == ctl.COMMANDS
    with pytest.raises(SystemExit):
        parser.parse_args(["jobs", "--completed", "--all"])


# -- finding the gateway ------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["status"], ["jobs"], ["cancel", "5"], ["pause", "front"]])
def test_no_gateway_running_exits_2_naming_the_spool(
        tmp_path: Path, argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert ctl.main([*argv, "--spool", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert f"no gateway is running on spool {tmp_path}" in captured.err


def test_spool_comes_from_the_config_file(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "elsewhere"
    config = write_config(tmp_path, spool, "front")
    assert ctl.main(["status", "--config", str(config)]) == 2
    assert f"spool {spool} " in capsys.readouterr().err
    assert not spool.exists()  # read only: the CLI creates nothing


def test_a_stale_lock_file_is_no_gateway(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    held = SpoolLock(tmp_path)
    held.acquire()
    held.update(LockInfo(pid=1, urls=("ipp://127.0.0.1:9",), printers=("front",)))
    held.release()  # the file stays, as after a crash; nobody holds it
    assert ctl.main(["status", "--spool", str(tmp_path)]) == 2
    assert "no gateway is running" in capsys.readouterr().err


def test_the_lock_names_the_gateway_and_its_printers(tmp_path: Path, lock: SpoolLock) -> None:
    lock.update(LockInfo(pid=4242, urls=("ipp://127.0.0.1:8631", "ipp://[::1]:8631"),
                         printers=("front", "back")))
    context = context_for("status", "--spool", str(tmp_path), "--user", "bob")
    client = context.client()
    assert (client.url, client.user) == (GatewayUrl("127.0.0.1", 8631), "bob")
    assert context.printers(client) == ("front", "back")


def test_url_overrides_the_lock_and_its_printers(tmp_path: Path, lock: SpoolLock) -> None:
    lock.update(LockInfo(pid=4242, urls=("ipp://127.0.0.1:8631",), printers=("front",)))
    config = write_config(tmp_path, tmp_path, "other")
    context = context_for("status", "--spool", str(tmp_path), "--url", "ipp://127.0.0.1:9999",
                          "--config", str(config))
    client = context.client()
    assert client.url == GatewayUrl("127.0.0.1", 9999)
    assert context.printers(client) == ("other",)  # the lock speaks of another gateway


def test_a_gateway_not_listening_yet(tmp_path: Path, lock: SpoolLock,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    lock.update(LockInfo(pid=4242))
    assert ctl.main(["jobs", "--spool", str(tmp_path)]) == 2
    assert "pid 4242" in capsys.readouterr().err


# -- orphaned jobs in the spool -----------------------------------------------------------------


def test_find_orphans_reads_records_and_keeps_served_printers(tmp_path: Path) -> None:
    write_record(tmp_path, 1, "front")
    gone, _ = write_record(tmp_path, 2, "gone")
    write_record(tmp_path, 3, "renamed")
    (tmp_path / "jobs" / "00004.json").write_text("{not json")
    (tmp_path / "jobs" / "00005.json").write_text("[]")
    orphans = ctl.find_orphans(tmp_path, frozenset({"front"}))
    assert (orphans[0].label, orphans[0].record) == ("gone-2", gone)
    assert [o.label for o in orphans] == ["gone-2", "renamed-3"]
    served = ctl.find_orphans(tmp_path, frozenset({"front"}), lambda name: name == "renamed")
    assert [o.label for o in served] == ["gone-2"]
    assert ctl.find_orphans(tmp_path / "missing", frozenset()) == []


def test_offline_listing_shows_orphans_and_exits_2(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    write_record(spool, 1, "front")
    write_record(spool, 2, "gone", name="minutes.txt", document=b"x" * 1500)
    write_record(spool, 3, "gone", state=JobState.PENDING_HELD)
    config = write_config(tmp_path, spool, "front")
    assert ctl.main(["jobs", "--config", str(config)]) == 2
    captured = capsys.readouterr()
    assert "no gateway is running" in captured.err
    lines = captured.out.strip().splitlines()
    assert lines[0] == ("orphaned: printer gone is not configured; they print again when it is, "
                        "or `ipp-gateway jobs --purge-orphans` deletes them")
    assert lines[1].split()[:3] == ["gone-2", "alice", "2048"]
    assert lines[1].endswith("pending  minutes.txt")
    assert lines[2].split()[0] == "gone-3" and " held " in lines[2]
    assert len(lines) == 3 and "front" not in captured.out
    assert len(list((spool / "jobs").iterdir())) == 6  # listing deletes nothing


def test_purge_deletes_exactly_the_orphans_files(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    kept = write_record(spool, 1, "front")
    kept_done = write_record(spool, 2, "front", state=JobState.COMPLETED)
    gone = write_record(spool, 3, "gone")
    other = write_record(spool, 4, "old", state=JobState.COMPLETED)
    (spool / "system.json").write_text("{}")
    config = write_config(tmp_path, spool, "front")
    assert ctl.main(["jobs", "--config", str(config), "--purge-orphans"]) == 0
    out = capsys.readouterr().out
    assert "orphaned: printer" not in out  # purging lists what it deletes, nothing more
    assert f"deleted orphaned job gone-3: {gone[0]}, {gone[1]}" in out
    assert f"deleted orphaned job old-4: {other[0]}, {other[1]}" in out
    left = sorted(p.name for p in (spool / "jobs").iterdir())
    assert left == sorted(p.name for p in (*kept, *kept_done))
    assert (spool / "system.json").exists()


def test_purge_of_one_printer_only(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    gone = write_record(spool, 3, "gone")
    old = write_record(spool, 4, "old")
    config = write_config(tmp_path, spool, "front")
    assert ctl.main(["jobs", "old", "--config", str(config), "--purge-orphans"]) == 0
    assert all(p.exists() for p in gone) and not any(p.exists() for p in old)


def test_offline_purge_without_config_refuses(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    files = write_record(tmp_path, 3, "gone")
    assert ctl.main(["jobs", "--spool", str(tmp_path), "--purge-orphans"]) == 2
    assert "--config" in capsys.readouterr().err
    assert all(p.exists() for p in files)


def test_a_config_without_printers_configures_default(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    write_record(spool, 1, "default")
    write_record(spool, 2, "gone")
    config = write_config(tmp_path, spool)
    context = context_for("jobs", "--config", str(config))
    assert [o.label for o in context.orphans(None, context.config_printers or ())] == ["gone-2"]


def test_names_from_the_spool_reach_the_terminal_without_control_characters(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    write_record(spool, 2, "gone\x1b[2J", name="evil\rname\x07")
    config = write_config(tmp_path, spool, "front")
    ctl.main(["jobs", "--config", str(config)])
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\r" not in out and "\x07" not in out
    assert "gone?[2J-2" in out and "evil?name?" in out


# -- output -------------------------------------------------------------------------------------


def printer_answer(*attrs: Attribute) -> Answer:
    return Answer(Message((2, 0), 0, 1, [Group(GroupTag.OPERATION), Group(GroupTag.PRINTER,
                                                                          list(attrs))]))


def test_printer_status_lines() -> None:
    stopped = printer_answer(
        Attribute.of("printer-state", T.ENUM, 5),
        Attribute.of("printer-state-reasons", T.KEYWORD, "paused", "media-empty-warning"),
        Attribute.of("printer-state-message", T.TEXT, "Paused."),
        Attribute.of("queued-job-count", T.INTEGER, 1),
        Attribute.of("printer-is-accepting-jobs", T.BOOLEAN, True))
    assert ctl.printer_lines("front", stopped) == [
        "printer front is stopped, 1 queued job; reasons: paused, media-empty-warning",
        "\tPaused."]
    idle = printer_answer(
        Attribute.of("printer-state", T.ENUM, 3),
        Attribute.of("printer-state-reasons", T.KEYWORD, "none"),
        Attribute.of("printer-state-message", T.TEXT, ""),
        Attribute.of("queued-job-count", T.INTEGER, 0),
        Attribute.of("printer-is-accepting-jobs", T.BOOLEAN, False))
    assert ctl.printer_lines("back", idle) == [
        "printer back is idle, 0 queued jobs, not accepting jobs"]


def test_answers_describe_themselves_in_one_line() -> None:
    answer = Answer(Message((2, 0), 0x0406, 1, [Group(GroupTag.OPERATION, [
        Attribute.of("status-message", T.TEXT, "job 9 does not exist")])]))
    assert not answer.ok
    assert answer.describe() == "client-error-not-found: job 9 does not exist"
    assert Answer(Message((2, 0), 0x0499, 1, [])).describe() == "status 0x0499"


def test_an_unreadable_lock_is_not_called_no_gateway(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # As root every file is readable, so the refusal a user would meet is simulated.
    (tmp_path / "gateway.lock").write_text("{}")
    monkeypatch.setattr("gateway.ctl.os.access", lambda path, mode: False)
    assert ctl.main(["status", "--spool", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert f"cannot tell whether a gateway runs on spool {tmp_path}" in err
    assert "no gateway is running" not in err


def test_an_unreadable_spool(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "jobs").write_text("not a directory")
    config = write_config(tmp_path, spool, "front")
    assert ctl.main(["jobs", "--config", str(config), "--purge-orphans"]) == 1
    assert f"cannot list the jobs of spool {spool}" in capsys.readouterr().err
    # Listing (not purging) over IPP goes on without the orphans, with a note.
    context = context_for("jobs", "--config", str(config))
    assert context.orphans(None, ("front",), required=False) == []
    assert "orphaned jobs not shown" in capsys.readouterr().err
