"""Valid inputs for every fuzz target, built by hand or by our writers, and the offsets of
their length and size fields (the fields a mutation sets to extremes)."""

from __future__ import annotations

import struct
from functools import cache

from drivers.filters import pwg_raster, urf
from drivers.model.raster import PixelFormat, RasterPage, Row
from ippwire.enums import Operation, ValueTag
from ippwire.model import Attribute, Collection
from ippwire.writer import encode_message, request
from tests.support.ipp_bytes import GET_PRINTER_ATTRIBUTES

PRINTER_URI = "ipp://127.0.0.1:631/ipp/print"
SMALL_DOCUMENT = b"%!PS\n(fuzz) show showpage\n"


def _media_col() -> Collection:
    size = Collection([Attribute.of("x-dimension", ValueTag.INTEGER, 21000),
                       Attribute.of("y-dimension", ValueTag.INTEGER, 29700)])
    return Collection([Attribute.of("media-size", ValueTag.BEGIN_COLLECTION, size),
                       Attribute.of("media-source", ValueTag.KEYWORD, "main")])


def ipp_requests(printer_uri: str = PRINTER_URI) -> dict[str, bytes]:
    """The attribute sections of the requests a client sends most (no document data)."""
    return {
        "get-printer-attributes": encode_message(request(
            Operation.GET_PRINTER_ATTRIBUTES, printer_uri=printer_uri,
            attrs={"requested-attributes": (ValueTag.KEYWORD, ["all", "media-col-database"])})),
        "print-job": encode_message(request(
            Operation.PRINT_JOB, 2, printer_uri=printer_uri,
            attrs={"job-name": (ValueTag.NAME, "fuzz"),
                   "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream")},
            job_attrs={"copies": (ValueTag.INTEGER, 1),
                       "media-col": (ValueTag.BEGIN_COLLECTION, _media_col()),
                       "sides": (ValueTag.KEYWORD, "one-sided")})),
        "get-jobs": encode_message(request(
            Operation.GET_JOBS, 3, printer_uri=printer_uri,
            attrs={"which-jobs": (ValueTag.KEYWORD, "all"),
                   "requested-attributes": (ValueTag.KEYWORD, ["job-id", "job-state"])})),
        "create-job": encode_message(request(
            Operation.CREATE_JOB, 4, printer_uri=printer_uri,
            attrs={"job-name": (ValueTag.NAME, "fuzz")})),
        "send-document": encode_message(request(
            Operation.SEND_DOCUMENT, 5, printer_uri=printer_uri,
            attrs={"job-id": (ValueTag.INTEGER, 1),
                   "document-format": (ValueTag.MIME_MEDIA_TYPE, "application/octet-stream"),
                   "last-document": (ValueTag.BOOLEAN, True)})),
    }


@cache
def ipp_seeds() -> tuple[bytes, ...]:
    built = ipp_requests()
    return (GET_PRINTER_ATTRIBUTES, built["get-printer-attributes"],
            built["print-job"] + SMALL_DOCUMENT, built["get-jobs"], built["create-job"],
            built["send-document"] + SMALL_DOCUMENT)


def ipp_length_fields(message: bytes) -> list[tuple[int, int]]:
    """(offset, width) of every name-length and value-length field of a valid message."""
    fields: list[tuple[int, int]] = []
    pos = 8
    while pos < len(message):
        tag = message[pos]
        pos += 1
        if tag < 0x10:
            if tag == 0x03:
                break
            continue
        name_length = int.from_bytes(message[pos : pos + 2], "big")
        fields.append((pos, 2))
        pos += 2 + name_length
        fields.append((pos, 2))
        pos += 2 + int.from_bytes(message[pos : pos + 2], "big")
    return fields


def http_seeds() -> tuple[bytes, ...]:
    body = ipp_seeds()[0]
    post = (b"POST /ipp/print HTTP/1.1\r\nHost: 127.0.0.1:631\r\n"
            b"Content-Type: application/ipp\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
    chunked = (b"POST /ipp/print HTTP/1.1\r\nHost: gw.local\r\nTransfer-Encoding: chunked\r\n"
               b"Expect: 100-continue\r\n\r\n10;ext=1\r\n" + body[:16] + b"\r\n"
               + b"%x\r\n" % (len(body) - 16) + body[16:] + b"\r\n0\r\nX-Trailer: t\r\n\r\n")
    get = (b"GET /ipp/print/default?x=1 HTTP/1.1\nHost: [::1]:631\nAccept: */*\n"
           b"X-Folded: a\n  b\nConnection: close\n\n")
    old = b"GET http://gw:631/ HTTP/1.0\r\nUser-Agent: fuzz\r\n\r\n"
    options = b"OPTIONS * HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\n\r\n"
    return (post, chunked, get, old, options, post + get, chunked + post)


def _page(pixels: PixelFormat, width: int, height: int, number: int = 1) -> RasterPage:
    return RasterPage(width=width, height=height, pixels=pixels, dpi_x=150, dpi_y=150,
                      number=number, duplex=number % 2 == 0, copies=number)


def _rows(page: RasterPage) -> list[Row]:
    size = page.bytes_per_line
    ramp = bytes(index * 37 % 256 for index in range(size))
    return [(page.white_line, 2), (ramp, 1), (bytes(size), page.height - 3)]


def pwg_seeds() -> tuple[bytes, ...]:
    seeds = []
    for pixels in PixelFormat:
        writer = pwg_raster.PwgRasterWriter()
        parts = [writer.start()]
        for number in (1, 2):
            page = _page(pixels, 13, 5, number)
            parts += [writer.page(page, 2), writer.rows(_rows(page))]
        seeds.append(b"".join(parts))
    return tuple(seeds)


# PWG page header fields a reader trusts: sizes, bit depths, bytes per line, order, colour
# space, colour count, resolution, copies; offsets after the 4-byte sync word.
PWG_HEADER_FIELDS = tuple(4 + offset for offset in
                          (272, 276, 280, 340, 352, 356, 372, 376, 384, 388, 392, 396, 400, 420))


def urf_seeds() -> tuple[bytes, ...]:
    seeds = []
    for pixels in (PixelFormat.SGRAY_8, PixelFormat.SRGB_8, PixelFormat.CMYK_8):
        writer = urf.UrfWriter()
        parts = [writer.start(2)]
        for number in (1, 2):
            page = _page(pixels, 11, 4, number)
            parts += [writer.page(page), writer.rows(_rows(page))]
        seeds.append(b"".join(parts))
    # Ghostscript's 1-bit pages: bits 1, colour space sGray, a fill-the-rest line.
    one_bit = bytes([1, 0, 1, 0]) + bytes(8) + struct.pack(">III", 16, 3, 300) + bytes(8)
    seeds.append(urf.file_header(1) + one_bit + b"\x02\x80")
    return tuple(seeds)


# URF: the page count, and the page header's bits, space, width, height, resolution.
URF_HEADER_FIELDS = (8, 12 + 12, 12 + 16, 12 + 20)

LPD_SEEDS: tuple[bytes, ...] = (
    b"\0\0\0\0\0\0",
    b"\0\x02",
    b"\0\0\x01",
    b"Rank   Owner      Job  Files                                 Total Size\n"
    b"active root       12   (stdin)                               120 bytes\n"
    b"1st    alice      13   report.pdf                            4096 bytes\n",
    b"lp is ready and printing\nroot: active                           [job 012localhost]\n"
    b"        (stdin)                                      120 bytes\n",
    b"lpd: lp: unknown printer\n",
    b"Warning: lp is down: paper jam\r\nno entries\r\n",
)

PJL_SEEDS: tuple[bytes, ...] = (
    b"@PJL USTATUS DEVICE\r\nCODE=10001\r\nDISPLAY=\"Ready\"\r\nONLINE=TRUE\r\n\x0c",
    b"@PJL INFO STATUS\r\nCODE=40021\r\nDISPLAY=\"Close door\"\r\nONLINE=FALSE\r\n\x0c"
    b"@PJL USTATUS JOB\r\nEND\r\nNAME=\"fuzz\"\r\nPAGES=1\r\n\x0c",
    b"\x00\x00@PJL ECHO ipp-gateway 12\r\n\x0c@PJL USTATUS DEVICE\nCODE=41300\n\x0c",
)

# -- HTTP responses (the client side) -------------------------------------------------------

# The IPP answer ippeveprinter (CUPS 2.4.2's HTTP code) gave to a Get-Printer-Attributes,
# head and body as captured.
CUPS_IPP_BODY = (
    b"\x02\x00\x00\x00\x00\x00\x00\x01\x01G\x00\x12attributes-charset\x00\x05utf-8H\x00\x1b"
    b"attributes-natural-language\x00\x02en\x04B\x00\x0cprinter-name\x00\rippeveprinter#\x00"
    b"\rprinter-state\x00\x04\x00\x00\x00\x03D\x00\x15printer-state-reasons\x00\x04none\x03")
CUPS_HEAD = (
    b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 155\r\n"
    b"Content-Type: application/ipp\r\nDate: Thu, 03 Dec 2026 19:54:46 GMT\r\n"
    b"Keep-Alive: timeout=10\r\nAccept-Encoding: gzip, deflate, identity\r\n"
    b"Server: CUPS/2.4.2\r\nX-Frame-Options: DENY\r\n"
    b"Content-Security-Policy: frame-ancestors 'none'\r\n\r\n")


def http_response_seeds() -> tuple[bytes, ...]:
    cups = CUPS_HEAD + CUPS_IPP_BODY
    body = CUPS_IPP_BODY
    chunked = (b"HTTP/1.1 200 OK\r\nServer: CUPS/2.2 IPP/2.1\r\nContent-Type: application/ipp\r\n"
               b"Transfer-Encoding: chunked\r\nTrailer: X-Checksum\r\n\r\n"
               b"40;part=1\r\n" + body[:64] + b"\r\n" + b"%x\r\n" % (len(body) - 64)
               + body[64:] + b"\r\n0\r\nX-Checksum: 8d3f\r\nX-More: 1\r\n\r\n")
    # An old CUPS asked to print without credentials: 100 Continue to the Expect, then the
    # refusal with its RFC 2069 Digest challenge and a Basic one.
    refused = (b"HTTP/1.1 100 Continue\r\n\r\n"
               b"HTTP/1.1 401 Unauthorized\r\nConnection: Keep-Alive\r\nContent-Language: en\r\n"
               b"Content-Length: 0\r\nServer: CUPS/1.4\r\n"
               b'WWW-Authenticate: Digest realm="CUPS", nonce="a4f2b1c0e9d84b7e"\r\n'
               b'WWW-Authenticate: Basic realm="CUPS"\r\n\r\n')
    # An embedded server of the HTTP/1.0 era: no length, the body ends with the connection.
    closing = (b"HTTP/1.0 200 OK\nServer: Virata-EmWeb/R6_2_1\nContent-Type: application/ipp\n"
               b"X-Folded: one\n\ttwo\n\n" + body)
    no_content = b"HTTP/1.1 204 No Content\r\nConnection: Keep-Alive\r\n\r\n"
    return (cups, chunked, refused, closing, no_content, cups + b"\r\n" + chunked,
            refused + cups)


# WWW-Authenticate values, one a line: CUPS 2.x (Basic beside its local schemes), CUPS 1.x
# (Digest without qop), IIS (Negotiate and NTLM as values of their own, then Basic; its
# Digest), Apache (mod_auth_basic, mod_auth_digest), and RFC 7616's SHA-256 example.
AUTH_SEEDS: tuple[bytes, ...] = (
    b'Basic realm="CUPS"',
    b'Basic realm="CUPS", PeerCred\nLocal trc="y"',
    b'Digest realm="CUPS", nonce="a4f2b1c0e9d84b7e"',
    b'Negotiate\nNTLM\nBasic realm="printserver.corp.example"',
    b"Negotiate oYH1MIHyoAMKAQChCwYJKoZIgvcSAQICooHdBIHaYIHXBgkqhkiG9xIBAgICAG+ByzCByKADAgEF==",
    b'Negotiate\nNTLM\nDigest qop="auth",algorithm=MD5-sess,nonce="+Upgraded+v1e4a0c3a12a'
    b'd8e1f1aab28fd3==",charset=utf-8,realm="Digest"',
    b'Basic realm="Restricted Printers"',
    b'Digest realm="private", nonce="Ny8yLzIwMDIgMzoyNjoyNCBQTQ", algorithm=MD5, '
    b'domain="/printers", qop="auth"',
    b'Digest realm="http-auth@example.org", qop="auth, auth-int", algorithm=SHA-256, '
    b'nonce="7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", '
    b'opaque="FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS", stale=FALSE',
)
