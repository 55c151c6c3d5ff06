"""The audit chain: verification finds any edit, deletion, insertion or reordering, and names the
first broken record; rotation and a second writer (the CLI) keep one chain."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import msgspec
import pytest

from server.security.audit import CURRENT, AuditWriter, Broken, check, head, log_files, seal, verify
from server.security.audit_log import AuditLog

HEARTH = Path(sys.executable).with_name("hearth")


def _log(directory: Path, count: int, **writer: object) -> None:
    w = AuditWriter(directory, **writer)  # type: ignore[arg-type]
    for i in range(count):
        w.append([{"time": f"t{i}", "event": "request", "model": "m", "status": 200, "n": i}])


def _tamper(directory: Path, change: Callable[[list[bytes]], list[bytes]]) -> None:
    """Rewrite the current log file as `change` makes its lines."""
    path = directory / CURRENT
    path.write_bytes(b"".join(change(path.read_bytes().splitlines(keepends=True))))


def _broken_after(directory: Path, change: Callable[[list[bytes]], list[bytes]]) -> tuple[int, Broken]:
    """Tamper with the log, verify it, and return what verification names (it must name something)."""
    _tamper(directory, change)
    count, broken = verify(directory)
    assert broken is not None
    return count, broken


def test_intact_chain_verifies(tmp_path: Path) -> None:
    _log(tmp_path, 5)
    assert verify(tmp_path) == (5, None)
    assert head(tmp_path)[0] == 5


def test_edit_is_named(tmp_path: Path) -> None:
    _log(tmp_path, 5)

    def change(lines: list[bytes]) -> list[bytes]:
        lines[2] = lines[2].replace(b'"status":200', b'"status":201')
        return lines

    count, broken = _broken_after(tmp_path, change)
    assert count == 2 and broken.line == 3 and "changed" in broken.reason


def test_edit_with_recomputed_hash_is_caught_by_the_next_record(tmp_path: Path) -> None:
    _log(tmp_path, 5)

    def change(lines: list[bytes]) -> list[bytes]:
        fields = msgspec.json.decode(lines[2])
        fields.pop("hash")
        seq, prev = fields.pop("seq"), fields.pop("prev")
        fields["model"] = "forged"
        lines[2], _ = seal(seq, prev, fields)
        return lines

    count, broken = _broken_after(tmp_path, change)
    assert count == 3 and broken.line == 4 and "does not follow" in broken.reason


def test_deletion_is_named(tmp_path: Path) -> None:
    _log(tmp_path, 5)

    def change(lines: list[bytes]) -> list[bytes]:
        del lines[1]
        return lines

    count, broken = _broken_after(tmp_path, change)
    assert count == 1 and broken.line == 2 and "record 2 before record 3 was deleted" in (broken.reason)


def test_insertion_is_named(tmp_path: Path) -> None:
    _log(tmp_path, 5)

    def change(lines: list[bytes]) -> list[bytes]:
        lines.insert(3, lines[1])  # a replay of a real, validly sealed record
        return lines

    count, broken = _broken_after(tmp_path, change)
    assert count == 3 and broken.line == 4 and "out of order or inserted" in broken.reason


def test_forged_insertion_with_the_right_seq_is_named(tmp_path: Path) -> None:
    _log(tmp_path, 3)

    def change(lines: list[bytes]) -> list[bytes]:
        forged, _ = seal(4, "f" * 64, {"event": "request", "model": "forged"})
        return [*lines, forged]

    count, broken = _broken_after(tmp_path, change)
    assert count == 3 and broken.line == 4 and "does not follow" in broken.reason


def test_reorder_is_named(tmp_path: Path) -> None:
    _log(tmp_path, 5)

    def change(lines: list[bytes]) -> list[bytes]:
        lines[1], lines[2] = lines[2], lines[1]
        return lines

    count, broken = _broken_after(tmp_path, change)
    assert count == 1 and broken.line == 2


def test_rotation_carries_the_chain(tmp_path: Path) -> None:
    _log(tmp_path, 30, max_bytes=4096)
    files = log_files(tmp_path)
    assert len(files) >= 2 and files[-1].name == CURRENT
    assert verify(tmp_path) == (30, None)
    files[0].unlink()  # losing a whole rotated file breaks the chain at the next file's start
    count, broken = verify(tmp_path)
    assert count == 0 and broken is not None and broken.line == 1 and "deleted" in broken.reason


def test_two_writers_share_one_chain(tmp_path: Path) -> None:
    """The server's writer thread and a CLI process append to the same chain under the lock."""
    server = AuditLog(AuditWriter(tmp_path, fsync=False))

    def server_records() -> None:
        for i in range(200):
            server.record("request", n=i)

    thread = threading.Thread(target=server_records)
    thread.start()
    other = AuditWriter(tmp_path, fsync=False)
    for i in range(50):
        other.append([{"event": "key_created", "n": i}])
    thread.join()
    server.close()
    assert verify(tmp_path) == (250, None)


def test_cli_verify_names_the_broken_record(tmp_path: Path) -> None:
    _log(tmp_path / "audit", 4)
    ok = subprocess.run([HEARTH, "audit", "--home", str(tmp_path), "verify"], capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "4 records" in ok.stdout
    _tamper(
        tmp_path / "audit", lambda lines: [*lines[:1], lines[1].replace(b'"model":"m"', b'"model":"x"'), *lines[2:]]
    )
    bad = subprocess.run([HEARTH, "audit", "--home", str(tmp_path), "verify"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert f"{tmp_path / 'audit' / CURRENT}:2:" in bad.stderr and "changed" in bad.stderr


@pytest.mark.parametrize("fsync", [True, False])
def test_batch_append_is_whole_lines(tmp_path: Path, fsync: bool) -> None:
    log = AuditLog(AuditWriter(tmp_path, fsync=fsync))
    for i in range(100):
        log.record("request", n=i, text="x" * i)
    log.close()
    raw = (tmp_path / CURRENT).read_bytes()
    assert raw.endswith(b"\n") and raw.count(b"\n") == 100
    assert verify(tmp_path) == (100, None)


def test_a_torn_tail_is_set_aside_by_the_next_writer(tmp_path: Path) -> None:
    """Half a record, or the zeros a power loss can leave, is moved to a side file; the chain goes
    on with a gap record that `check` reports (the CLI's `hearth keys` recovers it like the server)."""
    _log(tmp_path, 3)
    whole = (tmp_path / CURRENT).read_bytes()
    torn = b"\0" * 300 + b'{"hash":"' + b"0" * 30
    (tmp_path / CURRENT).write_bytes(whole + torn)
    assert head(tmp_path)[0] == 3
    _log(tmp_path, 1)
    result = check(tmp_path)
    assert result.broken is None and result.count == 5
    assert [(g.line, g.fields["cause"], g.fields["bytes"]) for g in result.gaps] == [(4, "torn_tail", len(torn))]
    assert (tmp_path / result.gaps[0].fields["set_aside"]).read_bytes() == torn
    assert (tmp_path / CURRENT).read_bytes().startswith(whole)
    assert "set aside in torn-" in str(result.gaps[0])


def test_a_changed_last_record_is_not_taken_for_a_torn_one(tmp_path: Path) -> None:
    _log(tmp_path, 3)
    _tamper(tmp_path, lambda lines: [*lines[:2], lines[2].replace(b'"status":200', b'"status":201')])
    _log(tmp_path, 1)
    result = check(tmp_path)
    assert result.gaps == [] and result.broken is not None
    assert result.broken.line == 3 and "changed" in result.broken.reason
