"""Files and batches on disk: file bytes under `$HEARTH_HOME/batches/files/`, everything else in one
SQLite database (`batches.sqlite3`, WAL, synchronous=FULL).

Each line of a batch is a row; its result is written in the same transaction as the batch's
counts, so after a crash a batch resumes with exactly the lines that have no result yet: no line
that was answered is run again, none is lost. Methods are blocking: callers on the event loop run
them in a thread (the connection is shared under a lock).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec

from server.atomic_write import write_atomic
from server.batches.protocol import Batch, FileObject, FilePurpose

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY, filename TEXT NOT NULL, purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL, created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS batches (id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    batch_id TEXT NOT NULL, line INTEGER NOT NULL, custom_id TEXT, request BLOB,
    result BLOB, is_error INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (batch_id, line)
);
"""


def new_id(prefix: str) -> str:
    """An id in OpenAI's style (`file-…`, `batch_…`)."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"


class BatchStore:
    """The Files and Batch APIs' durable state."""

    def __init__(self, root: Path) -> None:
        self.files_dir = root / "files"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(root / "batches.sqlite3", check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        with self._lock:
            self._db.close()

    # Files ------------------------------------------------------------------------------------

    def add_file(self, filename: str, purpose: FilePurpose, data: bytes) -> FileObject:
        """Store `data` as a new file (bytes first, then the row: a crash leaves no row without bytes)."""
        file = FileObject(
            id=new_id("file-"), bytes=len(data), created_at=int(time.time()), filename=filename, purpose=purpose
        )
        write_atomic(self.path(file.id), data)
        with self._lock:
            self._db.execute(
                "INSERT INTO files VALUES (?, ?, ?, ?, ?)", (file.id, filename, purpose, len(data), file.created_at)
            )
        return file

    def path(self, file_id: str) -> Path:
        """Where a file's bytes are."""
        return self.files_dir / f"{file_id}.jsonl"

    def get_file(self, file_id: str) -> FileObject | None:
        """One file, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return _file(row) if row else None

    def list_files(self, purpose: str | None, after: str | None, limit: int, order: str) -> list[FileObject]:
        """Files by creation time (`order` asc or desc), after the file `after`, at most `limit`."""
        direction = "ASC" if order == "asc" else "DESC"
        query, args = "SELECT * FROM files", []
        clauses = []
        if purpose:
            clauses.append("purpose = ?")
            args.append(purpose)
        if after:
            op = ">" if order == "asc" else "<"
            clauses.append(f"rowid {op} (SELECT rowid FROM files WHERE id = ?)")
            args.append(after)
        if clauses:
            query += " WHERE " + " AND ".join(clauses)
        query += f" ORDER BY rowid {direction} LIMIT ?"
        with self._lock:
            rows = self._db.execute(query, (*args, limit)).fetchall()
        return [_file(row) for row in rows]

    def delete_file(self, file_id: str) -> bool:
        """Remove a file (row, then bytes); whether it existed."""
        with self._lock:
            deleted = self._db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount
        self.path(file_id).unlink(missing_ok=True)
        return bool(deleted)

    # Batches ----------------------------------------------------------------------------------

    def put_batch(self, batch: Batch) -> None:
        """Insert or replace a batch's state."""
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO batches VALUES (?, ?, ?)",
                (batch.id, batch.created_at, msgspec.json.encode(batch)),
            )

    def get_batch(self, batch_id: str) -> Batch | None:
        """One batch, or None."""
        with self._lock:
            row = self._db.execute("SELECT data FROM batches WHERE id = ?", (batch_id,)).fetchone()
        return msgspec.json.decode(row[0], type=Batch) if row else None

    def list_batches(self, after: str | None, limit: int) -> list[Batch]:
        """Batches, newest first, after the batch `after`."""
        query = "SELECT data FROM batches"
        args: list[object] = []
        if after:
            query += " WHERE rowid < (SELECT rowid FROM batches WHERE id = ?)"
            args.append(after)
        with self._lock:
            rows = self._db.execute(query + " ORDER BY rowid DESC LIMIT ?", (*args, limit)).fetchall()
        return [msgspec.json.decode(row[0], type=Batch) for row in rows]

    def open_batches(self) -> list[Batch]:
        """Batches not yet in a final state, oldest first (what the runner works on)."""
        with self._lock:
            rows = self._db.execute("SELECT data FROM batches ORDER BY rowid").fetchall()
        batches = [msgspec.json.decode(row[0], type=Batch) for row in rows]
        return [b for b in batches if b.status not in ("failed", "completed", "expired", "cancelled")]

    # Lines ------------------------------------------------------------------------------------

    def add_lines(self, batch: Batch, lines: list[tuple[int, str | None, bytes | None, bytes | None]]) -> None:
        """Record a validated batch's lines (line number, custom id, request or None, and the error
        result of a malformed line) and its new state, in one transaction."""
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO lines (batch_id, line, custom_id, request, result, is_error) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [(batch.id, n, cid, req, res, int(res is not None)) for n, cid, req, res in lines],
            )
            self._db.execute("UPDATE batches SET data = ? WHERE id = ?", (msgspec.json.encode(batch), batch.id))

    def pending(self, batch_id: str) -> list[tuple[int, str, bytes]]:
        """The lines of a batch that have no result yet, in order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT line, custom_id, request FROM lines WHERE batch_id = ? AND result IS NULL ORDER BY line",
                (batch_id,),
            ).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def record(self, batch_id: str, line: int, result: bytes, is_error: bool) -> Batch | None:
        """Write a line's result and count it, once (a line already answered is left alone); the
        batch as it is now."""
        with self._lock, self._transaction():
            changed = self._db.execute(
                "UPDATE lines SET result = ?, is_error = ? WHERE batch_id = ? AND line = ? AND result IS NULL",
                (result, int(is_error), batch_id, line),
            ).rowcount
            row = self._db.execute("SELECT data FROM batches WHERE id = ?", (batch_id,)).fetchone()
            if row is None:
                return None
            batch = msgspec.json.decode(row[0], type=Batch)
            if changed:
                counts = batch.request_counts
                counts.failed += int(is_error)
                counts.completed += int(not is_error)
                self._db.execute("UPDATE batches SET data = ? WHERE id = ?", (msgspec.json.encode(batch), batch_id))
            return batch

    def results(self, batch_id: str, errors: bool) -> Iterator[bytes]:
        """The recorded results of a batch's lines (its errors, or its successes), in line order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT result FROM lines WHERE batch_id = ? AND is_error = ? AND result IS NOT NULL ORDER BY line",
                (batch_id, int(errors)),
            ).fetchall()
        return (bytes(r[0]) for r in rows)

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, kind: object, *_: object) -> None:
        self.db.execute("ROLLBACK" if kind is not None else "COMMIT")


def _file(row: tuple[object, ...]) -> FileObject:
    file_id, filename, purpose, size, created_at = row
    return msgspec.convert(
        {"id": file_id, "filename": filename, "purpose": purpose, "bytes": size, "created_at": created_at}, FileObject
    )
