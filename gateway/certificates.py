"""Certificates with `cryptography`: the self-signed one made, checked and kept in
`<spool>/tls/`, and a configured pair read and matched.

Kept apart from gateway.tls so that the long-running gateway never loads `cryptography`
(about 9 MB of resident memory): at start the gateway runs this module as a child process
(`python -m gateway.certificates`, see `gateway.tls.open_server_tls`), which prints the
credentials as JSON; only a renewal, due every two years, imports it in the gateway itself.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from gateway.tls import (
    BACKDATE,
    CERTIFICATE_NAME,
    KEY_NAME,
    VALIDITY,
    Credentials,
    Identity,
    TlsError,
    host_identity,
)

log = logging.getLogger("gateway.tls")

def make_self_signed(identity: Identity, now: datetime) -> tuple[bytes, bytes]:
    """(certificate PEM, key PEM) for `identity`, valid from `now` (less `BACKDATE`) for
    `VALIDITY`. ECDSA P-256: every TLS 1.2 client takes it, and a handshake signs in a tenth
    of the time RSA 2048 takes."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, identity.names[0][:64]),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "ipp-gateway"),
    ])
    alt_names: list[x509.GeneralName] = [x509.DNSName(name) for name in identity.names]
    alt_names += [x509.IPAddress(address) for address in identity.addresses]
    public = key.public_key()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


def fingerprint(certificate: x509.Certificate) -> str:
    digest = certificate.fingerprint(hashes.SHA256())
    return ":".join(f"{byte:02X}" for byte in digest)


def certificate_names(certificate: x509.Certificate) -> set[str]:
    """The DNS names in the certificate's subjectAltName, lower-cased."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return set()
    return {name.lower() for name in extension.value.get_values_for_type(x509.DNSName)}


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise TlsError(f"{what} {path}: cannot read it ({exc.strerror})") from None


def _load_certificate(path: Path, what: str) -> x509.Certificate:
    data = _read(path, what)
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError:
        raise TlsError(f"{what} {path}: not a PEM certificate") from None


def _check_key(path: Path, certificate: x509.Certificate, what: str) -> None:
    data = _read(path, what)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise TlsError(f"{what} {path}: the key is protected by a password; give an "
                       "unencrypted key (mode 0600)") from None
    except (ValueError, UnsupportedAlgorithm):
        raise TlsError(f"{what} {path}: not a PEM private key") from None
    mine = key.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    theirs = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if mine != theirs:
        raise TlsError(f"{what} {path} does not belong to the certificate next to it (the "
                       "public keys differ); give the key the certificate was made for")


def load_pair(certificate_path: Path, key_path: Path, *, self_signed: bool,
              what: tuple[str, str] = ("certificate", "key")) -> Credentials:
    """Read and check a certificate and its key (a matching, unencrypted PEM pair)."""
    certificate = _load_certificate(certificate_path, what[0])
    _check_key(key_path, certificate, what[1])
    return Credentials(certificate_path, key_path, fingerprint(certificate),
                       certificate.not_valid_after_utc, self_signed)






@dataclass(frozen=True)
class CertificateStore:
    """`<spool>/tls/`: where the self-signed certificate is kept; `owner` (uid, gid) is the
    account the gateway runs as, when it starts as root and hands over."""

    directory: Path
    owner: tuple[int, int] | None = None

    @property
    def certificate(self) -> Path:
        return self.directory / CERTIFICATE_NAME

    @property
    def key(self) -> Path:
        return self.directory / KEY_NAME

    def ensure(self, identity: Identity, now: datetime) -> Credentials:
        """The kept certificate, unless it is missing, due for renewal or does not name
        `identity`'s host; then a new one, written before it is returned."""
        if self.certificate.exists() or self.key.exists():
            try:
                kept = load_pair(self.certificate, self.key, self_signed=True)
            except TlsError as exc:
                raise TlsError(f"{exc}; remove {self.directory} to make a new self-signed "
                               "certificate (clients that pinned the old one ask again)"
                               ) from None
            reason = self._replace_reason(kept, identity, now)
            if reason is None:
                return kept
            log.info("making a new TLS certificate: %s", reason)
        else:
            log.info("making a TLS certificate for %s (first start)", identity.names[0])
        self._prepare_directory()
        certificate_pem, key_pem = make_self_signed(identity, now)
        self._write(self.key, key_pem, 0o600)
        self._write(self.certificate, certificate_pem, 0o644)
        return load_pair(self.certificate, self.key, self_signed=True)

    def _replace_reason(self, kept: Credentials, identity: Identity,
                        now: datetime) -> str | None:
        if now >= kept.renew_at():
            return f"{self.certificate} ends {kept.not_after:%Y-%m-%d}"
        names = certificate_names(_load_certificate(self.certificate, "certificate"))
        if identity.names[0].lower() not in names:
            return f"{self.certificate} does not name this host ({identity.names[0]})"
        return None

    def _prepare_directory(self) -> None:
        try:
            self.directory.mkdir(mode=0o700, exist_ok=True)
            if self.owner is not None:
                os.chown(self.directory, *self.owner)
        except OSError as exc:
            raise TlsError(f"cannot create {self.directory}: {exc.strerror}") from None

    def _write(self, path: Path, data: bytes, mode: int) -> None:
        """Write `path` whole or not at all (a temporary file renamed over it, fsynced), so a
        crash never leaves half a key that the next start would refuse."""
        temporary = path.with_name(f".{path.name}.tmp")
        try:
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, mode)
            try:
                if self.owner is not None:
                    os.fchown(fd, *self.owner)
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(temporary, path)
            directory = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                os.fsync(directory)
            finally:
                os.close(directory)
        except OSError as exc:
            raise TlsError(f"cannot write {path}: {exc.strerror}") from None


def open_credentials(directory: Path, *, certificate: Path | None = None,
                     key: Path | None = None, owner: tuple[int, int] | None = None,
                     identity: Identity | None = None, now: datetime | None = None
                     ) -> Credentials:
    """The configured pair when `certificate` and `key` are given, else the self-signed one
    kept in `directory` (made now if needed). Raises `TlsError`."""
    if certificate is not None and key is not None:
        return load_pair(certificate, key, self_signed=False,
                         what=("server.tls_certificate", "server.tls_key"))
    store = CertificateStore(directory, owner)
    return store.ensure(identity or host_identity(), now or datetime.now(UTC))


def credentials_json(credentials: Credentials) -> str:
    return json.dumps({"certificate": str(credentials.certificate), "key": str(credentials.key),
                       "fingerprint": credentials.fingerprint,
                       "not_after": credentials.not_after.isoformat(),
                       "self_signed": credentials.self_signed})


def main(argv: list[str] | None = None) -> int:
    """The child process: credentials as one JSON line on stdout, log lines on stderr, and
    exit status 3 with the TlsError's words on stderr when they cannot be had."""
    parser = argparse.ArgumentParser(prog="python -m gateway.certificates")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--certificate", type=Path)
    parser.add_argument("--key", type=Path)
    parser.add_argument("--owner", help="UID:GID the self-signed files are given to")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    owner = None
    if args.owner:
        uid, _, gid = args.owner.partition(":")
        owner = (int(uid), int(gid))
    try:
        credentials = open_credentials(args.directory, certificate=args.certificate,
                                       key=args.key, owner=owner)
    except TlsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    print(credentials_json(credentials))
    return 0


if __name__ == "__main__":
    sys.exit(main())
