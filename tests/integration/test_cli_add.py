"""`python -m gateway add` and `remove` as a person runs them: against real peers on loopback
(an LPD server, a closed port), and against a running gateway, which reloads and serves the
new printer, then no longer serves the removed one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trio

from gateway.config import load_config
from ippwire.enums import Operation, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers import REPO_ROOT
from tests.peers.gateway_proc import CONFIG_NAME, PrinterTable, start_configured_gateway
from tests.peers.ippeveprinter import running_ippeveprinter
from tests.peers.procs import LOOPBACK, free_port
from tests.support.fake_lpd import FakeLpd
from tests.support.ipp_client import post, printer_path
from tests.support.pjl_peer import PjlPeer
from tests.support.serving import serving

IPP_OK = 0x0000
IPP_NOT_FOUND = 0x0406
RELOAD_WAIT = 30.0


async def gateway_cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([sys.executable, "-m", "gateway", *argv], cwd=REPO_ROOT,
                                  capture_stdout=True, capture_stderr=True, check=False)


def lines(output: bytes) -> list[str]:
    return output.decode().splitlines()


def config_with_spool(tmp_path: Path) -> Path:
    """A configuration naming a spool of the test's own: never the machine's gateway's."""
    spool = tmp_path / "spool"
    spool.mkdir()
    path = tmp_path / "gateway.toml"
    path.write_text(f'# Set up by the test.\n[server]\nspool = "{spool}"  # its own\n')
    return path


@pytest.mark.parametrize(("languages", "driver"), [
    (("PCL", "POSTSCRIPT"), "postscript"), (("PCLXL", "PCL"), "pclxl"), (("PCL",), "pcl5")])
async def test_a_9100_peer_is_added_with_the_driver_its_pjl_names(
        tmp_path: Path, languages: tuple[str, ...], driver: str) -> None:
    config = config_with_spool(tmp_path)
    before = config.read_text()
    async with serving(PjlPeer(model="HP LaserJet 4000", languages=languages)) as peer:
        done = await gateway_cli("add", peer.address, "--config", str(config))
    assert (done.returncode, done.stderr) == (0, b""), done
    assert f"added printer HP_LaserJet_4000 (socket://{peer.address}, driver {driver}) to " \
        f"{config}" in lines(done.stdout)
    assert config.read_text().startswith(before)
    (printer,) = load_config(config).printers
    assert (printer.name, printer.device_uri, printer.driver, printer.make_and_model) == (
        "HP_LaserJet_4000", f"socket://{peer.address}", driver, "HP LaserJet 4000")
    assert any(b"@PJL INFO ID" in received for received in peer.received)


async def test_an_lpd_peer_is_added_with_its_queue_and_a_driver(fake_lpd: FakeLpd,
                                                                tmp_path: Path) -> None:
    config = config_with_spool(tmp_path)
    before = config.read_text()
    port = fake_lpd.uri.split(":")[2].split("/")[0]
    done = await gateway_cli("add", f"lpd://{LOOPBACK}:{port}/", "--config", str(config),
                             "--timeout", "10")
    assert (done.returncode, done.stderr) == (0, b""), done
    out = lines(done.stdout)
    assert any(line.startswith("tried:") and "answered" in line for line in out), out
    assert out[-1] == (f"no gateway is running on {tmp_path / 'spool'}: the printer is served "
                       "from its next start")
    assert config.read_text().startswith(before)
    (printer,) = load_config(config).printers
    assert printer.device_uri.startswith(f"lpd://{LOOPBACK}:{port}/")
    assert printer.driver == "postscript" and printer.name == "Printer"
    assert out[-2] == (f"added printer Printer ({printer.device_uri}, driver postscript) to "
                       f"{config}")


async def test_a_dead_target_exits_1_with_the_message_and_no_change(tmp_path: Path) -> None:
    config = config_with_spool(tmp_path)
    before = config.read_text()
    port = free_port()  # bound once and closed: nothing listens there
    done = await gateway_cli("add", f"{LOOPBACK}:{port}", "--config", str(config),
                             "--timeout", "5")
    assert done.returncode == 1, done
    (error,) = lines(done.stderr)
    assert error.startswith("error: ") and f"{LOOPBACK}:{port}" in error, error
    assert config.read_text() == before


async def test_a_malformed_target_or_driver_exits_2(tmp_path: Path) -> None:
    config = config_with_spool(tmp_path)
    before = config.read_text()
    done = await gateway_cli("add", "bogus://x/y", "--config", str(config))
    assert done.returncode == 2 and lines(done.stderr)[0].startswith("error: bogus://x/y"), done
    done = await gateway_cli("add", f"{LOOPBACK}:9", "--driver", "pcl9", "--config",
                             str(config))
    assert done.returncode == 2 and b"unknown driver 'pcl9'" in done.stderr, done
    assert config.read_text() == before


def printer_answer(port: int, name: str) -> int:
    """The IPP status of Get-Printer-Attributes on /ipp/print/NAME (404 over HTTP counts as
    not found)."""
    uri = f"ipp://{LOOPBACK}:{port}{printer_path(name)}"
    message = request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=uri, user="test",
                      attrs={"requested-attributes": (ValueTag.KEYWORD, ["printer-name"])})
    status, body = post(port, encode_message(message), path=printer_path(name), timeout=10)
    if status == 404:
        return IPP_NOT_FOUND
    assert status == 200, (status, body[:200])
    return decode_message(body)[0].code


async def wait_answer(port: int, name: str, wanted: int) -> None:
    """Until the gateway answers `wanted` for the printer (a reload takes a moment)."""
    with trio.fail_after(RELOAD_WAIT):
        while await trio.to_thread.run_sync(printer_answer, port, name) != wanted:  # noqa: ASYNC110 - polls the gateway process
            await trio.sleep(0.1)


async def test_add_and_remove_reload_the_running_gateway(fake_lpd: FakeLpd,
                                                         tmp_path: Path) -> None:
    gateway = await trio.to_thread.run_sync(
        lambda: start_configured_gateway(tmp_path / "gateway", [PrinterTable("front")]))
    with gateway:
        config = gateway.workdir / CONFIG_NAME
        assert await trio.to_thread.run_sync(printer_answer, gateway.port, "back") == \
            IPP_NOT_FOUND
        done = await gateway_cli("add", "back", fake_lpd.uri, "--driver", "raw", "--config",
                                 str(config))
        assert (done.returncode, done.stderr) == (0, b""), done
        assert lines(done.stdout)[-1] == f"the running gateway (pid {gateway.pid}) reloads"
        await wait_answer(gateway.port, "back", IPP_OK)
        assert await trio.to_thread.run_sync(printer_answer, gateway.port, "front") == IPP_OK

        done = await gateway_cli("remove", "back", "--config", str(config))
        assert (done.returncode, done.stderr) == (0, b""), done
        assert lines(done.stdout) == [f"removed printer back from {config}",
                                      f"the running gateway (pid {gateway.pid}) reloads"]
        await wait_answer(gateway.port, "back", IPP_NOT_FOUND)
        assert gateway.alive()
        done = await gateway_cli("remove", "back", "--config", str(config))
        assert done.returncode == 1 and b"no printer named 'back'" in done.stderr, done


async def test_an_ipp_device_is_added_with_what_it_says_it_accepts(tmp_path: Path) -> None:
    """Issue 15: an IPP printer that takes only PostScript is set up from its own
    Get-Printer-Attributes: the postscript driver (our pipeline makes what it lacks), its
    media, duplex and color, written in the config, which then loads."""
    config = config_with_spool(tmp_path)
    with running_ippeveprinter(tmp_path / "device", formats="application/postscript") as device:
        done = await gateway_cli("add", "laser", device.printer_uri, "--config", str(config))
        probed = await gateway_cli("probe", device.printer_uri)
    assert (done.returncode, done.stderr) == (0, b""), done
    # `probe` says the same: what the device takes and the driver set-up chooses.
    assert probed.returncode == 0, probed
    assert "driver:     postscript (the device's document-format-supported lists" in (
        probed.stdout.decode()), probed.stdout
    out = done.stdout.decode()
    assert "application/postscript" in out and "postscript" in out, out
    (printer,) = load_config(config).printers
    assert (printer.name, printer.device_uri, printer.driver) == (
        "laser", device.printer_uri, "postscript")
    assert printer.media and printer.media_default in printer.media
    assert printer.duplex is not None and printer.color is not None
    assert printer.make_and_model
