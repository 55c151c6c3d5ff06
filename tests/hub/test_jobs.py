"""hub.jobs' cancellation with a real store: what a cancelled job built is never left installed."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from hub.jobs import FINISHED, Job, JobFinished, JobRunner, Reporter
from hub.manifest import Manifest, Source
from hub.store import ArtifactInfo, ArtifactStore


def _wait(runner: JobRunner, job_id: str) -> Job:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        job = runner.get(job_id)
        if job.status in FINISHED:
            return job
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {runner.get(job_id)}")


def _builder(name: str) -> ArtifactInfo:
    return ArtifactInfo(format="gguf", entry=name, source=Source(kind="local", ref=name))


def test_a_cancel_that_comes_after_the_work_is_done_removes_the_artifact(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    runner = JobRunner(rollback=lambda manifest: store.remove(manifest.name))
    started, finish = threading.Event(), threading.Event()

    def work(report: Reporter) -> Manifest:
        def build(partial: Path) -> ArtifactInfo:
            (partial / "m.gguf").write_bytes(b"GGUF")
            return _builder("m.gguf")

        manifest = store.install("late", build)
        started.set()
        finish.wait(10)  # no report after this point: the job cannot notice the cancel itself
        return manifest

    job = runner.submit("import", {}, work)
    assert started.wait(10) and store.exists("late")
    assert runner.cancel(job.id).status == "cancelling"
    finish.set()
    final = _wait(runner, job.id)
    assert final.status == "cancelled" and final.result is None and final.error_code == "cancelled"
    assert not store.exists("late") and not (tmp_path / "late").exists()
    with pytest.raises(JobFinished):
        runner.cancel(job.id)
    runner.close()


def test_a_running_job_stops_at_its_next_report_and_a_queued_one_never_starts(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    runner = JobRunner(rollback=lambda manifest: store.remove(manifest.name))
    reporting, proceed = threading.Event(), threading.Event()
    ran: list[str] = []

    def slow(report: Reporter) -> Manifest:
        def build(partial: Path) -> ArtifactInfo:
            (partial / "part.bin").write_bytes(b"half")
            reporting.set()
            proceed.wait(10)
            report.transfer("copying", 4, 8)  # raises: the job was cancelled meanwhile
            raise AssertionError("not reached")

        return store.install("slow", build)

    def never(report: Reporter) -> Manifest:
        ran.append("never")
        raise AssertionError("a cancelled queued job ran")

    first = runner.submit("import", {}, slow)
    second = runner.submit("import", {}, never)
    assert reporting.wait(10)
    assert runner.cancel(second.id).status == "cancelled"
    assert runner.cancel(first.id).status == "cancelling"
    proceed.set()
    assert _wait(runner, first.id).status == "cancelled"
    assert _wait(runner, second.id).status == "cancelled"
    assert ran == [] and not store.exists("slow")
    assert list((tmp_path / ".partial").iterdir()) == []
    events, finished = runner.events_after(first.id, 0)
    assert finished and events[-1].type == "cancelled"
    runner.close()
