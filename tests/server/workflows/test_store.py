"""Definitions and run records on disk: names that cannot escape, whole files, bounded records."""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest

from server.workflows.records import RunRecord, StepRecord, bounded
from server.workflows.store import WorkflowStore, valid_name


@pytest.mark.parametrize("name", ["../x", "a/b", "/etc/passwd", "..", "", "A", "schema", "x" * 65, "a\x00b", "-a"])
def test_names_that_could_escape_or_collide_are_refused(tmp_path: Path, name: str) -> None:
    store = WorkflowStore(tmp_path)
    assert not valid_name(name)
    with pytest.raises(ValueError):
        store.write(name, "name: x\n")
    assert not (tmp_path / "workflows").exists() or list((tmp_path / "workflows").iterdir()) == []


def test_write_read_replace_delete(tmp_path: Path) -> None:
    store = WorkflowStore(tmp_path)
    store.write("alpha", "name: alpha\n")
    store.write("alpha", "name: alpha\ndescription: two\n")
    store.write("beta-2", "name: beta-2\n")
    assert store.read("alpha") == "name: alpha\ndescription: two\n"
    assert store.names() == ["alpha", "beta-2"]
    # No temporary files are left behind by the atomic writes.
    assert sorted(p.name for p in (tmp_path / "workflows").iterdir()) == ["alpha.yaml", "beta-2.yaml"]
    assert store.delete("alpha") and not store.delete("alpha")
    assert store.read("alpha") is None


def _record(run_id: str) -> RunRecord:
    return RunRecord(
        id=run_id, workflow="w", created_at=time.time(), inputs={"a": 1}, steps={"s": StepRecord(output="x")}
    )


def test_run_records_are_kept_up_to_a_bound(tmp_path: Path) -> None:
    store = WorkflowStore(tmp_path, keep_runs=3)
    ids = [f"run_{i:024x}" for i in range(5)]
    for i, run_id in enumerate(ids):
        store.save_run(_record(run_id))
        path = store.runs / f"{run_id}.json"
        os.utime(path, (1000 + i, 1000 + i))
    kept = sorted(p.stem for p in store.runs.glob("*.json"))
    assert len(kept) <= 4 and ids[-1] in kept and ids[0] not in kept
    store.save_run(_record("run_" + "f" * 24))
    assert len(list(store.runs.glob("*.json"))) == 3
    loaded = store.load_run(ids[-1])
    assert loaded is not None and loaded.steps["s"].output == "x" and loaded.inputs == {"a": 1}
    assert store.load_run("../../etc/passwd") is None and store.load_run(ids[0]) is None


def test_run_records_are_bounded_by_bytes_and_outputs_cut(tmp_path: Path) -> None:
    """A record's outputs are cut with a marker; the folder keeps the newest records that fit."""
    store = WorkflowStore(tmp_path, keep_runs=100, max_bytes=64 * 1024)
    for i in range(12):
        output = bounded("word " * 100_000, 8 * 1024)
        assert isinstance(output, str) and output.endswith("(setting `workflow_record_output_bytes`)]")
        record = RunRecord(
            id=f"run_{i:024x}",
            workflow="w",
            created_at=time.time(),
            inputs={},
            steps={"s": StepRecord(status="succeeded", output=output)},
        )
        store.save_run(record)
        os.utime(store.runs / f"{record.id}.json", (i, i))
    files = sorted(store.runs.glob("run_*.json"))
    assert sum(path.stat().st_size for path in files) <= 64 * 1024
    assert 4 <= len(files) < 12
    assert files[-1].name == f"run_{11:024x}.json"


def test_bounded_keeps_small_values_and_marks_what_it_cuts() -> None:
    assert bounded({"a": [1, 2], "b": "text"}, 1024) == {"a": [1, 2], "b": "text"}
    cut = bounded([f"item {i}" * 20 for i in range(1000)], 4096)
    assert isinstance(cut, list) and cut[-1].startswith("[… ") and "more items cut" in cut[-1]
    assert len(msgspec.json.encode(cut)) <= 4096
    mapping = bounded({f"k{i}": "v" * 100 for i in range(1000)}, 4096)
    assert "more entries cut" in mapping["…"] and len(msgspec.json.encode(mapping)) <= 4096
    text = bounded('é\n"' * 50_000, 4096)
    assert len(msgspec.json.encode(text)) <= 4096
