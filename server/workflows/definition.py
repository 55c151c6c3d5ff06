"""The workflow definition format: msgspec Structs, and the JSON Schema they publish.

A workflow has a name, typed inputs, steps and declared outputs. A step either asks a model (a
service name or a model id) with a prompt template, or runs a built-in tool with templated
arguments. Steps refer to inputs and to other steps' outputs through Jinja2 templates
(`{{ inputs.text }}`, `{{ steps.summarize }}`); those references are the edges of the DAG.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from server.limits import ranges
from server.serving.services import Priority

# A workflow, step, input or output name: safe as a file name and as a template identifier.
NAME_PATTERN = "^[a-z][a-z0-9_-]{0,63}$"
IDENT_PATTERN = "^[A-Za-z_][A-Za-z0-9_]{0,63}$"

Name = Annotated[str, Meta(pattern=NAME_PATTERN, description="Lower-case letters, digits, `_` and `-`")]
Ident = Annotated[str, Meta(pattern=IDENT_PATTERN, description="A template identifier")]

InputType = Literal["string", "number", "integer", "boolean", "list", "object", "file"]
ToolName = Literal["extract_text", "chunk", "embed", "retrieve", "format_json"]


class Input(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A declared input: its type, and a default that makes it optional."""

    type: InputType = "string"
    description: str = ""
    default: Any = None
    required: bool | None = None

    @property
    def is_required(self) -> bool:
        """Required unless it says otherwise or has a default."""
        return self.required if self.required is not None else self.default is None


class Params(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Decoding settings of a model step; what is left out gets the server's defaults."""

    # Bounded as the API's are (server/limits/ranges.py): no int reaches an engine unbounded.
    max_tokens: ranges.TokenCount | None = None
    temperature: Annotated[float, Meta(ge=0, le=2)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: ranges.Count | None = None
    seed: ranges.Seed | None = None
    stop: list[str] | None = None


class Step(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One node of the DAG: a model call (`model` + `prompt`) or a built-in tool (`tool` + `with`)."""

    model: str | None = msgspec.field(default=None)
    tool: ToolName | None = None
    # chat: `system` and `prompt` become the messages (the model's chat template applies);
    # completion: `prompt` is sent as raw text.
    mode: Literal["chat", "completion"] = "chat"
    system: str | None = None
    prompt: str | None = None
    params: Params = msgspec.field(default_factory=Params)
    args: dict[str, Any] = msgspec.field(default_factory=dict, name="with")
    # An expression that yields a list: the step runs once per item (bound as `item`, its index as
    # `index`), concurrently, and its output is the list of the items' outputs.
    map: str | None = None
    # Steps to wait for beyond those the templates refer to.
    after: list[str] = msgspec.field(default_factory=list)
    description: str = ""


class Workflow(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A whole definition, as written in YAML."""

    name: Name
    description: str = ""
    version: int = 1
    inputs: dict[Ident, Input] = msgspec.field(default_factory=dict)
    steps: dict[Ident, Step]
    # Output name -> template; when left out, the outputs are the steps nothing else waits for.
    outputs: dict[Ident, str] = msgspec.field(default_factory=dict)
    # Admission priority of every model step (a run's own `priority` overrides it); left out, each
    # step gets its service's priority. Workflows are background work: set it below interactive.
    priority: Priority | None = None


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the definition format, as published at GET /v1/workflows/schema."""
    schema: dict[str, Any] = msgspec.json.schema(Workflow)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Hearth workflow"
    return schema
