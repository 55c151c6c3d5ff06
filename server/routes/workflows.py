"""/v1/workflows: manage YAML workflow definitions and run them (JSON, or SSE step events)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

import msgspec
from litestar import Request, Router, delete, get, post, put
from litestar.datastructures import State, UploadFile
from litestar.di import Provide
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter

from server.http import sse
from server.http.disconnect import unless_disconnected
from server.http.errors import APIError, ErrorResponse, invalid_request
from server.http.openapi import StreamingOperation
from server.limits.json_body import check_json_depth, decode_json
from server.serving.services import Priority
from server.settings import LimitSettings
from server.workflows.definition import json_schema
from server.workflows.executor import Run
from server.workflows.manager import WorkflowManager
from server.workflows.records import RunEvent, RunRecord, RunRequest
from server.workflows.tools import FileInput
from server.workflows.validate import Plan


def _error(description: str) -> ResponseSpec:
    return ResponseSpec(data_container=ErrorResponse, description=description, generate_examples=False)


_BAD = {400: _error("Invalid request or workflow (every problem, with file, line and step)")}
_MISSING = {404: _error("No such workflow or run")}
_YAML = {415: _error("The body is not YAML (send Content-Type: application/yaml)"), 413: _error("Body too large")}
_TAKEN = {409: _error("A workflow of that name exists")}

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml", "text/plain")


def _service(state: State) -> WorkflowManager:
    service: WorkflowManager = state.workflows
    return service


def _summary(plan: Plan, text: str | None = None) -> dict[str, Any]:
    workflow = plan.workflow
    body: dict[str, Any] = {
        "object": "workflow",
        "name": workflow.name,
        "description": workflow.description,
        "inputs": msgspec.to_builtins(workflow.inputs),
        "steps": list(workflow.steps),
        "outputs": list(plan.outputs),
    }
    if text is not None:
        body["definition"] = text
    return body


async def _yaml_body(request: Request[Any, Any, Any]) -> str:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in YAML_TYPES:
        raise APIError(
            415,
            f"Send the workflow's YAML with Content-Type: application/yaml (got `{media or 'none'}`).",
            code="unsupported_media_type",
        )
    try:
        return (await request.body()).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise invalid_request("The workflow must be UTF-8 text.") from exc


@get("/schema", summary="JSON Schema of the workflow format")
async def workflow_schema() -> dict[str, Any]:
    """The JSON Schema a workflow definition (as YAML or JSON) must satisfy."""
    return json_schema()


@get("/", summary="List workflows")
async def list_workflows(workflows: WorkflowManager) -> dict[str, Any]:
    """Every stored workflow; one that no longer validates is listed with its problems."""
    data: list[dict[str, Any]] = []
    for name in await asyncio.to_thread(workflows.store.names):
        try:
            data.append(_summary((await workflows.stored_plan(name))[1]))
        except APIError as exc:
            data.append({"object": "workflow", "name": name, "error": exc.detail.message})
    return {"object": "list", "data": data}


@post("/", summary="Create a workflow", status_code=201, responses={**_BAD, **_YAML, **_TAKEN})
async def create_workflow(request: Request[Any, Any, Any], workflows: WorkflowManager) -> dict[str, Any]:
    """Validate and store a new workflow (409 if the name is taken)."""
    text = await _yaml_body(request)
    return _summary(await workflows.save(text, None, replace=False), text)


@get("/{name:str}", summary="Get a workflow", responses={**_BAD, **_MISSING})
async def get_workflow(name: str, workflows: WorkflowManager) -> dict[str, Any]:
    """A stored workflow: its inputs, steps, outputs and YAML."""
    text, plan = await workflows.stored_plan(name)
    return _summary(plan, text)


@put("/{name:str}", summary="Create or replace a workflow", responses={**_BAD, **_YAML})
async def put_workflow(name: str, request: Request[Any, Any, Any], workflows: WorkflowManager) -> dict[str, Any]:
    """Validate and store the workflow `name`, replacing any earlier definition."""
    workflows.check_name(name)
    text = await _yaml_body(request)
    return _summary(await workflows.save(text, name, replace=True), text)


@delete("/{name:str}", summary="Delete a workflow", status_code=200, responses={**_BAD, **_MISSING})
async def delete_workflow(name: str, workflows: WorkflowManager) -> dict[str, Any]:
    """Remove a stored workflow; its run records stay."""
    workflows.check_name(name)
    if not await asyncio.to_thread(workflows.store.delete, name):
        raise APIError(404, f"No workflow named `{name}`.", param="name", code="workflow_not_found")
    return {"object": "workflow.deleted", "name": name, "deleted": True}


async def _run_request(request: Request[Any, Any, Any], limits: LimitSettings) -> RunRequest:
    """The run's inputs from JSON, or from a multipart form: an `inputs` JSON field, a `stream`
    field, and one part per file input (or plain text fields for other inputs); JSON of either
    kind is bounded by `limits` (its depth) before it is decoded."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raw = await request.body()
        try:
            return decode_json(raw or b"{}", RunRequest, limits)
        except msgspec.ValidationError as exc:
            raise invalid_request(f"Invalid request body: {exc}") from exc
        except msgspec.DecodeError as exc:
            raise invalid_request(f"We could not parse the JSON body of your request: {exc}") from exc
    form = await request.form()
    inputs: dict[str, Any] = {}
    stream = False
    priority: int | None = None
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read()
            inputs[key] = FileInput(value.filename or key, data, value.content_type or "application/octet-stream")
        elif key == "inputs":
            check_json_depth(str(value).encode(), limits)
            try:
                given = json.loads(value)
            except json.JSONDecodeError as exc:
                raise invalid_request(f"The `inputs` field is not JSON: {exc}", param="inputs") from exc
            if not isinstance(given, dict):
                raise invalid_request("The `inputs` field must be a JSON object.", param="inputs")
            inputs = {**given, **inputs}
        elif key == "stream":
            stream = str(value).lower() in ("1", "true", "yes")
        elif key == "priority":
            priority = _form_priority(str(value))
        else:
            inputs[key] = value
    return RunRequest(inputs=inputs, stream=stream, priority=priority)


def _form_priority(value: str) -> int:
    """A multipart `priority` field, checked as the JSON body's is."""
    try:
        return msgspec.json.decode(value, type=Priority)
    except msgspec.MsgspecError:
        raise invalid_request("`priority` must be an integer from -1000 to 1000.", param="priority") from None


async def _events(run: Run, queue: asyncio.Queue[RunEvent | None]) -> AsyncIterator[bytes]:
    encoder = sse.EventEncoder()
    try:
        async for event in run.events(queue):
            yield encoder.event(event)
    finally:
        # A client that goes away mid-stream takes its run with it.
        run.cancel()
    yield sse.DONE


async def _whole(run: Run) -> RunRecord:
    try:
        return await run.wait()
    except asyncio.CancelledError:
        run.cancel()
        raise


@post(
    "/{name:str}/runs",
    summary="Run a workflow",
    status_code=200,
    operation_class=StreamingOperation,
    responses={
        **_BAD,
        **_MISSING,
        413: _error("Body too large"),
        200: ResponseSpec(
            data_container=RunRecord,
            description="The run's record once it ends; with `stream: true`, a text/event-stream of run events",
        ),
    },
)
async def create_run(
    name: str, request: Request[Any, Any, Any], workflows: WorkflowManager, limits: LimitSettings
) -> RunRecord | sse.EventStream:
    """Run a stored workflow: the run's record once it ends, or with `stream: true` its events."""
    body = await _run_request(request, limits)
    _, plan = await workflows.stored_plan(name)
    run = await workflows.start(plan, body.inputs, body.priority)
    if body.stream:
        queue = run.subscribe()
        workflows.launch(run)
        return sse.EventStream(_events(run, queue))
    workflows.launch(run)
    return await unless_disconnected(request, _whole(run))


@get("/{name:str}/runs", summary="List runs of a workflow", responses={**_BAD})
async def list_runs(
    name: str, workflows: WorkflowManager, limit: Annotated[int, Parameter(ge=1, le=200)] = 20
) -> dict[str, Any]:
    """Runs in flight, then the newest finished ones (at most `limit`)."""
    workflows.check_name(name)
    return {"object": "list", "data": await workflows.runs(name, limit)}


@get("/{name:str}/runs/{run_id:str}", summary="Get a run", responses={**_BAD, **_MISSING})
async def get_run(name: str, run_id: str, workflows: WorkflowManager) -> RunRecord:
    """The record of a run: inputs, each step's output, timings and token counts (live while it runs)."""
    return await workflows.record(name, run_id)


@post("/{name:str}/runs/{run_id:str}/cancel", summary="Cancel a run", status_code=200, responses={**_BAD, **_MISSING})
async def cancel_run(name: str, run_id: str, workflows: WorkflowManager) -> RunRecord:
    """Stop a run in flight; its record keeps the steps that finished."""
    return await workflows.cancel(name, run_id)


router = Router(
    path="/v1/workflows",
    route_handlers=[
        workflow_schema,
        list_workflows,
        create_workflow,
        get_workflow,
        put_workflow,
        delete_workflow,
        create_run,
        list_runs,
        get_run,
        cancel_run,
    ],
    dependencies={"workflows": Provide(_service, sync_to_thread=False)},
    tags=["workflows"],
)
