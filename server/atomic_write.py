"""Write a file whole or not at all: the one way the server replaces its files on disk.

The data goes to a temporary file in the same folder, is flushed to the disk and renamed over the
target, so a reader (another process, or the server after a crash) sees the old file or the new
one, never half of one. It sits at the root of `server/` so that security, workflows and the
commands can all use it without importing each other.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def write_atomic(path: Path, data: bytes, *, mode: int | None = None, dir_mode: int = 0o777) -> None:
    """Replace `path` with `data` atomically.

    `mode` sets the file's permissions (without it the file keeps mkstemp's 0600); a missing parent
    folder is made with `dir_mode`. On any failure the temporary file is removed and the error raised.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=dir_mode)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    try:
        if mode is not None:
            os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
