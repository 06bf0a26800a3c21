"""IPP over HTTPS (or HTTP) with optional Basic credentials, for the authentication tests:
our codec over http.client, the gateway's self-signed certificate taken as it comes."""

from __future__ import annotations

import base64
import http.client
import ssl
from dataclasses import dataclass

from ippwire.enums import Status
from ippwire.model import Message
from ippwire.reader import decode_message
from ippwire.writer import encode_message

HOST = "127.0.0.1"


@dataclass
class Answer:
    """One HTTP answer to an IPP request: its status, headers and decoded IPP body."""

    http_status: int
    headers: dict[str, str]
    message: Message | None

    @property
    def ipp_status(self) -> Status | None:
        return None if self.message is None else Status(self.message.code)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode("ascii")


def _unverified() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the gateway's own self-signed certificate
    return context


def send(port: int, path: str, message: Message, document: bytes = b"", *,
         tls: bool = True, credentials: tuple[str, str] | None = None,
         timeout: float = 30.0) -> Answer:
    """POST one IPP request to `path`, over TLS unless `tls` is False."""
    connection: http.client.HTTPConnection
    if tls:
        connection = http.client.HTTPSConnection(HOST, port, timeout=timeout,
                                                 context=_unverified())
    else:
        connection = http.client.HTTPConnection(HOST, port, timeout=timeout)
    headers = {"Content-Type": "application/ipp"}
    if credentials is not None:
        headers["Authorization"] = basic(*credentials)
    try:
        connection.request("POST", path, body=encode_message(message) + document,
                           headers=headers)
        response = connection.getresponse()
        body = response.read()
        found = {name.lower(): value for name, value in response.getheaders()}
    finally:
        connection.close()
    decoded = None
    if found.get("content-type", "").startswith("application/ipp") and body:
        decoded, _ = decode_message(body)
    return Answer(response.status, found, decoded)
