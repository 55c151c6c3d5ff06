"""`OutputConstraint` -> OpenVINO GenAI's `StructuredOutputConfig` (xgrammar inside).

The server validates schemas before they get here: xgrammar compiles a grammar inside the batch
step, where a failure would take every request of the batch down with it. The worker checks them
again (`constraint_problem`) before a request joins the batch, so that one no route validated
fails alone.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from adapters.base import OutputConstraint
from adapters.schema_bounds import unsatisfiable

if TYPE_CHECKING:
    import openvino_genai as ov_genai


def structured_output_config(constraint: OutputConstraint) -> ov_genai.StructuredOutputConfig:
    """The grammar config that enforces `constraint`."""
    import openvino_genai as ov_genai

    config = ov_genai.StructuredOutputConfig
    if constraint.json_schema is not None and not constraint.tags:
        return config(json_schema=constraint.json_schema)
    tags = [
        config.Tag(begin=tag.begin, content=config.JSONSchema(tag.parameters), end=tag.end) for tag in constraint.tags
    ]
    if constraint.json_schema is not None:
        # One call, or the answer as one JSON document. Measured: xgrammar refuses a union of
        # repeatable calls (unlimited) with a JSON document (limited), inside the batch step.
        return config(structural_tags_config=config.Union([*tags, config.JSONSchema(constraint.json_schema)]))
    if constraint.tags_only:
        # Nothing but calls, one per line; at least one.
        structure = config.TagsWithSeparator(tags, "\n", at_least_one=True, stop_after_first=constraint.single)
        return config(structural_tags_config=structure)
    triggered = config.TriggeredTags([constraint.trigger], tags, at_least_one=False, stop_after_first=constraint.single)
    return config(structural_tags_config=triggered)


def constraint_problem(constraint: OutputConstraint) -> str | None:
    """Why the grammar engine would fail on `constraint`'s schemas, or None if it would not."""
    schemas = [("response format", constraint.json_schema)] if constraint.json_schema is not None else []
    schemas += [(f"parameters of tool {i}", tag.parameters) for i, tag in enumerate(constraint.tags)]
    for name, text in schemas:
        try:
            problem = unsatisfiable(json.loads(text))
        except (ValueError, RecursionError) as exc:
            problem = f"not a JSON schema ({type(exc).__name__})"
        if problem is not None:
            return f"{name}: {problem}"
    return None
