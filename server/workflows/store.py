"""Workflow definitions and run records on disk, under `$HEARTH_HOME/workflows`.

Definitions are kept as the YAML the user wrote (`<name>.yaml`); run records as JSON in `runs/`,
the newest `keep_runs` of them and no more than `max_bytes` in all. Every write goes to a temporary
file in the same folder and is renamed into place, so a reader never sees half a file. Names are
checked against one pattern before they touch a path, which rules out traversal (`..`, `/`,
absolute paths).
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path

import msgspec

from server.atomic_write import write_atomic
from server.workflows.definition import NAME_PATTERN
from server.workflows.records import RunRecord

_NAME = re.compile(NAME_PATTERN)
_RUN_ID = re.compile(r"^run_[0-9a-f]{24}$")
# Names that are routes of their own under /v1/workflows.
RESERVED = frozenset({"schema", "validate"})


def valid_name(name: str) -> bool:
    """Whether `name` may name a stored workflow."""
    return bool(_NAME.fullmatch(name)) and name not in RESERVED


def valid_run_id(run_id: str) -> bool:
    """Whether `run_id` has the shape of a run id."""
    return bool(_RUN_ID.fullmatch(run_id))


class WorkflowStore:
    """Definitions and run records of one Hearth home."""

    def __init__(self, home: Path, keep_runs: int = 200, max_bytes: int = 256 * 1024 * 1024) -> None:
        self.root = home / "workflows"
        self.runs = self.root / "runs"
        self.keep_runs = keep_runs
        self.max_bytes = max_bytes
        self._encoder = msgspec.json.Encoder()
        self._decoder = msgspec.json.Decoder(RunRecord)

    def _path(self, name: str) -> Path:
        if not valid_name(name):
            raise ValueError(f"invalid workflow name {name!r}")
        return self.root / f"{name}.yaml"

    def names(self) -> list[str]:
        """Every stored workflow, sorted."""
        if not self.root.is_dir():
            return []
        return sorted(p.stem for p in self.root.glob("*.yaml") if valid_name(p.stem))

    def read(self, name: str) -> str | None:
        """The YAML of `name`, or None."""
        path = self._path(name)
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None

    def write(self, name: str, text: str) -> None:
        """Store (or replace) the YAML of `name`."""
        write_atomic(self._path(name), text.encode("utf-8"))

    def delete(self, name: str) -> bool:
        """Remove `name`; False if it did not exist."""
        try:
            self._path(name).unlink()
        except FileNotFoundError:
            return False
        return True

    def save_run(self, record: RunRecord) -> None:
        """Keep a finished run's record; drop the oldest beyond `keep_runs` records or `max_bytes`
        of them (the newest record is always kept: its outputs are bounded on their own)."""
        write_atomic(self.runs / f"{record.id}.json", self._encoder.encode(record))
        sizes: list[tuple[float, int, Path]] = []
        for path in self.runs.glob("run_*.json"):
            with contextlib.suppress(OSError):
                stat = path.stat()
                sizes.append((stat.st_mtime, stat.st_size, path))
        sizes.sort(key=lambda entry: entry[0], reverse=True)
        total = 0
        for index, (_, size, path) in enumerate(sizes):
            total += size
            if index > 0 and (index >= self.keep_runs or total > self.max_bytes):
                with contextlib.suppress(OSError):
                    path.unlink()

    def recent_runs(self, workflow: str, limit: int) -> list[RunRecord]:
        """The newest `limit` finished runs of `workflow`, newest first."""
        if not self.runs.is_dir():
            return []
        found: list[RunRecord] = []
        for path in sorted(self.runs.glob("run_*.json"), key=lambda p: p.stat().st_mtime, reverse=True):
            record = self.load_run(path.stem)
            if record is not None and record.workflow == workflow:
                found.append(record)
                if len(found) == limit:
                    break
        return found

    def load_run(self, run_id: str) -> RunRecord | None:
        """A stored run record, or None."""
        if not valid_run_id(run_id):
            return None
        try:
            return self._decoder.decode((self.runs / f"{run_id}.json").read_bytes())
        except (FileNotFoundError, msgspec.DecodeError):
            return None
