"""systemd's service notification (sd_notify(3)), without libsystemd: one datagram per state
to the socket named by $NOTIFY_SOCKET. Outside systemd (no variable) it does nothing."""

from __future__ import annotations

import logging
import os
import socket

log = logging.getLogger("gateway")


def notify(state: str) -> bool:
    """Send `state` ("READY=1", "RELOADING=1", "STOPPING=1", "STATUS=..."); True if sent."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # the abstract namespace
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.sendto(state.encode(), address)
    except OSError as exc:
        log.warning("systemd notification %s not sent to %s: %s", state,
                    os.environ.get("NOTIFY_SOCKET"), exc.strerror or exc)
        return False
    return True
