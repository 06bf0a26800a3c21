"""The paper side: transports, printer languages and format filters (never imports gateway).

This package is the facade the network side (`gateway`) uses: it imports these names from
`drivers` and never from a submodule. Each name is loaded on first use (`__getattr__` below),
so `import drivers`, and importing a sans-I/O submodule such as `drivers.uri` (which runs this
file first), stays cheap and never reaches trio. `_LAZY_EXPORTS` says where each name lives;
the `TYPE_CHECKING` imports say the same to type checkers, and
tests/unit/test_import_rules.py checks that the two agree and follows the table as imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from drivers.autosetup import (
        PREFERENCE,
        DriverChoice,
        choice_for_device_id,
        choose_driver,
        printer_name,
    )
    from drivers.discovery import (
        FoundDevice,
        ProbeResult,
        devices,
        devices_command,
        probe,
    )
    from drivers.driver import Driver, accepted_formats, family, unsupported_options
    from drivers.errors import (
        ConversionError,
        DriverError,
        FormatRefused,
        Outcome,
        TransportError,
        UriError,
    )
    from drivers.filters.sniff import SNIFF_BYTES, sniff_format
    from drivers.filters.stage import Progress
    from drivers.ieee1284 import parse_device_id
    from drivers.ippcaps import choose_ipp_driver
    from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS, raw_command_set
    from drivers.model.accel import ACCELERATED
    from drivers.model.capabilities import MEDIA_SIZES, Capabilities, MediaSize, PrintOptions
    from drivers.netprobe import (
        SetupProbe,
        describe_setup,
        probe_command,
        probe_target,
        shown_target,
    )
    from drivers.pipeline import print_document
    from drivers.registry import driver_names, get_driver, pjl_drivers
    from drivers.transport import (
        DeviceStatus,
        JobInfo,
        Supply,
        Transport,
        check_device_uri,
        open_transport,
    )
    from drivers.uri import DeviceUri
    from drivers.usbscan import attached_usb_printers

# Exported name -> the module that defines it.
_LAZY_EXPORTS: dict[str, str] = {
    # Printing a document, and what a printer accepts.
    "print_document": "drivers.pipeline",
    "accepted_formats": "drivers.driver",
    "unsupported_options": "drivers.driver",
    "family": "drivers.driver",
    "sniff_format": "drivers.filters.sniff",
    "SNIFF_BYTES": "drivers.filters.sniff",
    "Progress": "drivers.filters.stage",
    "ACCELERATED": "drivers.model.accel",  # whether the raster codec is the C extension
    # Capabilities and the languages.
    "Capabilities": "drivers.model.capabilities",
    "MediaSize": "drivers.model.capabilities",
    "MEDIA_SIZES": "drivers.model.capabilities",
    "PrintOptions": "drivers.model.capabilities",
    "Driver": "drivers.driver",
    "get_driver": "drivers.registry",
    "driver_names": "drivers.registry",
    "pjl_drivers": "drivers.registry",
    "RAW_PASSTHROUGH_FORMATS": "drivers.languages.raw",
    "raw_command_set": "drivers.languages.raw",
    # Devices.
    "DeviceUri": "drivers.uri",
    "check_device_uri": "drivers.transport",
    "open_transport": "drivers.transport",
    "Transport": "drivers.transport",
    "DeviceStatus": "drivers.transport",
    "JobInfo": "drivers.transport",
    "Supply": "drivers.transport",
    # Errors.
    "DriverError": "drivers.errors",
    "ConversionError": "drivers.errors",
    "TransportError": "drivers.errors",
    "FormatRefused": "drivers.errors",
    "choose_ipp_driver": "drivers.ippcaps",
    "UriError": "drivers.errors",
    "Outcome": "drivers.errors",
    # What is attached (`ipp-gateway devices` / `probe`).
    "devices": "drivers.discovery",
    "probe": "drivers.discovery",
    "FoundDevice": "drivers.discovery",
    "ProbeResult": "drivers.discovery",
    "devices_command": "drivers.discovery",
    "probe_command": "drivers.netprobe",
    # Plug and print: what is attached now, and how to set it up (gateway.hotplug).
    "attached_usb_printers": "drivers.usbscan",
    "parse_device_id": "drivers.ieee1284",
    "choice_for_device_id": "drivers.autosetup",
    "printer_name": "drivers.autosetup",
    # The driver a printer's languages choose, and the probe of a host or URI behind
    # `ipp-gateway add`.
    "PREFERENCE": "drivers.autosetup",
    "DriverChoice": "drivers.autosetup",
    "choose_driver": "drivers.autosetup",
    "SetupProbe": "drivers.netprobe",
    "probe_target": "drivers.netprobe",
    "describe_setup": "drivers.netprobe",
    "shown_target": "drivers.netprobe",
}

__all__ = [
    "ACCELERATED",
    "MEDIA_SIZES",
    "PREFERENCE",
    "RAW_PASSTHROUGH_FORMATS",
    "SNIFF_BYTES",
    "Capabilities",
    "ConversionError",
    "DeviceStatus",
    "DeviceUri",
    "Driver",
    "DriverChoice",
    "DriverError",
    "FormatRefused",
    "FoundDevice",
    "JobInfo",
    "MediaSize",
    "Outcome",
    "PrintOptions",
    "ProbeResult",
    "Progress",
    "SetupProbe",
    "Supply",
    "Transport",
    "TransportError",
    "UriError",
    "accepted_formats",
    "attached_usb_printers",
    "check_device_uri",
    "choice_for_device_id",
    "choose_driver",
    "choose_ipp_driver",
    "describe_setup",
    "devices",
    "devices_command",
    "driver_names",
    "family",
    "get_driver",
    "open_transport",
    "parse_device_id",
    "pjl_drivers",
    "print_document",
    "printer_name",
    "probe",
    "probe_command",
    "probe_target",
    "raw_command_set",
    "shown_target",
    "sniff_format",
    "unsupported_options",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY_EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
