"""The console's committed bundle: gzip-compressed files under `static/`, listed in `bundle.json`
with the digest of the sources they were built from (so a test can tell a stale bundle).

`make console` builds the sources with Vite and calls `pack()`; the server only reads the result,
so running Hearth never needs Node.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path

STATIC = Path(__file__).with_name("static")
MANIFEST = "bundle.json"
# What the bundle is built from, relative to the console's source folder (console/).
SOURCE_FILES = ("index.html", "package.json", "package-lock.json", "vite.config.js")
SOURCE_DIRS = ("src", "public")
# Swagger UI's files, copied from node_modules for the offline /docs.
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui-standalone-preset.js", "swagger-ui.css")


def source_paths(source_root: Path) -> list[Path]:
    """Every file the bundle is built from, in a stable order."""
    paths = [source_root / name for name in SOURCE_FILES]
    for folder in SOURCE_DIRS:
        paths.extend(p for p in (source_root / folder).rglob("*") if p.is_file())
    return sorted(paths, key=lambda p: p.relative_to(source_root).as_posix())


def sources_digest(source_root: Path) -> str:
    """SHA-256 over the sources' relative names and contents."""
    digest = hashlib.sha256()
    for path in source_paths(source_root):
        digest.update(path.relative_to(source_root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def pack(dist: Path, swagger_dir: Path, source_root: Path, static: Path = STATIC) -> None:
    """Compress Vite's output (`dist`) and Swagger UI's files into `static`, with the manifest."""
    if static.exists():
        for old in static.rglob("*.gz"):
            old.unlink()
    files: dict[str, Path] = {p.relative_to(dist).as_posix(): p for p in dist.rglob("*") if p.is_file()}
    files.update({f"vendor/{name}": swagger_dir / name for name in SWAGGER_FILES})
    for name, path in sorted(files.items()):
        target = static / f"{name}.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0: the same input packs to the same bytes, so a rebuild without changes is no diff.
        target.write_bytes(gzip.compress(path.read_bytes(), compresslevel=9, mtime=0))
    manifest = {"sources_sha256": sources_digest(source_root), "files": sorted(files)}
    (static / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")


@dataclass(frozen=True)
class Asset:
    """One file of the bundle, gzip-compressed."""

    gzipped: bytes
    media_type: str


class ConsoleBundle:
    """The packed console, read once when the app is built."""

    def __init__(self, static: Path = STATIC) -> None:
        manifest = json.loads((static / MANIFEST).read_text())
        self.sources_sha256: str = manifest["sources_sha256"]
        self.assets: dict[str, Asset] = {}
        for name in manifest["files"]:
            media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith("javascript"):
                media_type += "; charset=utf-8"
            self.assets[name] = Asset((static / f"{name}.gz").read_bytes(), media_type)

    def get(self, name: str) -> Asset | None:
        """The asset called `name` (a path inside the bundle), or None: only listed names are served."""
        return self.assets.get(name)
