"""The key store: hashed at rest, constant-time lookup, expiry, revocation, atomic file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from hub.names import InvalidNameError
from server.security.keys import KeyStore, KeyStoreError, hash_key, parse_duration


def test_key_is_stored_hashed_never_in_clear(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    secret, record = store.create("laptop", "inference")
    text = (tmp_path / "keys.json").read_text()
    assert secret not in text
    assert secret[len("hearth-") + 4 :] not in text  # not even the part after the shown prefix
    assert record.sha256 == hash_key(secret) and record.sha256 in text
    assert (tmp_path / "keys.json").stat().st_mode & 0o777 == 0o600
    assert store.authenticate(secret) == record
    assert store.authenticate(secret + "x") is None
    assert store.authenticate("") is None


def test_keys_are_random_and_names_unique(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    a, _ = store.create("a", "admin")
    b, _ = store.create("b", "inference")
    assert a != b and len(a) > 40
    with pytest.raises(KeyStoreError, match="exists already"):
        store.create("a", "inference")
    with pytest.raises(InvalidNameError):
        store.create("../etc", "inference")
    with pytest.raises(KeyStoreError, match="scope"):
        store.create("c", "root")  # type: ignore[arg-type]


def test_revoke_and_reload_from_another_store(tmp_path: Path) -> None:
    """A second store on the same file (the CLI beside a running server) sees changes at once."""
    server_side = KeyStore(tmp_path / "keys.json")
    cli_side = KeyStore(tmp_path / "keys.json")
    secret, _ = cli_side.create("k", "inference")
    assert server_side.authenticate(secret) is not None
    cli_side.revoke("k")
    assert server_side.authenticate(secret) is None
    assert not server_side.any_active()
    with pytest.raises(KeyStoreError, match="no key named"):
        cli_side.revoke("k")
    assert not list(tmp_path.glob(".*"))  # no temporary file left behind


def test_expiry(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    _, record = store.create("short", "inference", expires_in=0.2)
    assert not record.expired()
    time.sleep(0.3)
    assert record.expired() and not store.any_active()


@pytest.mark.parametrize(("text", "seconds"), [("30d", 30 * 86400), ("12h", 43200), ("90m", 5400), ("2w", 1209600)])
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "d", "-1d", "0d", "1y", "1.5h"])
def test_parse_duration_refuses(text: str) -> None:
    with pytest.raises(KeyStoreError):
        parse_duration(text)


def test_scopes() -> None:
    from server.security.keys import ApiKey

    admin = ApiKey(name="a", scope="admin", sha256="", prefix="", created=0)
    inference = ApiKey(name="i", scope="inference", sha256="", prefix="", created=0)
    assert admin.allows("admin") and admin.allows("inference")
    assert inference.allows("inference") and not inference.allows("admin")


def test_unreadable_key_file_refuses_everything(tmp_path: Path) -> None:
    """A corrupt keys.json fails closed: 503 for every protected request, never a free pass."""
    from server.security.auth import Authenticator

    (tmp_path / "keys.json").write_text("{not json")
    decision = Authenticator(KeyStore(tmp_path / "keys.json")).decide("GET", "/v1/models", {}, "127.0.0.1")
    assert decision.denied is not None and decision.denied.status == 503
    assert Authenticator(KeyStore(tmp_path / "keys.json")).decide("GET", "/health", {}, "127.0.0.1").denied is None


def test_put_stores_a_chosen_key_and_replaces_one_of_the_same_name(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys.json")
    chosen = "0123456789abcdef" * 4
    first = store.put("deployment", "inference", chosen)
    assert store.authenticate(chosen) == first
    assert chosen not in (tmp_path / "keys.json").read_text()
    assert first.prefix == chosen[:4], "a chosen key shows only 4 characters of itself"
    rotated = "fedcba9876543210" * 4
    store.put("deployment", "admin", rotated)
    assert [key.name for key in store.records()] == ["deployment"]
    assert store.authenticate(chosen) is None
    assert store.authenticate(rotated) is not None and store.authenticate(rotated).scope == "admin"  # type: ignore[union-attr]
    # put never touches other keys; create still refuses a taken name.
    generated, _ = store.create("laptop", "inference")
    store.put("deployment", "inference", chosen)
    assert store.authenticate(generated) is not None
    with pytest.raises(KeyStoreError, match="exists already"):
        store.create("deployment", "inference")


@pytest.mark.parametrize("secret", ["", "short", "x" * 31, " " + "x" * 40, "x" * 40 + " "])
def test_put_refuses_short_or_padded_keys(tmp_path: Path, secret: str) -> None:
    store = KeyStore(tmp_path / "keys.json")
    with pytest.raises(KeyStoreError, match="at least 32"):
        store.put("deployment", "inference", secret)
    assert store.records() == []
