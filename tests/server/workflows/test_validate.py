"""Validation: every kind of problem is found before a run, with its file, line and step."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from server.workflows.definition import json_schema
from server.workflows.loader import Problem, WorkflowError
from server.workflows.validate import load

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "workflows"
MODELS = {"smollm2-135m-instruct", "all-minilm-l6-v2"}


def problems(text: str, models: set[str] | None = MODELS) -> list[Problem]:
    with pytest.raises(WorkflowError) as caught:
        load(textwrap.dedent(text), models, "wf.yaml")
    return caught.value.problems


def only(text: str, models: set[str] | None = MODELS) -> Problem:
    found = problems(text, models)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_examples_are_valid(path: Path) -> None:
    plan = load(path.read_text(), MODELS, path.name)
    assert plan.workflow.name == path.stem
    assert plan.outputs


def test_dependencies_come_from_templates_and_after() -> None:
    plan = load(
        """
        name: deps
        inputs: {text: {type: string}}
        steps:
          a: {model: smollm2-135m-instruct, prompt: "{{ inputs.text }}"}
          b: {model: smollm2-135m-instruct, prompt: "{{ inputs.text }}"}
          c: {model: smollm2-135m-instruct, prompt: "{{ steps.a }} {{ steps['b'] }}"}
          d: {tool: format_json, with: {value: "{{ inputs.text }}"}, after: [c]}
        """,
        MODELS,
    )
    assert plan.needs == {"a": frozenset(), "b": frozenset(), "c": {"a", "b"}, "d": {"c"}}
    assert plan.types == {"a": "string", "b": "string", "c": "string", "d": "string"}
    # With no declared outputs, the steps nothing waits for are the outputs.
    assert list(plan.outputs) == ["d"]


def test_yaml_syntax_error_names_the_line() -> None:
    problem = only("name: x\nsteps:\n  a: {model: m\n  b: 1\n")
    assert "not valid YAML" in problem.message
    assert problem.line == 4 and problem.file == "wf.yaml"


def test_schema_error_names_line_and_step() -> None:
    problem = only(
        """
        name: x
        steps:
          first:
            model: smollm2-135m-instruct
            prompt: hi
            temprature: 0.5
        """
    )
    assert "unknown field `temprature`" in problem.message
    assert problem.step == "first" and problem.line == 7


@pytest.mark.parametrize(
    "field", ["max_tokens: 18446744073709551616", "top_k: 2147483648", "seed: -9223372036854775809"]
)
def test_integers_past_the_engines_range_are_schema_errors(field: str) -> None:
    """Step parameters are bounded as the API's are: no int reaches an engine unbounded."""
    problem = only(
        f"""
        name: x
        steps:
          first:
            model: smollm2-135m-instruct
            prompt: hi
            params:
              {field}
        """
    )
    assert problem.step == "first" and "Expected `int`" in problem.message


def test_every_bad_step_is_reported_with_its_field_line() -> None:
    found = problems(
        """
        name: x
        steps:
          a: {tool: chunk, with: {text: a}}
          b:
            model: smollm2-135m-instruct
            prompt: hi
            params: {max_tokens: lots}
          c: {tool: summon, with: {}}
        """
    )
    assert [(p.step, p.line) for p in found] == [("b", 8), ("c", 9)]
    assert "max_tokens" in found[0].message and "summon" in found[1].message


def test_bad_workflow_name_is_a_schema_error() -> None:
    problem = only("name: ../etc\nsteps: {a: {tool: format_json, with: {value: 1}}}\n")
    assert "name" in problem.message and problem.line == 1


def test_unknown_model_and_unknown_embedding_model() -> None:
    found = problems(
        """
        name: x
        steps:
          ask: {model: gpt-9, prompt: hi}
          vec: {tool: embed, with: {texts: [a, b], model: nomic-embed}}
        """
    )
    assert [(p.step, p.line) for p in found] == [("ask", 4), ("vec", 5)]
    assert "unknown service or model `gpt-9`" in found[0].message
    assert "smollm2-135m-instruct" in found[0].message
    assert "nomic-embed" in found[1].message


def test_model_names_are_not_checked_offline() -> None:
    load("name: x\nsteps: {ask: {model: gpt-9, prompt: hi}}\n", None)


def test_cycle() -> None:
    problem = only(
        """
        name: x
        steps:
          a: {model: smollm2-135m-instruct, prompt: "{{ steps.c }}"}
          b: {model: smollm2-135m-instruct, prompt: "{{ steps.a }}"}
          c: {model: smollm2-135m-instruct, prompt: "{{ steps.b }}"}
        """
    )
    assert problem.message.startswith("cycle: ")
    assert set(problem.message.removeprefix("cycle: ").split(" -> ")) == {"a", "b", "c"}


def test_missing_references() -> None:
    found = problems(
        """
        name: x
        inputs: {text: {type: string}}
        steps:
          a:
            model: smollm2-135m-instruct
            prompt: "{{ inputs.txt }} {{ steps.nope }} {{ secret }}"
            after: [ghost]
        outputs:
          out: "{{ steps.missing }}"
        """
    )
    messages = [p.message for p in found]
    assert any("`ghost`" in m for m in messages)
    assert any("`inputs.txt`" in m for m in messages)
    assert any("no step `nope`" in m for m in messages)
    assert any("unknown name `secret`" in m for m in messages)
    assert any("no step `missing`" in m for m in messages)
    out = next(p for p in found if "`missing`" in p.message)
    assert out.step is None and out.line == 10


def test_type_mismatches() -> None:
    found = problems(
        """
        name: x
        inputs:
          text: {type: string}
          n: {type: integer, default: many}
        steps:
          each: {model: smollm2-135m-instruct, prompt: "{{ item }}", map: inputs.text}
          pick:
            tool: retrieve
            with: {query: q, documents: "{{ inputs.text }}", model: all-minilm-l6-v2, top_k: "{{ steps.each }}"}
        """
    )
    messages = [p.message for p in found]
    assert any("default of `n` is string, not integer" in m for m in messages)
    assert any("`map` needs a list, `inputs.text` is string" in m for m in messages)
    assert any("`documents` of `retrieve` takes list, got string" in m for m in messages)
    assert any("`top_k` of `retrieve` takes integer, got list" in m for m in messages)


def test_template_syntax_error_names_the_line_inside_a_block() -> None:
    problem = only(
        """
        name: x
        steps:
          a:
            model: smollm2-135m-instruct
            prompt: |
              first line
              {% for x in y %}
              never closed
        """
    )
    assert problem.message.startswith("template error in `prompt`")
    assert problem.step == "a"
    # The block starts on line 7; the `for` tag that is never closed is on line 8.
    assert problem.line is not None and 7 <= problem.line <= 9


def test_step_shape_problems_are_all_reported() -> None:
    found = problems(
        """
        name: x
        steps:
          both: {model: smollm2-135m-instruct, tool: chunk, prompt: hi, with: {text: a}}
          neither: {prompt: hi}
          noprompt: {model: smollm2-135m-instruct}
          tool_args: {tool: chunk, with: {txt: a}}
          stray_item: {model: smollm2-135m-instruct, prompt: "{{ item }}"}
        """
    )
    steps = {p.step for p in found}
    assert {"both", "neither", "noprompt", "tool_args", "stray_item"} <= steps
    messages = " | ".join(p.message for p in found)
    assert "exactly one of `model` or `tool`" in messages
    assert "needs a `prompt`" in messages
    assert "has no argument `txt`" in messages
    assert "needs the argument `text`" in messages
    assert "`item` is only defined in a step with `map`" in messages


def test_problem_text_names_file_line_and_step() -> None:
    problem = only("name: x\nsteps:\n  ask: {model: gpt-9, prompt: hi}\n")
    assert str(problem).startswith("wf.yaml:3: step `ask`: unknown service or model `gpt-9`")


def test_json_schema_describes_the_format() -> None:
    schema = json_schema()
    workflow = schema["$defs"]["Workflow"]
    assert set(workflow["required"]) == {"name", "steps"}
    step = schema["$defs"]["Step"]["properties"]
    assert {"model", "tool", "prompt", "with", "map", "params"} <= set(step)


def test_yaml_aliases_are_refused() -> None:
    problem = only("name: x\nlol: &a [1, 2]\nsteps: {a: {tool: format_json, with: {value: *a}}}\n")
    assert "aliases" in problem.message and problem.line == 3
