"""The pages the printer attributes point to are there: printer-more-info (the printer's page,
also DNS-SD's `adminurl`), printer-supply-info-uri and printer-icons, over http and over https
on the same port, each as the client reached the gateway (issue 11)."""

from __future__ import annotations

import http.client
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

from ippwire.enums import GroupTag, Operation, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message
from ippwire.writer import request as ipp_request
from tests.peers.gateway_proc import GatewayProcess, start_command_line
from tests.support.ipp_client import printer_path

PRINTER = "office"
POINTERS = ("printer-more-info", "printer-supply-info-uri", "printer-icons")


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    workdir = tmp_path_factory.mktemp("web")
    output = workdir / "out"
    output.mkdir()
    process = start_command_line(workdir, ["--printer", f"{PRINTER}={output.as_uri()}/"],
                                 printer_name=PRINTER)
    try:
        yield process
    finally:
        process.stop()


def pointers(gateway: GatewayProcess, scheme: str) -> dict[str, list[str]]:
    """Get-Printer-Attributes over a plain (ipp) or TLS (ipps) connection."""
    uri = f"{scheme}://127.0.0.1:{gateway.port}{printer_path(PRINTER)}"
    message = ipp_request(Operation.GET_PRINTER_ATTRIBUTES, printer_uri=uri, user="web",
                          attrs={"requested-attributes": (ValueTag.KEYWORD, list(POINTERS))})
    web = "https" if scheme == "ipps" else "http"
    status, _, body = exchange(f"{web}://127.0.0.1:{gateway.port}{printer_path(PRINTER)}",
                               "POST", encode_message(message))
    assert status == 200, body[:200]
    group = decode_message(body)[0].group(GroupTag.PRINTER)
    assert group is not None
    found = {name: group.get(name) for name in POINTERS}
    return {name: [str(v) for v in attr.plain] for name, attr in found.items()
            if attr is not None}


def fetch(url: str) -> tuple[int, str, bytes]:
    return exchange(url, "GET")


def exchange(url: str, method: str, body: bytes | None = None) -> tuple[int, str, bytes]:
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    if parts.scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # self-signed
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, context=context, timeout=10)
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        headers = {"Content-Type": "application/ipp"} if body is not None else {}
        connection.request(method, parts.path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        connection.close()


@pytest.mark.parametrize(("scheme", "web"), [("ipp", "http"), ("ipps", "https")])
def test_every_page_an_attribute_names_is_served(gateway: GatewayProcess, scheme: str,
                                                 web: str) -> None:
    found = pointers(gateway, scheme)
    base = f"{web}://127.0.0.1:{gateway.port}{printer_path(PRINTER)}"
    assert found["printer-more-info"] == [base]
    assert found["printer-supply-info-uri"] == [f"{base}/supplies"]
    status, kind, body = fetch(found["printer-more-info"][0])
    assert (status, kind) == (200, "text/html; charset=utf-8") and PRINTER.encode() in body
    status, kind, body = fetch(found["printer-supply-info-uri"][0])
    assert (status, kind) == (200, "text/html; charset=utf-8")
    assert b"Supplies: office" in body and b"not reported" in body
    for icon in found["printer-icons"]:
        status, kind, body = fetch(icon)
        assert (status, kind) == (200, "image/png") and body.startswith(b"\x89PNG")


def test_supplies_of_an_unknown_printer_is_not_found(gateway: GatewayProcess) -> None:
    status, _, _ = fetch(f"http://127.0.0.1:{gateway.port}/ipp/print/nosuch/supplies")
    assert status == 404
