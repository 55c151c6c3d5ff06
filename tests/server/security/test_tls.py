"""TLS against a real server: `hearth tls init` makes the CA and certificate, TLS 1.2 is refused at
the handshake, TLS 1.3 is accepted, mutual TLS refuses a client without a certificate, and the
official OpenAI client works over TLS trusting the CA from `hearth tls init`."""

from __future__ import annotations

import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from cryptography import x509

from server.security.tls import TLSError, TLSFiles, server_context
from server.settings import SecuritySettings, ServerSettings, Settings
from tests.conftest import DEFAULT_MODEL, HearthServer, run_hearth

HEARTH = Path(sys.executable).with_name("hearth")


@dataclass
class TLSServer:
    server: HearthServer
    files: TLSFiles
    client_cert: Path
    client_key: Path

    def context(self, with_client_cert: bool = True) -> ssl.SSLContext:
        """A client context trusting the local CA (and presenting the client certificate)."""
        context = ssl.create_default_context(cafile=self.files.ca_cert)
        if with_client_cert:
            context.load_cert_chain(self.client_cert, self.client_key)
        return context


def _hearth(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([HEARTH, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TLSServer]:
    """A server with the user's own certificate flags (here: the files of `hearth tls init`) and
    client certificates required."""
    home = tmp_path_factory.mktemp("hearth-tls")
    _hearth("tls", "--home", str(home), "init")
    files = TLSFiles(home / "tls")
    cert, key = (Path(p) for p in _hearth("tls", "--home", str(home), "client", "laptop").stdout.split())
    client = ssl.create_default_context(cafile=files.ca_cert)
    client.load_cert_chain(cert, key)
    args = ["--tls-cert", str(files.cert), "--tls-key", str(files.key), "--tls-client-ca", str(files.ca_cert)]
    with run_hearth(home, "--context-length", "128", *args, tls=client) as server:
        yield TLSServer(server, files, cert, key)


def _handshake(port: int, context: ssl.SSLContext) -> str | None:
    """Connect, send GET /health; the TLS version if the server answered, else raise."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=10) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        version = tls.version()
        # TLS 1.3 sends the server's verdict on a client certificate after the handshake: read.
        tls.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        if not tls.recv(12).startswith(b"HTTP/1.1 200"):
            raise ConnectionResetError("the server closed the connection")
        return version


def test_tls13_is_accepted(tls_server: TLSServer) -> None:
    assert _handshake(tls_server.server.port, tls_server.context()) == "TLSv1.3"


def test_tls12_is_refused_at_the_handshake(tls_server: TLSServer) -> None:
    """The same client, capped at TLS 1.2, fails the handshake itself (the server closes it)."""
    context = tls_server.context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with (
        socket.create_connection(("127.0.0.1", tls_server.server.port), timeout=10) as raw,
        pytest.raises(ssl.SSLError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


def test_client_without_certificate_is_refused(tls_server: TLSServer) -> None:
    with pytest.raises((ssl.SSLError, ConnectionError)):
        _handshake(tls_server.server.port, tls_server.context(with_client_cert=False))


def test_untrusting_client_refuses_the_server(tls_server: TLSServer) -> None:
    """A client that does not trust the local CA refuses the certificate (so it is verified)."""
    context = ssl.create_default_context()
    context.load_cert_chain(tls_server.client_cert, tls_server.client_key)
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(tls_server.server.port, context)


def test_openai_client_over_tls(tls_server: TLSServer) -> None:
    with (
        openai.DefaultHttpxClient(verify=tls_server.context()) as http_client,
        openai.OpenAI(
            base_url=f"https://localhost:{tls_server.server.port}/v1",
            api_key="unused",
            http_client=http_client,
            max_retries=0,
            timeout=60,
        ) as client,
    ):
        completion = client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, temperature=0
        )
        assert completion.choices[0].message.content
        stream = client.chat.completions.create(
            model=DEFAULT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=4, stream=True
        )
        assert any(chunk.choices and chunk.choices[0].finish_reason for chunk in stream)


def test_tls_init_certificate(tmp_path: Path) -> None:
    _hearth("tls", "--home", str(tmp_path), "init", "--host", "hearth.lan", "--host", "10.0.0.7")
    files = TLSFiles(tmp_path / "tls")
    ca_before = files.ca_cert.read_bytes()
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert {"localhost", "hearth.lan"} <= set(names.get_values_for_type(x509.DNSName))
    assert {"127.0.0.1", "10.0.0.7"} <= {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    assert files.key.stat().st_mode & 0o777 == 0o600 and files.ca_key.stat().st_mode & 0o777 == 0o600
    _hearth("tls", "--home", str(tmp_path), "init")  # a second run keeps the CA clients trust
    assert files.ca_cert.read_bytes() == ca_before


def test_server_context_errors(tmp_path: Path) -> None:
    assert server_context(Settings(server=ServerSettings(home=str(tmp_path)))) is None
    with pytest.raises(TLSError, match="hearth tls init"):
        server_context(Settings(server=ServerSettings(home=str(tmp_path)), security=SecuritySettings(tls=True)))
    with pytest.raises(TLSError, match="both"):
        server_context(
            Settings(
                server=ServerSettings(home=str(tmp_path)), security=SecuritySettings(tls_cert=str(tmp_path / "c.pem"))
            )
        )
    _hearth("tls", "--home", str(tmp_path), "init")
    context = server_context(Settings(server=ServerSettings(home=str(tmp_path)), security=SecuritySettings(tls=True)))
    assert context is not None and context.minimum_version == ssl.TLSVersion.TLSv1_3
    assert context.verify_mode == ssl.CERT_NONE
