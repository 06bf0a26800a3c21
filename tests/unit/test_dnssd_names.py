"""DNS-SD instance names (gateway.dnssd.names) and the [dnssd] configuration."""

from __future__ import annotations

import pytest

from gateway.cli import build_parser, config_from_args
from gateway.config import ConfigError, DnssdConfig, config_from_dict
from gateway.dnssd.names import (
    ChosenName,
    dump_names,
    first_name,
    load_names,
    next_name,
    number_of,
    numbered,
)


def test_a_taken_name_becomes_numbered() -> None:
    assert next_name("Laser", "Laser") == "Laser (2)"
    assert next_name("Laser", "Laser (2)") == "Laser (3)"
    # A wanted name that looks numbered is numbered like any other.
    assert next_name("Laser (2)", "Laser (2)") == "Laser (2) (2)"
    assert next_name("Laser", "Laser (999)") is None


def test_numbered_names_fit_a_label() -> None:
    name = numbered("x" * 70, 12)
    assert name == "x" * 58 + " (12)" and len(name.encode()) == 63
    assert number_of("x" * 70, name) == 12
    assert number_of("Laser", "Other (2)") == 0


def test_the_kept_name_is_used_while_the_wanted_name_is_the_same() -> None:
    kept = ChosenName("Laser", "Laser (2)")
    assert first_name("Laser", kept) == "Laser (2)"
    assert first_name("Office", kept) == "Office"  # its info changed: start over
    assert first_name("Laser", ChosenName("Laser", "Something else")) == "Laser"
    assert first_name("Laser", None) == "Laser"


def test_the_record_round_trips_and_bad_records_are_ignored() -> None:
    names = {"office": ChosenName("Laser ü", "Laser ü (2)"), "lab": ChosenName("lab", "lab")}
    assert load_names(dump_names(names)) == names
    assert load_names("not json") == {}
    assert load_names("[1, 2]") == {}
    assert load_names('{"a": {"wanted": 1, "chosen": "x"}, "b": {"wanted": "b", "chosen": "b"}}'
                      ) == {"b": ChosenName("b", "b")}


def test_dnssd_config_defaults_and_values() -> None:
    assert config_from_dict({}).dnssd == DnssdConfig(enabled=True, backend="auto", interfaces=())
    config = config_from_dict({"dnssd": {"enabled": False, "backend": "zeroconf",
                                         "interfaces": ["eth0", "wlan0", "eth0"]}})
    assert config.dnssd == DnssdConfig(False, "zeroconf", ("eth0", "wlan0"))


@pytest.mark.parametrize(("table", "words"), [
    ({"enabled": "yes"}, "dnssd.enabled: must be true or false"),
    ({"backend": "bonjour"}, "dnssd.backend: 'bonjour' is not one of auto, avahi, zeroconf"),
    ({"interfaces": "eth0"}, "dnssd.interfaces: must be a list"),
    ({"interfaces": ["eth0", 3]}, "dnssd.interfaces[1]: must be a string"),
    ({"interfaces": ["a/b"]}, "dnssd.interfaces[0]: 'a/b' is not a network interface name"),
    ({"interfaces": ["x" * 16]}, "is not a network interface name"),
    ({"port": 5353}, "dnssd.port: unknown key"),
])
def test_bad_dnssd_settings_name_the_key(table: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError, match="^" + words.replace("[", r"\[").replace("]", r"\]")
                       if words.startswith("dnssd") else words):
        config_from_dict({"dnssd": table})


def test_no_dnssd_flag_turns_it_off() -> None:
    args = build_parser().parse_args(["run", "--no-dnssd"])
    assert config_from_args(args).dnssd.enabled is False
    assert config_from_args(build_parser().parse_args(["run"])).dnssd.enabled is True
