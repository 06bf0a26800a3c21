"""Access control against clients on another host: the gateway in one network namespace, the
clients in a second one joined to it by a veth pair (tests/peers/netns.py). The client host
has two addresses on the LAN, N.2 (inside the allowed range N.0/25) and N.130 (outside it):
the first is served (ipptool's Get-Printer-Attributes and a print), the second is closed
before any byte is read. A listener may carry rules of its own ([[server.listeners]]); the
last test shows them on loopback, without namespaces.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.peers.netns import NetNamespace, TwoHostLan, two_host_lan
from tests.peers.procs import LOOPBACK, free_port
from tests.peers.require import require_programs, require_root
from tests.support.many_clients import (
    get_printer_state_over,
    ipptool_print,
    output_holds,
    print_over,
    refused_before_any_byte,
)

PRINTER = "lan"
OUTSIDE_HOST = 130  # N.130 is outside N.0/25
GET_PAGE = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


@dataclass
class Lan:
    lan: TwoHostLan
    subnet: str  # "10.77.N"

    @property
    def client(self) -> NetNamespace:
        return self.lan.client

    @property
    def inside(self) -> str:
        return self.lan.client.address  # N.2

    @property
    def outside(self) -> str:
        return f"{self.subnet}.{OUTSIDE_HOST}"

    @property
    def server(self) -> str:
        return self.lan.gateway.address  # N.1


@pytest.fixture(scope="module")
def lan() -> Iterator[Lan]:
    require_root("network namespaces and a veth pair")
    require_programs("ip", "ipptool")
    with two_host_lan() as made:
        subnet = made.client.address.rsplit(".", 1)[0]
        added = made.client.run(["ip", "addr", "add", f"{subnet}.{OUTSIDE_HOST}/24", "dev",
                                 made.client.interface])
        assert added.returncode == 0, added.stderr
        yield Lan(made, subnet)


def lan_gateway(tmp_path: Path, lan: Lan, server_toml: str) -> GatewayProcess:
    """The gateway in the gateway host, on every address (127.0.0.1 stays allowed there, for
    the harness to see it start); DNS-SD off: not what is tested."""
    return start_configured_gateway(tmp_path / "gw", (PrinterTable(PRINTER),), log_level="info",
                                    netns=lan.lan.gateway,
                                    extra_toml=f"{server_toml}\n[dnssd]\nenabled = false\n")


def served_over_ipp(host: str, port: int, source: str, document: bytes, name: str) -> int:
    """Get-Printer-Attributes and a Print-Job from `source` on one connection; the job-id."""
    connection = http.client.HTTPConnection(host, port, timeout=30, source_address=(source, 0))
    uri = f"ipp://{host}:{port}/ipp/print/{PRINTER}"
    try:
        assert get_printer_state_over(connection, uri) == (200, 0)
        return print_over(connection, uri, document, name)
    finally:
        connection.close()


def refused(host: str, port: int, source: str) -> bool:
    """Refused before any byte, whatever is sent: a web page or an IPP request."""
    ipp_head = (f"POST /ipp/print HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/ipp\r\n"
                "Content-Length: 9\r\n\r\n\x02\x00\x00\x0b\x00\x00\x00\x01\x03").encode()
    return (refused_before_any_byte(host, port, source, GET_PAGE)
            and refused_before_any_byte(host, port, source, ipp_head))


def test_a_client_outside_the_allowed_range_is_refused_one_inside_is_served(
        tmp_path: Path, lan: Lan) -> None:
    allow = f'allow = ["{lan.subnet}.0/25", "127.0.0.1"]'
    with lan_gateway(tmp_path, lan, allow) as gw:
        with lan.client.entered():
            assert refused(lan.server, gw.port, lan.outside)
        # The real client, from the client host's own address (N.2, inside).
        document = b"printed from the client host\n" * 5
        uri = f"ipp://{lan.server}:{gw.port}/ipp/print/{PRINTER}"
        job = ipptool_print(uri, document, tmp_path / "ipptool", wrap=lan.client.argv)
        assert output_holds(gw.output_file(PRINTER, job), document)
        with lan.client.entered():
            assert not refused_before_any_byte(lan.server, gw.port, lan.inside, GET_PAGE)
            assert refused(lan.server, gw.port, lan.outside)  # still, after a served one
        log = gw.log.read_text()
        assert re.search(rf"{re.escape(lan.outside)}:\d+: connection refused: not allowed by "
                         r"server\.allow", log), log[-2000:]
        assert f"{lan.inside}:" not in "".join(line for line in log.splitlines()
                                               if "connection refused" in line)
        assert "Traceback" not in log
        assert gw.alive()


def test_each_listener_has_its_own_rules_on_the_lan(tmp_path: Path, lan: Lan) -> None:
    # The listen port serves N.0/25 (global rules); a second port only N.128/25.
    second = free_port()
    rules = (f'allow = ["{lan.subnet}.0/25", "127.0.0.1"]\n\n'
             f'[[server.listeners]]\naddress = "*:{second}"\n'
             f'allow = ["{lan.subnet}.128/25"]\n')
    with lan_gateway(tmp_path, lan, rules) as gw:
        with lan.client.entered():
            assert refused(lan.server, gw.port, lan.outside)
            assert refused(lan.server, second, lan.inside)
            first_doc, second_doc = b"inside, first port\n", b"outside, second port\n"
            first_job = served_over_ipp(lan.server, gw.port, lan.inside, first_doc, "first")
            second_job = served_over_ipp(lan.server, second, lan.outside, second_doc, "second")
        assert output_holds(gw.output_file(PRINTER, first_job), first_doc)
        assert output_holds(gw.output_file(PRINTER, second_job), second_doc)
        log = gw.log.read_text()
        assert f"server.listeners (*:{second}): allowed: {lan.subnet}.128/25; denied: none" \
            in log
        assert re.search(rf"{re.escape(lan.inside)}:\d+: connection refused: not allowed by "
                         rf"server\.listeners \(\*:{second}\)\.allow", log), log[-2000:]
        assert "Traceback" not in log


def test_each_listener_has_its_own_rules_on_loopback(tmp_path: Path) -> None:
    # 127.0.0.1 (the harness) on the listen port; 127.0.0.2 on the second port only, where a
    # deny of its own shuts out 127.0.0.3 although the global rules let it in.
    second = free_port()
    rules = ('allow = ["127.0.0.1", "127.0.0.3"]\n\n'
             f'[[server.listeners]]\naddress = "{LOOPBACK}:{second}"\n'
             'allow = ["127.0.0.0/8"]\ndeny = ["127.0.0.3"]\n')
    with start_configured_gateway(tmp_path / "gw", (PrinterTable(PRINTER),), log_level="info",
                                  extra_toml=rules) as gw:
        assert refused(LOOPBACK, gw.port, "127.0.0.2")
        assert refused(LOOPBACK, second, "127.0.0.3")
        assert not refused_before_any_byte(LOOPBACK, gw.port, "127.0.0.3", GET_PAGE)
        document = b"second port, second address\n"
        job = served_over_ipp(LOOPBACK, second, "127.0.0.2", document, "second")
        assert output_holds(gw.output_file(PRINTER, job), document)
        log = gw.log.read_text()
        assert re.search(r"127\.0\.0\.3:\d+: connection refused: denied by server\.listeners "
                         rf"\(127\.0\.0\.1:{second}\)\.deny", log), log[-2000:]
        assert re.search(r"127\.0\.0\.2:\d+: connection refused: not allowed by "
                         r"server\.allow", log)
        assert "Traceback" not in log
