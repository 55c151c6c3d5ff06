"""The audit log: one JSONL record per model call, refused request, key change and runner exit.

Each line is `{"hash":"<sha256 of the rest>",` followed by the record's own JSON: `seq` (1, 2, ...),
`prev` (the hash of the record before, across rotated files; 64 zeros for the first), `time`, and
the event's fields. Editing, deleting, inserting or reordering any record breaks a hash, a `prev`
or a `seq`, and `verify()` names the first record where that shows. Truncating the newest records
leaves a valid shorter chain: record `head()` elsewhere when that matters.

Writing never blocks the request path: `record()` puts the record on a queue and a writer thread
appends whole batches with one `write()` on an O_APPEND file (under an flock, so the CLI can append
key changes to the same chain while a server runs), then `fsync`s once per batch (group commit).
A record is on disk before the next batch starts: a crash of the server loses at most the records
still in the queue (microseconds' worth); a power loss at most the batch being written.
Files: `audit.jsonl` is current; at `max_bytes` it is renamed to `audit-<UTC time>.jsonl`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import queue
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

GENESIS = "0" * 64
CURRENT = "audit.jsonl"
_ROTATED = re.compile(r"audit-\d{8}T\d{12}\.jsonl")
_PREFIX = re.compile(rb'\{"hash":"([0-9a-f]{64})",')
_PREFIX_LEN = len('{"hash":"') + 64 + len('",')


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds, as records carry it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def log_files(directory: Path) -> list[Path]:
    """The chain's files, oldest first: rotated files by name (their UTC time), then the current."""
    if not directory.is_dir():
        return []
    rotated = sorted(p for p in directory.iterdir() if _ROTATED.fullmatch(p.name))
    current = directory / CURRENT
    return rotated + ([current] if current.exists() else [])


def seal(seq: int, prev: str, fields: dict[str, Any]) -> tuple[bytes, str]:
    """One record's line (with its newline) and its hash."""
    body = msgspec.json.encode({"seq": seq, "prev": prev, **fields})
    digest = hashlib.sha256(body).hexdigest()
    return b'{"hash":"' + digest.encode() + b'",' + body[1:] + b"\n", digest


def _last_line(path: Path) -> bytes | None:
    """The last non-empty line of `path`, read backwards in blocks."""
    with open(path, "rb") as f:
        end = f.seek(0, os.SEEK_END)
        block, data = 8192, b""
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            data = f.read(end - start) + data
            end = start
            stripped = data.rstrip(b"\n")
            if b"\n" in stripped or end == 0:
                line = stripped.rsplit(b"\n", 1)[-1]
                return line or None
            block *= 2
    return None


def head(directory: Path) -> tuple[int, str]:
    """The `seq` and hash of the newest record (0 and the genesis hash for an empty log)."""
    for path in reversed(log_files(directory)):
        line = _last_line(path)
        if line is None:
            continue
        match = _PREFIX.match(line)
        if match is None:
            raise ValueError(f"{path}: the last record is malformed; run `hearth audit verify`")
        seq = msgspec.json.decode(b"{" + line[_PREFIX_LEN:])["seq"]
        return int(seq), match.group(1).decode()
    return 0, GENESIS


class AuditWriter:
    """Appends records to the chain in `directory`; safe to share between processes."""

    def __init__(self, directory: Path, fsync: bool = True, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = directory
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._lock_path = directory / ".lock"
        self._known: tuple[int, int] | None = None  # (inode, size) after our last write
        self._seq, self._prev = 0, GENESIS

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append `records` as one batch: one write, then one fsync if enabled."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.directory / CURRENT
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                st = os.fstat(fd)
                if self._known != (st.st_ino, st.st_size):
                    self._seq, self._prev = head(self.directory)  # someone else appended
                if st.st_size >= self.max_bytes:
                    os.close(fd)
                    fd = -1
                    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")
                    os.rename(path, self.directory / f"audit-{stamp}.jsonl")
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    st = os.fstat(fd)
                lines = []
                for fields in records:
                    self._seq += 1
                    line, self._prev = seal(self._seq, self._prev, fields)
                    lines.append(line)
                data = b"".join(lines)
                os.write(fd, data)
                if self.fsync:
                    os.fsync(fd)
                self._known = (st.st_ino, st.st_size + len(data))
            finally:
                if fd >= 0:
                    os.close(fd)


class AuditLog:
    """The server's audit log: `record()` never blocks; a thread writes batches in order."""

    def __init__(self, writer: AuditWriter) -> None:
        self.writer = writer
        self._queue: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def record(self, event: str, **fields: Any) -> None:
        """Queue one record (`time` and `event` first, then `fields` without the None ones)."""
        entry = {"time": utc_now(), "event": event}
        entry.update((k, v) for k, v in fields.items() if v is not None)
        self._queue.put(entry)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            batch = [] if first is None else [first]
            stop = first is None
            with contextlib.suppress(queue.Empty):
                while True:
                    item = self._queue.get_nowait()
                    if item is None:
                        stop = True
                    else:
                        batch.append(item)
            if batch:
                try:
                    self.writer.append(batch)
                except OSError as exc:  # the disk is full or gone: say so, keep serving
                    import logging

                    logging.getLogger(__name__).error("cannot write %d audit records: %s", len(batch), exc)
            if stop:
                return

    def close(self) -> None:
        """Write everything queued, then stop the writer."""
        self._queue.put(None)
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class Broken:
    """The first record where the chain does not hold."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


def read_records(directory: Path) -> Iterator[tuple[Path, int, bytes]]:
    """Every line of the chain, oldest first: (file, line number, raw line without newline)."""
    for path in log_files(directory):
        with open(path, "rb") as f:
            for number, raw in enumerate(f, 1):
                line = raw.rstrip(b"\n")
                if line:
                    yield path, number, line


def parse(line: bytes) -> dict[str, Any]:
    """A record's fields (with its `hash`)."""
    record: dict[str, Any] = msgspec.json.decode(line)
    return record


def verify(directory: Path) -> tuple[int, Broken | None]:
    """Check the whole chain: (records checked, the first broken record or None)."""
    expected_seq, prev, count = 1, GENESIS, 0
    for path, number, line in read_records(directory):
        match = _PREFIX.match(line)
        if match is None:
            return count, Broken(path, number, "not a sealed record (its hash field is missing or malformed)")
        body = b"{" + line[_PREFIX_LEN:]
        if hashlib.sha256(body).hexdigest() != match.group(1).decode():
            return count, Broken(path, number, "the record was changed (its hash does not match its content)")
        try:
            fields = msgspec.json.decode(body)
            seq, claimed_prev = int(fields["seq"]), str(fields["prev"])
        except (msgspec.DecodeError, KeyError, TypeError, ValueError):
            return count, Broken(path, number, "the record is not valid JSON with seq and prev")
        if seq > expected_seq:
            gone = f"record {expected_seq}" if seq == expected_seq + 1 else f"records {expected_seq}-{seq - 1}"
            return count, Broken(path, number, f"{gone} before record {seq} was deleted")
        if seq < expected_seq:
            return count, Broken(path, number, f"record {seq} is out of order or inserted (expected {expected_seq})")
        if claimed_prev != prev:
            return count, Broken(
                path, number, f"record {seq} does not follow the record before it (inserted or replaced)"
            )
        prev, expected_seq, count = match.group(1).decode(), expected_seq + 1, count + 1
    return count, None
