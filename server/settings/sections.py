"""The sections of `Settings`, one Struct each: every field is a setting with its flag, its
`HEARTH_*` variable and its config key (server/settings/__init__.py says how they combine)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from hub.models import DEFAULT_EMBEDDING_MODEL_ID, DEFAULT_MODEL_ID

ENV_PREFIX = "HEARTH_"


class SamplingDefaults(msgspec.Struct, frozen=True):
    """Sampling settings used for the parameters a request leaves out."""

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    min_p: float = 0.0
    # max_tokens of a request that sends none: a cap, cut to the context the prompt leaves (None:
    # until the context is full). A service's own `max_tokens`, else the server's.
    max_tokens: int | None = None
    # What a request may ask for: stop strings (how many, how long), and tool calls per answer.
    max_stops: int = 16
    max_stop_length: int = 256
    max_tool_calls: int = 8


class SettingsError(ValueError):
    """A setting has a wrong name, type or value."""


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A group of settings."""


class ServerSettings(_Section, frozen=True):
    """Where and how the HTTP server listens and logs."""

    host: Annotated[str, Meta(description="address to bind")] = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535, description="port to listen on")] = 8000
    home: Annotated[str, Meta(description="directory for models, config and logs")] = "~/.hearth"
    log_level: Annotated[
        Literal["debug", "info", "warning", "error", "critical"], Meta(description="the least severe log records kept")
    ] = "info"
    # stderr stays human-readable text whatever this says.
    log_file_format: Annotated[Literal["json", "text"], Meta(description="format of $HEARTH_HOME/logs/hearth.log")] = (
        "json"
    )
    max_body_bytes: Annotated[int, Meta(ge=1024, description="largest request body accepted")] = 8 * 1024 * 1024
    shutdown_grace_s: Annotated[
        float,
        Meta(
            ge=0,
            le=3600,
            description="on SIGTERM, seconds requests in flight may run on (new ones get 503); then streams "
            "end with an error event and [DONE]",
        ),
    ] = 10.0
    recent_errors: Annotated[
        int,
        Meta(ge=0, le=10_000, description="failed requests kept for GET /v1/status/live (the console's list)"),
    ] = 50


class EngineSettings(_Section, frozen=True):
    """The model served by default, and how engines run models."""

    model: Annotated[str, Meta(description="id to serve the default model under")] = DEFAULT_MODEL_ID
    model_path: Annotated[
        str | None, Meta(description="a .gguf file or OpenVINO model folder (none: the bundled model)")
    ] = None
    device: Annotated[
        str,
        Meta(
            description="auto (the best device present, CPU fallback), or CPU, GPU, GPU.1, NPU, HETERO:GPU,CPU "
            "(OpenVINO) / cpu, cuda, dml (ONNX), which must be present; see `hearth devices`"
        ),
    ] = "auto"
    model_cache: Annotated[
        bool, Meta(description="cache compiled models in $HEARTH_HOME/cache (the second load skips compiling)")
    ] = True
    # Measured (benchmarks/RESULTS.md, warm start): building the graph and tokenizer from a GGUF
    # took most of every start; the IR saved from that same graph loads its compiled blob instead.
    gguf_ir_cache: Annotated[
        bool,
        Meta(
            description="serve a .gguf model through the OpenVINO IR its first load saves in $HEARTH_HOME/cache/ir "
            "(needs model_cache; later starts load the compiled blob)"
        ),
    ] = True
    # Measured (benchmarks/RESULTS.md, session 24): the batching pipeline cannot load a compiled blob
    # on CPU and takes ~4-5 s to build; the stateful one loads its blob in ~1.2 s.
    quick_start: Annotated[
        bool,
        Meta(
            description="on CPU, answer from OpenVINO's stateful pipeline (loaded from the model cache) while the "
            "batching pipeline builds, one request at a time (needs model_cache)"
        ),
    ] = True
    threads: Annotated[int, Meta(ge=0, description="inference threads (0: all cores)")] = 0
    performance_hint: Annotated[str, Meta(description="OpenVINO performance hint (LATENCY or THROUGHPUT)")] = "LATENCY"
    cpu_pinning: Annotated[
        bool, Meta(description="pin inference threads to cores (faster only on an idle machine)")
    ] = False
    kv_cache_precision: Annotated[str, Meta(description="element type of the KV cache (u8, f16, f32)")] = "u8"
    # The runtime's choice is bf16 on CPUs with AVX512-BF16 or AMX: ~7% faster than f32 here but
    # noisier (docs/adapters.md).
    inference_precision: Annotated[
        Literal["", "f32", "bf16", "f16"], Meta(description="activation precision ('': the device's; f32 most exact)")
    ] = ""
    kv_cache_gb: Annotated[
        float,
        Meta(
            ge=0,
            description="memory for the KV cache in GB (0: one full context of the model or 16,384 tokens, "
            "whichever is more, within 10% of this machine's memory)",
        ),
    ] = 0.0
    context_length: Annotated[int, Meta(ge=0, description="cap on the context window (0: the model's)")] = 0
    max_num_seqs: Annotated[int, Meta(ge=1, description="most sequences batched at once")] = 64
    max_num_batched_tokens: Annotated[int, Meta(ge=16, description="most tokens one engine step processes")] = 256


class SamplingSettings(_Section, frozen=True):
    """Sampling for the parameters a request leaves out.

    llama.cpp's defaults, as local servers use: OpenAI's own (temperature 1, no truncation) turn
    small local models' answers into noise.
    """

    default_temperature: Annotated[float, Meta(ge=0, le=2, description="temperature of requests that send none")] = 0.8
    default_top_p: Annotated[float, Meta(ge=0, le=1, description="top_p of requests that send none")] = 0.95
    default_top_k: Annotated[int, Meta(ge=0, description="top_k of requests that send none")] = 40
    default_min_p: Annotated[float, Meta(ge=0, le=1, description="min_p of requests that send none")] = 0.05
    # Without a cap a request that sets no max_tokens runs to the end of the context (minutes on a
    # CPU); Ollama and LM Studio bound it too. An explicit max_tokens is honoured up to the context.
    default_max_tokens: Annotated[
        int,
        Meta(ge=0, description="max_tokens of a request that sets none (cut to the context left; 0: no cap)"),
    ] = 2048
    max_stop_sequences: Annotated[int, Meta(ge=1, description="most stop strings one request may send")] = 16
    max_stop_length: Annotated[int, Meta(ge=1, description="longest stop string accepted, in characters")] = 256
    max_tool_calls: Annotated[
        int, Meta(ge=1, description="most tool calls one answer returns (a further call ends the turn)")
    ] = 8


class SchedulerSettings(_Section, frozen=True):
    """Services, and which models stay loaded and who waits (docs/scheduler.md, docs/services.md)."""

    services: Annotated[
        str | list[Any] | None,
        Meta(description="services file: named deployments of models (docs/services.md); in the config file, the list"),
    ] = None
    preload: Annotated[str | list[str], Meta(description="services to load at start-up, separated by commas")] = ""
    preload_model: Annotated[
        bool,
        Meta(
            description="without a services file, load `model` at start-up and keep it loaded; off: load it on "
            "the first request (as Ollama does), and unload it after its keep-alive"
        ),
    ] = True
    preload_while_binding: Annotated[
        bool,
        Meta(
            description="load preloaded models while the HTTP server starts (GET /health answers 503 `loading` "
            "until they are ready); off: the server listens only once they are loaded"
        ),
    ] = True
    keep_alive_s: Annotated[
        float, Meta(description="seconds a model stays loaded after its last request (negative: forever)")
    ] = 300.0
    memory_budget_gb: Annotated[float, Meta(ge=0, description="memory for all loaded models (0: 60% of RAM)")] = 0.0
    device_memory_fraction: Annotated[
        float, Meta(gt=0, le=1, description="share of each GPU's own memory its models may use")
    ] = 0.9
    max_queue: Annotated[int, Meta(ge=0, description="requests waiting per model before 429")] = 256
    queue_timeout_s: Annotated[float, Meta(gt=0, description="longest wait for a slot before 503")] = 300.0
    starvation_s: Annotated[
        float, Meta(ge=0, description="a request waiting this long goes ahead of all newer ones (0: priority only)")
    ] = 60.0
    max_concurrency_per_model: Annotated[
        int, Meta(ge=0, description="requests running per model (0: as many as its engine batches)")
    ] = 0
    max_concurrency_per_device: Annotated[int, Meta(ge=0, description="requests running per device (0: no limit)")] = 0

    @property
    def preload_names(self) -> list[str]:
        """The services to load at start-up."""
        names = self.preload.split(",") if isinstance(self.preload, str) else self.preload
        return [n.strip() for n in names if n.strip()]


class HubSettings(_Section, frozen=True):
    """The model hub's API."""

    hub_max_upload_bytes: Annotated[
        int, Meta(ge=1, description="largest model file or archive POST /v1/hub/upload accepts")
    ] = 64 * 1024**3
    hub_max_unpacked_bytes: Annotated[int, Meta(ge=1, description="most bytes an uploaded archive may unpack to")] = (
        64 * 1024**3
    )
    hub_max_unpack_ratio: Annotated[
        float, Meta(ge=1, description="most an uploaded archive may expand, as a multiple of its own size")
    ] = 20.0
    hub_max_import_files: Annotated[
        int,
        Meta(ge=1, description="most files a folder POST /v1/hub/import names may hold (the check walks them all)"),
    ] = 10_000


class EmbeddingSettings(_Section, frozen=True):
    """Embeddings and rerank, served beside the chat model."""

    embedding_model: Annotated[str, Meta(description="id to serve the embedding model under")] = (
        DEFAULT_EMBEDDING_MODEL_ID
    )
    embedding_model_path: Annotated[
        str | None,
        Meta(description="OpenVINO IR folder of an embedding model (optimum-cli export --task feature-extraction)"),
    ] = None


class ResponsesSettings(_Section, frozen=True):
    """The Responses API."""

    responses_store_size: Annotated[
        int, Meta(ge=1, description="stored responses kept in memory (previous_response_id); past it, LRU")
    ] = 1000
    responses_store_max_bytes: Annotated[
        int, Meta(ge=1024, description="bytes of stored responses kept in memory; past it, least recently used go")
    ] = 64 * 1024 * 1024


class WorkflowSettings(_Section, frozen=True):
    """Workflows (server/workflows)."""

    workflow_runs_kept: Annotated[
        int, Meta(ge=1, description="finished run records $HEARTH_HOME/workflows/runs keeps")
    ] = 200
    # Limits (docs/security.md, "limits"): what one definition, template or run may cost.
    workflow_runs_max_bytes: Annotated[
        int, Meta(ge=1024 * 1024, description="bytes of run records $HEARTH_HOME/workflows/runs keeps, all together")
    ] = 256 * 1024 * 1024
    workflow_max_bytes: Annotated[int, Meta(ge=1024, description="largest workflow definition (YAML), in bytes")] = (
        256 * 1024
    )
    workflow_max_depth: Annotated[
        int, Meta(ge=4, le=200, description="deepest nesting of a workflow definition's mappings and lists")
    ] = 32
    workflow_max_steps: Annotated[int, Meta(ge=1, description="most steps in one workflow")] = 256
    workflow_max_map_items: Annotated[int, Meta(ge=1, description="most items one `map` step runs over")] = 1000
    workflow_job_timeout_s: Annotated[
        float,
        Meta(gt=0, description="longest a definition check, template render or text extraction may take, in seconds"),
    ] = 10.0
    workflow_job_memory_mb: Annotated[
        int, Meta(ge=32, description="memory a definition check, template render or text extraction may add, in MiB")
    ] = 512
    workflow_job_workers: Annotated[
        int, Meta(ge=1, le=64, description="processes that check definitions, render templates and extract text")
    ] = 2
    workflow_template_max_loop: Annotated[
        int, Meta(ge=1, description="most items one template's range() calls may yield, all loops together")
    ] = 100_000
    workflow_template_max_chars: Annotated[
        int, Meta(ge=1024, description="longest text (or list) a template may build or render, in characters")
    ] = 1_000_000
    workflow_extract_max_chars: Annotated[
        int, Meta(ge=1024, description="longest text extract_text returns; more is cut off with a marker")
    ] = 1_000_000
    workflow_extract_max_bytes: Annotated[
        int, Meta(ge=1024, description="largest unpacked size of a document's parts (docx) before extraction")
    ] = 64 * 1024 * 1024
    workflow_max_chunks: Annotated[int, Meta(ge=1, description="most pieces one chunk step returns")] = 10_000
    workflow_max_indent: Annotated[int, Meta(ge=0, le=64, description="largest indent format_json accepts")] = 8
    workflow_record_output_bytes: Annotated[
        int,
        Meta(ge=1024, description="largest step output, input or run output a run record keeps; more is cut off"),
    ] = 256 * 1024


class SecuritySettings(_Section, frozen=True):
    """TLS, public binding, CORS, the audit log and runner confinement (docs/security.md)."""

    tls: Annotated[bool, Meta(description="serve HTTPS with `hearth tls init`'s files")] = False
    tls_cert: Annotated[str | None, Meta(description="your own server certificate (PEM); implies --tls")] = None
    tls_key: Annotated[str | None, Meta(description="the key of --tls-cert (PEM)")] = None
    tls_client_ca: Annotated[
        str | None, Meta(description="require client certificates signed by this CA (mutual TLS)")
    ] = None
    insecure: Annotated[bool, Meta(description="allow a non-loopback address with no API keys")] = False
    metrics_public: Annotated[
        bool, Meta(description="serve GET /metrics without a key (scrapers that send none: the inference gateway)")
    ] = False
    cors_origins: Annotated[str, Meta(description="comma-separated origins browsers may call from")] = ""
    audit: Annotated[bool, Meta(description="keep the audit log in $HEARTH_HOME/audit")] = True
    audit_text: Annotated[
        Literal["off", "sha256", "full"], Meta(description="what the audit log keeps of prompts and answers")
    ] = "off"
    audit_fsync: Annotated[bool, Meta(description="fsync every audit record")] = True
    audit_max_bytes: Annotated[int, Meta(ge=4096, description="size at which an audit file is rotated")] = (
        64 * 1024 * 1024
    )
    audit_retry_s: Annotated[
        float, Meta(gt=0, le=3600, description="seconds between tries to write the audit log while it fails")
    ] = 1.0
    audit_max_held: Annotated[
        int, Meta(ge=1, description="audit records kept in memory while the log cannot be written; past it, lost")
    ] = 100_000
    sandbox: Annotated[
        bool, Meta(description="confine engine workers (seccomp, no network, no capabilities, Landlock)")
    ] = True
    sandbox_files: Annotated[
        bool, Meta(description="confine workers' file access with Landlock where the kernel has it")
    ] = True
    worker_max_memory_gb: Annotated[float, Meta(ge=0, description="memory limit of each worker (0: none)")] = 0.0


class BatchSettings(_Section, frozen=True):
    """The Files and Batch APIs (docs/batches.md)."""

    batch_max_file_bytes: Annotated[int, Meta(ge=1, description="largest file POST /v1/files accepts")] = (
        200 * 1024 * 1024
    )
    batch_max_lines: Annotated[int, Meta(ge=1, description="most requests in one batch input file")] = 50_000
    batch_concurrency: Annotated[
        int, Meta(ge=1, le=64, description="batch lines run at once (more: faster batches, slower chats beside them)")
    ] = 2
    batch_priority: Annotated[
        int, Meta(ge=-1000, le=1000, description="scheduler priority of batch lines (lowest by default)")
    ] = -1000


class LimitSettings(_Section, frozen=True):
    """Bounds on what one request may ask the parser and the grammar engine to do (docs/security.md)."""

    max_json_depth: Annotated[
        int, Meta(ge=2, le=512, description="deepest nesting of a JSON body's arrays and objects")
    ] = 64
    max_messages: Annotated[int, Meta(ge=1, description="most messages (or Responses input items) in one request")] = (
        2048
    )
    max_tools: Annotated[int, Meta(ge=1, description="most tools in one request")] = 128
    max_schema_bytes: Annotated[
        int,
        Meta(ge=64, description="largest JSON schema (a response format's or a tool's parameters), in bytes"),
    ] = 64 * 1024
    max_schema_depth: Annotated[
        int, Meta(ge=1, le=256, description="deepest nesting of subschemas in a JSON schema")
    ] = 32
    max_enum_values: Annotated[
        int, Meta(ge=1, description="most enum and const values in one JSON schema, all enums together")
    ] = 1000


class OllamaSettings(_Section, frozen=True):
    """Ollama's native API under /api (docs/ollama-compat.md)."""

    ollama_api: Annotated[bool, Meta(description="serve Ollama's API (/api/chat, /api/tags, ...) beside OpenAI's")] = (
        True
    )
    ollama_version: Annotated[
        str, Meta(description="the Ollama version /api/version reports (clients enable features by it)")
    ] = "0.12.6"
