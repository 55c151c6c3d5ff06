"""A model on this machine's disk, named by path, checked and copied into an artifact.

`POST /v1/hub/import` and `hearth import` name a file or folder on the server's machine (LM Studio's
"models folder"). What is copied is exactly what the importer reads: the named regular file, or
the regular files of the named folder. A device, FIFO or socket is refused (reading one could
block forever or never end), and so is a symbolic link inside the folder that leads out of it
(copying it would import a file from elsewhere on the disk).

The copy goes in chunks and reports its bytes, so a path import shows progress like a download
and a cancelled job stops at its next chunk.
"""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

from hub.download import ProgressFn
from hub.errors import HubFailure

_CHUNK = 8 * 1024 * 1024


class LocalSourceError(HubFailure, ValueError):
    """The path cannot be imported; the message says why."""

    code = "invalid_path"
    bad_request = True


def _kind(mode: int) -> str:
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def check_local_path(raw: str, max_files: int) -> Path:
    """The resolved path of `raw` if it names a regular file or a folder of at most `max_files`
    regular files (and links inside it) that can be read; LocalSourceError saying what is wrong
    otherwise."""
    if not raw or "\x00" in raw:
        raise LocalSourceError("give the absolute path of a model file or folder on the server's machine")
    given = Path(raw)
    if not given.is_absolute():
        raise LocalSourceError(f"{raw!r} is a relative path; give an absolute path (e.g. /home/me/models/x.gguf)")
    try:
        path = given.resolve(strict=True)
        mode = path.stat().st_mode
    except (OSError, RuntimeError) as exc:
        raise LocalSourceError(f"{raw} does not exist or cannot be read ({exc.__class__.__name__})") from exc
    if stat.S_ISDIR(mode):
        _check_folder(path, max_files)
    elif not stat.S_ISREG(mode):
        raise LocalSourceError(f"{raw} is {_kind(mode)}; import a model file or folder")
    elif not os.access(path, os.R_OK):
        raise LocalSourceError(f"{raw} cannot be read by the server")
    return path


def _check_folder(root: Path, max_files: int) -> None:
    if not os.access(root, os.R_OK | os.X_OK):
        raise LocalSourceError(f"{root} cannot be read by the server")
    seen = 0

    def unreadable(error: OSError) -> None:
        raise LocalSourceError(f"{error.filename} cannot be read by the server ({error.strerror})")

    for folder, dirs, files in os.walk(root, onerror=unreadable):
        for name in [*dirs, *files]:
            seen += 1
            if seen > max_files:
                raise LocalSourceError(f"{root} holds more than {max_files} files; is it a model folder?")
            _check_entry(root, Path(folder) / name)


def _check_entry(root: Path, entry: Path) -> None:
    try:
        if entry.is_symlink():
            target = entry.resolve(strict=True)
            if not target.is_relative_to(root):
                raise LocalSourceError(
                    f"{entry} is a link to {target}, outside the folder; import only what the folder holds"
                )
            if target.is_dir():
                raise LocalSourceError(f"{entry} is a link to a folder; copy the folder in instead")
        mode = entry.stat().st_mode
    except (OSError, RuntimeError) as exc:
        raise LocalSourceError(f"{entry} cannot be read by the server ({exc.__class__.__name__})") from exc
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        raise LocalSourceError(f"{entry} is {_kind(mode)}; a model folder holds only files and folders")
    if stat.S_ISREG(mode) and not os.access(entry, os.R_OK):
        raise LocalSourceError(f"{entry} cannot be read by the server")


def _copy_file(source: Path, target: Path, done: int, total: int, transfer: ProgressFn) -> int:
    with source.open("rb") as src, target.open("wb") as dst:
        while chunk := src.read(_CHUNK):
            dst.write(chunk)
            done += len(chunk)
            transfer(f"copying {source.name}", done, total)
    shutil.copystat(source, target)
    return done


def copy_local(source: Path, partial: Path, transfer: ProgressFn) -> str:
    """Copy a checked file or folder into the artifact being built, reporting bytes to `transfer`
    (which may raise to stop the copy); the entry the engine loads."""
    if source.is_file():
        _copy_file(source, partial / source.name, 0, source.stat().st_size, transfer)
        return source.name
    files = sorted(p for p in source.rglob("*") if p.is_file())
    total = sum(p.stat().st_size for p in files)
    done = 0
    for file in files:
        target = partial / file.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        done = _copy_file(file, target, done, total, transfer)
    return "."
