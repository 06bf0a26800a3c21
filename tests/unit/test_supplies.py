"""A device's supplies on the gateway's printer: marker-* and printer-supply from what the
transport reported (an IPP device), or one "unknown" supply when it reports none."""

from __future__ import annotations

from drivers import Supply
from gateway.server.attributes import supply_attributes


def _values(supplies: tuple[Supply, ...]) -> dict[str, list[object]]:
    return {attr.name: list(attr.plain) for attr in supply_attributes(supplies)}


def test_no_report_is_one_unknown_supply() -> None:
    values = _values(())
    assert values["printer-supply"] == [
        b"index=1;class=unknown;type=other;unit=percent;maxcapacity=100;level=-2;"]
    assert "marker-levels" not in values


def test_reported_supplies_become_markers_and_printer_supply() -> None:
    values = _values((Supply("Black Toner", "toner-cartridge", "#000000", 42, low=10),
                      Supply("Waste Toner Box", "waste-toner", "none", -3)))
    assert values["marker-names"] == ["Black Toner", "Waste Toner Box"]
    assert values["marker-levels"] == [42, -3]
    assert values["marker-low-levels"] == [10, 0]
    assert values["marker-high-levels"] == [100, 100]
    assert values["marker-colors"] == ["#000000", "none"]
    assert values["marker-types"] == ["toner-cartridge", "waste-toner"]
    assert values["printer-supply"] == [
        b"index=1;class=supplyThatIsConsumed;type=tonerCartridge;unit=percent;"
        b"maxcapacity=100;level=42;colorantvalue=000000;",
        b"index=2;class=receptacleThatIsFilled;type=wasteToner;unit=percent;"
        b"maxcapacity=100;level=-3;"]
    assert values["printer-supply-description"] == ["Black Toner", "Waste Toner Box"]
