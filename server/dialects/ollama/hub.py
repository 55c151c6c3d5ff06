"""Ollama's model management under /api, mapped onto Hearth's hub: pull (a hub pull job whose
progress streams as Ollama's status lines), delete, copy (a new artifact holding the same files,
hard-linked where it can), create (from an installed model, or from an uploaded GGUF blob) and
blobs (uploads addressed by their sha256, as `ollama create` sends them).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Response, delete, head, post

from hub.jobs import FINISHED, Job, Reporter
from hub.manifest import Manifest, Source, Task
from hub.names import check_pull_ref
from hub.operations import import_path, pull
from hub.options import PullOptions
from hub.store import ArtifactInfo, ArtifactNotFound, ArtifactStore, InvalidName, validate_name
from server.dialects.ollama import protocol as o
from server.dialects.ollama.errors import OllamaError, bad_request, model_not_found
from server.dialects.ollama.output import LineStream, ndjson
from server.dialects.ollama.translate import model_name
from server.inference.call import EngineDoor
from server.routes.hub import HubState, artifact_in_use
from server.serving.deployments import Deployment
from server.serving.scheduler import Scheduler

_DIGEST = re.compile(r"sha256[:-]([0-9a-f]{64})")
_CHUNK = 1024 * 1024


def _checked(name: str) -> str:
    try:
        return validate_name(name)
    except InvalidName as exc:
        raise bad_request(f"invalid model name {name!r}: {exc}") from exc


def _status(event_type: str, message: str | None, done: int | None, total: int | None) -> o.ProgressResponse:
    if event_type == "progress":
        what = message or "model"
        return o.ProgressResponse(status=f"pulling {what}", digest=what, total=total or 0, completed=done or 0)
    return o.ProgressResponse(status=message or event_type)


async def _job_lines(hub: HubState, job_id: str) -> AsyncIterator[o.ProgressResponse | o.ErrorResponse]:
    """A hub job's events as Ollama's status lines; the last is `success` or an error line."""
    yield o.ProgressResponse(status="pulling manifest")
    seq = 0
    while True:
        batch, finished = hub.jobs.events_after(job_id, seq)
        for event in batch:
            seq = event.seq
            if event.type == "cancelled":  # POST /v1/hub/jobs/{id}/cancel
                yield o.ErrorResponse("pull cancelled")
                return
            if event.type == "failed":
                if _exists(hub.jobs.get(job_id)):
                    yield o.ProgressResponse(status="success")
                else:
                    yield o.ErrorResponse(event.message or "pull failed")
                return
            if event.type == "succeeded":
                yield o.ProgressResponse(status="verifying sha256 digest")
                yield o.ProgressResponse(status="writing manifest")
                yield o.ProgressResponse(status=event.message or "installed")
                yield o.ProgressResponse(status="success")
                return
            yield _status(event.type, event.message, event.done, event.total)
        if finished and not batch:
            return
        if not batch:
            await asyncio.sleep(0.2)


def _exists(job: Job) -> bool:
    """Whether a pull failed only because its artifact is installed already (Ollama's pull of a
    model it has is a success)."""
    return job.error is not None and "is already installed" in job.error


async def _already_there() -> AsyncIterator[o.ProgressResponse]:
    yield o.ProgressResponse(status="pulling manifest")
    yield o.ProgressResponse(status="success")


async def _finished(hub: HubState, job_id: str) -> Job:
    while True:
        job = hub.jobs.get(job_id)
        if job.status in FINISHED:
            return job
        await asyncio.sleep(0.2)


@post("/pull", summary="Pull a model (Ollama)", status_code=200)
async def pull_model(data: o.ModelRequest, hub: HubState, scheduler: Scheduler) -> Any:
    """Install a catalog model (by name) or a Hugging Face repo (`org/name`) with the hub; a model
    already here is a success at once. Streams status lines with `total` / `completed` bytes."""
    name = model_name(data.model_name)
    if not name:
        raise bad_request("model is required")
    entry = hub.catalog.get(name)
    if name in scheduler.names() or (entry is not None and hub.store.exists(entry.name)):
        return LineStream(ndjson(_already_there())) if data.stream else o.ProgressResponse(status="success")
    if entry is None:
        try:
            check_pull_ref(name, None, None)
        except InvalidName as exc:
            raise OllamaError(
                404, f'pull model manifest: "{name}" is neither a catalog model nor a repo ({exc})'
            ) from exc
    options = PullOptions(model=name)

    def work(report: Reporter) -> Manifest:
        return pull(hub.store, options, log=report.log, transfer=report.transfer)

    job = hub.jobs.submit("pull", msgspec.structs.asdict(options), work)
    if data.stream:
        return LineStream(ndjson(_job_lines(hub, job.id)))
    finished = await _finished(hub, job.id)
    if finished.status in ("failed", "cancelled") and not _exists(finished):
        raise OllamaError(500, finished.error or "pull failed")
    return o.ProgressResponse(status="success")


@delete("/delete", summary="Delete a model (Ollama)", status_code=200)
async def delete_model(
    data: o.ModelRequest, request: Request[Any, Any, Any], hub: HubState, scheduler: Scheduler, door: EngineDoor
) -> None:
    """Remove an installed artifact, unloading it first if it is loaded on demand and idle (as
    `ollama rm` does); a configured service, or a model in use, is refused with 409."""
    name = _checked(model_name(data.model_name))
    if not hub.store.exists(name):
        raise model_not_found(name)
    if scheduler.is_resident(name) and not scheduler.is_configured(name):
        await door.hold(name, request=request, keep_alive=0)
    if artifact_in_use(hub, scheduler, name):
        raise OllamaError(409, f'model "{name}" is being served; stop serving it first')
    try:
        await asyncio.to_thread(hub.store.remove, name)
    except ArtifactNotFound as exc:
        raise model_not_found(name) from exc


def _link_or_copy(source: str, target: str) -> str:
    # Artifacts are never written in place (installs rename whole folders), so sharing inodes is safe.
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
    return target


def _copy(store: ArtifactStore, deployment: Deployment, destination: str) -> Manifest:
    """A new artifact `destination` holding the files `deployment` serves."""
    source_path = Path(deployment.spec.path)
    manifest = store.get(deployment.name) if store.exists(deployment.name) else None

    def build(partial: Path) -> ArtifactInfo:
        if source_path.is_file():
            _link_or_copy(str(source_path), str(partial / source_path.name))
            entry = source_path.name
        else:
            shutil.copytree(source_path, partial / "model", copy_function=_link_or_copy)
            entry = "model"
        if manifest is not None:
            source = Source(kind="artifact", ref=manifest.name)
            return ArtifactInfo(
                format=manifest.format, entry=entry, source=source, precision=manifest.precision, task=manifest.task
            )
        task: Task = "embeddings" if deployment.kind == "embeddings" else "text-generation"
        format = deployment.spec.format
        return ArtifactInfo(format=format, entry=entry, source=Source(kind="local", ref=str(source_path)), task=task)

    return store.install(destination, build)


async def _copy_model(hub: HubState, scheduler: Scheduler, source: str, destination: str) -> None:
    source, destination = model_name(source), _checked(model_name(destination))
    deployment = scheduler.deployment(source)
    if destination in scheduler.names() or hub.store.exists(destination):
        raise bad_request(f'model "{destination}" already exists')
    await asyncio.to_thread(_copy, hub.store, deployment, destination)


@post("/copy", summary="Copy a model (Ollama)", status_code=200)
async def copy_model(data: o.CopyRequest, hub: HubState, scheduler: Scheduler) -> None:
    """Install `destination` as a copy of the model `source` (an installed or served model)."""
    await _copy_model(hub, scheduler, data.source, data.destination)


def _blob_path(store: ArtifactStore, digest: str) -> Path:
    match = _DIGEST.fullmatch(digest)
    if match is None:
        raise bad_request(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return store.downloads_root / "ollama-blobs" / f"sha256-{match.group(1)}"


@head("/blobs/{digest:str}", summary="Whether a blob was uploaded (Ollama)")
async def blob_exists(digest: str, hub: HubState) -> Response[None]:
    """200 if the blob is here, else 404."""
    return Response(None, status_code=200 if _blob_path(hub.store, digest).is_file() else 404)


@post("/blobs/{digest:str}", summary="Upload a blob (Ollama)", status_code=201, request_max_body_size=None)
async def upload_blob(digest: str, request: Request[Any, Any, Any], hub: HubState) -> None:
    """Keep the body as the blob `digest` (checked) for a later /api/create."""
    target = _blob_path(hub.store, digest)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    hasher, size = hashlib.sha256(), 0
    try:
        with partial.open("wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > hub.max_upload_bytes:
                    raise OllamaError(413, f"the upload exceeds {hub.max_upload_bytes} bytes")
                hasher.update(chunk)
                await asyncio.to_thread(f.write, chunk)
        if f"sha256-{hasher.hexdigest()}" != target.name:
            raise bad_request(f"digest mismatch: the body's sha256 is {hasher.hexdigest()}")
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)


def _from_blob(store: ArtifactStore, name: str, filename: str, blob: Path) -> Manifest:
    staging = store.new_partial("blob")
    try:
        staged = staging / Path(filename).name
        _link_or_copy(str(blob), str(staged))
        return import_path(store, staged, name=name, source_kind="upload", source_ref=filename, move=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


async def _created() -> AsyncIterator[o.ProgressResponse]:
    yield o.ProgressResponse(status="writing manifest")
    yield o.ProgressResponse(status="success")


@post("/create", summary="Create a model (Ollama)", status_code=200)
async def create_model(data: o.CreateRequest, hub: HubState, scheduler: Scheduler) -> Any:
    """A new model from an installed one (`from`, a copy) or from one uploaded GGUF (`files`)."""
    name = _checked(model_name(data.model or data.name))
    refused = [
        f
        for f in ("adapters", "template", "system", "parameters", "messages", "quantize", "modelfile", "license")
        if getattr(data, f)
    ]
    if refused:
        raise bad_request(f"{', '.join(refused)}: not supported here; create from a model or a GGUF file only")
    if data.files and data.from_:
        raise bad_request("send either from or files, not both")
    if data.from_:
        await _copy_model(hub, scheduler, data.from_, name)
    elif data.files:
        if len(data.files) != 1 or not next(iter(data.files)).lower().endswith(".gguf"):
            raise bad_request("files must name exactly one .gguf file")
        filename, digest = next(iter(data.files.items()))
        blob = _blob_path(hub.store, digest)
        if not blob.is_file():
            raise bad_request(f"blob {digest} was not uploaded (POST /api/blobs/{digest} first)")
        if hub.store.exists(name) or name in scheduler.names():
            raise bad_request(f'model "{name}" already exists')
        await asyncio.to_thread(_from_blob, hub.store, name, filename, blob)
    else:
        raise bad_request("from or files is required")
    return LineStream(ndjson(_created())) if data.stream else o.ProgressResponse(status="success")


HANDLERS = [pull_model, delete_model, copy_model, blob_exists, upload_blob, create_model]
