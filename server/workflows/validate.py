"""Everything that can be checked before a run: names, references, cycles, types, templates.

All problems are collected, each with its file, line and step, and reported together; a definition
with none becomes a `Plan`: the workflow, each step's dependencies and each step's output type.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError
from jinja2.sandbox import SandboxedEnvironment

from server.settings import WorkflowSettings
from server.workflows.definition import Step, Workflow
from server.workflows.loader import Positions, Problem, WorkflowError, parse
from server.workflows.templates import ROOTS, environment, references, sole_expression
from server.workflows.tools import TOOLS, out_of_range


@dataclass(frozen=True)
class Reads:
    """The inputs and step outputs a step's templates read (None: all of them, read by a computed
    name), so that a render is sent only what it can use."""

    inputs: frozenset[str] | None
    steps: frozenset[str] | None


# The key of the run's `outputs` templates in `Plan.reads`.
OUTPUTS = ""


@dataclass(frozen=True)
class Plan:
    """A validated workflow, ready to run."""

    workflow: Workflow
    needs: dict[str, frozenset[str]]
    types: dict[str, str]
    outputs: dict[str, str]
    reads: dict[str, Reads]


def _templates(step: Step) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    """(path within the step, template text, whether it is a bare expression) of every template."""
    if step.system is not None:
        yield ("system",), step.system, False
    if step.prompt is not None:
        yield ("prompt",), step.prompt, False
    if step.map is not None:
        expr = sole_expression(step.map)
        yield ("map",), expr if expr is not None else step.map, True
    yield from _nested(("with",), step.args)


def _nested(path: tuple[str | int, ...], value: Any) -> Iterator[tuple[tuple[str | int, ...], str, bool]]:
    if isinstance(value, str):
        yield path, value, False
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _nested((*path, i), item)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _nested((*path, str(key)), item)


class _Checker:
    def __init__(
        self, workflow: Workflow, positions: Positions, models: set[str] | None, settings: WorkflowSettings | None
    ) -> None:
        self.workflow = workflow
        self.settings = settings
        self.positions = positions
        self.models = models
        self.env: SandboxedEnvironment = environment()
        self.allowed = ROOTS | set(self.env.globals) | {"loop"}
        self.problems: list[Problem] = []
        self.needs: dict[str, set[str]] = {name: set() for name in workflow.steps}
        self.reads: dict[str, dict[str, set[str] | None]] = {}

    def read(self, step: str | None, root: str, name: str | None) -> None:
        """Note that the templates of `step` (None: the outputs) read `root.name` (`name` None: all)."""
        reads = self.reads.setdefault(step or OUTPUTS, {"inputs": set(), "steps": set()})
        names = reads[root]
        if name is None or names is None:
            reads[root] = None
        else:
            names.add(name)

    def problem(self, message: str, step: str | None, *path: str | int) -> None:
        base: tuple[str | int, ...] = ("steps", step) if step is not None else ()
        line = self.positions.line(*base, *path)
        self.problems.append(Problem(message, line, step, self.positions.file))

    def check_template(
        self, step: str | None, path: tuple[str | int, ...], text: str, expr: bool, mapped: bool
    ) -> None:
        try:
            refs = references(self.env, text, expression=expr)
        except TemplateSyntaxError as exc:
            base: tuple[str | int, ...] = ("steps", step, *path) if step else path
            start = self.positions.value_line(*base) or 1
            line = start + (exc.lineno - 1 if not expr else 0)
            self.problems.append(
                Problem(f"template error in `{path[-1]}`: {exc.message}", line, step, self.positions.file)
            )
            return
        for ref in refs:
            if ref.root in ("inputs", "steps"):
                self.read(step, ref.root, ref.name)
            if ref.root == "inputs" and ref.name not in self.workflow.inputs:
                self.problem(f"missing reference: `inputs.{ref.name}` is not a declared input", step, *path)
            elif ref.root == "steps":
                if ref.name not in self.workflow.steps:
                    self.problem(f"missing reference: there is no step `{ref.name}`", step, *path)
                elif step is not None:
                    self.needs[step].add(ref.name)
            elif ref.root in ("item", "index") and not mapped:
                self.problem(f"`{ref.root}` is only defined in a step with `map`", step, *path)
            elif ref.name is None and ref.root not in self.allowed:
                self.problem(f"missing reference: unknown name `{ref.root}` (use inputs.*, steps.*, item)", step, *path)

    def check_step(self, name: str, step: Step) -> None:
        if (step.model is None) == (step.tool is None):
            self.problem("a step needs exactly one of `model` or `tool`", name)
        if step.model is not None:
            if step.prompt is None:
                self.problem("a model step needs a `prompt`", name)
            if step.args:
                self.problem("`with` is for tool steps; a model step takes `prompt` and `params`", name, "with")
            self.check_model(step.model, name, "model")
        if step.tool is not None:
            for field in ("prompt", "system"):
                if getattr(step, field) is not None:
                    self.problem(f"`{field}` is for model steps; a tool takes its arguments in `with`", name, field)
            self.check_tool(name, step)
        for other in step.after:
            if other not in self.workflow.steps:
                self.problem(f"missing reference: `after` names no step `{other}`", name, "after")
            else:
                self.needs[name].add(other)
        for path, text, expr in _templates(step):
            self.check_template(name, path, text, expr, step.map is not None)

    def check_model(self, model: str, step: str, *path: str) -> None:
        if self.models is not None and model not in self.models:
            known = ", ".join(sorted(self.models)) or "none"
            self.problem(f"unknown service or model `{model}` (this server has: {known})", step, *path)

    def check_tool(self, name: str, step: Step) -> None:
        assert step.tool is not None
        tool = TOOLS[step.tool]
        for key in step.args:
            if key not in tool.args:
                self.problem(
                    f"tool `{step.tool}` has no argument `{key}` (it takes {', '.join(tool.args)})", name, "with", key
                )
        for key, arg in tool.args.items():
            if key not in step.args:
                if arg.required:
                    self.problem(f"tool `{step.tool}` needs the argument `{key}`", name, "with")
                continue
            value = step.args[key]
            kind = self.type_of(value)
            if kind != "any" and "any" not in arg.types and kind not in arg.types:
                wanted = " or ".join(sorted(arg.types))
                self.problem(f"type mismatch: `{key}` of `{step.tool}` takes {wanted}, got {kind}", name, "with", key)
            problem = out_of_range(arg, value, self.settings)
            if problem is not None:
                self.problem(f"`{key}` of `{step.tool}` {problem}", name, "with", key)
            if arg.model and isinstance(value, str) and sole_expression(value) is None:
                self.check_model(value, name, "with", key)

    def type_of(self, value: Any) -> str:
        """The type a value will have, where it can be known before the run."""
        if isinstance(value, bool):
            return "boolean"
        if isinstance(value, int):
            return "integer"
        if isinstance(value, float):
            return "number"
        if isinstance(value, list):
            return "list"
        if isinstance(value, dict):
            return "object"
        if not isinstance(value, str):
            return "any"
        expr = sole_expression(value)
        if expr is None:
            return "string"
        parts = expr.split(".")
        if len(parts) == 2 and parts[0] == "inputs" and parts[1] in self.workflow.inputs:
            return self.workflow.inputs[parts[1]].type
        if len(parts) == 2 and parts[0] == "steps" and parts[1] in self.workflow.steps:
            return self.step_type(parts[1])
        return "any"

    def step_type(self, name: str) -> str:
        step = self.workflow.steps[name]
        if step.map is not None:
            return "list"
        return TOOLS[step.tool].output if step.tool is not None else "string"

    def check_inputs(self) -> None:
        for name, spec in self.workflow.inputs.items():
            if spec.default is not None and spec.type not in ("any", "file"):
                kind = self.type_of(spec.default) if not isinstance(spec.default, str) else "string"
                if kind != spec.type and not (spec.type == "number" and kind == "integer"):
                    self.problem(
                        f"type mismatch: the default of `{name}` is {kind}, not {spec.type}", None, "inputs", name
                    )

    def check_maps(self) -> None:
        for name, step in self.workflow.steps.items():
            if step.map is not None:
                expr = sole_expression(step.map) or step.map
                kind = self.type_of("{{ " + expr + " }}")
                if kind not in ("list", "any"):
                    self.problem(f"type mismatch: `map` needs a list, `{expr}` is {kind}", name, "map")

    def order(self) -> None:
        sorter = graphlib.TopologicalSorter(self.needs)
        try:
            sorter.prepare()
        except graphlib.CycleError as exc:
            cycle: list[str] = exc.args[1]
            self.problem(f"cycle: {' -> '.join(cycle)}", cycle[0])


def check(
    workflow: Workflow, positions: Positions, models: set[str] | None, settings: WorkflowSettings | None = None
) -> Plan:
    """Every problem of a parsed definition at once (raises `WorkflowError`), or its plan.
    `models=None` skips the check of model names (no server to ask); `settings` (the limits)
    None skips the upper bounds of tool arguments."""
    checker = _Checker(workflow, positions, models, settings)
    checker.check_inputs()
    for name, step in workflow.steps.items():
        checker.check_step(name, step)
    for output, text in workflow.outputs.items():
        checker.check_template(None, ("outputs", output), text, False, False)
    checker.check_maps()
    checker.order()
    if checker.problems:
        raise WorkflowError(checker.problems)
    needs = {name: frozenset(deps) for name, deps in checker.needs.items()}
    types = {name: checker.step_type(name) for name in workflow.steps}
    outputs = dict(workflow.outputs)
    if not outputs:
        waited_for = set().union(*needs.values()) if needs else set()
        outputs = {name: "{{ steps." + name + " }}" for name in workflow.steps if name not in waited_for}
        for name in outputs:
            checker.read(None, "steps", name)
    reads = {
        key: Reads(*(frozenset(names) if names is not None else None for names in (r["inputs"], r["steps"])))
        for key, r in checker.reads.items()
    }
    return Plan(workflow, needs, types, outputs, reads)


def load(text: str, models: set[str] | None, file: str = "<workflow>") -> Plan:
    """Parse and check YAML text in one go."""
    workflow, positions = parse(text, file)
    return check(workflow, positions, models)
