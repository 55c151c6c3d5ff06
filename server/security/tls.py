"""TLS: a local CA and server certificate (`hearth tls init`), and the server's SSL context.

The context accepts TLS 1.3 only (`minimum_version`), so a TLS 1.2 client fails at the handshake.
With `tls_client_ca` set, clients must present a certificate signed by that CA (mutual TLS);
`hearth tls client NAME` issues one from the local CA. Keys are EC P-256, written with mode 0600
through a temporary file and `os.replace`, never half-written.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import socket
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from server.settings import Settings


class TLSError(RuntimeError):
    """TLS is asked for but cannot be set up (missing or unreadable files); the message says why."""


@dataclass(frozen=True)
class TLSFiles:
    """Where `hearth tls init` puts its files."""

    directory: Path

    @property
    def ca_cert(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca-key.pem"

    @property
    def cert(self) -> Path:
        return self.directory / "server.pem"

    @property
    def key(self) -> Path:
        return self.directory / "server-key.pem"


def tls_files(settings: Settings) -> TLSFiles:
    """The TLS files of `settings.server.home`."""
    return TLSFiles(settings.home_path / "tls")


def _write(path: Path, data: bytes, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Hearth"), x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    )


def _load_ca(files: TLSFiles) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    key = serialization.load_pem_private_key(files.ca_key.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TLSError(f"{files.ca_key} is not an EC key made by `hearth tls init`")
    return cert, key


def _make_ca(files: TLSFiles, days: int) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    name = _name(f"Hearth local CA ({socket.gethostname()})")
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )  # key_cert_sign, crl_sign
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write(files.ca_key, _key_pem(key), 0o600)
    _write(files.ca_cert, cert.public_bytes(serialization.Encoding.PEM), 0o644)
    return cert, key


def _issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    common_name: str,
    days: int,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName],
) -> tuple[bytes, bytes]:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


def init_tls(files: TLSFiles, hosts: list[str], days: int = 825) -> list[Path]:
    """Make the local CA (kept if it exists) and a fresh server certificate valid for localhost,
    127.0.0.1, ::1, this machine's name and `hosts`; returns the files written."""
    written: list[Path] = []
    if files.ca_cert.exists() and files.ca_key.exists():
        ca = _load_ca(files)
    else:
        ca = _make_ca(files, days=3650)
        written += [files.ca_cert, files.ca_key]
    names = ["localhost", "127.0.0.1", "::1", socket.gethostname(), *hosts]
    sans = [_san(h) for h in dict.fromkeys(names)]
    cert, key = _issue(ca, names[3], days, ExtendedKeyUsageOID.SERVER_AUTH, sans)
    _write(files.key, key, 0o600)
    _write(files.cert, cert, 0o644)
    return [*written, files.cert, files.key]


def issue_client(files: TLSFiles, name: str, days: int = 825) -> tuple[Path, Path]:
    """A client certificate for mutual TLS, signed by the local CA: (certificate, key) under
    `clients/`."""
    if not (files.ca_cert.exists() and files.ca_key.exists()):
        raise TLSError("no local CA yet: run `hearth tls init` first")
    cert, key = _issue(_load_ca(files), name, days, ExtendedKeyUsageOID.CLIENT_AUTH, [])
    cert_path, key_path = files.directory / "clients" / f"{name}.pem", files.directory / "clients" / f"{name}-key.pem"
    _write(key_path, key, 0o600)
    _write(cert_path, cert, 0o644)
    return cert_path, key_path


def server_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's SSL context (TLS 1.3 only; client certificates if `tls_client_ca`), or None
    when TLS is off. A cert or key given alone is an error; `--tls` alone uses `hearth tls init`'s."""
    if not (settings.security.tls or settings.security.tls_cert or settings.security.tls_key):
        return None
    if bool(settings.security.tls_cert) != bool(settings.security.tls_key):
        raise TLSError("give both --tls-cert and --tls-key (or neither, to use `hearth tls init`'s)")
    files = tls_files(settings)
    cert = Path(settings.security.tls_cert).expanduser() if settings.security.tls_cert else files.cert
    key = Path(settings.security.tls_key).expanduser() if settings.security.tls_key else files.key
    if not cert.is_file() or not key.is_file():
        raise TLSError(f"TLS certificate {cert} or key {key} does not exist: run `hearth tls init` first")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    try:
        context.load_cert_chain(cert, key)
        if settings.security.tls_client_ca:
            context.load_verify_locations(Path(settings.security.tls_client_ca).expanduser())
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as exc:
        raise TLSError(f"cannot load TLS files: {exc}") from exc
    return context
