"""Models brought in from this machine, under /v1/hub: an upload (the file's bytes in the body)
and an import of a path on the server's machine; both are jobs like a pull.
"""

from __future__ import annotations

import asyncio
import errno
import shutil
from pathlib import Path
from typing import Any

import msgspec
from litestar import Request, Router, post
from litestar.status_codes import HTTP_202_ACCEPTED

from hub.archives import unpack
from hub.errors import HubFailure
from hub.jobs import Job, Reporter
from hub.local_source import check_local_path
from hub.manifest import Manifest, Task
from hub.operations import detect_kind, import_path
from hub.options import ImportOptions
from server.http.errors import APIError, invalid_request
from server.routes.hub import HubState, checked_name, errors

_ARCHIVES = (".zip", ".tar", ".tar.gz", ".tgz")


@post(
    "/upload",
    summary="Upload a model file or archive (a job that imports it)",
    status_code=HTTP_202_ACCEPTED,
    request_max_body_size=None,
    responses=errors(400, 413, 507),
)
async def upload(
    hub: HubState,
    request: Request[Any, Any, Any],
    filename: str,
    name: str | None = None,
    task: Task = "text-generation",
) -> Job:
    """The raw body is a .gguf file or a .zip / .tar(.gz) of a model folder (`?filename=` names it)."""
    checked_name(name)
    safe = Path(filename).name
    if safe != filename or not safe or safe.startswith(".") or any(ord(c) < 32 for c in safe):
        raise invalid_request(f"invalid file name {filename!r}", param="filename")
    if not (safe.lower().endswith(".gguf") or safe.lower().endswith(_ARCHIVES)):
        raise invalid_request("upload a .gguf file or a .zip, .tar, .tar.gz or .tgz archive", param="filename")
    staging = hub.store.new_partial("upload")
    target = staging / safe
    size = 0
    try:
        with target.open("wb") as f:
            async for chunk in request.stream():
                size += len(chunk)
                if size > hub.max_upload_bytes:
                    raise APIError(413, f"the upload exceeds {hub.max_upload_bytes} bytes", code="request_too_large")
                await asyncio.to_thread(f.write, chunk)
        if size == 0:
            raise invalid_request("the upload is empty", param="body")
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise APIError(
                507, "there is not enough disk space for this upload; nothing was kept", code="insufficient_storage"
            ) from exc
        raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    artifact_name = name or None

    def work(report: Reporter) -> Manifest:
        try:
            if safe.lower().endswith(".gguf"):
                source = target
            else:
                source = unpack(target, staging / "unpacked", hub.archive_limits)
                target.unlink()  # the archive's bytes are not needed twice on disk
            stem = safe.removesuffix(".gz").rsplit(".", 1)[0]
            return import_path(
                hub.store,
                source,
                name=artifact_name or stem.lower(),
                task=task,
                log=report.log,
                source_kind="upload",
                source_ref=safe,
                move=True,
            )
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    return hub.jobs.submit("upload", {"filename": safe, "name": name, "task": task, "bytes": size}, work)


@post(
    "/import",
    summary="Import a model file or folder on the server's machine (a job)",
    status_code=HTTP_202_ACCEPTED,
    responses=errors(400),
)
async def import_local(hub: HubState, data: ImportOptions) -> Job:
    """`path` is absolute: a .gguf file, or a Hugging Face (PyTorch), TensorFlow SavedModel, OpenVINO
    IR or ONNX GenAI folder. It is checked before the job starts (a relative or missing path, a
    device or FIFO, a link out of the folder, or a model the importer does not recognise is a 400);
    the job copies it into the store with progress, as a pull does."""
    checked_name(data.name)

    def check() -> Path:
        path = check_local_path(data.path, hub.max_import_files)
        detect_kind(path)
        return path

    try:
        path = await asyncio.to_thread(check)
    except (HubFailure, OSError) as exc:
        raise invalid_request(str(exc), param="path", code="invalid_path") from exc
    if data.name is not None and hub.store.exists(data.name):
        raise invalid_request(f"an artifact named `{data.name}` is already installed", param="name", code="exists")

    def work(report: Reporter) -> Manifest:
        return import_path(
            hub.store,
            path,
            name=data.name,
            task=data.task,
            log=report.log,
            transfer=report.transfer,
            source_ref=str(path),
        )

    return hub.jobs.submit("import", msgspec.structs.asdict(data), work)


router = Router(path="/v1/hub", route_handlers=[upload, import_local], tags=["hub"])
