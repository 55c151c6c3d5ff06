"""Unpacking an uploaded model archive (.zip, .tar, .tar.gz) without trusting it.

An archive is hostile input: entries may point outside the target (absolute paths, `..`, links),
declare sizes they do not have, or expand a megabyte into a terabyte. Entries are checked before
they are written, and the bytes actually written are counted against a budget (an absolute cap and a
ratio to the archive's own size), so a bomb stops at the budget and the partial output is removed by
the caller's cleanup.
"""

from __future__ import annotations

import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import IO

import msgspec

from hub.errors import HubFailure

_CHUNK = 1024 * 1024


class ArchiveLimits(msgspec.Struct, frozen=True, kw_only=True):
    """How much an archive may expand to."""

    max_bytes: int = 64 * 1024**3
    # Model weights barely compress (safetensors ~1.1x, GGUF ~1.0x): far beyond that is a bomb.
    max_ratio: float = 20.0
    max_entries: int = 100_000


class ArchiveError(HubFailure):
    """The archive is unsafe or too large to unpack; the message says which limit it broke."""

    code = "invalid_archive"
    bad_request = True


class _Budget:
    def __init__(self, archive: Path, limits: ArchiveLimits) -> None:
        self.limits = limits
        self.left = min(limits.max_bytes, int(max(archive.stat().st_size, _CHUNK) * limits.max_ratio))
        self.entries = 0

    def entry(self) -> None:
        self.entries += 1
        if self.entries > self.limits.max_entries:
            raise ArchiveError(f"the archive has more than {self.limits.max_entries} entries")

    def copy(self, source: IO[bytes], target: Path) -> None:
        with target.open("wb") as out:
            while chunk := source.read(_CHUNK):
                self.left -= len(chunk)
                if self.left < 0:
                    raise ArchiveError(
                        f"the archive expands past {self.limits.max_bytes} bytes or {self.limits.max_ratio:g} "
                        "times its own size (hub_max_unpacked_bytes, hub_max_unpack_ratio)"
                    )
                out.write(chunk)


def _target(into: Path, name: str) -> Path:
    relative = PurePosixPath(name.replace("\\", "/"))
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ArchiveError(f"unsafe archive entry {name!r}: it points outside the archive")
    return into.joinpath(*relative.parts)


def _unzip(archive: Path, into: Path, budget: _Budget) -> None:
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            budget.entry()
            target = _target(into, info.filename)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise ArchiveError(f"the archive entry {info.filename!r} is a link; archives must hold real files")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            with z.open(info) as source:
                budget.copy(source, target)


def _untar(archive: Path, into: Path, budget: _Budget) -> None:
    with tarfile.open(archive) as t:
        for member in t:
            budget.entry()
            target = _target(into, member.name)
            if member.isdir():
                target.mkdir(parents=True, exist_ok=True)
            elif member.isfile():
                target.parent.mkdir(parents=True, exist_ok=True)
                source = t.extractfile(member)
                assert source is not None
                with source:
                    budget.copy(source, target)
            else:
                raise ArchiveError(f"the archive entry {member.name!r} is not a regular file or folder")


def unpack(archive: Path, into: Path, limits: ArchiveLimits | None = None) -> Path:
    """Extract `archive` into the new directory `into`; the model's root folder inside it. On any
    error the partial output is removed."""
    budget = _Budget(archive, limits or ArchiveLimits())
    into.mkdir()
    try:
        if archive.name.lower().endswith(".zip"):
            _unzip(archive, into, budget)
        else:
            _untar(archive, into, budget)
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as exc:
        shutil.rmtree(into, ignore_errors=True)
        raise ArchiveError(f"the archive cannot be read: {exc}") from exc
    except BaseException:
        shutil.rmtree(into, ignore_errors=True)
        raise
    entries = [p for p in into.iterdir() if not p.name.startswith(".")]
    # An archive of one folder holds the model in that folder.
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else into
