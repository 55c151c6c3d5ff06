"""/v1/files and /v1/batches: OpenAI's Files API (for batch input and output) and Batch API."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Literal

import msgspec
from litestar import Request, Response, Router, delete, get, post
from litestar.datastructures import UploadFile
from litestar.openapi.datastructures import ResponseSpec
from msgspec import UNSET

from server.batches.protocol import (
    FINAL,
    Batch,
    BatchList,
    BatchRequestCounts,
    CreateBatch,
    FileDeleted,
    FileList,
    FileObject,
)
from server.batches.runner import BatchRunner
from server.batches.store import new_id
from server.http.errors import APIError, ErrorResponse, invalid_request

_MULTIPART_OVERHEAD = 64 * 1024


def _errors(*statuses: int) -> dict[int, ResponseSpec]:
    what = {
        400: "Invalid request (a wrong purpose, endpoint, body or parameter)",
        404: "No such file or batch",
        409: "The batch has ended and cannot be cancelled",
        411: "The upload has no Content-Length",
        413: "The file is larger than batch_max_file_bytes",
    }
    return {
        s: ResponseSpec(data_container=ErrorResponse, description=what[s], generate_examples=False) for s in statuses
    }


def _file_not_found(file_id: str) -> APIError:
    return APIError(404, f"No file with id `{file_id}`.", param="file_id", code="file_not_found")


def _too_large(limit: int) -> APIError:
    return APIError(413, f"The file exceeds {limit} bytes (batch_max_file_bytes).", param="file", code="file_too_large")


def _batch_not_found(batch_id: str) -> APIError:
    return APIError(404, f"No batch with id `{batch_id}`.", param="batch_id", code="batch_not_found")


@post(
    "/files",
    summary="Upload a file (purpose batch: a JSONL file of requests)",
    request_max_body_size=None,
    responses=_errors(400, 411, 413),
)
async def create_file(request: Request[Any, Any, Any], batches: BatchRunner) -> FileObject:
    """Multipart form: `file` (JSONL) and `purpose` (`batch`)."""
    limit = batches.settings.batch_max_file_bytes
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        raise APIError(411, "Send the upload with a Content-Length.", code="length_required")
    if int(length) > limit + _MULTIPART_OVERHEAD:
        raise APIError(
            413, f"The file exceeds {limit} bytes (batch_max_file_bytes).", param="file", code="file_too_large"
        )
    form = await request.form()
    purpose, upload = form.get("purpose"), form.get("file")
    if purpose != "batch":
        raise invalid_request("`purpose` must be `batch` (the only purpose Hearth stores files for).", param="purpose")
    if not isinstance(upload, UploadFile):
        raise invalid_request("Send the file as the multipart field `file`.", param="file")
    data = await upload.read()
    if len(data) > limit:
        raise APIError(
            413, f"The file exceeds {limit} bytes (batch_max_file_bytes).", param="file", code="file_too_large"
        )
    if not data.strip():
        raise invalid_request("The file is empty.", param="file")
    filename = (upload.filename or "batch.jsonl")[:255]
    return await asyncio.to_thread(batches.store.add_file, filename, "batch", data)


@get("/files", summary="List files", responses=_errors(400))
async def list_files(
    batches: BatchRunner,
    purpose: str | None = None,
    after: str | None = None,
    limit: int = 100,
    order: Literal["asc", "desc"] = "desc",
) -> FileList:
    """Files, newest first unless `order=asc`."""
    if not 1 <= limit <= 10_000:
        raise invalid_request("`limit` must be from 1 to 10000.", param="limit")
    files = await asyncio.to_thread(batches.store.list_files, purpose, after, limit + 1, order)
    page = files[:limit]
    return FileList(
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(files) > limit,
    )


@get("/files/{file_id:str}", summary="Retrieve a file's metadata", responses=_errors(400, 404))
async def retrieve_file(batches: BatchRunner, file_id: str) -> FileObject:
    """One file."""
    file = await asyncio.to_thread(batches.store.get_file, file_id)
    if file is None:
        raise _file_not_found(file_id)
    return file


@delete("/files/{file_id:str}", summary="Delete a file", status_code=200, responses=_errors(400, 404))
async def delete_file(batches: BatchRunner, file_id: str) -> FileDeleted:
    """Remove a file and its bytes."""
    if not await asyncio.to_thread(batches.store.delete_file, file_id):
        raise _file_not_found(file_id)
    return FileDeleted(id=file_id)


@get(
    "/files/{file_id:str}/content",
    summary="Download a file's content",
    media_type="application/jsonl",
    responses=_errors(400, 404),
)
async def file_content(batches: BatchRunner, file_id: str) -> Response[bytes]:
    """The file's bytes (a batch's output and error files are JSONL, one result per line)."""
    file = await asyncio.to_thread(batches.store.get_file, file_id)
    if file is None:
        raise _file_not_found(file_id)
    data = await asyncio.to_thread(batches.store.path(file_id).read_bytes)
    return Response(data, media_type="application/jsonl")


@post("/batches", summary="Create a batch", status_code=200, responses=_errors(400, 404))
async def create_batch(data: CreateBatch, batches: BatchRunner) -> Batch:
    """Run every request of an uploaded JSONL file, at the lowest priority, within 24 h."""
    file = await asyncio.to_thread(batches.store.get_file, data.input_file_id)
    if file is None:
        raise _file_not_found(data.input_file_id)
    if file.purpose != "batch":
        raise invalid_request(f"File `{file.id}` has purpose `{file.purpose}`, not `batch`.", param="input_file_id")
    now = int(time.time())
    batch = Batch(
        id=new_id("batch_"),
        endpoint=data.endpoint,
        input_file_id=data.input_file_id,
        completion_window=data.completion_window,
        status="validating",
        created_at=now,
        expires_at=now + 24 * 3600,
        request_counts=BatchRequestCounts(),
        metadata=data.metadata if data.metadata is not None else UNSET,
    )
    await asyncio.to_thread(batches.store.put_batch, batch)
    batches.wake()
    return batch


@get("/batches", summary="List batches", responses=_errors(400))
async def list_batches(batches: BatchRunner, after: str | None = None, limit: int = 20) -> BatchList:
    """Batches, newest first."""
    if not 1 <= limit <= 100:
        raise invalid_request("`limit` must be from 1 to 100.", param="limit")
    found = await asyncio.to_thread(batches.store.list_batches, after, limit + 1)
    page = found[:limit]
    return BatchList(
        data=page,
        first_id=page[0].id if page else None,
        last_id=page[-1].id if page else None,
        has_more=len(found) > limit,
    )


@get("/batches/{batch_id:str}", summary="Retrieve a batch", responses=_errors(400, 404))
async def retrieve_batch(batches: BatchRunner, batch_id: str) -> Batch:
    """One batch, with its status and request counts."""
    batch = await asyncio.to_thread(batches.store.get_batch, batch_id)
    if batch is None:
        raise _batch_not_found(batch_id)
    return batch


@post("/batches/{batch_id:str}/cancel", summary="Cancel a batch", status_code=200, responses=_errors(400, 404, 409))
async def cancel_batch(batches: BatchRunner, batch_id: str) -> Batch:
    """Stop a batch: requests running finish, the rest are reported as cancelled (`cancelling`,
    then `cancelled`)."""
    async with batches.status_lock:
        batch = await asyncio.to_thread(batches.store.get_batch, batch_id)
        if batch is None:
            raise _batch_not_found(batch_id)
        if batch.status in FINAL or batch.status == "cancelling":
            raise APIError(
                409, f"Batch `{batch_id}` is {batch.status}; it cannot be cancelled.", code="batch_not_cancellable"
            )
        batch = msgspec.structs.replace(batch, status="cancelling", cancelling_at=int(time.time()))
        await asyncio.to_thread(batches.store.put_batch, batch)
    batches.wake()
    return batch


router = Router(
    path="/v1",
    route_handlers=[
        create_file,
        list_files,
        retrieve_file,
        delete_file,
        file_content,
        create_batch,
        list_batches,
        retrieve_batch,
        cancel_batch,
    ],
    tags=["batches"],
)
