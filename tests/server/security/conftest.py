"""A keyed server: one real `hearth serve` whose home holds API keys of every kind."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from server.security.keys import KeyStore
from tests.conftest import HearthServer, run_hearth

ALLOWED_ORIGIN = "https://console.example"


@dataclass
class KeyedServer:
    """The server and the keys made for it (the keys themselves, as a client holds them)."""

    server: HearthServer
    admin: str
    inference: str
    expired: str
    limited: str
    store: KeyStore


@pytest.fixture(scope="session")
def keyed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KeyedServer]:
    """A server with keys (admin, inference, expired, 3-requests-a-minute), a 128-token context
    (generations stay short) and one CORS origin allowed."""
    home = tmp_path_factory.mktemp("hearth-keyed")
    store = KeyStore(home / "keys.json")
    admin, _ = store.create("fuzz-admin-0001", "admin")
    inference, _ = store.create("app", "inference")
    expired, _ = store.create("old", "inference", expires_in=0.01)
    limited, _ = store.create("limited", "inference", requests_per_minute=3)
    time.sleep(0.02)
    with run_hearth(home, "--context-length", "128", "--cors-origins", ALLOWED_ORIGIN) as server:
        yield KeyedServer(server, admin, inference, expired, limited, store)
