"""The DAG runner with a scripted model gateway, where timing and failures must be controlled."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from typing import Any

from adapters.base import GenerationRequest
from server.settings import SamplingDefaults, WorkflowSettings
from server.workflows.executor import MAP_CONCURRENCY, Run
from server.workflows.gateway import StepFailed, TextChunk
from server.workflows.jobs import JobPool
from server.workflows.records import RunEvent, RunRecord
from server.workflows.validate import load


class ScriptedGateway:
    """Answers each prompt with its own words, one per 10 ms; a prompt containing FAIL fails."""

    def __init__(self) -> None:
        self.running = 0
        self.most_running = 0
        self.closed = 0
        self.priorities: list[int | None] = []

    def known_models(self) -> set[str]:
        return {"echo"}

    def sampling_defaults(self, model: str) -> SamplingDefaults | None:
        return SamplingDefaults(temperature=0.0)

    async def generate(
        self, model: str, request: GenerationRequest, priority: int | None = None
    ) -> AsyncIterator[TextChunk]:
        self.priorities.append(priority)
        text = request.messages[-1].content if request.messages else request.prompt or ""
        self.running += 1
        self.most_running = max(self.most_running, self.running)
        try:
            for i, word in enumerate(text.split()):
                await asyncio.sleep(0.01)
                if word == "FAIL":
                    raise StepFailed("the model refused")
                yield TextChunk(word + " ", 1, 5 if i == 0 else None)
        finally:
            self.running -= 1
            self.closed += 1

    async def embed(self, model: str, texts: list[str]) -> list[list[float]]:
        raise StepFailed("no embeddings here")


def run(
    definition: str, inputs: dict[str, Any], priority: int | None = None
) -> tuple[RunRecord, list[RunEvent], ScriptedGateway]:
    gateway = ScriptedGateway()
    plan = load(textwrap.dedent(definition), gateway.known_models())

    async def go() -> tuple[RunRecord, list[RunEvent]]:
        settings = WorkflowSettings()
        jobs = JobPool(settings)
        try:
            workflow_run = Run(plan, inputs, gateway, SamplingDefaults(), priority, jobs=jobs, settings=settings)
            queue = workflow_run.subscribe()
            workflow_run.start()
            events = [event async for event in workflow_run.events(queue)]
            return await workflow_run.wait(), events
        finally:
            await jobs.close()

    record, events = asyncio.run(go())
    return record, events, gateway


def test_map_runs_items_concurrently_but_bounded() -> None:
    items = [f"item {i}" for i in range(MAP_CONCURRENCY * 2)]
    record, events, gateway = run(
        """
        name: fan
        inputs: {xs: {type: list}}
        steps:
          each: {model: echo, prompt: "{{ index }}: {{ item }}", map: inputs.xs}
        """,
        {"xs": items},
    )
    assert record.status == "succeeded" and record.outputs is not None
    assert [o.strip() for o in record.outputs["each"]] == [f"{i}: {x}" for i, x in enumerate(items)]
    assert gateway.most_running == MAP_CONCURRENCY
    deltas = [e for e in events if e.type == "step.delta"]
    assert {e.item for e in deltas} == set(range(len(items)))
    assert record.steps["each"].usage.prompt_tokens == 5 * len(items)


def test_a_failing_map_item_stops_its_siblings_and_names_the_step() -> None:
    record, events, gateway = run(
        """
        name: fan
        inputs: {xs: {type: list}}
        steps:
          each: {model: echo, prompt: "{{ item }}", map: inputs.xs}
        """,
        {"xs": ["a b c d e f g h i j k l", "x FAIL", "m n o p q r s t u v w"]},
    )
    assert record.status == "failed" and record.error is not None
    assert record.error.step == "each" and "the model refused" in record.error.message
    assert [e.type for e in events][-2:] == ["step.failed", "run.failed"]
    # Every generation was closed (the engine requests cancelled), none ran to its end.
    assert gateway.running == 0 and gateway.closed == 3
    assert record.steps["each"].usage.completion_tokens < 12 + 11


def test_runtime_template_errors_fail_the_step() -> None:
    record, _, _ = run(
        """
        name: tmpl
        inputs: {data: {type: object}}
        steps:
          use: {model: echo, prompt: "{{ inputs.data.missing }}"}
        """,
        {"data": {}},
    )
    assert record.status == "failed" and record.error is not None
    assert record.error.step == "use" and "template error" in record.error.message


def test_sole_expressions_keep_their_type_between_steps() -> None:
    record, _, _ = run(
        """
        name: types
        inputs: {docs: {type: list}, n: {type: integer, default: 1}}
        steps:
          pieces: {tool: chunk, with: {text: "{{ inputs.docs }}", size: 5, overlap: 0}}
          count: {tool: format_json, with: {value: {n: "{{ steps.pieces | length }}", first: "{{ steps.pieces[0] }}"}}}
        """,
        {"docs": ["aaa bbb", "ccc"]},
    )
    assert record.status == "succeeded"
    assert record.steps["pieces"].output == ["aaa", "bbb", "ccc"]
    assert record.outputs == {"count": '{\n  "n": 3,\n  "first": "aaa"\n}'}


def test_templates_cannot_build_huge_values() -> None:
    record, _, _ = run(
        """
        name: bomb
        steps:
          grow: {tool: format_json, with: {value: "{{ 'x' * 10000000 }}"}}
        """,
        {},
    )
    assert record.status == "failed" and record.error is not None
    assert "more than" in record.error.message


TWO_STEPS = """
    name: prio
    {priority}
    steps:
      first: {{model: echo, prompt: "a b"}}
      second: {{model: echo, prompt: "{{{{ steps.first }}}} c", mode: completion}}
    """


def test_model_steps_are_admitted_at_the_run_or_workflow_priority() -> None:
    assert run(TWO_STEPS.format(priority=""), {})[2].priorities == [None, None]  # each service's own
    assert run(TWO_STEPS.format(priority="priority: -10"), {})[2].priorities == [-10, -10]
    assert run(TWO_STEPS.format(priority="priority: -10"), {}, priority=3)[2].priorities == [3, 3]
