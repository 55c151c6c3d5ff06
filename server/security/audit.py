"""The audit log: one JSONL record per model call, refused request, key change and runner exit.

Each line is `{"hash":"<sha256 of the rest>",` followed by the record's own JSON: `seq` (1, 2, ...),
`prev` (the hash of the record before, across rotated files; 64 zeros for the first), `time`, and
the event's fields. Editing, deleting, inserting or reordering any record breaks a hash, a `prev`
or a `seq`, and `verify()` names the first record where that shows. Truncating the newest records
leaves a valid shorter chain: record `head()` elsewhere when that matters.

`AuditWriter.append` writes a batch with one `write()` on an O_APPEND file (under an flock, so the
CLI can append key changes to the same chain while a server runs), then `fsync`s it. A batch that
cannot be written whole (the disk is full) is cut off again, so the file never keeps half a record.
A torn tail left by a crash in the middle of a write (or by a writer that could not cut it off) is
recovered by the next writer: the bytes after the last whole record are moved to a side file
(`torn-<UTC time>.part`) and the chain continues with an `audit_gap` record naming it, which
`verify()` accepts and reports. The server's writer thread (`AuditLog`, audit_log.py) keeps what it
could not write and refuses model calls until it can.
Files: `audit.jsonl` is current; at `max_bytes` it is renamed to `audit-<UTC time>.jsonl`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

GENESIS = "0" * 64
CURRENT = "audit.jsonl"
GAP = "audit_gap"
_ROTATED = re.compile(r"audit-\d{8}T\d{12}\.jsonl")
_PREFIX = re.compile(rb'\{"hash":"([0-9a-f]{64})",')
_PREFIX_LEN = len('{"hash":"') + 64 + len('",')
_HASH = slice(len('{"hash":"'), len('{"hash":"') + 64)


def utc_now() -> str:
    """The current time as ISO 8601 UTC with microseconds, as records carry it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _stamp() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%f")


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


def _whole(line: bytes) -> bool:
    """Whether `line` is a whole record: the sealed prefix, then JSON with an integer `seq`. Its
    hash is not checked: a changed record is tampering for `verify()` to name, not a torn write."""
    if _PREFIX.match(line) is None:
        return False
    try:
        fields = msgspec.json.decode(b"{" + line[_PREFIX_LEN:])
    except msgspec.DecodeError:
        return False
    return isinstance(fields, dict) and isinstance(fields.get("seq"), int) and isinstance(fields.get("prev"), str)


def newest_whole_record(path: Path) -> tuple[int, bytes | None]:
    """The newest whole record of `path` and the offset just past it (the file's size when the
    file ends with one; 0 and None when it has none), read backwards in growing blocks."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        block = 64 * 1024
        while True:
            start = max(0, size - block)
            f.seek(start)
            data = f.read(size - start)
            end = data.rfind(b"\n")
            while end >= 0:
                begin = data.rfind(b"\n", 0, end)
                if begin < 0 and start > 0:
                    break  # the line starts before this block: read a bigger one
                if _whole(line := data[begin + 1 : end]):
                    return start + end + 1, line
                end = begin
            if start == 0:
                return 0, None
            block *= 4


def head(directory: Path) -> tuple[int, str]:
    """The `seq` and hash of the newest whole record (0 and the genesis hash for an empty log)."""
    for path in reversed(log_files(directory)):
        _, line = newest_whole_record(path)
        if line is None:
            if path.stat().st_size:
                raise ValueError(f"{path}: no whole record in the file; run `hearth audit verify`")
            continue
        seq = msgspec.json.decode(b"{" + line[_PREFIX_LEN:])["seq"]
        return int(seq), line[_HASH].decode()
    return 0, GENESIS


def set_aside_torn_tail(directory: Path, fd: int) -> dict[str, Any] | None:
    """If the current file (open as `fd`, under the lock) ends in something other than a whole
    record (a write cut short by a full disk or a crash), move those bytes to a side file, cut the
    file back to its last whole record, and return the fields of the `audit_gap` record that says
    so; None when the tail is whole."""
    path = directory / CURRENT
    size = os.fstat(fd).st_size
    end, _ = newest_whole_record(path)
    if end == size:
        return None
    with open(path, "rb") as f:
        f.seek(end)
        torn = f.read(size - end)
    side = directory / f"torn-{_stamp()}.part"
    out = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        _write_all(out, torn)
        os.fsync(out)
    except OSError:
        os.close(out)
        side.unlink(missing_ok=True)
        raise
    os.close(out)
    os.ftruncate(fd, end)
    os.fsync(fd)
    return {
        "time": utc_now(),
        "event": GAP,
        "cause": "torn_tail",
        "set_aside": side.name,
        "bytes": len(torn),
        "sha256": hashlib.sha256(torn).hexdigest(),
    }


def _write_all(fd: int, data: bytes) -> None:
    """Write all of `data`; a full disk shows as a short write and then ENOSPC."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class AuditWriter:
    """Appends records to the chain in `directory`; safe to share between processes."""

    def __init__(self, directory: Path, fsync: bool = True, max_bytes: int = 64 * 1024 * 1024) -> None:
        self.directory = directory
        self.fsync = fsync
        self.max_bytes = max_bytes
        self._lock_path = directory / ".lock"
        self._known: tuple[int, int] | None = None  # (inode, size) after our last write
        self._seq, self._prev = 0, GENESIS
        # A torn tail already set aside whose gap record is not written yet.
        self._gap: dict[str, Any] | None = None

    def append(self, records: list[dict[str, Any]]) -> None:
        """Append `records` as one batch: one write, then one fsync if enabled. Raises OSError when
        the batch cannot be written whole; the file then ends with the previous batch again."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self._lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            path = self.directory / CURRENT
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                st = os.fstat(fd)
                if self._known != (st.st_ino, st.st_size):
                    # Someone else appended, or this is our first batch: find the head again,
                    # after setting aside a torn tail.
                    self._gap = set_aside_torn_tail(self.directory, fd) or self._gap
                    self._seq, self._prev = head(self.directory)
                    st = os.fstat(fd)
                if st.st_size >= self.max_bytes:
                    os.close(fd)
                    fd = -1
                    os.rename(path, self.directory / f"audit-{_stamp()}.jsonl")
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                    st = os.fstat(fd)
                self._write(fd, st, [self._gap, *records] if self._gap is not None else records)
                self._gap = None
            finally:
                if fd >= 0:
                    os.close(fd)

    def _write(self, fd: int, st: os.stat_result, records: list[dict[str, Any]]) -> None:
        seq, prev = self._seq, self._prev
        lines = []
        for fields in records:
            seq += 1
            line, prev = seal(seq, prev, fields)
            lines.append(line)
        data = b"".join(lines)
        try:
            _write_all(fd, data)
            if self.fsync:
                os.fsync(fd)
        except OSError:
            # Cut off what part of the batch reached the file; if even that fails, the next
            # writer sets the torn tail aside.
            self._known = None
            with contextlib.suppress(OSError):
                os.ftruncate(fd, st.st_size)
            raise
        self._seq, self._prev = seq, prev
        self._known = (st.st_ino, st.st_size + len(data))


@dataclass(frozen=True)
class Broken:
    """The first record where the chain does not hold."""

    path: Path
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@dataclass(frozen=True)
class Gap:
    """A place where the chain says records were lost or set aside (an `audit_gap` record)."""

    path: Path
    line: int
    fields: dict[str, Any]

    def __str__(self) -> str:
        f = self.fields
        if f.get("cause") == "torn_tail":
            why = f"{f.get('bytes')} bytes of a torn write set aside in {f.get('set_aside')}"
        else:
            why = (
                f"the log could not be written from {f.get('failed_since')} ({f.get('error')}); "
                f"{f.get('late', 0)} records written late, {f.get('dropped', 0)} lost"
            )
        return f"{self.path}:{self.line}: record {f.get('seq')}: {why}"


@dataclass
class Verification:
    """What `check()` found: the whole records, the first broken one, and the gaps recorded."""

    count: int = 0
    broken: Broken | None = None
    gaps: list[Gap] = field(default_factory=list)


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


def check(directory: Path) -> Verification:
    """Check the whole chain: how many records hold, the first that does not, and every gap."""
    result = Verification()
    expected_seq, prev = 1, GENESIS
    for path, number, line in read_records(directory):
        fields = _check_one(path, number, line, expected_seq, prev)
        if isinstance(fields, Broken):
            result.broken = fields
            return result
        if fields.get("event") == GAP:
            result.gaps.append(Gap(path, number, fields))
        prev, expected_seq, result.count = line[_HASH].decode(), expected_seq + 1, result.count + 1
    return result


def verify(directory: Path) -> tuple[int, Broken | None]:
    """Check the whole chain: (records checked, the first broken record or None)."""
    result = check(directory)
    return result.count, result.broken


def _check_one(path: Path, number: int, line: bytes, expected_seq: int, prev: str) -> Broken | dict[str, Any]:
    """The fields of one record, or why it breaks the chain."""
    match = _PREFIX.match(line)
    if match is None:
        return Broken(path, number, "not a sealed record (its hash field is missing or malformed)")
    body = b"{" + line[_PREFIX_LEN:]
    if hashlib.sha256(body).hexdigest() != match.group(1).decode():
        return Broken(path, number, "the record was changed (its hash does not match its content)")
    try:
        fields: dict[str, Any] = msgspec.json.decode(body)
        seq, claimed_prev = int(fields["seq"]), str(fields["prev"])
    except (msgspec.DecodeError, KeyError, TypeError, ValueError):
        return Broken(path, number, "the record is not valid JSON with seq and prev")
    if seq > expected_seq:
        gone = f"record {expected_seq}" if seq == expected_seq + 1 else f"records {expected_seq}-{seq - 1}"
        return Broken(path, number, f"{gone} before record {seq} was deleted")
    if seq < expected_seq:
        return Broken(path, number, f"record {seq} is out of order or inserted (expected {expected_seq})")
    if claimed_prev != prev:
        return Broken(path, number, f"record {seq} does not follow the record before it (inserted or replaced)")
    return fields
