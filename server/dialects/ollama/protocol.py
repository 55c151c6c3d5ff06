"""Ollama's wire format (its docs/api.md) as msgspec Structs, named as Ollama names them.

Requests are validated once, here, by type and range. Unknown fields are ignored, as Ollama does,
so that clients sending newer fields keep working. Response Structs leave out what is unset
(`omit_defaults`), as Ollama's `omitempty` fields do.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from server.inference.protocol import Penalty, Seed, Temperature, ToolChoice, TopP
from server.limits.ranges import INT32_MAX, Count, Int32

# Continue and others send their whole stop list; the engine matches any number, the bound keeps a
# request's matching work small.
Stop = Annotated[list[Annotated[str, Meta(max_length=256)]], Meta(max_length=64)]
Duration = float | str
# "json", a JSON schema, or "" (no format) as some clients send.
Format = Literal["", "json"] | dict[str, Any]
Think = bool | Literal["low", "medium", "high"]


# --- requests --------------------------------------------------------------------------------


class Options(msgspec.Struct, kw_only=True):
    """A request's `options` (Ollama's Modelfile parameters). Those the engine has are applied; the
    llama.cpp runtime knobs (num_ctx, num_gpu, mirostat, ...) are accepted and have no effect."""

    temperature: Temperature | None = None
    top_p: TopP | None = None
    top_k: Count | None = None
    min_p: TopP | None = None
    # -1: no limit, -2: fill the context (Ollama's meanings)
    num_predict: Annotated[int, Meta(ge=-2, le=INT32_MAX)] | None = None
    stop: Stop | None = None
    seed: Seed | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    repeat_penalty: Annotated[float, Meta(ge=0)] | None = None
    repeat_last_n: Int32 | None = None
    num_ctx: Count | None = None
    num_keep: Int32 | None = None
    typical_p: float | None = None
    tfs_z: float | None = None
    mirostat: Int32 | None = None
    mirostat_tau: float | None = None
    mirostat_eta: float | None = None
    penalize_newline: bool | None = None
    num_batch: Int32 | None = None
    num_gpu: Int32 | None = None
    main_gpu: Int32 | None = None
    num_thread: Int32 | None = None


class FunctionCall(msgspec.Struct):
    """The function a tool call calls, with its arguments as a JSON object."""

    name: str
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    index: int | UnsetType = UNSET


class ToolCall(msgspec.Struct):
    """A call of a function tool by the model."""

    function: FunctionCall


class Message(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One turn of a chat, in requests and answers."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    thinking: str | UnsetType = UNSET
    images: list[str] | UnsetType | None = UNSET
    tool_calls: list[ToolCall] | UnsetType | None = UNSET
    tool_name: str | UnsetType = UNSET


class MessageOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The assistant's message (or its piece) in answers: `content` always, the rest when set."""

    role: Literal["assistant"]
    content: str
    thinking: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class FunctionDefinition(msgspec.Struct):
    """A function the model may call (OpenAI's shape)."""

    name: Annotated[str, Meta(min_length=1, max_length=64, pattern="^[a-zA-Z0-9_-]+$")]
    description: str | None = None
    parameters: dict[str, Any] | None = None


class Tool(msgspec.Struct):
    """A tool of a chat request; functions are the only kind."""

    function: FunctionDefinition
    type: Literal["function"] = "function"


class GenerationFields(msgspec.Struct, kw_only=True):
    """What /api/chat and /api/generate share."""

    model: Annotated[str, Meta(min_length=1)]
    # Ollama streams unless told not to.
    stream: bool = True
    format: Format | None = None
    options: Options | None = None
    keep_alive: Duration | None = None
    think: Think | None = None


class ChatRequest(GenerationFields, kw_only=True):
    """POST /api/chat."""

    messages: list[Message] = msgspec.field(default_factory=list)
    tools: list[Tool] | None = None
    # Hearth's extension (Ollama has none): OpenAI's tool_choice, to require a call or name one.
    tool_choice: ToolChoice | None = None


class GenerateRequest(GenerationFields, kw_only=True):
    """POST /api/generate."""

    prompt: str = ""
    suffix: str = ""
    system: str | None = None
    template: str | None = None
    context: list[int] | None = None
    raw: bool = False
    images: list[str] | None = None


class EmbedRequest(msgspec.Struct, kw_only=True):
    """POST /api/embed."""

    model: Annotated[str, Meta(min_length=1)]
    input: str | list[str]
    truncate: bool = True
    options: Options | None = None
    keep_alive: Duration | None = None
    dimensions: Annotated[int, Meta(ge=1)] | None = None


class EmbeddingsRequest(msgspec.Struct, kw_only=True):
    """POST /api/embeddings (the older, single-text form)."""

    model: Annotated[str, Meta(min_length=1)]
    prompt: str = ""
    options: Options | None = None
    keep_alive: Duration | None = None


class ModelRequest(msgspec.Struct, kw_only=True):
    """/api/show, /api/delete and /api/pull name a model as `model` (or, as older clients do, `name`)."""

    model: str = ""
    name: str = ""
    verbose: bool = False
    insecure: bool = False
    stream: bool = True

    @property
    def model_name(self) -> str:
        """The model asked for, whichever field named it."""
        return self.model or self.name


class CopyRequest(msgspec.Struct, kw_only=True):
    """POST /api/copy."""

    source: Annotated[str, Meta(min_length=1)]
    destination: Annotated[str, Meta(min_length=1)]


class CreateRequest(msgspec.Struct, kw_only=True):
    """POST /api/create: a new model from an installed one (`from`) or an uploaded GGUF (`files`)."""

    model: str = ""
    name: str = ""
    from_: str | None = msgspec.field(default=None, name="from")
    files: dict[str, str] | None = None
    adapters: dict[str, str] | None = None
    template: str | None = None
    license: str | list[str] | None = None
    system: str | None = None
    parameters: dict[str, Any] | None = None
    messages: list[Message] | None = None
    quantize: str | None = None
    modelfile: str | None = None
    stream: bool = True


# --- answers ---------------------------------------------------------------------------------


class Timings(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The counts and durations (nanoseconds) of a finished generation."""

    done_reason: str | UnsetType = UNSET
    total_duration: int | UnsetType = UNSET
    load_duration: int | UnsetType = UNSET
    prompt_eval_count: int | UnsetType = UNSET
    prompt_eval_duration: int | UnsetType = UNSET
    eval_count: int | UnsetType = UNSET
    eval_duration: int | UnsetType = UNSET


class ChatResponse(Timings, kw_only=True, omit_defaults=True):
    """One line of a streamed chat, or the whole answer."""

    model: str
    created_at: str
    message: MessageOut
    done: bool


class GenerateResponse(Timings, kw_only=True, omit_defaults=True):
    """One line of a streamed generation, or the whole answer."""

    model: str
    created_at: str
    response: str
    done: bool
    thinking: str | UnsetType = UNSET


class EmbedResponse(msgspec.Struct, kw_only=True):
    """POST /api/embed."""

    model: str
    embeddings: list[list[float]]
    total_duration: int
    load_duration: int
    prompt_eval_count: int


class EmbeddingsResponse(msgspec.Struct):
    """POST /api/embeddings."""

    embedding: list[float]


class Details(msgspec.Struct, kw_only=True):
    """What kind of model it is."""

    parent_model: str = ""
    format: str = ""
    family: str = ""
    families: list[str] | None = None
    parameter_size: str = ""
    quantization_level: str = ""


class ListedModel(msgspec.Struct, kw_only=True):
    """One model of /api/tags."""

    name: str
    model: str
    modified_at: str
    size: int
    digest: str
    details: Details


class TagsResponse(msgspec.Struct):
    """GET /api/tags."""

    models: list[ListedModel]


class RunningModel(msgspec.Struct, kw_only=True):
    """One loaded model of /api/ps."""

    name: str
    model: str
    size: int
    digest: str
    details: Details
    expires_at: str
    size_vram: int
    context_length: int


class PsResponse(msgspec.Struct):
    """GET /api/ps."""

    models: list[RunningModel]


class ShowResponse(msgspec.Struct, kw_only=True):
    """POST /api/show."""

    modelfile: str
    parameters: str
    template: str
    details: Details
    model_info: dict[str, Any]
    capabilities: list[str]
    modified_at: str
    license: str = ""


class VersionResponse(msgspec.Struct):
    """GET /api/version."""

    version: str


class ProgressResponse(msgspec.Struct, omit_defaults=True):
    """A status line of /api/pull and /api/create."""

    status: str
    digest: str | UnsetType = UNSET
    total: int | UnsetType = UNSET
    completed: int | UnsetType = UNSET


class ErrorResponse(msgspec.Struct):
    """Ollama's error body."""

    error: str
