"""What a run is made of on the wire and on disk: inputs, step records, run records, events."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Literal

import msgspec

from server.serving.services import Priority
from server.workflows.definition import Workflow
from server.workflows.tools import FileInput

_ENCODER = msgspec.json.Encoder()
# Room a marker and the JSON around a cut value take.
_MARKER_ROOM = 120

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]
StepStatus = Literal["pending", "running", "succeeded", "failed", "cancelled", "skipped"]
EventType = Literal[
    "run.started",
    "step.started",
    "step.delta",
    "step.finished",
    "step.failed",
    "run.finished",
    "run.failed",
    "run.cancelled",
]


class InputError(ValueError):
    """Run inputs that do not match the workflow's declared inputs."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param


class TokenCounts(msgspec.Struct, kw_only=True):
    """Tokens a step (or a whole run) read and wrote."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


class StepRecord(msgspec.Struct, kw_only=True):
    """One step of a run: status, timings (Unix seconds), output and token counts."""

    status: StepStatus = "pending"
    started_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    output: Any = None
    items: int | None = None
    usage: TokenCounts = msgspec.field(default_factory=TokenCounts)
    error: str | None = None


class RunError(msgspec.Struct, kw_only=True):
    """Why a run did not succeed, and which step it was."""

    message: str
    step: str | None = None


class RunRecord(msgspec.Struct, kw_only=True):
    """The record of a run, as GET /v1/workflows/{name}/runs/{id} returns it."""

    id: str
    object: Literal["workflow.run"] = "workflow.run"
    workflow: str
    status: RunStatus = "running"
    created_at: float
    finished_at: float | None = None
    duration_s: float | None = None
    inputs: dict[str, Any]
    steps: dict[str, StepRecord]
    outputs: dict[str, Any] | None = None
    usage: TokenCounts = msgspec.field(default_factory=TokenCounts)
    error: RunError | None = None


class RunEvent(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One event of a streamed run."""

    type: EventType
    run_id: str
    step: str | None = None
    item: int | None = None
    text: str | None = None
    output: Any = None
    error: str | None = None
    duration_s: float | None = None
    run: RunRecord | None = None


class RunRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The JSON body of POST /v1/workflows/{name}/runs."""

    inputs: dict[str, Any] = msgspec.field(default_factory=dict)
    stream: bool = False
    # Admission priority of this run's model steps (overrides the workflow's).
    priority: Priority | None = None


def _file(name: str, value: Any) -> FileInput:
    """A JSON file input: `{"filename": ..., "data": <base64>}` or plain text."""
    if isinstance(value, FileInput):
        return value
    if isinstance(value, str):
        return FileInput(f"{name}.txt", value.encode(), "text/plain")
    if isinstance(value, dict) and isinstance(value.get("filename"), str) and isinstance(value.get("data"), str):
        try:
            data = base64.b64decode(value["data"], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InputError(f"input `{name}`: `data` is not valid base64", f"inputs.{name}") from exc
        return FileInput(value["filename"], data, str(value.get("content_type") or "application/octet-stream"))
    raise InputError(
        f"input `{name}` is a file: upload it (multipart) or send {{'filename', 'data' (base64)}} or text",
        f"inputs.{name}",
    )


_CHECKS: dict[str, tuple[type | tuple[type, ...], str]] = {
    "string": (str, "a string"),
    "number": ((int, float), "a number"),
    "integer": (int, "an integer"),
    "boolean": (bool, "a boolean"),
    "list": (list, "a list"),
    "object": (dict, "an object"),
}


def bind_inputs(workflow: Workflow, given: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The inputs of a run: given values checked against their declared types, defaults filled in;
    and the names of text inputs given as uploaded files, whose text the caller extracts (in a job
    process: a document's cost follows its content)."""
    for name in given:
        if name not in workflow.inputs:
            declared = ", ".join(workflow.inputs) or "none"
            raise InputError(f"unknown input `{name}` (the workflow declares: {declared})", f"inputs.{name}")
    bound: dict[str, Any] = {}
    to_extract: list[str] = []
    for name, spec in workflow.inputs.items():
        if name not in given or given[name] is None:
            if spec.is_required:
                raise InputError(f"missing required input `{name}` ({spec.type})", f"inputs.{name}")
            bound[name] = spec.default
            continue
        value = given[name]
        if isinstance(value, FileInput) and spec.type == "string":
            # An uploaded document for a text input: its text.
            bound[name] = value
            to_extract.append(name)
            continue
        if spec.type == "file":
            bound[name] = _file(name, value)
            continue
        kinds, wanted = _CHECKS[spec.type]
        if not isinstance(value, kinds) or (isinstance(value, bool) and spec.type != "boolean"):
            raise InputError(f"input `{name}` must be {wanted}, got {type(value).__name__}", f"inputs.{name}")
        bound[name] = value
    return bound, to_extract


def recorded_inputs(inputs: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """Inputs as a record keeps them: a file by its name, type and size, not its bytes; a value
    larger than `max_bytes` (as JSON) cut with a marker."""
    return {
        name: {"filename": v.filename, "content_type": v.content_type, "size": len(v.data)}
        if isinstance(v, FileInput)
        else bounded(v, max_bytes)
        for name, v in inputs.items()
    }


def _json_size(value: Any) -> int:
    try:
        return len(_ENCODER.encode(value))
    except (TypeError, ValueError, OverflowError, msgspec.EncodeError):
        return len(repr(value)) + 2


def bounded(value: Any, max_bytes: int) -> Any:
    """`value` as a record keeps it: at most about `max_bytes` of JSON; beyond that texts are cut
    and lists and mappings shortened, each with a marker saying how much was left out."""
    if _json_size(value) <= max_bytes:
        return value
    return _cut(value, max(0, max_bytes - _MARKER_ROOM))


def _cut(value: Any, budget: int) -> Any:
    marker = "(setting `workflow_record_output_bytes`)"
    if isinstance(value, str):
        keep = budget
        # JSON escapes and UTF-8 make bytes outnumber characters: shrink until it fits.
        while keep > 0 and _json_size(value[:keep]) > budget:
            keep = keep * budget // max(1, _json_size(value[:keep])) - 1
        keep = max(0, keep)
        return value[:keep] + f"[… {len(value) - keep} more characters cut {marker}]"
    if isinstance(value, list | tuple):
        kept: list[Any] = []
        used = 2
        for item in value:
            size = _json_size(item) + 1
            if used + size > budget:
                if not kept and budget - used > _MARKER_ROOM:
                    kept.append(_cut(item, budget - used - _MARKER_ROOM))
                break
            kept.append(item)
            used += size
        if len(kept) < len(value):
            kept.append(f"[… {len(value) - len(kept)} more items cut {marker}]")
        return kept
    if isinstance(value, dict):
        entries: dict[Any, Any] = {}
        used = 2
        for key, item in value.items():
            size = _json_size(key) + _json_size(item) + 2
            if used + size > budget:
                if not entries and budget - used > _MARKER_ROOM:
                    entries[key] = _cut(item, budget - used - _MARKER_ROOM)
                break
            entries[key] = item
            used += size
        if len(entries) < len(value):
            entries["…"] = f"{len(value) - len(entries)} more entries cut {marker}"
        return entries
    text = repr(value)
    return _cut(text, budget) if len(text) > budget else text
