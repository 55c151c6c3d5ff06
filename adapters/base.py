"""The engine interface every backend implements, and the plain data that crosses it.

Everything here is a msgspec Struct so that requests and events can cross a process boundary
unchanged: the server talks to engines that run in their own worker process.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import msgspec

from hub.models import ModelFormat, ModelSpec

if TYPE_CHECKING:
    import numpy as np

FinishReason = Literal["stop", "length", "cancelled"]
# What an engine serves: text generation (chat, completions, tokenize) or vectors (embeddings, rerank).
EngineKind = Literal["chat", "embeddings"]
ErrorCode = Literal[
    "context_length_exceeded", "invalid_request", "engine_error", "engine_unavailable", "internal_error"
]


class EngineOptions(msgspec.Struct, frozen=True, kw_only=True):
    """How a backend runs a model: device, threads, memory and batching settings."""

    device: str = "CPU"
    # Threads for inference; 0 lets the runtime use every physical core.
    threads: int = 0
    performance_hint: str = "LATENCY"
    # Pinning inference threads to cores is faster on an idle machine and much slower when other
    # processes (the HTTP server, the user's apps) need the same cores.
    cpu_pinning: bool = False
    kv_cache_precision: str = "u8"
    # OpenVINO's INFERENCE_PRECISION_HINT ("" leaves the device's default).
    inference_precision: str = ""
    # Memory reserved for the KV cache, shared by all concurrent requests (0: sized from the machine
    # and the model by the server before the engine sees it; adapters.kv_cache.auto_kv_cache_gb).
    kv_cache_gb: float = 0.0
    # Upper bound on the context; 0 means the model's own trained context length.
    context_length: int = 0
    max_num_seqs: int = 64
    max_num_batched_tokens: int = 256
    enable_prefix_caching: bool = True
    # Where compiled models are cached so that the second load skips compilation ("" = no cache).
    cache_dir: str = ""
    # Serve a GGUF through the IR its first load saves under `cache_dir`/ir (adapters/ir_cache.py).
    gguf_ir_cache: bool = False
    # Answer from the stateful pipeline (its compiled blob loads in ~1 s) while the batching
    # pipeline builds (adapters/openvino.py); CPU only, needs `cache_dir`.
    quick_start: bool = False
    extra_properties: dict[str, str] = msgspec.field(default_factory=dict)


class ChatMessage(msgspec.Struct, frozen=True):
    """One turn of a conversation, already reduced to plain text."""

    role: str
    content: str
    # An assistant turn's tool calls ({"id", "type", "function": {"name", "arguments"}}), and the id
    # of the call a "tool" turn answers.
    tool_calls: tuple[dict[str, Any], ...] = ()
    tool_call_id: str | None = None


class SamplingParams(msgspec.Struct, frozen=True, kw_only=True):
    """Decoding settings for one generation."""

    max_tokens: int | None = None
    # When max_tokens is None: a cap that is cut to the context the prompt leaves, never refused.
    default_max_tokens: int | None = None
    temperature: float = 1.0
    top_p: float = 1.0
    # 0 disables top-k and min-p.
    top_k: int = 0
    min_p: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    ignore_eos: bool = False
    # Report the log probability of each generated token (Delta.logprobs).
    logprobs: bool = False


class ToolTag(msgspec.Struct, frozen=True):
    """A tool call the output may contain: the literal `begin` text, arguments that match the JSON
    schema `parameters` (serialized), and the literal `end` text."""

    begin: str
    parameters: str
    end: str


class OutputConstraint(msgspec.Struct, frozen=True, kw_only=True):
    """A grammar the generated text must follow: one JSON document matching `json_schema`, or text
    with tool-call tags (`tags_only`: nothing but tags; otherwise free text in which `trigger`
    starts a tag), or with both `json_schema` and `tags` either tags or the JSON document; `single`
    stops after the first tag."""

    json_schema: str | None = None
    tags: tuple[ToolTag, ...] = ()
    trigger: str = ""
    tags_only: bool = False
    single: bool = False


class GenerationRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A request for one sequence of text: chat messages (the engine applies the model's own chat
    template), a raw text prompt, or prompt token ids."""

    request_id: int
    params: SamplingParams
    messages: tuple[ChatMessage, ...] | None = None
    prompt: str | None = None
    prompt_ids: tuple[int, ...] | None = None
    # Tools in OpenAI's shape, for the chat template (empty: no tools in the prompt).
    tools: tuple[dict[str, Any], ...] = ()
    constraint: OutputConstraint | None = None


class EngineError(msgspec.Struct, frozen=True):
    """Why a request failed inside the engine."""

    code: ErrorCode
    message: str


class TokenLogprob(msgspec.Struct, frozen=True):
    """One generated token: its text, UTF-8 bytes and log probability."""

    token: str
    bytes: list[int]
    logprob: float


class Delta(msgspec.Struct, frozen=True, kw_only=True):
    """New output of one request: text since the last delta, tokens it took, and at the end why
    generation stopped. The first delta of a request carries the prompt's token count."""

    request_id: int
    text: str = ""
    tokens: int = 0
    prompt_tokens: int | None = None
    finish_reason: FinishReason | None = None
    # The stop string that ended generation (finish_reason "stop" by a stop string, not by EOS).
    stop_sequence: str | None = None
    error: EngineError | None = None
    # Per generated token, when the request asked for log probabilities.
    logprobs: tuple[TokenLogprob, ...] = ()

    @property
    def final(self) -> bool:
        """Whether this is the last delta of its request."""
        return self.finish_reason is not None or self.error is not None


class Capabilities(msgspec.Struct, frozen=True, kw_only=True):
    """What a backend can do with a model, so callers need not know which backend it is."""

    # Concurrent requests share batch steps (otherwise they take turns, one token each).
    batching: bool = False
    prefix_caching: bool = False
    token_id_prompts: bool = True
    chat_template: bool = True
    seeded_sampling: bool = True


class ModelInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a loaded model is and can do."""

    model_id: str
    backend: str
    device: str
    context_length: int
    load_seconds: float = 0.0
    # What the engine was built from when that differs from the model's path (its cached IR).
    loaded_from: str = ""
    capabilities: Capabilities = msgspec.field(default_factory=Capabilities)
    # Why the model is not on the device that was preferred (device auto fell back), for the log.
    device_note: str | None = None
    # The chat template renders `tools` itself (otherwise Hearth describes them in a system turn).
    template_tools: bool = False
    # The template lets the model think in <think>...</think> before answering.
    reasoning: bool = False
    # Fill-in-the-middle special tokens (prefix, suffix, middle), if the vocabulary has them.
    fim_tokens: tuple[str, str, str] | None = None
    # Length of an embedding model's vectors (0: a model that generates text). Its context_length
    # is the most tokens, special tokens included, one input may have.
    dimensions: int = 0


class EmbeddingSpec(ModelSpec, frozen=True):
    """An embedding model to serve: an OpenVINO IR folder with its tokenizer. Where a `ModelSpec`
    goes (a deployment, an engine factory) an `EmbeddingSpec` says that an embedding engine runs it."""

    format: ModelFormat = "openvino"


class EmbedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Embed every text of one API call."""

    request_id: int
    texts: tuple[str, ...]


class EmbedResult(msgspec.Struct, frozen=True, kw_only=True):
    """The vectors of one `EmbedRequest` (row-major little-endian float32 bytes: what OpenAI's
    base64 encoding encodes, a quarter the size of a list of floats) and each input's token count
    (also when the error is `context_length_exceeded`)."""

    request_id: int
    vectors: bytes = b""
    token_counts: tuple[int, ...] = ()
    error: EngineError | None = None

    def matrix(self, dimensions: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The vectors as an (inputs x dimensions) float32 array."""
        # Imported here: every `hearth` command reads this module, few need numpy (~0.1 s).
        import numpy as np

        return np.frombuffer(self.vectors, dtype="<f4").reshape(-1, dimensions)


class Tokenize(msgspec.Struct, tag=True):
    """Token ids of a text or a conversation (`ids` empty), or the text of `ids`."""

    request_id: int
    text: str | None = None
    messages: tuple[ChatMessage, ...] | None = None
    add_special: bool = True
    ids: list[int] | None = None


class Tokens(msgspec.Struct, tag=True):
    """The answer to a `Tokenize`: ids, their text and each id's own text, or why not."""

    request_id: int
    ids: list[int] = []
    text: str = ""
    pieces: list[str] = []
    error: str | None = None


class EngineStartError(RuntimeError):
    """The worker could not load the model."""


# Told when a worker stops that was not asked to: (model id, pid, exit status; negative = signal).
RunnerExitHook = Callable[[str, int, int | None], None]


class Backend(Protocol):
    """A model loaded in the worker process, advanced one batch step at a time."""

    def info(self) -> ModelInfo:
        """Describe the loaded model."""
        ...

    def count_tokens(self, request: GenerationRequest) -> int:
        """Tokens of the request's prompt after the chat template (raises ValueError if invalid)."""
        ...

    def submit(self, request: GenerationRequest) -> list[Delta]:
        """Queue a request; returns deltas to send at once (an error, or nothing)."""
        ...

    def cancel(self, request_id: int) -> None:
        """Stop a request early and free its resources."""
        ...

    def tokenize(self, text: str | None, messages: tuple[ChatMessage, ...] | None, add_special: bool) -> list[int]:
        """Token ids of `text`, or of `messages` rendered by the chat template."""
        ...

    def detokenize(self, ids: list[int]) -> tuple[str, list[str]]:
        """The text of `ids`, and the text of each id on its own."""
        ...

    def has_work(self) -> bool:
        """Whether any request is still running."""
        ...

    def step(self) -> list[Delta]:
        """Run one batch step over every running request and return what it produced."""
        ...

    def close(self) -> None:
        """Release the model."""
        ...


class Engine(Protocol):
    """What the server sees: a model that streams deltas for requests, concurrently."""

    info: ModelInfo

    def generate(self, request: GenerationRequest) -> AsyncIterator[Delta]:
        """Stream the deltas of one request; closing the iterator cancels the request."""
        ...

    def next_request_id(self) -> int:
        """A fresh id for a request to this engine."""
        ...

    @property
    def alive(self) -> bool:
        """Whether the engine can take requests."""
        ...

    async def close(self) -> None:
        """Stop the engine and release its resources."""
        ...


@runtime_checkable
class Embedder(Protocol):
    """An engine that turns texts into vectors (`info.dimensions` long)."""

    info: ModelInfo

    async def embed(self, texts: list[str]) -> EmbedResult:
        """The vectors and token counts of `texts`, or an `EmbedResult` with an error."""
        ...
