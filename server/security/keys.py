"""API keys: created with a name, a scope and an optional expiry; stored hashed, never in clear.

The store is `$HEARTH_HOME/keys.json` (mode 0600), rewritten atomically (temp file, fsync,
`os.replace`) under an exclusive lock so that the CLI and a running server never see half a file.
A key is 32 random bytes (`hearth-` + url-safe base64); only its SHA-256 is kept. An unsalted fast
hash is enough because keys are random, not chosen by people: there is no dictionary to try.
A running server re-reads the file when its modification time changes, so `hearth keys create`
and `hearth keys revoke` take effect without a restart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import msgspec

from hub.names import check_name
from server.atomic_write import write_atomic

log = logging.getLogger(__name__)

Scope = Literal["inference", "admin"]
SCOPES: tuple[Scope, ...] = ("inference", "admin")
KEY_PREFIX = "hearth-"
# Keys given to `hearth keys put` are chosen by people or scripts: 32 characters is 128+ bits
# from `openssl rand -hex 32` and refuses short passwords.
MIN_PUT_KEY_CHARS = 32
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class KeyStoreError(ValueError):
    """A key operation that cannot be done (duplicate name, unknown key, bad expiry)."""


class ApiKey(msgspec.Struct, frozen=True, kw_only=True):
    """One stored key: everything but the key itself."""

    name: str
    scope: Scope
    sha256: str
    prefix: str
    created: float
    expires: float | None = None
    requests_per_minute: int = 0
    tokens_per_minute: int = 0

    def expired(self, now: float | None = None) -> bool:
        """Whether the key's expiry has passed."""
        return self.expires is not None and (time.time() if now is None else now) >= self.expires

    def allows(self, scope: Scope) -> bool:
        """Whether this key may call something that needs `scope` (admin includes inference)."""
        return self.scope == "admin" or scope == "inference"


class _KeyFile(msgspec.Struct):
    keys: list[ApiKey] = msgspec.field(default_factory=list)


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `45s`, `2w` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise KeyStoreError(f"invalid duration {text!r}: use a positive number and one of s, m, h, d, w (e.g. 30d)")
    return int(match.group(1)) * _UNITS[match.group(2)]


def hash_key(key: str) -> str:
    """The SHA-256 (hex) under which `key` is stored."""
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()


class KeyStore:
    """The keys of one Hearth home."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock_path = path.with_name(path.name + ".lock")
        self._keys: list[ApiKey] = []
        self._stamp: tuple[int, int] | None = None

    # -- reading -------------------------------------------------------------------------------
    def _file_stamp(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_mtime_ns, st.st_size)

    def records(self) -> list[ApiKey]:
        """Every stored key, re-read if the file changed since the last call."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            self._keys = self._read() if stamp is not None else []
            self._stamp = stamp
        return self._keys

    def _read(self) -> list[ApiKey]:
        try:
            return msgspec.json.decode(self.path.read_bytes(), type=_KeyFile).keys
        except FileNotFoundError:
            return []
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.error("%s is not a valid key file: %s", self.path, exc)
            raise KeyStoreError(f"{self.path} is not a valid key file: {exc}") from exc

    def any_active(self) -> bool:
        """Whether at least one key exists that has not expired."""
        now = time.time()
        return any(not key.expired(now) for key in self.records())

    def authenticate(self, presented: str) -> ApiKey | None:
        """The stored key `presented` is, or None. Every stored hash is compared in constant time
        (no early exit), so timing says nothing about which or how many keys matched."""
        digest = hash_key(presented)
        found: ApiKey | None = None
        for key in self.records():
            if hmac.compare_digest(digest, key.sha256):
                found = key
        return found

    # -- writing -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def _locked(self) -> Iterator[list[ApiKey]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            keys = list(self._read())
            yield keys
            self._write(keys)

    def _write(self, keys: list[ApiKey]) -> None:
        data = msgspec.json.format(msgspec.json.encode(_KeyFile(keys)), indent=2)
        write_atomic(self.path, data, mode=0o600)
        self._stamp = None  # re-read on next use

    def create(
        self,
        name: str,
        scope: Scope,
        expires_in: float | None = None,
        requests_per_minute: int = 0,
        tokens_per_minute: int = 0,
    ) -> tuple[str, ApiKey]:
        """Make a new key; returns (the key itself, which is shown once and never stored, its record)."""
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        record = self._add(name, scope, secret, expires_in, requests_per_minute, tokens_per_minute, replace=False)
        return secret, record

    def put(self, name: str, scope: Scope, secret: str) -> ApiKey:
        """Store a key chosen outside Hearth (a container's secret, a Kubernetes Secret) under
        `name`, replacing a key of that name, so that a restart with the same secret changes
        nothing and a new secret rotates the key. It must be long enough not to be guessed."""
        if len(secret) < MIN_PUT_KEY_CHARS or secret != secret.strip():
            raise KeyStoreError(
                f"a key given to Hearth must be at least {MIN_PUT_KEY_CHARS} characters, without surrounding "
                "spaces (e.g. `openssl rand -hex 32`)"
            )
        return self._add(name, scope, secret, None, 0, 0, replace=True)

    def _add(
        self,
        name: str,
        scope: Scope,
        secret: str,
        expires_in: float | None,
        requests_per_minute: int,
        tokens_per_minute: int,
        replace: bool,
    ) -> ApiKey:
        check_name(name, "key")
        if scope not in SCOPES:
            raise KeyStoreError(f"invalid scope {scope!r}: use one of {', '.join(SCOPES)}")
        if requests_per_minute < 0 or tokens_per_minute < 0:
            raise KeyStoreError("limits must be >= 0 (0 means no limit)")
        now = time.time()
        record = ApiKey(
            name=name,
            scope=scope,
            sha256=hash_key(secret),
            # A chosen key shows less of itself than a generated one, whose first 7 are "hearth-".
            prefix=secret[: len(KEY_PREFIX) + 4] if secret.startswith(KEY_PREFIX) else secret[:4],
            created=now,
            expires=now + expires_in if expires_in else None,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
        )
        with self._locked() as keys:
            if any(key.name == name for key in keys):
                if not replace:
                    raise KeyStoreError(f"a key named {name!r} exists already (revoke it first)")
                keys[:] = [key for key in keys if key.name != name]
            keys.append(record)
        return record

    def revoke(self, name: str) -> ApiKey:
        """Delete the key called `name`; returns its record."""
        with self._locked() as keys:
            for i, key in enumerate(keys):
                if key.name == name:
                    del keys[i]
                    return key
        raise KeyStoreError(f"no key named {name!r}")
