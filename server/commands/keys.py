"""`hearth keys create|put|ls|revoke`: manage API keys (the key itself is printed once, at creation)."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import sys
from typing import TYPE_CHECKING

from hub.names import InvalidNameError
from server.commands.common import add_group
from server.commands.output import add_json_flag, print_json, print_table
from server.security.audit import utc_now
from server.security.keys import SCOPES, KeyStore, KeyStoreError, parse_duration
from server.security.locations import audit_writer, keys_path
from server.settings import Settings

if TYPE_CHECKING:
    from server.commands.common import Commands


def register(commands: Commands) -> None:
    """Add `hearth keys`."""
    sub = add_group(commands, "keys", "manage API keys", "Create, list and revoke API keys.")
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--name", required=True, help="a name for the key (letters, digits, . _ -)")
    create.add_argument("--scope", required=True, choices=SCOPES, help="inference, or admin (everything)")
    create.add_argument("--expires", help="lifetime such as 30d, 12h, 2w (default: never)")
    create.add_argument("--rpm", type=int, default=0, help="requests per minute (default 0: no limit)")
    create.add_argument("--tpm", type=int, default=0, help="tokens per minute (default 0: no limit)")
    create.set_defaults(run=create_key)
    put = sub.add_parser(
        "put", help="store a key you chose, read from stdin (a container secret); replaces one of that name"
    )
    put.add_argument("--name", required=True, help="a name for the key (letters, digits, . _ -)")
    put.add_argument("--scope", required=True, choices=SCOPES, help="inference, or admin (everything)")
    put.set_defaults(run=put_key)
    listing = sub.add_parser("ls", help="list keys (never the keys themselves)")
    add_json_flag(listing)
    listing.set_defaults(run=list_keys)
    revoke = sub.add_parser("revoke", help="delete a key; a running server refuses it at once")
    revoke.add_argument("name")
    revoke.set_defaults(run=revoke_key)


def _audit(settings: Settings, event: str, **fields: object) -> None:
    if not settings.security.audit:
        return
    record: dict[str, object] = {"time": utc_now(), "event": event, "actor": getpass.getuser()}
    record.update((k, v) for k, v in fields.items() if v is not None)
    try:
        audit_writer(settings).append([record])
    except (OSError, ValueError) as exc:
        # The change is made; say loudly that the chain does not show it.
        print(f"hearth keys: the audit log could not be written ({exc}); this change is not in it", file=sys.stderr)


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return "never"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def create_key(settings: Settings, args: argparse.Namespace) -> int:
    """Create a key and print it (the only time it is shown)."""
    store = KeyStore(keys_path(settings))
    try:
        expires = parse_duration(args.expires) if args.expires else None
        secret, key = store.create(args.name, args.scope, expires, args.rpm, args.tpm)
    except (KeyStoreError, InvalidNameError) as exc:
        print(f"hearth keys create: {exc}", file=sys.stderr)
        return 2
    _audit(settings, "key_created", key=key.name, scope=key.scope, expires=key.expires)
    print(secret)
    print(
        f"created key {key.name!r} (scope {key.scope}, expires {_when(key.expires)}); it is shown only now",
        file=sys.stderr,
    )
    return 0


def put_key(settings: Settings, args: argparse.Namespace) -> int:
    """Store the key read from stdin (one line) under a name; the key is never printed."""
    secret = sys.stdin.readline().rstrip("\r\n")
    try:
        key = KeyStore(keys_path(settings)).put(args.name, args.scope, secret)
    except (KeyStoreError, InvalidNameError) as exc:
        print(f"hearth keys put: {exc}", file=sys.stderr)
        return 2
    _audit(settings, "key_put", key=key.name, scope=key.scope)
    print(f"stored key {key.name!r} (scope {key.scope}, prefix {key.prefix}...)", file=sys.stderr)
    return 0


def list_keys(settings: Settings, args: argparse.Namespace) -> int:
    """Print one row per key (never the key itself, nor its hash)."""
    keys = KeyStore(keys_path(settings)).records()
    if args.json:
        print_json(
            [
                {
                    "name": k.name,
                    "scope": k.scope,
                    "prefix": k.prefix,
                    "created": k.created,
                    "expires": k.expires,
                    "expired": k.expired(),
                    "requests_per_minute": k.requests_per_minute,
                    "tokens_per_minute": k.tokens_per_minute,
                }
                for k in keys
            ]
        )
        return 0
    if not keys:
        print("no keys: the server serves loopback clients only", file=sys.stderr)
        return 0
    rows = [
        (
            key.name,
            key.scope,
            key.prefix + "...",
            _when(key.created),
            _when(key.expires) + (" (expired)" if key.expired() else ""),
            f"{key.requests_per_minute or '-'} rpm, {key.tokens_per_minute or '-'} tpm",
        )
        for key in keys
    ]
    print_table(("name", "scope", "prefix", "created", "expires", "limits"), rows)
    return 0


def revoke_key(settings: Settings, args: argparse.Namespace) -> int:
    """Delete a key."""
    try:
        key = KeyStore(keys_path(settings)).revoke(args.name)
    except KeyStoreError as exc:
        print(f"hearth keys revoke: {exc}", file=sys.stderr)
        return 1
    _audit(settings, "key_revoked", key=key.name, scope=key.scope)
    print(f"revoked key {key.name!r}", file=sys.stderr)
    return 0
