"""Which USB printers are attached now, as the device URIs the gateway configures, without
claiming any of them (the hotplug monitor asks every second; reading a 1284 id would take
the interface from the kernel's usblp driver each time)."""

from __future__ import annotations

from drivers.transports import usbprinter


def usb_uri(vendor: int, product: int, serial: str) -> str:
    """The URI `ipp-gateway devices` lists for a device (serial when it has one)."""
    uri = f"usb://{vendor:04x}:{product:04x}"
    return f"{uri}?serial={serial}" if serial else uri


# Serial numbers read, per device on the bus: a string descriptor read is a request to the
# device, which a scan every few seconds should not repeat. A replugged device gets another
# address, so an entry never outlives the device it was read from.
_serials: dict[tuple[int, int, int, int], str] = {}


def attached_usb_printers() -> list[str]:
    """The URIs of the attached printer-class devices (blocking: run it in a thread).

    A device that has a serial number but did not say it (it is going away, or busy) is left
    out of this scan: without it, it would look like another printer."""
    found = []
    seen = set()
    for dev in usbprinter.find_printers():
        key = (dev.bus or 0, dev.address or 0, dev.idVendor, dev.idProduct)
        seen.add(key)
        serial = _serials.get(key)
        if serial is None:
            serial = usbprinter.serial_number(dev)
            if dev.iSerialNumber and not serial:
                continue
            _serials[key] = serial
        found.append(usb_uri(dev.idVendor, dev.idProduct, serial))
    for gone in set(_serials) - seen:
        del _serials[gone]
    return found
