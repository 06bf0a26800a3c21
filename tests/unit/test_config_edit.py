"""Editing the configuration file's printers (gateway.config_edit): comments and layout
kept, every change validated before anything is written, written atomically."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gateway.config import load_config
from gateway.config_edit import EditError, add_printer, change_printer, remove_printer

ORIGINAL = """\
# The office gateway.
[server]
listen = ["127.0.0.1:8631"]  # loopback only

# The laser on the second floor.
[[printer]]
name = "office"
device = "file:///tmp/out/"  # a directory
driver = "raw"
"""


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "gateway.toml"
    path.write_text(ORIGINAL)
    path.chmod(0o640)
    return path


def test_add_change_remove_keep_every_comment(config: Path) -> None:
    added = add_printer(config, {"name": "lab", "device": "socket://192.0.2.5:9100",
                                 "driver": "pcl5", "location": "Lab", "info": ""})
    assert [p.name for p in added.printers] == ["office", "lab"]
    text = config.read_text()
    assert text.startswith(ORIGINAL) and "info" not in text  # empty values are left out
    assert load_config(config).printers[1].location == "Lab"
    change_printer(config, "office", {"info": "Office", "driver": ""})
    text = config.read_text()
    assert "# The laser on the second floor." in text and "# a directory" in text
    office = load_config(config).printers[0]
    assert office.info == "Office" and office.driver == "raw"  # the default again
    assert remove_printer(config, "lab").printers[0].name == "office"
    assert "lab" not in config.read_text() and "# loopback only" in config.read_text()
    assert config.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in config.parent.iterdir()] == ["gateway.toml"]  # no temp left


@pytest.mark.parametrize(("change", "message"), [
    (lambda p: add_printer(p, {"name": "x", "device": "bogus://y"}), "no transport"),
    (lambda p: add_printer(p, {"name": "office", "device": "file:///tmp/"}), "exists"),
    (lambda p: add_printer(p, {"name": "x"}), "name and a device"),
    (lambda p: add_printer(p, {"name": "x", "device": "file:///t/", "formats": []}),
     "cannot set"),
    (lambda p: add_printer(p, {"name": "x", "device": "file:///t/", "print": "alice"}),
     "needs authentication"),
    (lambda p: change_printer(p, "office", {"name": "renamed"}), "renamed"),
    (lambda p: change_printer(p, "office", {"device": ""}), "needs its device"),
    (lambda p: change_printer(p, "nosuch", {"info": "x"}), "no printer named"),
    (lambda p: remove_printer(p, "office"), "last printer"),
])
def test_a_refused_change_leaves_the_file_alone(config: Path, change: object,
                                                message: str) -> None:
    before = os.stat(config)
    with pytest.raises(EditError, match=message):
        change(config)  # type: ignore[operator]
    assert config.read_text() == ORIGINAL and os.stat(config).st_ino == before.st_ino


def test_a_broken_file_is_reported_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "broken.toml"
    path.write_text("[server\n")
    with pytest.raises(EditError, match="not valid TOML"):
        add_printer(path, {"name": "x", "device": "file:///t/"})
    assert path.read_text() == "[server\n"


NO_PRINTER_YET = """\
# A fresh install.
[server]
listen = ["*:631"]  # the IPP port

# No [[printer]] yet. For example:
# [[printer]]
# name = "laser"
"""


def test_the_first_printer_is_set_off_from_the_comments_before_it(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(NO_PRINTER_YET)
    add_printer(path, {"name": "lab", "device": "socket://192.0.2.5:9100", "driver": "pcl5"})
    assert path.read_text() == NO_PRINTER_YET + (
        '\n[[printer]]\nname = "lab"\ndevice = "socket://192.0.2.5:9100"\ndriver = "pcl5"\n')
    assert [p.name for p in load_config(path).printers] == ["lab"]


def test_a_missing_file_is_made_only_when_asked(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    with pytest.raises(EditError, match="cannot read"):
        add_printer(path, {"name": "lab", "device": "file:///t/"})
    assert not path.exists()
    with pytest.raises(EditError, match="no transport"):  # refused: still nothing made
        add_printer(path, {"name": "lab", "device": "bogus://t"}, new_file="# made here\n")
    assert not path.exists()
    add_printer(path, {"name": "lab", "device": "file:///t/"}, new_file="# made here\n")
    assert path.read_text() == '# made here\n\n[[printer]]\nname = "lab"\ndevice = "file:///t/"\n'
    assert path.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["gateway.toml"]


def test_the_last_printer_goes_only_when_allowed(config: Path) -> None:
    assert remove_printer(config, "office", allow_last=True).printers == ()
    text = config.read_text()
    assert "[[printer]]" not in text and "# loopback only" in text
    assert load_config(config).printers == ()
