"""DNS-SD on a two-host LAN made of network namespaces (tests/peers/netns.py).

The gateway runs in the "gateway host" namespace; the "client host" runs avahi-daemon on a
private bus, ippfind, avahi-browse, a python-zeroconf browser and a private cupsd. Nothing
multicasts outside the namespaces. Root only.

The harness tests first prove the LAN with stand-in registrations (avahi-publish, a tiny
python-zeroconf responder); then each responder class runs the gateway once: with
python-zeroconf (no avahi-daemon in its namespace) and with its own avahi-daemon over D-Bus.

IPPS: whether `_ipps._tcp` must exist is read from the gateway's log: TLS is on when it logs
its certificate's SHA-256 fingerprint (issue 11). With TLS on, the ipps records are asserted;
with TLS off, their absence is.
"""

from __future__ import annotations

import http.client
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import pytest

from drivers.autosetup import printer_name
from ippwire.enums import GroupTag, Operation, ValueTag
from ippwire.model import Collection, Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request
from tests.peers import REPO_ROOT
from tests.peers.cupsd import PROGRAMS as CUPS_PROGRAMS
from tests.peers.cupsd import Cupsd, running_cupsd
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.netns import (
    PROGRAMS as LAN_PROGRAMS,
)
from tests.peers.netns import (
    NetNamespace,
    Resolved,
    TwoHostLan,
    browse,
    two_host_lan,
    wait_for_service,
    wait_for_withdrawal,
    zeroconf_browse,
    zeroconf_stand_in,
)
from tests.peers.procs import PeerError, stop_process, wait_until
from tests.peers.require import require_programs, require_root
from tests.support.usb_profiles import profile as usb_profile
from tests.support.usb_sim_launcher import entry as usb_entry
from tests.support.usb_sim_launcher import write_control

SUITE = REPO_ROOT.parent / "shared" / "selfcert" / "suite"
PDF = SUITE / "onepage-a4.pdf"
REGISTER_TIMEOUT = 20.0
WITHDRAW_TIMEOUT = 10.0
HOTPLUG_DEADLINE = 5.0  # the promise: plugged in to advertised
RECORD_TYPES = ("_ipp._tcp", "_printer._tcp", "_http._tcp")
REGISTERED = re.compile(r'dnssd: printer (?P<printer>\S+): registered "(?P<instance>[^"]+)" '
                        r"\((?P<types>[^)]*)\) via (?P<backend>avahi|zeroconf)")
TLS_ON = re.compile(r"SHA-?256 fingerprint", re.IGNORECASE)
RAW = "application/octet-stream"
PAPER_MAX = ((21000, "<legal-A4"), (29700, "legal-A4"), (42000, "tabloid-A3"),
             (59400, "isoC-A2"))


@pytest.fixture(scope="module")
def lan() -> Iterator[TwoHostLan]:
    require_root("network namespaces, veth pairs and avahi-daemon")
    require_programs(*LAN_PROGRAMS, "ippfind", "avahi-publish")
    with two_host_lan() as made:
        made.client.start_avahi(f"client-{made.client.name}")
        yield made


def _unique(lan: TwoHostLan, what: str) -> str:
    return f"{what}-{lan.gateway.name}"


# --- the harness, with stand-ins --------------------------------------------------------------

def test_addresses_exist_only_inside_the_namespaces(lan: TwoHostLan) -> None:
    host_addresses = subprocess.run(["ip", "-o", "addr"], capture_output=True, text=True,
                                    check=True).stdout
    assert lan.gateway.address not in host_addresses
    assert lan.client.address not in host_addresses
    inside = lan.client.run(["ip", "-o", "addr", "show", lan.client.interface]).stdout
    assert f"{lan.client.address}/24" in inside
    assert "MULTICAST" in lan.client.run(["ip", "link", "show", lan.client.interface]).stdout


def test_stand_in_avahi_registration_is_seen_and_withdrawn(lan: TwoHostLan) -> None:
    lan.gateway.start_avahi(_unique(lan, "standin"))
    try:
        log = lan.workdir / "avahi-publish.log"
        publisher = lan.gateway.spawn(
            ["avahi-publish", "-s", "--subtype", "_print._sub._ipp._tcp",
             "--subtype", "_universal._sub._ipp._tcp", "Stand In Avahi", "_ipp._tcp", "8631",
             "rp=ipp/print", "pdl=image/pwg-raster"], log)
        [seen] = wait_for_service(lan.client, "_ipp._tcp", "Stand In Avahi")
        assert (seen.address, seen.port) == (lan.gateway.address, 8631)
        assert seen.txt == {"rp": "ipp/print", "pdl": "image/pwg-raster"}
        sighting = zeroconf_browse(
            lan.client, ["_print._sub._ipp._tcp.local.", "_universal._sub._ipp._tcp.local."],
            "Stand In Avahi", lan.workdir / "zeroconf-browser.log")
        assert set(sighting.at) == {"_print._sub._ipp._tcp.local.",
                                    "_universal._sub._ipp._tcp.local."}
        found = lan.client.run(["ippfind", "--literal-name", "Stand In Avahi", "-T", "5",
                                "_ipp._tcp,_print", "-p"])
        assert found.stdout.strip() == f"ipp://{seen.host}:8631/ipp/print", found
        stop_process(publisher)
        assert wait_for_withdrawal(lan.client, "_ipp._tcp", "Stand In Avahi", WITHDRAW_TIMEOUT)
    finally:
        lan.gateway.stop_avahi()


def test_stand_in_zeroconf_registration_is_seen_and_withdrawn(lan: TwoHostLan) -> None:
    responder = zeroconf_stand_in(lan.gateway, "Stand In Zeroconf", 8632,
                                  _unique(lan, "zc"), lan.workdir / "zeroconf-stand-in.log")
    [seen] = wait_for_service(lan.client, "_ipp._tcp", "Stand In Zeroconf")
    assert (seen.host, seen.address) == (f"{_unique(lan, 'zc')}.local", lan.gateway.address)
    resolved = lan.client.run(["getent", "hosts", seen.host])
    assert resolved.stdout.split()[:1] == [lan.gateway.address], resolved
    stop_process(responder)
    assert wait_for_withdrawal(lan.client, "_ipp._tcp", "Stand In Zeroconf", WITHDRAW_TIMEOUT)


# --- the gateway ---------------------------------------------------------------------------------

def _tls_on(gateway: GatewayProcess) -> bool:
    return TLS_ON.search(gateway.log.read_text(errors="replace")) is not None


def _registration(gateway: GatewayProcess, printer: str) -> re.Match[str]:
    found: list[re.Match[str]] = []

    def registered() -> bool:
        if not gateway.alive():
            raise PeerError(f"the gateway exited:\n{gateway.log.read_text()[-3000:]}")
        found[:] = [m for m in REGISTERED.finditer(gateway.log.read_text(errors="replace"))
                    if m["printer"] == printer]
        return bool(found)

    wait_until(registered, REGISTER_TIMEOUT, f"dnssd registration of {printer}")
    return found[-1]


def _get_printer_attributes(host: NetNamespace, address: str, port: int, path: str,
                            host_header: str) -> dict[str, list[object]]:
    """Get-Printer-Attributes from `host` over the veth, as a client that resolved the
    service (Host: the advertised host name) asks it."""
    message = request(Operation.GET_PRINTER_ATTRIBUTES,
                      printer_uri=f"ipp://{host_header}/{path}",
                      attrs={"requested-attributes": (ValueTag.KEYWORD, "all")})
    connection = http.client.HTTPConnection(address, port, timeout=15)
    # The socket is made by connect(): it must be made inside the client host's network.
    with host.entered():
        connection.connect()
    try:
        connection.request("POST", f"/{path}", body=encode_message(message),
                           headers={"Content-Type": "application/ipp", "Host": host_header})
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    assert response.status == 200, (response.status, body[:200])
    answer: Message = decode_message(body)[0]
    group = answer.group(GroupTag.PRINTER)
    assert group is not None, answer
    return {attribute.name: list(attribute.plain) for attribute in group.attributes}


def _paper_max(sizes: list[object]) -> str:
    widths = [size.get("x-dimension").value  # type: ignore[union-attr]
              for size in sizes if isinstance(size, Collection) and size.get("x-dimension")]
    widest = max((w for w in widths if isinstance(w, int)), default=0)
    return next((label for limit, label in PAPER_MAX if widest < limit), ">isoC-A2")


def _expected_txt(attrs: dict[str, list[object]]) -> dict[str, str]:
    """Each TXT key as the attribute it stands for (Bonjour Printing 1.2, PWG 5100.14)."""
    model = str(attrs["printer-make-and-model"][0])
    urf = attrs.get("urf-supported", [])
    return {
        "ty": model,
        "product": f"({model})",
        "note": str(attrs.get("printer-location", [""])[0]),
        "adminurl": str(attrs["printer-more-info"][0]),
        "UUID": str(attrs["printer-uuid"][0]).removeprefix("urn:uuid:"),
        "URF": ",".join(map(str, urf)) if urf else "none",
        "Color": "T" if attrs.get("color-supported", [False])[0] is True else "F",
        "Duplex": "T" if any(s != "one-sided" for s in attrs.get("sides-supported", [])) else "F",
        "kind": ",".join(map(str, attrs.get("printer-kind", []))),
        "PaperMax": _paper_max(attrs.get("media-size-supported", [])),
    }


@pytest.fixture(scope="class")
def gateway(request: pytest.FixtureRequest, lan: TwoHostLan,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The gateway of the test class (its `backend`, `printer` and `info`) in the gateway
    host, with avahi-daemon beside it when the class's backend is avahi."""
    cls = request.cls
    if cls.backend == "avahi":
        lan.gateway.start_avahi(_unique(lan, "gwavahi"))
    workdir = tmp_path_factory.mktemp(f"gateway-{cls.backend}")
    table = PrinterTable(cls.printer, "raw", extra={"info": cls.info,
                                                    "location": "Lab 7, bench 2"})
    try:
        process = start_configured_gateway(
            workdir, [table], netns=lan.gateway,
            extra_toml=f'[dnssd]\nbackend = "{cls.config_backend}"')
        try:
            yield process
        finally:
            process.stop()
    finally:
        lan.gateway.stop_avahi()


@pytest.fixture(scope="class")
def instance(request: pytest.FixtureRequest, gateway: GatewayProcess) -> str:
    return _registration(gateway, request.cls.printer)["instance"]


@pytest.fixture(scope="class")
def seen(lan: TwoHostLan, instance: str) -> Resolved:
    [record] = wait_for_service(lan.client, "_ipp._tcp", instance, REGISTER_TIMEOUT)
    return record


def test_a_hot_plugged_usb_printer_is_advertised_within_seconds(
        lan: TwoHostLan, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Plug and print on the LAN: a USB printer plugged into the gateway host (simulated on
    the real pyusb code, tests/support/usb_sim_launcher.py) is set up and browsed from the
    client host within 5 s of being plugged in."""
    workdir = tmp_path_factory.mktemp("gateway-hotplug")
    control = workdir / "usb" / "control.json"
    control.parent.mkdir()
    kind = usb_profile("pcl5-laser")
    write_control(control, [usb_entry(kind.name, plugged=False)])
    process = start_configured_gateway(
        workdir, [PrinterTable("hotplug-base", "raw")], netns=lan.gateway,
        extra_toml='[dnssd]\nbackend = "zeroconf"\n\n[usb]\nscan_interval = 0.5',
        usb_control=control)
    try:
        _registration(process, "hotplug-base")
        name = printer_name(kind.make_and_model, ["hotplug-base"])
        plugged_at = time.monotonic()
        write_control(control, [usb_entry(kind.name)])
        deadline = plugged_at + HOTPLUG_DEADLINE
        wait_until(lambda: any(m["printer"] == name for m in REGISTERED.finditer(
                       process.log.read_text(errors="replace"))),
                   HOTPLUG_DEADLINE, f"dnssd registration of {name}")
        instance = _registration(process, name)["instance"]
        [seen] = wait_for_service(lan.client, "_ipp._tcp", instance,
                                  timeout=max(0.5, deadline - time.monotonic()))
        assert (seen.address, seen.port) == (lan.gateway.address, process.port)
        assert seen.txt.get("rp") == f"ipp/print/{name}", seen.txt
        assert kind.make_and_model in seen.txt.get("ty", ""), seen.txt
    finally:
        process.stop()


def test_zeroconf_name_conflict_renames_and_keeps_the_new_name(
        lan: TwoHostLan, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Another host already answers for the name: the gateway's own probing (RFC 6762 8.1,
    gateway/dnssd/zeroconf_backend.py) sees it, registers "NAME (2)", and keeps it after a
    restart even once the other host is gone (clients that added "(2)" still find it)."""
    taken = "Taken Printer Name"
    other = zeroconf_stand_in(lan.client, taken, 8633, _unique(lan, "other"),
                              lan.workdir / "conflicting-stand-in.log")
    workdir = tmp_path_factory.mktemp("gateway-conflict")
    table = PrinterTable("cf", "raw", extra={"info": taken})
    toml = '[dnssd]\nbackend = "zeroconf"'
    try:
        process = start_configured_gateway(workdir, [table], netns=lan.gateway,
                                           extra_toml=toml)
        try:
            assert _registration(process, "cf")["instance"] == f"{taken} (2)"
            [record] = wait_for_service(lan.client, "_ipp._tcp", f"{taken} (2)",
                                        REGISTER_TIMEOUT)
            assert (record.address, record.port) == (lan.gateway.address, process.port)
        finally:
            process.stop()
    finally:
        stop_process(other)
    again = start_configured_gateway(workdir, [table], netns=lan.gateway, extra_toml=toml)
    try:
        assert _registration(again, "cf")["instance"] == f"{taken} (2)"
    finally:
        again.stop()


class ResponderTests:
    """Everything a client host sees of one gateway; `backend` picks the responder."""

    backend = ""
    config_backend = ""
    printer = ""
    info = ""

    def test_registers_every_record_via_its_backend(self, gateway: GatewayProcess,
                                                    instance: str) -> None:
        registration = _registration(gateway, self.printer)
        assert registration["backend"] == self.backend
        assert instance == self.info
        types = [t.strip() for t in registration["types"].split(",")]
        expected = ["_ipp._tcp", "_ipps._tcp", *RECORD_TYPES[1:]] if _tls_on(gateway) \
            else list(RECORD_TYPES)
        assert sorted(types) == sorted(expected)

    def test_records_and_subtypes_as_browsed(self, lan: TwoHostLan, gateway: GatewayProcess,
                                             instance: str, seen: Resolved) -> None:
        assert (seen.address, seen.port) == (lan.gateway.address, gateway.port)
        for subtype in ("_print._sub._ipp._tcp", "_universal._sub._ipp._tcp"):
            assert [r.port for r in wait_for_service(lan.client, subtype, instance)] == \
                [gateway.port]
        assert [r.port for r in wait_for_service(lan.client, "_printer._tcp", instance)] == [0]
        web = wait_for_service(lan.client, "_printer._sub._http._tcp", instance)
        assert [r.port for r in web] == [gateway.port]
        ipps = [r for r in browse(lan.client, "_ipps._tcp") if r.name == instance]
        if _tls_on(gateway):
            assert [r.port for r in wait_for_service(lan.client, "_ipps._tcp", instance)] == \
                [gateway.port]
        else:
            assert ipps == [], "an _ipps._tcp record while the gateway runs without TLS"

    def test_ippfind_lists_the_printer_uris(self, lan: TwoHostLan, gateway: GatewayProcess,
                                            instance: str, seen: Resolved) -> None:
        rp = seen.txt["rp"]
        found = lan.client.run(["ippfind", "--literal-name", instance, "-T", "5",
                                "_ipp._tcp,_print", "-p"])
        assert found.stdout.split() == [f"ipp://{seen.host}:{gateway.port}/{rp}"], found
        secure = lan.client.run(["ippfind", "--literal-name", instance, "-T", "3",
                                 "_ipps._tcp", "-p"])
        expected = [f"ipps://{seen.host}:{gateway.port}/{rp}"] if _tls_on(gateway) else []
        assert secure.stdout.split() == expected, secure

    def test_every_txt_key_equals_its_attribute(self, lan: TwoHostLan, gateway: GatewayProcess,
                                                seen: Resolved) -> None:
        txt = seen.txt
        attrs = _get_printer_attributes(lan.client, lan.gateway.address, gateway.port,
                                        txt["rp"], f"{seen.host}:{gateway.port}")
        assert set(txt) >= {"txtvers", "qtotal", "rp", "ty", "product", "note", "adminurl",
                            "pdl", "URF", "UUID", "Color", "Duplex", "kind", "PaperMax",
                            "priority"}
        assert {key: txt[key] for key in _expected_txt(attrs)} == _expected_txt(attrs)
        assert txt["note"] == "Lab 7, bench 2"
        paths = [urlsplit(str(uri)).path.lstrip("/") for uri in attrs["printer-uri-supported"]]
        assert txt["rp"] in paths
        formats = [str(f) for f in attrs["document-format-supported"] if f != RAW]
        pdl = txt["pdl"].split(",")
        assert pdl == formats[:len(pdl)] and "image/pwg-raster" in pdl
        assert txt["txtvers"] == "1" and txt["qtotal"] == "1"
        assert 0 <= int(txt["priority"]) <= 99
        if _tls_on(gateway):
            assert re.fullmatch(r"[1-9]\.[0-9]", txt["TLS"])
        else:
            assert "TLS" not in txt

    def test_python_zeroconf_browser_finds_the_subtypes(self, lan: TwoHostLan,
                                                         instance: str) -> None:
        types = ["_universal._sub._ipp._tcp.local.", "_print._sub._ipp._tcp.local."]
        sighting = zeroconf_browse(lan.client, types, instance,
                                   lan.workdir / f"zeroconf-browser-{self.backend}.log")
        assert set(sighting.at) == set(types), sighting

    def test_selfcert_dnssd_tests_pass(self, lan: TwoHostLan, gateway: GatewayProcess,
                                       instance: str) -> None:
        require_programs("ipptool")
        suite = lan.workdir / f"dnssd-suite-{self.backend}"
        suite.mkdir()
        for name in ("dnssd-tests.sh", "dnssd-value-tests.test", "dnssd-access-tests.test"):
            shutil.copy(SUITE / name, suite / name)
        done = lan.client.run(["sh", "./dnssd-tests.sh", instance], cwd=suite, timeout=120)
        summary = re.search(r"Summary: (\d+) tests, (\d+) passed, (\d+) failed, (\d+) skipped",
                            done.stdout)
        assert summary is not None, done
        total, passed, failed, skipped = map(int, summary.groups())
        assert failed == 0, done.stdout
        assert passed == (total if _tls_on(gateway) else 4), done.stdout
        assert skipped == total - passed

    def test_cupsd_driverless_setup_prints_a_pdf(self, lan: TwoHostLan,
                                                 gateway: GatewayProcess,
                                                 instance: str, client_cupsd: Cupsd) -> None:
        listed = client_cupsd.client("lpinfo", "--include-schemes", "dnssd", "-v")
        uris = [line.split()[1] for line in listed.splitlines()
                if line.startswith("network dnssd://")]
        # CUPS's dnssd backend keeps one URI per instance only when the records of its types
        # resolve in the same pass (backend/dnssd.c), so the same instance may be listed once
        # per service type (_ipp, _ipps, _printer) from one run to the next, whoever
        # registers it: every URI of ours must name one of our types, and an IPP one is used.
        ours = {unquote(urlsplit(uri).netloc).removeprefix(f"{instance}."): uri
                for uri in uris if unquote(urlsplit(uri).netloc).startswith(f"{instance}.")}
        assert set(ours) <= {f"{t}.local" for t in ("_ipp._tcp", "_ipps._tcp", *RECORD_TYPES)}, \
            listed
        ipp = [ours[t] for t in ("_ipp._tcp.local", "_ipps._tcp.local") if t in ours]
        assert ipp, listed
        queue = f"dnssd_{self.backend}"
        client_cupsd.add_everywhere_queue(queue, ipp[0])
        job = client_cupsd.submit(queue, PDF)
        assert client_cupsd.wait_completed(queue, {job}, timeout=60) == {job}
        outputs = gateway.output_files(self.printer)
        assert len(outputs) == 1
        assert outputs[0].read_bytes().startswith(b"%PDF")

    def test_records_are_gone_after_a_clean_shutdown(self, lan: TwoHostLan,
                                                     gateway: GatewayProcess,
                                                     instance: str, seen: Resolved) -> None:
        assert gateway.stop() == 0
        assert f"dnssd: printer {self.printer}: withdrawn" in gateway.log.read_text()
        for service_type in ("_ipp._tcp", "_printer._tcp", "_http._tcp"):
            assert wait_for_withdrawal(lan.client, service_type, instance, WITHDRAW_TIMEOUT), \
                service_type


@pytest.fixture(scope="module")
def client_cupsd(lan: TwoHostLan) -> Iterator[Cupsd]:
    require_programs(*CUPS_PROGRAMS, "lpinfo")
    with running_cupsd(netns=lan.client) as server:
        yield server


class TestZeroconfResponder(ResponderTests):
    """python-zeroconf answers: no avahi-daemon in the gateway's namespace."""

    backend = config_backend = "zeroconf"
    printer = "zc"
    info = "Gateway Zeroconf Lab"


class TestAvahiResponder(ResponderTests):
    """The gateway's namespace runs avahi-daemon; `auto` must register through it (D-Bus)."""

    backend = "avahi"
    config_backend = "auto"
    printer = "av"
    info = "Gateway Avahi Lab"
