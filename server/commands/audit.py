"""`hearth audit verify|tail|search`: check and read the audit log under $HEARTH_HOME/audit."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from server.commands.common import add_group
from server.security.audit import CURRENT, check, log_files, parse, read_records
from server.security.keys import KeyStoreError, parse_duration
from server.security.locations import audit_dir
from server.settings import Settings

if TYPE_CHECKING:
    from server.commands.common import Commands


def register(commands: Commands) -> None:
    """Add `hearth audit`."""
    sub = add_group(commands, "audit", "check and read the audit log")
    check = sub.add_parser("verify", help="check the hash chain; exit 1 naming the first broken record")
    check.set_defaults(run=audit_verify)
    tail = sub.add_parser("tail", help="print the newest records")
    tail.add_argument("-n", type=int, default=10, help="how many (default 10)")
    tail.add_argument("-f", "--follow", action="store_true", help="keep printing new records")
    tail.set_defaults(run=audit_tail)
    search = sub.add_parser("search", help="print the records that match")
    search.add_argument("--model", help="records of this model")
    search.add_argument("--key", dest="key_name", help="records of this API key name")
    search.add_argument("--event", help="records of this event (request, refused, key_created, runner_exit, ...)")
    search.add_argument("--since", help="records of the last 30m, 2h, 7d, ...")
    search.set_defaults(run=audit_search)


def audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    """Exit 0 if the whole chain holds (listing the gaps it records), else 1 naming the first
    broken record."""
    result = check(audit_dir(settings))
    for gap in result.gaps:
        print(f"gap: {gap}")
    if result.broken is not None:
        print(f"BROKEN after {result.count} good records: {result.broken}", file=sys.stderr)
        return 1
    gaps = (
        f"; {len(result.gaps)} recorded gap{'s' if len(result.gaps) != 1 else ''} (listed above)" if result.gaps else ""
    )
    print(f"ok: {result.count} records, chain intact{gaps}")
    return 0


def _records(directory: Path) -> Iterator[dict[str, Any]]:
    for path, number, line in read_records(directory):
        try:
            yield parse(line)
        except msgspec.DecodeError:
            print(f"{path}:{number}: not a valid record", file=sys.stderr)


def _print(record: dict[str, Any]) -> None:
    record.pop("hash", None)
    record.pop("prev", None)
    sys.stdout.write(msgspec.json.encode(record).decode() + "\n")
    sys.stdout.flush()


def audit_tail(settings: Settings, args: argparse.Namespace) -> int:
    """The last -n records; with -f, then every new one until interrupted."""
    directory = audit_dir(settings)
    last: list[dict[str, Any]] = []
    for record in _records(directory):
        last = [*last[-(args.n - 1) :], record] if args.n > 0 else []
    for record in last:
        _print(record)
    if not args.follow:
        return 0
    path = directory / CURRENT
    position = path.stat().st_size if path.exists() else 0
    inode = path.stat().st_ino if path.exists() else None
    try:
        while True:
            time.sleep(0.5)
            if not path.exists():
                continue
            st = path.stat()
            if st.st_ino != inode:  # rotated: start the new file from its beginning
                inode, position = st.st_ino, 0
            if st.st_size > position:
                with open(path, "rb") as f:
                    f.seek(position)
                    data = f.read()
                complete = data[: data.rfind(b"\n") + 1]
                position += len(complete)
                for line in complete.splitlines():
                    if line:
                        _print(parse(line))
    except KeyboardInterrupt:
        return 0


def audit_search(settings: Settings, args: argparse.Namespace) -> int:
    """Print every record that matches all the filters given."""
    since: dt.datetime | None = None
    if args.since:
        try:
            since = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=parse_duration(args.since))
        except KeyStoreError as exc:
            print(f"hearth audit search: {exc}", file=sys.stderr)
            return 2
    if not log_files(audit_dir(settings)):
        print(f"no audit log under {audit_dir(settings)}", file=sys.stderr)
        return 0
    for record in _records(audit_dir(settings)):
        if args.model and record.get("model") != args.model:
            continue
        if args.key_name and record.get("key") != args.key_name:
            continue
        if args.event and record.get("event") != args.event:
            continue
        if since is not None and dt.datetime.fromisoformat(record["time"]) < since:
            continue
        _print(record)
    return 0
