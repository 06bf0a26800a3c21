"""Configuration: TOML into frozen dataclasses; every error names its key."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from drivers.registry import get_driver
from gateway.config import (
    ConfigError,
    LimitsConfig,
    ListenAddress,
    config_from_dict,
    load_config,
    parse_listen,
)
from gateway.core.printer import capabilities_for

GOOD = """
[server]
listen = ["127.0.0.1:631", "[::1]:8631", "*:9631"]
spool = "/tmp/spool"
log_level = "debug"

[[printer]]
name = "office"
device = "file:///tmp/out/"
driver = "raw"
location = "2nd floor"
media = ["iso_a4_210x297mm", "na_letter_8.5x11in"]
resolutions = [300]
duplex = false
"""


def test_good_config(tmp_path: Path) -> None:
    path = tmp_path / "gw.toml"
    path.write_text(GOOD)
    config = load_config(path)
    assert config.listen == (ListenAddress("127.0.0.1", 631), ListenAddress("::1", 8631),
                             ListenAddress("", 9631))
    (printer,) = config.printers
    assert printer.name == "office" and printer.location == "2nd floor"
    assert printer.media == ("iso_a4_210x297mm", "na_letter_8.5x11in")
    assert printer.resolutions == (300,) and printer.duplex is False
    with pytest.raises(AttributeError):
        printer.name = "x"  # type: ignore[misc]


@pytest.mark.parametrize(("data", "message"), [
    ({"server": {"listen": ["nowhere"]}}, "server.listen[0]: 'nowhere' is not HOST:PORT"),
    ({"server": {"log_level": "loud"}}, "server.log_level: 'loud' is not one of debug"),
    ({"server": {"colour": 1}}, "server.colour: unknown key"),
    ({"printer": [{"name": "a"}]}, "printer[0]: needs both 'name' and 'device'"),
    ({"printer": [{"name": "a b", "device": "file:///x"}]}, "printer[0].name: 'a b'"),
    ({"printer": [{"name": "a", "device": "gopher://x"}]},
     "printer[0].device: device URI 'gopher://x': no transport for scheme 'gopher' (known: "),
    ({"printer": [{"name": "a", "device": "file:///x", "driver": "zz"}]},
     "printer[0].driver: 'zz' is not one of"),
    ({"printer": [{"name": "a", "device": "file:///x", "media": ["b7"]}]},
     "printer[0].media: 'b7' is not one of"),
    ({"printer": [{"name": "a", "device": "file:///x", "duplex": "yes"}]},
     "printer[0].duplex: must be true or false"),
    ({"printer": [{"name": "a", "device": "file:///x"}, {"name": "a", "device": "file:///y"}]},
     "the name 'a' is used twice"),
    ({"printer": [{"name": "a", "device": "file:///x", "driver": "pcl5", "pjl": "on"}]},
     "printer[0].pjl: must be true or false"),
    ({"printer": [{"name": "a", "device": "file:///x", "driver": "text", "pjl": True}]},
     "printer[0].pjl: the 'text' driver cannot use a PJL job wrapper (pjl applies to pcl5, "
     "postscript, postscript2)"),
    ({"printer": [{"name": "a", "device": "file:///x", "pjl": True}]},
     "printer[0].pjl: the 'raw' driver cannot use"),
    ({"printer": [{"name": "a", "device": "file:///x", "driver": "pclxl", "pjl": False}]},
     "printer[0].pjl: the 'pclxl' driver cannot turn off"),
    ({"server": {"allow": ["10.0.0.0/33"]}},
     "server.allow[0]: '10.0.0.0/33' is not an address, a network in CIDR form"),
    ({"server": {"allow": []}}, "server.allow: empty, so nobody could connect"),
    ({"server": {"deny": [10]}}, "server.deny[0]: must be a string"),
    ({"server": {"deny": "lan"}}, "server.deny[0]: 'lan' is not an address"),
    ({"limits": {"max_connections": 0}}, "limits.max_connections: 0 is outside 1..1000000"),
    ({"limits": {"max_connections": 100, "max_connections_per_client": 200}},
     "limits.max_connections_per_client: 200 is above limits.max_connections (100)"),
    ({"limits": {"header_timeout": "10s"}}, "limits.header_timeout: must be a number"),
    ({"limits": {"idle_timeout": 0}}, "limits.idle_timeout: 0 is outside 0.5..86400"),
    ({"limits": {"max_header_bytes": 100}}, "limits.max_header_bytes: 100 is outside"),
    ({"limits": {"max_header_fields": 2.5}}, "limits.max_header_fields: must be a whole"),
    ({"limits": {"max_job": 3}}, "limits.max_job: unknown key (allowed: header_timeout, "),
    ({"limits": {"max_jobs": 0}}, "limits.max_jobs: 0 is outside 1..1000000"),
    ({"limits": {"max_jobs": "500"}}, "limits.max_jobs: must be a whole number"),
    ({"limits": {"max_jobs_per_user": True}}, "limits.max_jobs_per_user: must be a whole"),
    ({"limits": {"max_jobs": 10, "max_jobs_per_user": 11}},
     "limits.max_jobs_per_user: 11 is above limits.max_jobs (10)"),
    ({"limits": {"min_free_disk_mb": -1}}, "limits.min_free_disk_mb: -1 is outside 0.."),
    ({"limits": {"min_free_disk_mb": 1.5}}, "limits.min_free_disk_mb: must be a whole"),
    ({"limits": 5}, "limits: must be a table, not int"),
])
def test_errors_name_the_key(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config_from_dict(data)
    assert message in str(caught.value)


@pytest.mark.parametrize(("driver", "pjl", "expected"), [
    ("pcl5", None, False), ("pcl5", True, True), ("pcl5", False, False),
    ("postscript", True, True), ("postscript2", False, False), ("pclxl", None, True),
    ("pclxl", True, True), ("text", False, False), ("raw", None, False), ("raw", False, False),
])
def test_pjl_key_reaches_the_capabilities(driver: str, pjl: bool | None, expected: bool) -> None:
    """`pjl` lists PJL in the printer's command set: the planner wraps its jobs, the
    printer-device-id says CMD:...PJL. PCL XL has it from its driver (Ghostscript writes it)."""
    table: dict[str, object] = {"name": "a", "device": "file:///x", "driver": driver}
    if pjl is not None:
        table["pjl"] = pjl
    (printer,) = config_from_dict({"printer": [table]}).printers
    caps = capabilities_for(get_driver(driver), printer)
    assert caps.pjl is expected
    assert caps.command_set.count("PJL") == (1 if expected else 0)
    assert [c for c in caps.command_set if c != "PJL"] == [
        c for c in get_driver(driver).capabilities.command_set if c != "PJL"]


def test_parse_listen_forms() -> None:
    assert parse_listen("[::]:631", "x") == ListenAddress("::", 631)
    assert parse_listen("localhost:0", "x") == ListenAddress("localhost", 0)
    with pytest.raises(ConfigError, match=r"outside 0\.\.65535"):
        parse_listen("h:70000", "x")


def test_check_config_exit_codes(tmp_path: Path) -> None:
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text(GOOD)
    bad.write_text('[[printer]]\nname = "x"\ndevice = "file:///x"\ndriver = "nope"\n')
    run = [sys.executable, "-m", "gateway", "check-config"]
    ok = subprocess.run([*run, str(good)], capture_output=True, text=True, check=False)
    assert ok.returncode == 0, ok.stderr
    failed = subprocess.run([*run, str(bad)], capture_output=True, text=True, check=False)
    assert failed.returncode == 2
    assert "printer[0].driver: 'nope' is not one of" in failed.stderr
    assert "Traceback" not in failed.stderr


def test_shipped_example_config_is_valid() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "ipp-gateway.example.toml"
    config = load_config(example)
    assert config.printers and config.listen[0].port == 631
    assert [p.pjl for p in config.printers] == [None, True]


def test_access_and_limits_defaults() -> None:
    config = config_from_dict({})
    assert (config.allow, config.deny) == (("local",), ())
    assert config.limits == LimitsConfig(max_connections=512, max_connections_per_client=64,
                                         header_timeout=10.0, idle_timeout=30.0,
                                         max_header_bytes=16384, max_header_fields=100)


def test_access_and_limits_parsed() -> None:
    config = config_from_dict({
        "server": {"allow": ["local", " 10.0.0.0/8", "10.0.0.0/8", "fd00::/8"],
                   "deny": "10.9.0.0/16"},
        "limits": {"max_connections": 200, "max_connections_per_client": 20,
                   "header_timeout": 2, "idle_timeout": 15.5, "max_header_fields": 50}})
    assert config.allow == ("local", "10.0.0.0/8", "fd00::/8")
    assert config.deny == ("10.9.0.0/16",)
    assert config.limits == LimitsConfig(max_connections=200, max_connections_per_client=20,
                                         header_timeout=2.0, idle_timeout=15.5,
                                         max_header_fields=50)


def test_job_and_disk_limits() -> None:
    defaults = config_from_dict({}).limits
    assert (defaults.max_jobs, defaults.max_jobs_per_user, defaults.min_free_disk_mb) == (
        500, 100, 32)
    limits = config_from_dict({"limits": {"max_jobs": 40, "max_jobs_per_user": 3,
                                          "min_free_disk_mb": 0}}).limits
    assert (limits.max_jobs, limits.max_jobs_per_user, limits.min_free_disk_mb) == (40, 3, 0)
    # A total below the per-user default, with no per-user key: it follows the total.
    assert config_from_dict({"limits": {"max_jobs": 20}}).limits.max_jobs_per_user == 20


def test_example_config_documents_the_job_limits() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy" / "ipp-gateway.example.toml"
    written = tomllib.loads(example.read_text())["limits"]
    limits = load_config(example).limits
    assert {key: written[key] for key in ("max_jobs", "max_jobs_per_user",
                                          "min_free_disk_mb")} == {
        "max_jobs": limits.max_jobs, "max_jobs_per_user": limits.max_jobs_per_user,
        "min_free_disk_mb": limits.min_free_disk_mb} == {
        "max_jobs": 500, "max_jobs_per_user": 100, "min_free_disk_mb": 32}
