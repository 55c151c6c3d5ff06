"""The Files and Batch APIs' wire objects, as OpenAI's schema defines them (OpenAIFile, Batch,
BatchRequestCounts, BatchError, CreateBatchRequest) and the per-line formats of batch files."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

BatchStatus = Literal[
    "validating", "failed", "in_progress", "finalizing", "completed", "expired", "cancelling", "cancelled"
]
FilePurpose = Literal["batch", "batch_output"]
Endpoint = Literal["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses"]
ENDPOINTS: tuple[str, ...] = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/responses")
# A batch ends in one of these; nothing changes it afterwards.
FINAL: frozenset[str] = frozenset({"failed", "completed", "expired", "cancelled"})


class FileObject(msgspec.Struct, kw_only=True):
    """An uploaded file (OpenAI's `OpenAIFile`)."""

    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: FilePurpose
    object: Literal["file"] = "file"
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | UnsetType = UNSET


class FileList(msgspec.Struct, kw_only=True):
    """GET /v1/files."""

    data: list[FileObject]
    first_id: str | None
    last_id: str | None
    has_more: bool = False
    object: Literal["list"] = "list"


class FileDeleted(msgspec.Struct, kw_only=True):
    """DELETE /v1/files/{id}."""

    id: str
    deleted: bool = True
    object: Literal["file"] = "file"


class BatchRequestCounts(msgspec.Struct, kw_only=True):
    """How many lines a batch has, and how many ended well or badly."""

    total: int = 0
    completed: int = 0
    failed: int = 0


class BatchError(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Why a batch failed validation (one per problem, with its line when it has one)."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None


class BatchErrors(msgspec.Struct, kw_only=True):
    """The `errors` member of a batch that failed."""

    data: list[BatchError]
    object: Literal["list"] = "list"


class Batch(msgspec.Struct, kw_only=True):
    """A batch and its lifecycle (OpenAI's `Batch`); what has not happened yet is absent."""

    id: str
    endpoint: str
    input_file_id: str
    completion_window: str
    status: BatchStatus
    created_at: int
    expires_at: int
    request_counts: BatchRequestCounts
    metadata: dict[str, str] | UnsetType = UNSET
    errors: BatchErrors | UnsetType = UNSET
    output_file_id: str | UnsetType = UNSET
    error_file_id: str | UnsetType = UNSET
    in_progress_at: int | UnsetType = UNSET
    finalizing_at: int | UnsetType = UNSET
    completed_at: int | UnsetType = UNSET
    failed_at: int | UnsetType = UNSET
    expired_at: int | UnsetType = UNSET
    cancelling_at: int | UnsetType = UNSET
    cancelled_at: int | UnsetType = UNSET
    object: Literal["batch"] = "batch"


class BatchList(msgspec.Struct, kw_only=True):
    """GET /v1/batches."""

    data: list[Batch]
    first_id: str | None
    last_id: str | None
    has_more: bool
    object: Literal["list"] = "list"


Metadata = dict[Annotated[str, Meta(max_length=64)], Annotated[str, Meta(max_length=512)]]


class CreateBatch(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """POST /v1/batches."""

    input_file_id: Annotated[str, Meta(max_length=64)]
    endpoint: Endpoint
    completion_window: Literal["24h"]
    metadata: Annotated[Metadata, Meta(max_length=16)] | None = None
    output_expires_after: dict[str, Any] | None = None


class InputLine(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One line of a batch input file."""

    custom_id: Annotated[str, Meta(min_length=1, max_length=512)]
    method: Literal["POST"]
    url: Endpoint
    body: dict[str, Any]


class LineResponse(msgspec.Struct, kw_only=True):
    """What the endpoint answered a line: its status and body, as the HTTP route would."""

    status_code: int
    request_id: str
    body: msgspec.Raw


class LineError(msgspec.Struct, kw_only=True):
    """Why a line could not be run at all (malformed, expired, cancelled)."""

    code: str
    message: str


class OutputLine(msgspec.Struct, kw_only=True):
    """One line of an output or error file (OpenAI's per-line format)."""

    id: str
    custom_id: str | None
    response: LineResponse | None
    error: LineError | None
