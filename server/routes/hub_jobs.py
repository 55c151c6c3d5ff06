"""The hub's jobs over HTTP, under /v1/hub/jobs: list, poll, stream progress, cancel.

A job is what `POST /v1/hub/pull`, `/convert`, `/upload` and `/import` start (`hub.jobs`). Like
`ollama pull` (whose client cancels by closing the stream) a job can be stopped, but here by a call
of its own, since the job outlives the request that started it: `POST /v1/hub/jobs/{id}/cancel`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

import msgspec
from litestar import Router, get, post
from litestar.status_codes import HTTP_202_ACCEPTED

from hub.jobs import Job, JobFinished
from server.http.errors import APIError
from server.http.sse import DONE, EventEncoder, EventStream
from server.routes.hub import HubState, errors


class JobList(msgspec.Struct):
    """GET /v1/hub/jobs."""

    data: list[Job]
    object: Literal["list"] = "list"


def _job_or_404(hub: HubState, job_id: str) -> Job:
    try:
        return hub.jobs.get(job_id)
    except KeyError as exc:
        # An id from the URL is echoed only in part: a client's 60 KB path must not come back whole.
        shown = job_id if len(job_id) <= 64 else job_id[:40] + "..."
        raise APIError(404, f"no job `{shown}`", param="job_id", code="job_not_found") from exc


@get("/", summary="List hub jobs")
async def list_jobs(hub: HubState) -> JobList:
    """Every job of this server's lifetime."""
    return JobList(data=hub.jobs.jobs())


@get("/{job_id:str}", summary="Poll a hub job", responses=errors(400, 404))
async def get_job(hub: HubState, job_id: str) -> Job:
    """The job's status, latest progress, result or error."""
    return _job_or_404(hub, job_id)


@post(
    "/{job_id:str}/cancel",
    summary="Cancel a queued or running hub job",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(400, 404, 409),
)
async def cancel_job(hub: HubState, job_id: str) -> Job:
    """A queued job is `cancelled` at once; a running one is `cancelling` until it stops at its next
    progress step or output line, then `cancelled`, with its partial files removed and no artifact
    installed. A job that has already ended is a 409 `job_finished`."""
    _job_or_404(hub, job_id)
    try:
        return hub.jobs.cancel(job_id)
    except JobFinished as exc:
        raise APIError(409, str(exc), param="job_id", code="job_finished") from exc


@get("/{job_id:str}/events", summary="Stream a hub job's progress (SSE)", responses=errors(400, 404))
async def job_events(hub: HubState, job_id: str, after: int = 0) -> EventStream:
    """`data: <event>` for each log line and progress step, then the final job, then `[DONE]`."""
    _job_or_404(hub, job_id)
    encoder = EventEncoder()

    async def events() -> AsyncIterator[bytes]:
        seq = after
        while True:
            batch, finished = hub.jobs.events_after(job_id, seq)
            for event in batch:
                seq = event.seq
                yield encoder.event(event)
            if finished and not batch:
                yield encoder.event(hub.jobs.get(job_id))
                yield DONE
                return
            if not batch:
                await asyncio.sleep(0.2)

    return EventStream(events())


router = Router(path="/v1/hub/jobs", route_handlers=[list_jobs, get_job, cancel_job, job_events], tags=["hub"])
