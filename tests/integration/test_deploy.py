"""Issue 13, point 6: deploy/ checked by the tools that run it. The systemd unit by
`systemd-analyze verify`, the scripts by shellcheck, deploy/install.sh by running it twice into
a throwaway DESTDIR, deploy/uninstall.sh on a copy of that tree, and the Ansible role by
ansible-playbook (syntax, then a real run on localhost into a throwaway root) and ansible-lint.

The installs are offline: a module fixture builds a wheelhouse once (`pip wheel` of a copy of
this checkout) and both the script and the role install from it."""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.config import load_config

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
ANSIBLE = DEPLOY / "ansible"
UNIT = DEPLOY / "ipp-gateway.service"
VENV_PYTHON = "/opt/ipp-gateway/venv/bin/python"
# What pip builds the gateway from (as deploy/install.sh and the role copy it).
SOURCE_PARTS = ("pyproject.toml", "setup.py", "README.md", "gateway", "drivers", "ippwire")
# The interpreter the staged venvs are made from: the one the wheelhouse is built for.
BASE_PYTHON = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"


def tool(name: str) -> str:
    """A command from this venv (ansible-*) or the PATH; skips the test when it is missing."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (make test installs it: scripts/install-peers.sh)")
    return found


def run(argv: list[str], cwd: Path = REPO, env: dict[str, str] | None = None,
        timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def unit_settings(text: str) -> dict[str, list[str]]:
    """Key -> values of a unit file (keys repeat: DeviceAllow)."""
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def verify_unit(text: str, tmp_path: Path) -> None:
    path = tmp_path / "ipp-gateway.service"
    path.write_text(text)
    result = run([tool("systemd-analyze"), "verify", str(path)])
    # A misspelt key is only a message, with exit status 0: both must be clean.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """Every path under root: its type, mode, mtime and content (or link target)."""
    found: dict[str, tuple[object, ...]] = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory, name)
            info = path.lstat()
            if stat.S_ISLNK(info.st_mode):
                what: object = os.readlink(path)
            elif stat.S_ISREG(info.st_mode):
                what = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                what = None
            found[str(path.relative_to(root))] = (info.st_mode, info.st_mtime_ns, what)
    return found


def files_under(root: Path) -> set[str]:
    return {str(Path(d, f).relative_to(root)) for d, _, names in os.walk(root) for f in names}


def install(destdir: Path, wheelhouse: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    result = run(["bash", str(DEPLOY / "install.sh"), "--destdir", str(destdir),
                  "--wheelhouse", str(wheelhouse), "--python", str(BASE_PYTHON), *extra])
    assert result.returncode == 0, result.stdout + result.stderr
    return result


# --- the files themselves ---------------------------------------------------------------------


def test_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    text = UNIT.read_text()
    assert VENV_PYTHON in text
    # verify checks that ExecStart's program exists: here the venv is not installed, so this
    # interpreter stands in for it (test_install_... verifies the staged one).
    verify_unit(text.replace(VENV_PYTHON, sys.executable), tmp_path)


def test_unit_and_default_config_agree() -> None:
    unit = unit_settings(UNIT.read_text())
    config = load_config(DEPLOY / "gateway.toml")
    # The spool is the StateDirectory, the only place under /var it may write.
    assert config.spool == Path("/var/lib") / unit["StateDirectory"][0]
    # systemd starts it as its own account, so the config must not name another.
    assert unit["User"] == ["ipp-gateway"] and config.user == ""
    assert "--config /etc/ipp-gateway/gateway.toml" in unit["ExecStart"][0]
    assert unit["ReadWritePaths"] == ["/etc/ipp-gateway"]
    # Port 631 needs the one capability the unit grants.
    assert [a.port for a in config.listen] == [631]
    assert unit["AmbientCapabilities"] == unit["CapabilityBoundingSet"] == [
        "CAP_NET_BIND_SERVICE"]
    assert unit["Type"] == ["notify"] and unit["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert "PrivateDevices" not in unit  # it would hide the printers


@pytest.mark.parametrize("name", ["ipp-gateway.example.toml", "gateway.toml"])
def test_shipped_configs_pass_check_config(name: str) -> None:
    result = run([sys.executable, "-m", "gateway", "check-config", str(DEPLOY / name)])
    assert result.returncode == 0, result.stderr
    assert ": OK (" in result.stdout


def test_scripts_pass_shellcheck() -> None:
    scripts = sorted(str(p) for p in DEPLOY.glob("*.sh"))
    assert len(scripts) == 2
    result = run([tool("shellcheck"), "--severity=style", *scripts])
    assert result.returncode == 0, result.stdout + result.stderr


def test_udev_rule_passes_udevadm_verify() -> None:
    udevadm = tool("udevadm")
    if "verify" not in run([udevadm, "--help"]).stdout:
        pytest.skip("udevadm verify needs systemd 253 or newer")
    result = run([udevadm, "verify", str(DEPLOY / "70-ipp-gateway.rules")])
    assert result.returncode == 0, result.stdout + result.stderr


# --- install.sh and uninstall.sh into a throwaway DESTDIR --------------------------------------


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The gateway's wheel and its dependencies', built once per run from a copy of this
    checkout (an in-tree build would leave build/ in it); the workers of a parallel run share
    it (their base directories have one parent per run), the first one building it."""
    if not BASE_PYTHON.exists():
        pytest.skip(f"no base interpreter {BASE_PYTHON} to make venvs from")
    top = tmp_path_factory.getbasetemp()
    if "PYTEST_XDIST_WORKER" in os.environ:
        top = top.parent
    wheels = top / "deploy-wheelhouse"
    with open(top / "deploy-wheelhouse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (wheels / "complete").exists():
            build_wheelhouse(wheels, top / "deploy-source")
    return wheels


def build_wheelhouse(wheels: Path, source: Path) -> None:
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.so", "*.egg-info")
    for part in SOURCE_PARTS:
        if (REPO / part).is_dir():
            shutil.copytree(REPO / part, source / part, ignore=ignore)
        else:
            shutil.copy2(REPO / part, source / part)
    result = run([sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                  "--wheel-dir", str(wheels), str(source)])
    if result.returncode != 0:
        pytest.skip("cannot build the wheelhouse (the package index is needed for the "
                    f"dependencies): {result.stderr.strip().splitlines()[-1:]}")
    (wheels / "complete").touch()


@pytest.mark.slow
def test_install_script(wheelhouse: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    first = install(root, wheelhouse)
    assert first.stdout.splitlines()[-1] == "install.sh: result: changed"

    # Twice in a row: the same files, down to their timestamps.
    before = snapshot(root)
    second = install(root, wheelhouse)
    assert snapshot(root) == before
    assert "install.sh: kept /etc/ipp-gateway/gateway.toml" in second.stdout
    assert second.stdout.splitlines()[-1] == "install.sh: result: unchanged"

    check_staged_tree(root, tmp_path)

    # A config edited since is kept as it is.
    config = root / "etc/ipp-gateway/gateway.toml"
    edited = config.read_text() + '\n[[printer]]\nname = "mine"\ndevice = "file:///tmp/x/"\n'
    config.write_text(edited)
    install(root, wheelhouse)
    assert config.read_text() == edited

    check_uninstall(root)


def check_staged_tree(root: Path, tmp_path: Path) -> None:
    venv = root / "opt/ipp-gateway/venv"
    # The staged scripts name the final venv, not the stage.
    assert (venv / "bin/ipp-gateway").read_text().splitlines()[0] == f"#!{VENV_PYTHON}"
    assert os.readlink(root / "usr/local/bin/ipp-gateway") == str(
        Path(VENV_PYTHON).parent / "ipp-gateway")
    config = root / "etc/ipp-gateway/gateway.toml"
    assert config.read_bytes() == (DEPLOY / "gateway.toml").read_bytes()
    assert stat.S_IMODE(config.stat().st_mode) == 0o660
    assert stat.S_IMODE(config.parent.stat().st_mode) == 0o770
    result = run([str(venv / "bin/python"), "-m", "gateway", "check-config", str(config)],
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    installed = root / "etc/systemd/system/ipp-gateway.service"
    assert installed.read_bytes() == UNIT.read_bytes()
    # The installed unit, with the staged venv where it names /opt/ipp-gateway.
    verify_unit(installed.read_text().replace("/opt/ipp-gateway", str(root / "opt/ipp-gateway")),
                tmp_path)


def check_uninstall(root: Path) -> None:
    job = root / "var/lib/ipp-gateway/jobs/1.json"
    job.parent.mkdir(parents=True)
    job.write_text("{}")
    uninstall = [str(DEPLOY / "uninstall.sh"), "--destdir", str(root)]
    result = run(uninstall)
    assert result.returncode == 0, result.stderr
    assert files_under(root) == {"etc/ipp-gateway/gateway.toml", "var/lib/ipp-gateway/jobs/1.json"}
    assert "kept /var/lib/ipp-gateway (--purge removes it)" in result.stdout
    result = run([*uninstall, "--purge"])
    assert result.returncode == 0, result.stderr
    assert files_under(root) == set()


# --- the Ansible role ---------------------------------------------------------------------------


def ansible_env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "ansible-home"
    return {**os.environ, "ANSIBLE_HOME": str(home), "ANSIBLE_LOCAL_TEMP": str(home / "tmp"),
            "ANSIBLE_REMOTE_TEMP": str(home / "remote-tmp"), "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg")}


def test_ansible_playbooks_pass_syntax_check(tmp_path: Path) -> None:
    result = run([tool("ansible-playbook"), "--syntax-check", "-i", "inventory.yml", "site.yml",
                  "stage-local.yml"], cwd=ANSIBLE, env=ansible_env(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_ansible_lint_passes(tmp_path: Path) -> None:
    # The production profile (deploy/ansible/.ansible-lint), offline.
    result = run([tool("ansible-lint")], cwd=ANSIBLE,
                 env={**ansible_env(tmp_path), "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert result.returncode == 0, result.stdout + result.stderr


def play_stage_local(root: Path, wheelhouse: Path, env: dict[str, str]) -> str:
    result = run([tool("ansible-playbook"), "-i", "localhost,", "stage-local.yml",
                  "-e", f"ipp_gateway_destdir={root}", "-e", f"ipp_gateway_wheelhouse={wheelhouse}",
                  "-e", f"ipp_gateway_python={BASE_PYTHON}",
                  "-e", f"ansible_python_interpreter={sys.executable}"],
                 cwd=ANSIBLE, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def recap(output: str) -> dict[str, int]:
    line = next(line for line in output.splitlines() if line.startswith("localhost "))
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line)}


@pytest.mark.slow
def test_ansible_role_installs_into_a_throwaway_root(wheelhouse: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    env = ansible_env(tmp_path)
    first = recap(play_stage_local(root, wheelhouse, env))
    assert first["failed"] == 0 and first["changed"] > 0
    config = load_config(root / "etc/ipp-gateway/gateway.toml")
    assert [(p.name, p.driver) for p in config.printers] == [("office", "raw")]
    assert config.spool == Path("/var/lib/ipp-gateway")
    assert (root / "etc/systemd/system/ipp-gateway.service").read_bytes() == UNIT.read_bytes()
    assert (root / "opt/ipp-gateway/venv/bin/ipp-gateway").exists()
    before = snapshot(root)
    # Run again: nothing to do, and nothing touched.
    assert recap(play_stage_local(root, wheelhouse, env))["changed"] == 0
    assert snapshot(root) == before
