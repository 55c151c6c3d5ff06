"""Runs a validated workflow: a DAG of steps on asyncio, with events as it goes.

Steps whose dependencies are done start at once, so independent steps run concurrently; a `map`
step runs its items concurrently too (bounded). The first step to fail cancels whatever still
runs and fails the run with that step named; the record keeps every step that finished, each
output cut to `workflow_record_output_bytes`. Templates render in job processes (jobs.py), each
sent only the inputs and step outputs it reads.
"""

from __future__ import annotations

import asyncio
import graphlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from adapters.base import ChatMessage, GenerationRequest, SamplingParams
from server.settings import SamplingDefaults, WorkflowSettings
from server.workflows.definition import Step
from server.workflows.gateway import ModelGateway, StepFailed
from server.workflows.jobs import JobFailed, JobPool
from server.workflows.records import (
    RunError,
    RunEvent,
    RunRecord,
    StepRecord,
    TokenCounts,
    bounded,
    recorded_inputs,
)
from server.workflows.templates import sole_expression
from server.workflows.tools import FileInput, ToolContext, run_tool
from server.workflows.validate import OUTPUTS, Plan, Reads

# Items of one `map` step generating at once; more would only queue inside the engine.
MAP_CONCURRENCY = 8


def sampling(step: Step, defaults: SamplingDefaults) -> SamplingParams:
    """A model step's decoding settings, the server's defaults for what it leaves out."""
    p = step.params
    return SamplingParams(
        max_tokens=p.max_tokens,
        default_max_tokens=defaults.max_tokens,
        temperature=defaults.temperature if p.temperature is None else p.temperature,
        top_p=defaults.top_p if p.top_p is None else p.top_p,
        top_k=defaults.top_k if p.top_k is None else p.top_k,
        min_p=defaults.min_p,
        seed=p.seed,
        stop=tuple(p.stop or ()),
    )


class Run:
    """One run of a plan. `start()` it, read `events()` and/or `wait()` for the record."""

    def __init__(
        self,
        plan: Plan,
        inputs: dict[str, Any],
        gateway: ModelGateway,
        defaults: SamplingDefaults,
        priority: int | None = None,
        *,
        jobs: JobPool,
        settings: WorkflowSettings,
    ) -> None:
        self.plan = plan
        self.inputs = inputs
        self.gateway = gateway
        self.defaults = defaults
        # Admission priority of its model steps (None: each service's own).
        self.priority = plan.workflow.priority if priority is None else priority
        self.jobs = jobs
        self.settings = settings
        self.tools = ToolContext(gateway, settings, self._extract)
        self.record = RunRecord(
            id=f"run_{uuid.uuid4().hex[:24]}",
            workflow=plan.workflow.name,
            created_at=time.time(),
            inputs=recorded_inputs(inputs, settings.workflow_record_output_bytes),
            steps={name: StepRecord() for name in plan.workflow.steps},
        )
        self.outputs: dict[str, Any] = {}
        self._listeners: list[asyncio.Queue[RunEvent | None]] = []
        self._task: asyncio.Task[None] | None = None
        self._cancel_requested = False

    @property
    def id(self) -> str:
        """The run's id."""
        return self.record.id

    def start(self) -> None:
        """Begin running in the background."""
        self._task = asyncio.create_task(self._main())

    def cancel(self) -> bool:
        """Stop the run; False if it had already ended."""
        if self._task is None or self._task.done():
            return False
        self._cancel_requested = True
        self._task.cancel()
        return True

    async def wait(self) -> RunRecord:
        """The record once the run has ended."""
        assert self._task is not None
        # asyncio.wait neither raises the run's own outcome nor cancels the run when the waiter
        # is cancelled (a client that went away): that is for the waiter to decide.
        await asyncio.wait({self._task})
        return self.record

    def subscribe(self) -> asyncio.Queue[RunEvent | None]:
        """A queue of every event from now on; None marks the end."""
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
        self._listeners.append(queue)
        if self.record.status != "running":
            queue.put_nowait(None)
        return queue

    async def events(self, queue: asyncio.Queue[RunEvent | None]) -> AsyncIterator[RunEvent]:
        """The events of a subscription, until the run has ended."""
        while (event := await queue.get()) is not None:
            yield event

    def _emit(self, type: Any, **fields: Any) -> None:
        event = RunEvent(type=type, run_id=self.id, **fields)
        for queue in self._listeners:
            queue.put_nowait(event)

    async def _main(self) -> None:
        self._emit("run.started")
        running: dict[asyncio.Task[Any], str] = {}
        sorter = graphlib.TopologicalSorter(self.plan.needs)
        sorter.prepare()
        try:
            while sorter.is_active():
                for name in sorter.get_ready():
                    running[asyncio.create_task(self._step(name))] = name
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    name = running.pop(task)
                    error = task.exception()
                    if error is not None:
                        raise _Failed(name, str(error) or type(error).__name__) from error
                    sorter.done(name)
            outputs = {k: await self._render(v, OUTPUTS, None) for k, v in self.plan.outputs.items()}
            self.record.outputs = bounded(outputs, self.settings.workflow_record_output_bytes)
            self._end("succeeded", None)
        except _Failed as failure:
            await self._stop(running, "cancelled")
            self._end("failed", RunError(message=failure.message, step=failure.step))
        except StepFailed as exc:
            self._end("failed", RunError(message=f"outputs: {exc}"))
        except asyncio.CancelledError:
            await self._stop(running, "cancelled")
            self._end("cancelled", RunError(message="the run was cancelled"))
        except Exception as exc:
            await self._stop(running, "cancelled")
            self._end("failed", RunError(message=f"internal error: {exc!r}"))

    async def _stop(self, running: dict[asyncio.Task[Any], str], status: Any) -> None:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        for step in self.record.steps.values():
            if step.status == "running":
                step.status = status
                self._finish_timing(step)
            elif step.status == "pending":
                step.status = "skipped"

    def _end(self, status: Any, error: RunError | None) -> None:
        record = self.record
        record.status = status
        record.error = error
        record.finished_at = time.time()
        record.duration_s = round(record.finished_at - record.created_at, 4)
        record.usage = TokenCounts(
            prompt_tokens=sum(s.usage.prompt_tokens for s in record.steps.values()),
            completion_tokens=sum(s.usage.completion_tokens for s in record.steps.values()),
        )
        kind = {"succeeded": "run.finished", "failed": "run.failed", "cancelled": "run.cancelled"}[status]
        self._emit(kind, run=record, error=error.message if error else None, step=error.step if error else None)
        for queue in self._listeners:
            queue.put_nowait(None)

    def _context(self, key: str, extra: dict[str, Any] | None) -> dict[str, Any]:
        """What the templates of `key` (a step, or OUTPUTS) read: only that is sent to a job."""
        # A step whose templates read nothing has no entry: it is sent nothing.
        reads = self.plan.reads.get(key, Reads(frozenset(), frozenset()))
        inputs, steps = self.inputs, self.outputs
        if reads.inputs is not None:
            inputs = {name: value for name, value in inputs.items() if name in reads.inputs}
        if reads.steps is not None:
            steps = {name: value for name, value in steps.items() if name in reads.steps}
        return {"inputs": inputs, "steps": dict(steps), **(extra or {})}

    async def _render(self, value: Any, key: str, extra: dict[str, Any] | None) -> Any:
        try:
            return await self.jobs.run("render", value, self._context(key, extra), self.settings, False)
        except JobFailed as exc:
            raise StepFailed(f"template error: {exc}") from exc

    async def _extract(self, file: FileInput) -> str:
        try:
            text: str = await self.jobs.run("extract", file, self.settings)
        except JobFailed as exc:
            raise StepFailed(f"cannot read `{file.filename}`: {exc}") from exc
        return text

    async def _step(self, name: str) -> None:
        step = self.plan.workflow.steps[name]
        record = self.record.steps[name]
        record.status = "running"
        record.started_at = time.time()
        self._emit("step.started", step=name)
        try:
            if step.map is None:
                (rendered,) = await self._render_step(name, step, None)
                output = await self._once(name, step, record, None, rendered)
            else:
                items = await self._render("{{ " + (sole_expression(step.map) or step.map) + " }}", name, None)
                if not isinstance(items, list):
                    raise StepFailed(f"`map` must give a list, it gave {type(items).__name__}")
                most = self.settings.workflow_max_map_items
                if len(items) > most:
                    raise StepFailed(
                        f"`map` gave {len(items)} items; at most {most} (setting `workflow_max_map_items`)"
                    )
                record.items = len(items)
                limit = asyncio.Semaphore(MAP_CONCURRENCY)

                # Every item's templates in one job: one round trip, not one per item.
                every = await self._render_step(name, step, items)

                async def one(index: int) -> Any:
                    async with limit:
                        return await self._once(name, step, record, index, every[index])

                output = await _gather(*(one(i) for i in range(len(items))))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            record.status = "failed"
            record.error = str(exc) if isinstance(exc, StepFailed) else f"internal error: {exc!r}"
            self._finish_timing(record)
            self._emit("step.failed", step=name, error=record.error)
            raise StepFailed(record.error) from exc
        self.outputs[name] = output
        record.output = bounded(output, self.settings.workflow_record_output_bytes)
        record.status = "succeeded"
        self._finish_timing(record)
        self._emit("step.finished", step=name, output=record.output, duration_s=record.duration_s)

    @staticmethod
    def _finish_timing(record: StepRecord) -> None:
        record.finished_at = time.time()
        record.duration_s = round(record.finished_at - (record.started_at or record.finished_at), 4)

    async def _render_step(self, name: str, step: Step, items: list[Any] | None) -> list[dict[str, Any]]:
        """The rendered templates of a step (`args`, or `prompt` and `system`), once per item of a
        `map` (or once), from one job."""
        if step.tool is not None:
            templates: dict[str, tuple[Any, bool]] = {"args": (step.args, False)}
        else:
            assert step.prompt is not None
            templates = {"prompt": (step.prompt, True)}
            if step.system is not None:
                templates["system"] = (step.system, True)
        try:
            rendered: list[dict[str, Any]] = await self.jobs.run(
                "render_step", templates, self._context(name, None), items, self.settings
            )
        except JobFailed as exc:
            raise StepFailed(f"template error: {exc}") from exc
        return rendered

    async def _once(self, name: str, step: Step, record: StepRecord, item: int | None, rendered: dict[str, Any]) -> Any:
        if step.tool is not None:
            return await run_tool(step.tool, self.tools, rendered["args"])
        assert step.model is not None
        prompt: str = rendered["prompt"]
        system: str | None = rendered.get("system")
        params = sampling(step, self.gateway.sampling_defaults(step.model) or self.defaults)
        if step.mode == "chat":
            turns = ((ChatMessage("system", system),) if system else ()) + (ChatMessage("user", prompt),)
            request = GenerationRequest(request_id=0, params=params, messages=turns)
        else:
            request = GenerationRequest(request_id=0, params=params, prompt=prompt)
        stream = self.gateway.generate(step.model, request, self.priority)
        parts: list[str] = []
        async for chunk in stream:
            record.usage.completion_tokens += chunk.tokens
            if chunk.prompt_tokens is not None:
                record.usage.prompt_tokens += chunk.prompt_tokens
            if chunk.text:
                parts.append(chunk.text)
                self._emit("step.delta", step=name, item=item, text=chunk.text)
        return "".join(parts)


class _Failed(Exception):
    def __init__(self, step: str, message: str) -> None:
        super().__init__(message)
        self.step = step
        self.message = message


async def _gather(*coros: Any) -> list[Any]:
    """Like asyncio.gather, but the first failure cancels the other items."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
