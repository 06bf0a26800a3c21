"""Requests h11 accepts and our HTTP/1.1 parser refuses on purpose (400): request smuggling,
Host values and request targets outside their grammar. Checked against the parser and against
the connection."""

from __future__ import annotations

SMUGGLING = [
    b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: h\r\n\r\n",
    b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
]
BAD_HOSTS = [b"\xc3\xa9.local", b"gw local", b"gw/x", b"user@gw", b"[::1", b"[::1]x", b"fe80::1",
             b"[fe80::1%eth0]", b"[v1.x]", b"[1::2::3]", b"gw:99999", b"gw:0", b"gw:1a", b"%zz",
             b"a" * 256]
BAD_TARGETS = [b"http://[::1/", b"http://[::1]x/", b"ftp://h/x", b"http://u@h/", b"http://",
               b"http:/x", b"gw:631", b"/a#b", b"/a%zz", b'/a"b', b"/<x>", b"*", b"a/b"]
