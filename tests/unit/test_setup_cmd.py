"""`ipp-gateway add` and `remove` (gateway.setup_cmd) with the probe passed in: what is
printed, the exit status, what the configuration file becomes, and whom SIGHUP reaches
(a real process holding the spool's lock)."""

from __future__ import annotations

import io
import json
import select
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import pytest
import trio.lowlevel

from drivers.autosetup import DriverChoice
from drivers.errors import UriError
from drivers.netprobe import SetupProbe, describe_setup
from gateway import autoprinters
from gateway.config import load_config
from gateway.core.spool_lock import LOCK_NAME, LockInfo
from gateway.setup_cmd import NEW_CONFIG_HEADER, add_printer_command, remove_printer_command

ORIGINAL = """\
# The office gateway.
[server]
listen = ["127.0.0.1:8631"]  # loopback only
spool = "{spool}"

# The laser on the second floor.
[[printer]]
name = "office"
device = "file:///tmp/out/"  # a directory
driver = "raw"
"""

LASER = SetupProbe(
    target="192.0.2.7", device_uri="socket://192.0.2.7:9100",
    choice=DriverChoice("postscript", "POSTSCRIPT",
                        "PJL INFO CONFIG lists POSTSCRIPT: PostScript is preferred over PCL"),
    make_and_model="Acme Laser 1", device_id="MFG:Acme;MDL:Laser 1;CMD:PCL,POSTSCRIPT;",
    findings=("192.0.2.7:9100 answered PJL INFO ID: Acme Laser 1",), error="")
DEAD = SetupProbe(target="192.0.2.8", device_uri="", choice=None, make_and_model="",
                  device_id="", findings=("192.0.2.8:9100: connection refused",),
                  error="nothing answered at 192.0.2.8 (ports 9100 and 515 refused)")


class FakeProbe:
    """Stands in for drivers.probe_target: answers `result` (or raises `raises`) and records
    what it was asked."""

    def __init__(self, result: SetupProbe = LASER, raises: Exception | None = None) -> None:
        self.result = result
        self.raises = raises
        self.calls: list[tuple[str, float]] = []

    # The signature of drivers.probe_target, whose timeout bounds the whole probe.
    async def __call__(self, target: str, *, timeout: float = 10.0  # noqa: ASYNC109
                       ) -> SetupProbe:
        self.calls.append((target, timeout))
        await trio.lowlevel.checkpoint()
        if self.raises is not None:
            raise self.raises
        return self.result


class Run:
    def __init__(self, status: int, out: io.StringIO, err: io.StringIO) -> None:
        self.status = status
        self.out = out.getvalue()
        self.err = err.getvalue()


def add(config: Path, target: str = "192.0.2.7", probe: FakeProbe | None = None,
        **options: object) -> Run:
    out, err = io.StringIO(), io.StringIO()
    status = add_printer_command(target, config_path=config, probe=probe or FakeProbe(),
                                 out=out, err=err, **options)  # type: ignore[arg-type]
    return Run(status, out, err)


def remove(config: Path, name: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    status = remove_printer_command(name, config_path=config, out=out, err=err)
    return Run(status, out, err)


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    path = tmp_path / "spool"
    path.mkdir()
    return path


@pytest.fixture
def config(tmp_path: Path, spool: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(ORIGINAL.format(spool=spool))
    path.chmod(0o640)
    return path


def unchanged(config: Path, spool: Path, inode: int) -> bool:
    return config.read_text() == ORIGINAL.format(spool=spool) and config.stat().st_ino == inode


def test_add_probes_names_from_the_model_and_keeps_the_file_byte_for_byte(
        config: Path, spool: Path) -> None:
    probe = FakeProbe()
    run = add(config, timeout=3.5, probe=probe)
    assert (run.status, run.err) == (0, ""), run.err
    assert probe.calls == [("192.0.2.7", 3.5)]
    lines = run.out.splitlines()
    assert lines[:-2] == describe_setup(LASER)
    assert lines[-2] == (f"added printer Acme_Laser_1 (socket://192.0.2.7:9100, driver "
                         f"postscript) to {config}")
    assert lines[-1] == (f"no gateway is running on {spool}: the printer is served from its "
                         "next start")
    text = config.read_text()
    assert text.startswith(ORIGINAL.format(spool=spool) + "\n[[printer]]\n")
    added = load_config(config).printers[1]
    assert (added.name, added.device_uri, added.driver, added.make_and_model) == (
        "Acme_Laser_1", "socket://192.0.2.7:9100", "postscript", "Acme Laser 1")
    assert config.stat().st_mode & 0o777 == 0o640


def test_the_default_name_steers_clear_of_configured_and_remembered_printers(
        config: Path, spool: Path) -> None:
    assert add(config).status == 0
    autoprinters.remember(spool, autoprinters.RememberedPrinter(
        "04f9:0042:X1", "Acme_Laser_1_2", "usb://04f9:0042?serial=X1", "pcl5"))
    run = add(config, "192.0.2.9")
    assert run.status == 0, run.err
    assert [p.name for p in load_config(config).printers] == [
        "office", "Acme_Laser_1", "Acme_Laser_1_3"]


def test_driver_given_overrides_the_choice_and_says_so(config: Path) -> None:
    run = add(config, driver="pcl5", name="lab")
    assert run.status == 0, run.err
    assert "driver:     pcl5 (given with --driver; the probe chose postscript)" in run.out
    assert "postscript (" not in run.out  # the probe's choice is not offered as the driver
    lab = load_config(config).printers[1]
    assert (lab.name, lab.driver) == ("lab", "pcl5")


def test_a_dead_device_is_one_error_line_and_the_file_is_untouched(config: Path,
                                                                    spool: Path) -> None:
    inode = config.stat().st_ino
    run = add(config, "192.0.2.8", probe=FakeProbe(DEAD))
    assert run.status == 1
    assert run.err == f"error: {DEAD.error}\n"
    assert run.out.splitlines() == describe_setup(DEAD)  # what was tried, for the person
    assert unchanged(config, spool, inode)


def test_a_malformed_target_exits_2(config: Path, spool: Path) -> None:
    inode = config.stat().st_ino
    run = add(config, "bogus://x", probe=FakeProbe(raises=UriError("no transport for bogus")))
    assert run.status == 2
    assert run.err.startswith("error: bogus://x: ") and run.err.count("\n") == 1
    assert unchanged(config, spool, inode)


@pytest.mark.parametrize(("options", "status", "message"), [
    ({"driver": "pcl9"}, 2, "unknown driver 'pcl9'; the drivers are auto, "),
    ({"name": "office"}, 1, "a printer named 'office' exists already"),
    ({"name": "OFFICE"}, 1, "a printer named 'OFFICE' exists already"),
    ({"name": "-bad name"}, 2, "cannot be a printer name"),
])
def test_refused_before_asking_the_device(config: Path, spool: Path, options: dict[str, str],
                                          status: int, message: str) -> None:
    inode = config.stat().st_ino
    probe = FakeProbe()
    run = add(config, probe=probe, **options)
    assert run.status == status
    assert run.err.startswith("error: ") and message in run.err and run.out == ""
    assert probe.calls == []
    assert unchanged(config, spool, inode)


def test_unknown_driver_lists_every_valid_one(config: Path) -> None:
    run = add(config, driver="nope")
    for driver in ("postscript", "pcl5", "pclxl", "raw", "text"):
        assert driver in run.err


def test_a_missing_file_is_created_with_a_header(tmp_path: Path) -> None:
    config = tmp_path / "etc" / "ipp-gateway" / "gateway.toml"
    run = add(config)
    assert run.status == 0, run.err
    text = config.read_text()
    assert text.startswith(NEW_CONFIG_HEADER + "\n[[printer]]\n")
    assert [p.name for p in load_config(config).printers] == ["Acme_Laser_1"]
    assert config.stat().st_mode & 0o777 == 0o644


def test_a_missing_file_stays_missing_when_the_device_fails(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    assert add(config, probe=FakeProbe(DEAD)).status == 1
    assert list(tmp_path.iterdir()) == []


def test_remove_takes_the_table_out_and_keeps_the_rest(config: Path, spool: Path) -> None:
    assert add(config, name="lab").status == 0
    run = remove(config, "lab")
    assert (run.status, run.err) == (0, "")
    assert run.out.splitlines() == [
        f"removed printer lab from {config}",
        f"no gateway is running on {spool}: the change applies from its next start"]
    assert config.read_text().rstrip("\n") == ORIGINAL.format(spool=spool).rstrip("\n")


def test_remove_may_leave_no_printer(config: Path, spool: Path) -> None:
    run = remove(config, "office")
    assert run.status == 0, run.err
    assert run.out.splitlines()[1].startswith("no printer is configured now")
    assert load_config(config).printers == ()
    assert "# The office gateway." in config.read_text()


def test_remove_forgets_a_remembered_usb_printer(config: Path, spool: Path) -> None:
    autoprinters.remember(spool, autoprinters.RememberedPrinter(
        "04f9:0042:X1", "Brother_HL", "usb://04f9:0042?serial=X1", "pcl5"))
    before = config.read_text()
    run = remove(config, "Brother_HL")
    assert run.status == 0, run.err
    assert "removed the USB printer Brother_HL" in run.out
    assert [p.removed for p in autoprinters.load(spool)] == [True]
    assert config.read_text() == before
    again = remove(config, "Brother_HL")  # removed already: nothing of that name is left
    assert again.status == 1 and "no printer named 'Brother_HL'" in again.err


def test_remove_takes_both_a_table_and_the_usb_printer_it_overrode(config: Path,
                                                                     spool: Path) -> None:
    autoprinters.remember(spool, autoprinters.RememberedPrinter(
        "04f9:0042:X1", "lab", "usb://04f9:0042?serial=X1", "text"))
    assert add(config, name="lab", driver="pcl5").status == 0  # the guess corrected
    run = remove(config, "lab")
    assert run.status == 0, run.err
    assert run.out.splitlines()[:2] == [
        f"removed printer lab from {config}",
        f"removed the USB printer lab (remembered in {spool})"]
    assert [p.name for p in load_config(config).printers] == ["office"]
    assert [p.removed for p in autoprinters.load(spool)] == [True]


def test_remove_an_unknown_printer_exits_1(config: Path, spool: Path) -> None:
    inode = config.stat().st_ino
    run = remove(config, "nosuch")
    assert run.status == 1
    assert run.err == (f"error: no printer named 'nosuch' in {config}, nor a USB printer "
                       f"remembered in {spool}\n")
    assert unchanged(config, spool, inode)


# -- SIGHUP to the holder of the spool's lock ---------------------------------------------------

# A stand-in gateway: takes the spool lock as the gateway does, and reports each SIGHUP.
HOLDER = textwrap.dedent("""\
    import signal, sys
    from pathlib import Path
    from gateway.core.spool_lock import SpoolLock
    lock = SpoolLock(Path(sys.argv[1]))
    lock.acquire()
    signal.signal(signal.SIGHUP, lambda *_: print("SIGHUP", flush=True))
    print("locked", flush=True)
    sys.stdin.read()
""")
# Not a gateway: lives on, and would die of a SIGHUP it should never get.
BYSTANDER = "import sys; print('up', flush=True); sys.stdin.read()"


def spawn(*argv: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=Path(__file__).parents[2])


def next_line(proc: subprocess.Popen[str], timeout: float = 10.0) -> str:
    """The process's next line of output, or "" if none comes within `timeout`."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


def end(proc: subprocess.Popen[str]) -> None:
    proc.kill()
    proc.communicate(timeout=10)  # reaps it and closes its pipes


@pytest.fixture
def holder(spool: Path) -> Iterator[subprocess.Popen[str]]:
    proc = spawn("-c", HOLDER, str(spool))
    try:
        assert next_line(proc) == "locked\n"
        yield proc
    finally:
        end(proc)


def test_add_and_remove_send_sighup_to_the_gateway_holding_the_lock(
        config: Path, holder: subprocess.Popen[str]) -> None:
    run = add(config)
    assert run.status == 0, run.err
    assert run.out.splitlines()[-1] == f"the running gateway (pid {holder.pid}) reloads"
    assert next_line(holder) == "SIGHUP\n"
    run = remove(config, "Acme_Laser_1")
    assert run.status == 0, run.err
    assert run.out.splitlines()[-1] == f"the running gateway (pid {holder.pid}) reloads"
    assert next_line(holder) == "SIGHUP\n"
    assert holder.poll() is None


def test_a_stale_lock_naming_a_live_process_is_not_signalled(config: Path,
                                                             spool: Path) -> None:
    bystander = spawn("-c", BYSTANDER)
    try:
        assert next_line(bystander) == "up\n"
        # What a gateway that ended left behind, naming a pid that now belongs to another.
        (spool / LOCK_NAME).write_text(json.dumps(asdict(LockInfo(pid=bystander.pid))))
        run = add(config)
        assert run.status == 0, run.err
        assert run.out.splitlines()[-1] == (f"no gateway is running on {spool}: the printer is "
                                            "served from its next start")
        assert bystander.poll() is None  # no SIGHUP reached it
    finally:
        end(bystander)
