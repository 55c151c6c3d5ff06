"""Settings: command-line flags over `HEARTH_*` environment variables over a YAML config file.

`HEARTH_HOME` (default `~/.hearth`) holds everything Hearth writes: models, config, logs. The
config file is `$HEARTH_HOME/config.yaml` unless `--config` / `HEARTH_CONFIG` names another.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec
import yaml
from msgspec import Meta

from adapters.base import EngineOptions
from adapters.embeddings import DEFAULT_EMBEDDING_MODEL_ID
from hub.models import DEFAULT_MODEL_ID
from server.inference.translate import SamplingDefaults

ENV_PREFIX = "HEARTH_"


class SettingsError(ValueError):
    """A setting has a wrong name, type or value."""


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything `hearth serve` can be told."""

    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8000
    home: str = "~/.hearth"
    # The model served by default, and optionally its file (a .gguf or an OpenVINO folder).
    model: str = DEFAULT_MODEL_ID
    model_path: str | None = None
    # Adapters and devices: "auto" picks the best device present and falls back to the CPU; an
    # explicit device (CPU, GPU, GPU.1, NPU, HETERO:GPU,CPU; cpu/cuda/dml for ONNX) must be present.
    device: str = "auto"
    # Cache compiled models in $HEARTH_HOME/cache so the second load of a model skips compilation.
    model_cache: bool = True
    threads: Annotated[int, Meta(ge=0)] = 0
    performance_hint: str = "LATENCY"
    cpu_pinning: bool = False
    kv_cache_precision: str = "u8"
    # Activations: "" is the runtime's choice (on CPUs with AVX512-BF16 or AMX that is bf16, ~7%
    # faster than f32 here but noisier: see docs/adapters.md); f32 for the most exact answers.
    inference_precision: Literal["", "f32", "bf16", "f16"] = ""
    kv_cache_gb: Annotated[float, Meta(gt=0)] = 1.0
    context_length: Annotated[int, Meta(ge=0)] = 0
    max_num_seqs: Annotated[int, Meta(ge=1)] = 64
    max_num_batched_tokens: Annotated[int, Meta(ge=16)] = 256
    # Sampling for parameters a request leaves out. llama.cpp's defaults, as local servers use:
    # OpenAI's own (temperature 1, no truncation) turn small local models' answers into noise.
    default_temperature: Annotated[float, Meta(ge=0, le=2)] = 0.8
    default_top_p: Annotated[float, Meta(ge=0, le=1)] = 0.95
    default_top_k: Annotated[int, Meta(ge=0)] = 40
    default_min_p: Annotated[float, Meta(ge=0, le=1)] = 0.05
    # Embeddings and rerank: an OpenVINO IR folder (optimum-cli export --task feature-extraction),
    # served under `embedding_model` beside the chat model when set.
    embedding_model: str = DEFAULT_EMBEDDING_MODEL_ID
    embedding_model_path: str | None = None
    # Responses API: how many stored responses (previous_response_id, GET /v1/responses/{id}) are
    # kept in memory; past it the least recently used is forgotten.
    responses_store_size: Annotated[int, Meta(ge=1)] = 1000
    max_body_bytes: Annotated[int, Meta(ge=1024)] = 8 * 1024 * 1024
    log_level: str = "info"
    # Model hub: the largest model file or archive POST /v1/hub/upload accepts.
    hub_max_upload_bytes: Annotated[int, Meta(ge=1)] = 64 * 1024**3
    # --- scheduler and services (docs/scheduler.md, docs/services.md) ---
    # A services file (or, in the config file, the list itself); without one `model` is served.
    services: str | list[Any] | None = None
    # Services loaded at start-up rather than on first use (a list, or names separated by commas).
    preload: str | list[str] = ""

    # Seconds a model stays loaded after its last request; negative keeps it loaded forever.
    keep_alive_s: float = 300.0
    # Memory all resident models may use together; 0 means 60% of RAM.
    memory_budget_gb: Annotated[float, Meta(ge=0)] = 0.0
    # Share of each accelerator's own memory (GPUs that report it) its models may use together.
    device_memory_fraction: Annotated[float, Meta(gt=0, le=1)] = 0.9
    # Requests waiting per model before 429, and how long one may wait before a 503.
    max_queue: Annotated[int, Meta(ge=0)] = 256
    queue_timeout_s: Annotated[float, Meta(gt=0)] = 300.0
    # A request waiting this long goes ahead of all that have not (0: strict priority order).
    starvation_s: Annotated[float, Meta(ge=0)] = 60.0
    # Requests running at once per model and per device (0: no limit beyond continuous batching).
    max_concurrency_per_model: Annotated[int, Meta(ge=0)] = 0
    max_concurrency_per_device: Annotated[int, Meta(ge=0)] = 0
    # The log file's format; stderr stays human-readable text.
    log_file_format: Literal["json", "text"] = "json"

    @property
    def preload_names(self) -> list[str]:
        """The services to load at start-up."""
        names = self.preload.split(",") if isinstance(self.preload, str) else self.preload
        return [n.strip() for n in names if n.strip()]

    # Workflows (server/workflows): how many finished run records $HEARTH_HOME/workflows/runs keeps.
    workflow_runs_kept: Annotated[int, Meta(ge=1)] = 200
    # Security (docs/security.md): TLS, public binding, CORS, the audit log and runner confinement.
    tls: bool = False
    tls_cert: str | None = None
    tls_key: str | None = None
    tls_client_ca: str | None = None
    insecure: bool = False
    cors_origins: str = ""
    audit: bool = True
    audit_text: Literal["off", "sha256", "full"] = "off"
    audit_fsync: bool = True
    audit_max_bytes: Annotated[int, Meta(ge=4096)] = 64 * 1024 * 1024
    sandbox: bool = True
    worker_max_memory_gb: Annotated[float, Meta(ge=0)] = 0.0

    @property
    def home_path(self) -> Path:
        """`home` with `~` expanded."""
        return Path(self.home).expanduser()

    @property
    def models_dir(self) -> Path:
        """Where the hub's artifacts live."""
        return self.home_path / "models"

    @property
    def log_dir(self) -> Path:
        """Where log files go."""
        return self.home_path / "logs"

    def sampling_defaults(self) -> SamplingDefaults:
        """What a request gets for the sampling parameters it does not send."""
        return SamplingDefaults(
            temperature=self.default_temperature,
            top_p=self.default_top_p,
            top_k=self.default_top_k,
            min_p=self.default_min_p,
        )

    def engine_options(self) -> EngineOptions:
        """The engine settings these settings ask for."""
        return EngineOptions(
            device=self.device,
            threads=self.threads,
            performance_hint=self.performance_hint,
            cpu_pinning=self.cpu_pinning,
            kv_cache_precision=self.kv_cache_precision,
            inference_precision=self.inference_precision,
            kv_cache_gb=self.kv_cache_gb,
            context_length=self.context_length,
            max_num_seqs=self.max_num_seqs,
            max_num_batched_tokens=self.max_num_batched_tokens,
            cache_dir=str(self.home_path / "cache") if self.model_cache else "",
        )


FIELDS: tuple[str, ...] = Settings.__struct_fields__


def _from_env(env: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in FIELDS:
        raw = env.get(ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = raw
    return values


def _from_file(path: Path, required: bool) -> dict[str, Any]:
    if not path.is_file():
        if required:
            raise SettingsError(f"config file {path} does not exist")
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SettingsError(f"config file {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise SettingsError(f"config file {path} must be a mapping of setting: value")
    return {str(k).replace("-", "_"): v for k, v in data.items()}


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Merge defaults, the config file, the environment and flags (later wins) into `Settings`."""
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    env_values = _from_env(os.environ if env is None else env)
    environ = os.environ if env is None else env
    home = flags.get("home") or env_values.get("home") or Settings().home
    config_arg = flags.pop("config", None) or environ.get(ENV_PREFIX + "CONFIG")
    config_path = Path(config_arg).expanduser() if config_arg else Path(home).expanduser() / "config.yaml"
    merged = {**_from_file(config_path, required=bool(config_arg)), **env_values, **flags, "home": home}
    try:
        # strict=False lets "9000" from the environment become the int 9000.
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from exc
