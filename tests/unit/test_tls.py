"""gateway.tls: the self-signed certificate kept in the spool, configured pairs, the context;
the [server] TLS keys; the parallel URI attributes."""

from __future__ import annotations

import ipaddress
import ssl
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography import x509

from gateway.certificates import CertificateStore, certificate_names, load_pair, make_self_signed
from gateway.config import ConfigError, config_from_dict
from gateway.server.attributes import addressed_attributes
from gateway.tls import (
    RENEW_BEFORE,
    VALIDITY,
    Identity,
    ServerTls,
    TlsError,
    open_server_tls,
    server_context,
)
from ippwire.model import Attribute, Value

NOW = datetime(2026, 1, 10, 12, 0, tzinfo=UTC)
HOST = Identity(("printhost.local", "printhost", "localhost"),
                (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"),
                 ipaddress.ip_address("192.168.1.20")))


def test_self_signed_certificate_names_the_host_and_its_addresses() -> None:
    certificate_pem, _ = make_self_signed(HOST, NOW)
    certificate = x509.load_pem_x509_certificate(certificate_pem)
    assert certificate_names(certificate) == {"printhost.local", "printhost", "localhost"}
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.IPAddress)) == set(HOST.addresses)
    assert certificate.not_valid_before_utc < NOW
    assert certificate.not_valid_after_utc == NOW + VALIDITY


def test_store_makes_a_private_key_and_keeps_the_certificate(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "tls")
    made = store.ensure(HOST, NOW)
    assert (store.key.stat().st_mode & 0o777) == 0o600
    assert (store.directory.stat().st_mode & 0o777) == 0o700
    first_bytes = store.certificate.read_bytes()
    again = store.ensure(HOST, NOW + timedelta(days=100))
    assert again.fingerprint == made.fingerprint
    assert store.certificate.read_bytes() == first_bytes
    assert len(made.fingerprint.split(":")) == 32


def test_store_renews_before_the_end(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "tls")
    made = store.ensure(HOST, NOW)
    just_before = made.renew_at() - timedelta(seconds=1)
    assert store.ensure(HOST, just_before).fingerprint == made.fingerprint
    renewed = store.ensure(HOST, made.renew_at())
    assert renewed.fingerprint != made.fingerprint
    assert renewed.not_after - made.renew_at() == VALIDITY
    assert made.not_after - made.renew_at() == RENEW_BEFORE


def test_store_renews_for_a_renamed_host_but_not_for_new_addresses(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "tls")
    made = store.ensure(HOST, NOW)
    moved = Identity(HOST.names, (ipaddress.ip_address("10.9.8.7"),))
    assert store.ensure(moved, NOW).fingerprint == made.fingerprint
    renamed = Identity(("other.local",), HOST.addresses)
    assert store.ensure(renamed, NOW).fingerprint != made.fingerprint


def test_a_damaged_kept_certificate_is_an_error_in_words(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "tls")
    store.ensure(HOST, NOW)
    store.key.write_text("not a key\n")
    with pytest.raises(TlsError, match=r"not a PEM private key; remove .*tls to make a new"):
        store.ensure(HOST, NOW)


def write_pair(directory: Path, name: str) -> tuple[Path, Path]:
    certificate_pem, key_pem = make_self_signed(HOST, NOW)
    certificate, key = directory / f"{name}.crt", directory / f"{name}.key"
    certificate.write_bytes(certificate_pem)
    key.write_bytes(key_pem)
    return certificate, key


def test_configured_pair_is_served_as_given(tmp_path: Path) -> None:
    certificate, key = write_pair(tmp_path, "site")
    server = open_server_tls(tmp_path / "unused", certificate=certificate, key=key, now=NOW)
    assert server.store is None and not server.credentials.self_signed
    assert not (tmp_path / "unused").exists()
    assert server.context.minimum_version == ssl.TLSVersion.TLSv1_2
    assert not server.renew_if_due(NOW + VALIDITY * 2)


def test_mismatched_pair_is_refused_in_words(tmp_path: Path) -> None:
    certificate, _ = write_pair(tmp_path, "one")
    _, other_key = write_pair(tmp_path, "two")
    with pytest.raises(TlsError, match=r"server.tls_key .*two.key does not belong to the "
                                       r"certificate"):
        open_server_tls(tmp_path, certificate=certificate, key=other_key, now=NOW)


def test_unreadable_key_is_refused_in_words(tmp_path: Path) -> None:
    certificate, _ = write_pair(tmp_path, "one")
    with pytest.raises(TlsError, match=r"server.tls_key .*missing.key: cannot read it"):
        open_server_tls(tmp_path, certificate=certificate, key=tmp_path / "missing.key")


def test_context_refuses_below_tls_1_2(tmp_path: Path) -> None:
    certificate, key = write_pair(tmp_path, "one")
    context = server_context(load_pair(certificate, key, self_signed=False))
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2


def test_server_renews_its_own_certificate_and_swaps_the_context(tmp_path: Path) -> None:
    store = CertificateStore(tmp_path / "tls")
    server = ServerTls(store.ensure(HOST, NOW), store)
    old_context, old = server.context, server.credentials
    assert not server.renew_if_due(NOW, HOST)
    assert server.renew_if_due(old.renew_at(), HOST)
    assert server.context is not old_context
    assert server.credentials.fingerprint != old.fingerprint


def test_config_tls_keys() -> None:
    assert config_from_dict({}).tls is True
    off = config_from_dict({"server": {"tls": False}})
    assert (off.tls, off.tls_certificate) == (False, None)
    pair = config_from_dict({"server": {"tls_certificate": "/etc/c.pem",
                                        "tls_key": "/etc/k.pem"}})
    assert (pair.tls_certificate, pair.tls_key) == (Path("/etc/c.pem"), Path("/etc/k.pem"))
    with pytest.raises(ConfigError, match=r"server.tls_key: needed with server.tls_certificate"):
        config_from_dict({"server": {"tls_certificate": "/etc/c.pem"}})
    with pytest.raises(ConfigError, match=r"server.tls: must be true or false"):
        config_from_dict({"server": {"tls": "yes"}})
    with pytest.raises(ConfigError, match=r"server.tls_key: .* must be an absolute path"):
        config_from_dict({"server": {"tls_certificate": "/c", "tls_key": "k.pem"}})


def values(attrs: list[Attribute], name: str) -> list[Value]:
    return next(attribute.plain for attribute in attrs if attribute.name == name)


def test_uri_attributes_list_both_schemes_in_parallel() -> None:
    over_ipp = (addressed_attributes("ipp", "h.local", 8631, "/ipp/print", tls=True))
    over_ipps = (addressed_attributes("ipps", "h.local", 8631, "/ipp/print", tls=True))
    assert values(over_ipp, "printer-uri-supported") == [
        "ipp://h.local:8631/ipp/print", "ipps://h.local:8631/ipp/print"]
    assert values(over_ipp, "uri-security-supported") == ["none", "tls"]
    assert values(over_ipps, "printer-uri-supported") == [
        "ipps://h.local:8631/ipp/print", "ipp://h.local:8631/ipp/print"]
    assert values(over_ipps, "uri-security-supported") == ["tls", "none"]
    assert values(over_ipps, "uri-authentication-supported") == ["none", "none"]
    assert values(over_ipps, "printer-more-info") == ["https://h.local:8631/ipp/print"]
    plain = (addressed_attributes("ipp", "h.local", 8631, "/ipp/print", tls=False))
    assert values(plain, "printer-uri-supported") == ["ipp://h.local:8631/ipp/print"]
    assert values(plain, "uri-security-supported") == ["none"]
    assert values(plain, "uri-authentication-supported") == ["none"]
