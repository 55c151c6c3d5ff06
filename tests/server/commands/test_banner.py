"""`hearth serve`'s ready banner: where the API, the console and the docs are, and what it serves."""

from __future__ import annotations

import socket

from server.commands.banner import banner, base_url
from server.settings import load_settings
from tests.conftest import DEFAULT_MODEL, HearthServer


def test_the_running_server_announces_itself(hearth_server: HearthServer) -> None:
    output = hearth_server.output()
    assert "is ready" in output
    url = hearth_server.base_url
    lines = {line.split()[0]: line.split()[1] for line in output.splitlines() if line.startswith("  ")}
    assert (lines["API"], lines["console"], lines["docs"]) == (f"{url}/v1", f"{url}/", f"{url}/docs")
    assert lines["models"] == DEFAULT_MODEL
    assert f"hearth run {DEFAULT_MODEL}" in output
    # The banner comes after the server answers: its log says it started before it.
    assert output.index("Application startup complete") < output.index("is ready")


def test_addresses_clients_can_use() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        everywhere = load_settings({"host": "0.0.0.0", "port": 0}, env={})
        assert base_url(everywhere, [sock]) == f"http://127.0.0.1:{port}"  # the bound port, on loopback
    v6 = load_settings({"host": "::1", "port": 8443, "tls": True}, env={})
    assert base_url(v6, []) == "https://[::1]:8443"
    text = banner("1.2.3", "http://h:1", [])
    assert "Hearth 1.2.3 is ready" in text and "none (install one: hearth pull MODEL)" in text
