"""What an installed artifact is: where it came from, how it was made, and every file's sha256.

The manifest is the last file written into an artifact (see `hub.store`): a directory without one
is not an artifact. `verify` re-hashes the files it lists.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Literal

import msgspec

MANIFEST_FILE = "manifest.json"
MANIFEST_VERSION = 1
_CHUNK = 4 * 1024 * 1024

# gguf, openvino and onnx are servable; hf and tf-savedmodel are imported sources kept for `convert`.
ArtifactFormat = Literal["gguf", "openvino", "onnx", "hf", "tf-savedmodel"]
SERVABLE_FORMATS = ("gguf", "openvino", "onnx")
Task = Literal["text-generation", "embeddings"]


class FileEntry(msgspec.Struct, frozen=True):
    """One file of an artifact, relative to the artifact's directory."""

    path: str
    size: int
    sha256: str


class Source(msgspec.Struct, frozen=True, kw_only=True):
    """Where the artifact's content came from."""

    kind: Literal["huggingface", "pypi", "local", "upload", "artifact"]
    # Repo id, package name, local path, uploaded file name, or the artifact converted from.
    ref: str
    # The commit sha a Hugging Face revision resolved to (the pin), or the package version.
    revision: str | None = None
    files: list[str] = msgspec.field(default_factory=list)


class Conversion(msgspec.Struct, frozen=True, kw_only=True):
    """How the artifact was converted (hub.convert's ConversionRecord), if it was."""

    tool: str
    tool_versions: dict[str, str] = msgspec.field(default_factory=dict)
    recipe: dict[str, str] = msgspec.field(default_factory=dict)


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The manifest of one artifact."""

    name: str
    format: ArtifactFormat
    # The file or folder (relative; "." is the artifact's own directory) that an engine loads.
    entry: str
    source: Source
    files: list[FileEntry]
    precision: str | None = None
    task: Task = "text-generation"
    devices: list[str] = msgspec.field(default_factory=lambda: ["cpu"])
    conversion: Conversion | None = None
    created: float = msgspec.field(default_factory=time.time)
    version: int = MANIFEST_VERSION

    @property
    def size(self) -> int:
        """Total size of the artifact's files in bytes."""
        return sum(f.size for f in self.files)


class ManifestError(ValueError):
    """A manifest file is missing or unreadable."""


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def scan_files(root: Path) -> list[FileEntry]:
    """Every regular file under `root` (except the manifest), hashed, in a stable order."""
    entries: list[FileEntry] = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink():
            # A link could point anywhere; artifacts hold their own bytes.
            raise ManifestError(f"{path.relative_to(root)} is a symbolic link; artifacts must hold real files")
        if not path.is_file() or path.relative_to(root).as_posix() == MANIFEST_FILE:
            continue
        entries.append(FileEntry(path.relative_to(root).as_posix(), path.stat().st_size, sha256_file(path)))
    return entries


def encode(manifest: Manifest) -> bytes:
    """The manifest as indented JSON."""
    return msgspec.json.format(msgspec.json.encode(manifest), indent=2) + b"\n"


def load(directory: Path) -> Manifest:
    """Read the manifest of the artifact in `directory`."""
    path = directory / MANIFEST_FILE
    try:
        manifest = msgspec.json.decode(path.read_bytes(), type=Manifest)
    except FileNotFoundError as exc:
        raise ManifestError(f"{directory} has no {MANIFEST_FILE}") from exc
    except (OSError, msgspec.DecodeError) as exc:
        raise ManifestError(f"{MANIFEST_FILE} is not a readable manifest: {exc}") from exc
    # A manifest is data on disk: what it names must stay inside its artifact.
    for inner in (manifest.entry, *(f.path for f in manifest.files)):
        if not _inside(inner):
            raise ManifestError(f"{MANIFEST_FILE} names {inner!r}, which is outside its artifact")
    return manifest


def _inside(relative: str) -> bool:
    parts = Path(relative).parts
    return not Path(relative).is_absolute() and ".." not in parts and "\\" not in relative


def mismatches(directory: Path, manifest: Manifest) -> list[str]:
    """What differs between the files on disk and the manifest (empty when the artifact is intact)."""
    problems: list[str] = []
    for entry in manifest.files:
        path = directory / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
            continue
        size = path.stat().st_size
        if size != entry.size:
            problems.append(f"{entry.path}: size {size} != {entry.size}")
        elif sha256_file(path) != entry.sha256:
            problems.append(f"{entry.path}: sha256 differs")
    return problems
