"""A two-host LAN on one machine: network namespaces joined by a veth pair, for DNS-SD tests.

Each `two_host_lan()` makes two namespaces, "gateway host" and "client host", named uniquely,
joined by a veth pair whose IPv4 addresses (10.77.N.1/24 and 10.77.N.2/24; IPv6 link-local
comes by itself) exist only inside them, multicast on and `lo` up. Nothing multicasts on the
machine's own network: every responder, browser and client runs inside the namespaces.

A namespace may run its own `avahi-daemon` on a private system bus (`start_avahi`). Avahi keeps
its PID file and the socket that nss-mdns asks at the fixed path /run/avahi-daemon, so each
command run in a namespace with Avahi gets, in the mount namespace `ip netns exec` makes for it,
that host's own run directory bound over /run/avahi-daemon: two hosts' daemons do not see each
other's PID file, and `HOST.local` names resolve through the right daemon.

The test process itself can step into a namespace (`entered()`: setns on the calling thread),
so a socket it opens there (an IPP request over the veth, a readiness probe) belongs to that
host. Processes are started by PID and stopped by PID; `two_host_lan` stops them all and
deletes the namespaces even when the test fails. Root only.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.peers.ippeveprinter import PrivateBus, start_private_bus
from tests.peers.procs import (
    LOOPBACK,
    PeerError,
    find_program,
    log_tail,
    spawn_logged,
    stop_process,
)

PROGRAMS = ("ip", "avahi-daemon", "avahi-browse", "dbus-daemon")
CLONE_NEWNET = 0x40000000
AVAHI_RUN = Path("/run/avahi-daemon")
AVAHI_START_TIMEOUT = 15.0
COMMAND_TIMEOUT = 30.0

AVAHI_CONF = """[server]
host-name={host_name}
domain-name=local
use-ipv4=yes
use-ipv6=no
allow-interfaces={interface}
enable-dbus=yes
ratelimit-interval-usec=1000000
ratelimit-burst=1000

[wide-area]
enable-wide-area=no

[publish]
publish-hinfo=no
publish-workstation=no
publish-aaaa-on-ipv4=no

[reflector]

[rlimits]
"""
# Binds the host's Avahi run directory over /run/avahi-daemon in the mount namespace that
# `ip netns exec` made for this one command, then becomes the command.
WITH_AVAHI_RUN = 'mount --bind "$0" ' + str(AVAHI_RUN) + ' && exec "$@"'

_counter = itertools.count(1)
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"setns: {os.strerror(errno)}")


@dataclass
class Avahi:
    """An avahi-daemon serving one namespace, on its own system bus."""

    proc: subprocess.Popen[bytes]
    bus: PrivateBus
    host_name: str
    log: Path

    def stop(self) -> None:
        stop_process(self.proc)
        self.bus.stop()


@dataclass
class NetNamespace:
    """One host of the LAN: a network namespace with one end of the veth pair."""

    name: str
    interface: str
    address: str
    runtime: Path  # world-searchable: cupsd's backends run as lp and reach the bus socket
    avahi: Avahi | None = None
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def avahi_run(self) -> Path:
        return self.runtime / "avahi-run"

    @property
    def bus_address(self) -> str | None:
        return self.avahi.bus.address if self.avahi is not None else None

    def argv(self, argv: Sequence[str]) -> list[str]:
        """`argv` as run inside this host (with its Avahi run directory, when it has Avahi)."""
        ip = find_program("ip") or "ip"
        program = find_program(argv[0]) or argv[0]
        command = [program, *argv[1:]]
        if self.avahi is not None:
            command = ["sh", "-c", WITH_AVAHI_RUN, str(self.avahi_run), *command]
        return [ip, "netns", "exec", self.name, *command]

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """The environment for a program of this host: its system bus, when it has one."""
        env = dict(os.environ, LANG="C")
        if self.bus_address is not None:
            env["DBUS_SYSTEM_BUS_ADDRESS"] = self.bus_address
        env.update(extra or {})
        return env

    def spawn(self, argv: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
              cwd: Path | None = None) -> subprocess.Popen[bytes]:
        """Start `argv` in this host, output to `log`; the LAN stops it at teardown if the
        caller has not. (`ip netns exec` execs the command, so the PID is the program's.)"""
        proc = spawn_logged(self.argv(argv), log, env=self.env(env), cwd=cwd)
        self.processes.append(proc)
        return proc

    def run(self, argv: Sequence[str], *, timeout: float = COMMAND_TIMEOUT,
            env: Mapping[str, str] | None = None,
            cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        """Run `argv` in this host to completion; its exit status is the caller's to judge."""
        return subprocess.run(self.argv(argv), env=self.env(env), cwd=cwd, capture_output=True,
                              text=True, timeout=timeout, check=False)

    @contextlib.contextmanager
    def entered(self) -> Iterator[None]:
        """Run the body with the calling thread inside this host's network: sockets opened
        there belong to it (and stay so after)."""
        own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        try:
            target = os.open(f"/run/netns/{self.name}", os.O_RDONLY)
            try:
                _setns(target)
                try:
                    yield
                finally:
                    _setns(own)
            finally:
                os.close(target)
        finally:
            os.close(own)

    def connects(self, port: int, host: str = LOOPBACK) -> bool:
        import socket

        with self.entered():
            try:
                with socket.create_connection((host, port), timeout=0.5):
                    return True
            except OSError:
                return False

    def start_avahi(self, host_name: str, timeout: float = AVAHI_START_TIMEOUT) -> Avahi:
        """avahi-daemon on this host's veth only, with a private system bus; returns once it
        has claimed its host name (and so answers and registers)."""
        if self.avahi is not None:
            raise PeerError(f"{self.name} already runs avahi-daemon")
        AVAHI_RUN.mkdir(exist_ok=True)  # the mount point; Avahi's own files go elsewhere
        self.avahi_run.mkdir(mode=0o755, exist_ok=True)
        bus = start_private_bus(self.runtime / "bus")
        (self.runtime / "bus").chmod(0o755)
        config = self.runtime / f"avahi-{host_name}.conf"
        config.write_text(AVAHI_CONF.format(host_name=host_name, interface=self.interface))
        log = self.runtime / f"avahi-{host_name}.log"
        argv = [find_program("avahi-daemon") or "avahi-daemon", "-f", str(config),
                "--no-drop-root", "--no-chroot", "--no-rlimits", "--no-proc-title"]
        self.avahi = Avahi(None, bus, host_name, log)  # type: ignore[arg-type]
        proc = spawn_logged(self.argv(argv), log, env=self.env())
        self.processes.append(proc)
        self.avahi.proc = proc
        deadline = time.monotonic() + timeout
        while "Server startup complete" not in log.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                self.stop_avahi()
                raise PeerError(f"avahi-daemon in {self.name} did not start:\n{log_tail(log)}")
            time.sleep(0.05)
        return self.avahi

    def stop_avahi(self) -> None:
        if self.avahi is not None:
            self.avahi.stop()
            self.avahi = None

    def stop_all(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(subprocess.TimeoutExpired):
                stop_process(proc)
        self.processes.clear()
        if self.avahi is not None:
            self.avahi.bus.stop()
            self.avahi = None


@dataclass
class TwoHostLan:
    gateway: NetNamespace
    client: NetNamespace
    workdir: Path


def _ip(*args: str) -> None:
    done = subprocess.run([find_program("ip") or "ip", *args], capture_output=True, text=True,
                          timeout=COMMAND_TIMEOUT, check=False)
    if done.returncode != 0:
        raise PeerError(f"ip {' '.join(args)} -> {done.returncode}: {done.stderr.strip()}")


def _bring_up(namespace: NetNamespace) -> None:
    ns = namespace.name
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "link", "set", namespace.interface, "multicast", "on")
    _ip("-n", ns, "addr", "add", f"{namespace.address}/24", "dev", namespace.interface)
    _ip("-n", ns, "link", "set", namespace.interface, "up")
    # No default route in a namespace: mDNS senders that name no interface still find one.
    _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", namespace.interface)


@contextlib.contextmanager
def two_host_lan() -> Iterator[TwoHostLan]:
    """Make the LAN; on leaving, stop every process started in it and delete it all."""
    serial = next(_counter)
    tag = f"{os.getpid() % 100000}-{serial}"
    subnet = f"10.77.{(os.getpid() + serial) % 250 + 1}"
    workdir = Path(tempfile.mkdtemp(prefix=f"ipp-gateway-lan-{tag}-", dir="/tmp"))
    workdir.chmod(0o755)
    hosts = []
    for role, octet in (("gw", 1), ("cl", 2)):
        runtime = workdir / role
        runtime.mkdir(mode=0o755)
        hosts.append(NetNamespace(f"ippgw-{tag}-{role}", f"v{role}{tag}"[:15],
                                  f"{subnet}.{octet}", runtime))
    gateway, client = hosts
    made: list[str] = []
    try:
        for host in hosts:
            _ip("netns", "add", host.name)
            made.append(host.name)
        _ip("link", "add", gateway.interface, "netns", gateway.name, "type", "veth",
            "peer", "name", client.interface, "netns", client.name)
        for host in hosts:
            _bring_up(host)
        yield TwoHostLan(gateway, client, workdir)
    finally:
        for host in hosts:
            host.stop_all()
        for name in made:
            with contextlib.suppress(PeerError):
                _ip("netns", "del", name)
        shutil.rmtree(workdir, ignore_errors=True)


# --- what a browser sees -------------------------------------------------------------------

@dataclass(frozen=True)
class Resolved:
    """One resolved service as `avahi-browse -rtpk` prints it."""

    interface: str
    protocol: str
    name: str
    type: str
    domain: str
    host: str
    address: str
    port: int
    txt: dict[str, str]


_ESCAPE = re.compile(r"\\(\d{3}|.)")


def _unescape(text: str) -> str:
    """avahi-browse's parsable output writes '.', '\\' and unprintable bytes as \\DDD."""
    raw = _ESCAPE.sub(lambda m: chr(int(m[1])) if m[1].isdigit() else m[1], text)
    return raw.encode("latin-1").decode("utf-8", errors="replace")


def _txt(field_text: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for item in re.findall(r'"((?:[^"\\]|\\.)*)"', field_text):
        key, _, value = item.partition("=")
        pairs[key] = value.replace('\\"', '"').replace("\\\\", "\\")
    return pairs


def parse_browse(output: str) -> list[Resolved]:
    found = []
    for line in output.splitlines():
        fields = line.split(";", 9)
        if fields[0] != "=" or len(fields) < 10:
            continue
        found.append(Resolved(fields[1], fields[2], _unescape(fields[3]), fields[4], fields[5],
                              fields[6], fields[7], int(fields[8]), _txt(fields[9])))
    return found


def browse(host: NetNamespace, service_type: str, timeout: float = 10.0) -> list[Resolved]:
    """One `avahi-browse -rtpk SERVICE_TYPE` in `host` (which must run Avahi): what its daemon
    knows now, each service resolved."""
    if host.avahi is None:
        raise PeerError(f"{host.name} runs no avahi-daemon to browse with")
    done = host.run(["avahi-browse", "-rtpk", service_type], timeout=timeout)
    if done.returncode != 0:
        raise PeerError(f"avahi-browse {service_type} -> {done.returncode}: {done.stderr}")
    return parse_browse(done.stdout)


def wait_for_service(host: NetNamespace, service_type: str, name: str,
                     timeout: float = 15.0) -> list[Resolved]:
    """Browse until the instance `name` of `service_type` resolves; its records."""
    deadline = time.monotonic() + timeout
    while True:
        found = [r for r in browse(host, service_type) if r.name == name]
        if found:
            return found
        if time.monotonic() > deadline:
            raise PeerError(f"{name!r} ({service_type}) not seen from {host.name} in {timeout} s")
        time.sleep(0.2)


def wait_for_withdrawal(host: NetNamespace, service_type: str, name: str,
                        timeout: float = 10.0) -> bool:
    """Whether the instance `name` of `service_type` leaves `host`'s view within `timeout`."""
    deadline = time.monotonic() + timeout
    while any(r.name == name for r in browse(host, service_type)):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


# --- python-zeroconf, in a namespace --------------------------------------------------------

# Browses SERVICE_TYPES (comma-separated) on ADDRESS's interface until an instance named
# WANTED shows under each, or TIMEOUT; prints one JSON object {type: [names], "at": {type:
# CLOCK_MONOTONIC seconds when first seen}} (the clock is the machine's, so comparable).
ZEROCONF_BROWSER = """
import json, sys, time
from zeroconf import IPVersion, ServiceBrowser, ServiceStateChange, Zeroconf
types, wanted, timeout = sys.argv[1].split(","), sys.argv[2], float(sys.argv[3])
address = sys.argv[4]
found = {t: set() for t in types}
at = {}
def changed(zeroconf, service_type, name, state_change):
    if state_change is not ServiceStateChange.Removed:
        found[service_type].add(name)
        if name.startswith(wanted + "."):
            at.setdefault(service_type, time.monotonic())
zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
browsers = [ServiceBrowser(zc, t, handlers=[changed]) for t in types]
print("browsing", flush=True, file=sys.stderr)
deadline = time.monotonic() + timeout
while time.monotonic() < deadline and len(at) < len(types):
    time.sleep(0.01)
print(json.dumps({"found": {t: sorted(n) for t, n in found.items()}, "at": at}), flush=True)
zc.close()
"""

# Registers one stand-in printer (instance ARGV[1], _ipp._tcp on port ARGV[2], host
# ARGV[3].local at ADDRESS ARGV[4]; no subtypes: python-zeroconf keeps one type per instance)
# until SIGTERM, then unregisters.
ZEROCONF_STAND_IN = """
import signal, socket, sys, threading
from zeroconf import IPVersion, ServiceInfo, Zeroconf
name, port, host, address = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
zc = Zeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
zc.register_service(ServiceInfo(
    "_ipp._tcp.local.", f"{name}._ipp._tcp.local.", port=port,
    properties={"rp": "ipp/print", "pdl": "image/pwg-raster"}, server=f"{host}.local.",
    addresses=[socket.inet_aton(address)]))
print("registered", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
stop.wait()
zc.unregister_all_services()
zc.close()
"""


@dataclass(frozen=True)
class ZeroconfSighting:
    found: dict[str, list[str]]  # type -> full instance names seen
    at: dict[str, float]  # type -> time.monotonic() when the wanted instance was first seen


def zeroconf_browser(host: NetNamespace, service_types: Sequence[str], wanted: str,
                     log: Path, timeout: float = 15.0) -> subprocess.Popen[bytes]:
    """Start a python-zeroconf browser in `host`; read its answer with `zeroconf_result`."""
    import sys

    argv = [sys.executable, "-c", ZEROCONF_BROWSER, ",".join(service_types), wanted,
            str(timeout), host.address]
    with log.open("ab") as errors:
        proc = subprocess.Popen(host.argv(argv), stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=errors, env=host.env())
    host.processes.append(proc)
    return proc


def zeroconf_result(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> ZeroconfSighting:
    import json

    out, _ = proc.communicate(timeout=timeout)
    if proc.returncode != 0 or not out.strip():
        raise PeerError(f"python-zeroconf browser exited with {proc.returncode}: {out!r}")
    answer = json.loads(out.decode().strip().splitlines()[-1])
    return ZeroconfSighting(answer["found"], answer["at"])


def zeroconf_browse(host: NetNamespace, service_types: Sequence[str], wanted: str,
                    log: Path, timeout: float = 15.0) -> ZeroconfSighting:
    """Browse `service_types` from `host` with python-zeroconf until `wanted` shows in each."""
    return zeroconf_result(zeroconf_browser(host, service_types, wanted, log, timeout),
                           timeout + 15.0)


def zeroconf_stand_in(host: NetNamespace, name: str, port: int, host_name: str,
                      log: Path) -> subprocess.Popen[bytes]:
    """A stand-in printer registration by python-zeroconf in `host` (SIGTERM withdraws it)."""
    import sys

    proc = host.spawn([sys.executable, "-c", ZEROCONF_STAND_IN, name, str(port), host_name,
                       host.address], log)
    deadline = time.monotonic() + COMMAND_TIMEOUT
    while "registered" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise PeerError(f"python-zeroconf stand-in did not register:\n{log_tail(log)}")
        time.sleep(0.05)
    return proc
