"""Artifacts on disk under `$HEARTH_HOME/models`, installed atomically.

Layout::

    models/<name>/manifest.json   one directory per artifact; the manifest is written last
    models/<name>/...             the artifact's files
    models/.partial/              artifacts being built, and artifacts being deleted
    models/.downloads/            downloads in progress (kept so an interrupted pull resumes)

An install builds everything in a fresh directory under `.partial/`, hashes it, writes the
manifest (flushed to disk) and only then renames the directory into place. A crash or a full disk
at any point leaves at most a directory under `.partial/` (or `.downloads/`), which `gc` removes:
nothing that looks like a whole artifact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import msgspec

from hub.errors import HubFailure
from hub.manifest import (
    MANIFEST_FILE,
    ArtifactFormat,
    Conversion,
    Manifest,
    ManifestError,
    Source,
    Task,
    encode,
    load,
    mismatches,
    scan_files,
)
from hub.names import InvalidNameError, check_name

PARTIAL_DIR = ".partial"
DOWNLOADS_DIR = ".downloads"


class StoreError(HubFailure):
    """Base of the store's errors."""


# An artifact name that could escape the store or confuse a shell (hub.names says which are safe).
InvalidName = InvalidNameError


class ArtifactNotFound(StoreError, LookupError):
    """No artifact of that name is installed."""

    code = "invalid_request"
    bad_request = True


class ArtifactDamaged(StoreError):
    """An artifact's manifest is unreadable: the artifact is listed as damaged, fails `verify`,
    and can be removed (`hearth rm`, DELETE) or collected by `gc`, but not served or shown."""

    code = "artifact_damaged"


class DamagedArtifact(msgspec.Struct, frozen=True):
    """An installed artifact whose manifest cannot be read, and why."""

    name: str
    reason: str
    status: str = "damaged"


class ArtifactExists(StoreError):
    """An artifact of that name is already installed."""

    code = "invalid_request"
    bad_request = True


class ArtifactInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the builder of an artifact knows about it; the store adds the name, files and hashes."""

    format: ArtifactFormat
    entry: str
    source: Source
    precision: str | None = None
    task: Task = "text-generation"
    devices: list[str] = msgspec.field(default_factory=lambda: ["cpu"])
    conversion: Conversion | None = None


class GcReport(msgspec.Struct, frozen=True):
    """What `gc` removed."""

    removed: list[str]
    freed_bytes: int


def validate_name(name: str) -> str:
    """Return `name` if it is a safe artifact name (one path component), else raise InvalidName saying why."""
    return check_name(name, "artifact")


def _tree_size(path: Path) -> int:
    if path.is_file() or path.is_symlink():
        return path.lstat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    # Directory fsync makes a rename durable; not available on every platform (Windows).
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class ArtifactStore:
    """The artifacts under one root directory (`$HEARTH_HOME/models`)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        # What hub.models.artifact_context_length read, by (name, manifest creation time): an
        # artifact's files never change once installed, and a reinstall has a new creation time.
        self.context_lengths: dict[tuple[str, float], int] = {}

    @property
    def partial_root(self) -> Path:
        """Where artifacts are built and deleted."""
        return self.root / PARTIAL_DIR

    @property
    def downloads_root(self) -> Path:
        """Where downloads in progress live."""
        return self.root / DOWNLOADS_DIR

    def path(self, name: str) -> Path:
        """The directory of artifact `name` (which may not exist)."""
        return self.root / validate_name(name)

    def exists(self, name: str) -> bool:
        """Whether a whole artifact (one with a manifest) named `name` is installed."""
        return (self.path(name) / MANIFEST_FILE).is_file()

    def get(self, name: str) -> Manifest:
        """The manifest of artifact `name`; ArtifactDamaged when it cannot be read."""
        directory = self.path(name)
        if not (directory / MANIFEST_FILE).is_file():
            raise ArtifactNotFound(f"no artifact named {name!r} is installed (see `hearth ls`)")
        try:
            return load(directory)
        except ManifestError as exc:
            raise ArtifactDamaged(
                f"the artifact {name!r} is damaged: {exc}; remove it with `hearth rm {name}`"
            ) from exc

    def entry_path(self, name: str) -> Path:
        """The file or folder an engine loads for artifact `name`."""
        manifest = self.get(name)
        return (self.path(name) / manifest.entry).resolve()

    def artifacts(self) -> list[Manifest]:
        """Every installed artifact with a readable manifest, by name (`damaged()` lists the rest)."""
        return [m for m in self._scan() if isinstance(m, Manifest)]

    def damaged(self) -> list[DamagedArtifact]:
        """Every installed artifact whose manifest cannot be read, with the reason."""
        return [m for m in self._scan() if isinstance(m, DamagedArtifact)]

    def _scan(self) -> list[Manifest | DamagedArtifact]:
        found: list[Manifest | DamagedArtifact] = []
        if not self.root.is_dir():
            return found
        for directory in sorted(self.root.iterdir()):
            if directory.name.startswith(".") or not (directory / MANIFEST_FILE).is_file():
                continue
            try:
                found.append(load(directory))
            except ManifestError as exc:
                found.append(DamagedArtifact(directory.name, str(exc)))
        return found

    def new_partial(self, name: str) -> Path:
        """A fresh, empty directory to build artifact `name` in."""
        validate_name(name)
        self.partial_root.mkdir(parents=True, exist_ok=True)
        partial = self.partial_root / f"{name}.{uuid.uuid4().hex[:12]}"
        partial.mkdir()
        return partial

    def install(self, name: str, build: Callable[[Path], ArtifactInfo], *, replace: bool = False) -> Manifest:
        """Build artifact `name` with `build(partial_dir)` and install it atomically.

        `build` fills the empty directory it is given and says what it made. The store hashes every
        file, writes the manifest last and renames the directory into place; if anything fails the
        partial directory is removed and nothing is installed.
        """
        if self.exists(name) and not replace:
            raise ArtifactExists(f"an artifact named {name!r} is already installed (remove it with `hearth rm`)")
        partial = self.new_partial(name)
        try:
            info = build(partial)
            self._check_entry(partial, info.entry)
            manifest = Manifest(name=name, files=scan_files(partial), **msgspec.structs.asdict(info))
            self._write_manifest(partial, manifest)
            self._move_into_place(partial, self.path(name), replace)
        except BaseException:
            _remove(partial)
            raise
        return manifest

    @staticmethod
    def _check_entry(partial: Path, entry: str) -> None:
        target = (partial / entry).resolve()
        if not target.is_relative_to(partial.resolve()) or not target.exists():
            raise StoreError(f"the artifact's entry {entry!r} is not inside what was built")

    @staticmethod
    def _write_manifest(directory: Path, manifest: Manifest) -> None:
        tmp = directory / (MANIFEST_FILE + ".tmp")
        with tmp.open("wb") as f:
            f.write(encode(manifest))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, directory / MANIFEST_FILE)

    def _move_into_place(self, partial: Path, final: Path, replace: bool) -> None:
        old: Path | None = None
        if final.exists():
            if not replace and (final / MANIFEST_FILE).exists():
                raise ArtifactExists(f"an artifact named {final.name!r} was installed meanwhile")
            # Either a replacement or leftovers without a manifest: move it aside in one rename.
            old = self.partial_root / f"{final.name}.old.{uuid.uuid4().hex[:12]}"
            os.replace(final, old)
        os.replace(partial, final)
        _fsync_dir(self.root)
        if old is not None:
            _remove(old)

    def remove(self, name: str) -> None:
        """Delete artifact `name`: it disappears in one rename, then its files are deleted."""
        directory = self.path(name)
        if not directory.exists():
            raise ArtifactNotFound(f"no artifact named {name!r} is installed (see `hearth ls`)")
        self.partial_root.mkdir(parents=True, exist_ok=True)
        doomed = self.partial_root / f"{name}.deleted.{uuid.uuid4().hex[:12]}"
        os.replace(directory, doomed)
        _remove(doomed)

    def verify(self, name: str) -> list[str]:
        """Re-hash artifact `name`; the list of mismatches is empty when every file is intact (a
        damaged manifest is one)."""
        try:
            manifest = self.get(name)
        except ArtifactDamaged as exc:
            return [f"{MANIFEST_FILE}: {exc.__cause__ or exc}"]
        return mismatches(self.path(name), manifest)

    def gc(self) -> GcReport:
        """Remove partial builds, interrupted downloads, directories without a manifest, and files
        inside artifacts that their manifest does not list. Run it when no pull is in progress."""
        removed: list[str] = []
        freed = 0

        def drop(path: Path) -> None:
            nonlocal freed
            freed += _tree_size(path)
            removed.append(path.relative_to(self.root).as_posix())
            _remove(path)

        if not self.root.is_dir():
            return GcReport(removed, freed)
        for internal in (self.partial_root, self.downloads_root):
            if internal.is_dir():
                for child in sorted(internal.iterdir()):
                    drop(child)
        for directory in sorted(self.root.iterdir()):
            if directory.name in (PARTIAL_DIR, DOWNLOADS_DIR):
                continue
            try:
                manifest = load(directory) if directory.is_dir() else None
            except ManifestError:
                manifest = None
            if manifest is None:
                drop(directory)
                continue
            listed = {f.path for f in manifest.files} | {MANIFEST_FILE}
            for path in sorted(directory.rglob("*"), reverse=True):
                relative = path.relative_to(directory).as_posix()
                if path.is_dir() and not path.is_symlink():
                    if not any(path.iterdir()):
                        path.rmdir()
                elif relative not in listed:
                    drop(path)
        return GcReport(removed, freed)
