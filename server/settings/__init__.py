"""Settings: command-line flags over `HEARTH_*` environment variables over a YAML config file.

`HEARTH_HOME` (default `~/.hearth`) holds everything Hearth writes: models, config, logs. The
config file is `$HEARTH_HOME/config.yaml` unless `--config` / `HEARTH_CONFIG` names another.

`Settings` is nested in sections (`settings.scheduler.max_queue`). Every field name is unique
across the sections, so each field also has one flat name: the flag `--max-queue`, the variable
`HEARTH_MAX_QUEUE` and the config key `max_queue` (or nested, `scheduler: {max_queue: 4}`). Each
field's `Meta(description=...)` is its documentation and the help of its generated flag.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from adapters.base import EngineOptions
from adapters.sandbox import Confinement
from server.settings.sections import (
    ENV_PREFIX,
    BatchSettings,
    EmbeddingSettings,
    EngineSettings,
    HubSettings,
    LimitSettings,
    OllamaSettings,
    ResponsesSettings,
    SamplingDefaults,
    SamplingSettings,
    SchedulerSettings,
    SecuritySettings,
    ServerSettings,
    SettingsError,
    WorkflowSettings,
    _Section,
)

__all__ = [
    "ENV_PREFIX",
    "BatchSettings",
    "EmbeddingSettings",
    "EngineSettings",
    "HubSettings",
    "LimitSettings",
    "OllamaSettings",
    "ResponsesSettings",
    "SamplingDefaults",
    "SamplingSettings",
    "SchedulerSettings",
    "SecuritySettings",
    "ServerSettings",
    "Settings",
    "SettingsError",
    "WorkflowSettings",
    "flat_names",
    "from_env",
    "from_file",
    "load_settings",
    "sections",
    "to_nested",
]


def _section(cls: type[_Section]) -> Any:
    return msgspec.field(default_factory=cls)


class Settings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Everything `hearth serve` can be told, by section."""

    server: ServerSettings = _section(ServerSettings)
    engine: EngineSettings = _section(EngineSettings)
    sampling: SamplingSettings = _section(SamplingSettings)
    scheduler: SchedulerSettings = _section(SchedulerSettings)
    hub: HubSettings = _section(HubSettings)
    embeddings: EmbeddingSettings = _section(EmbeddingSettings)
    responses: ResponsesSettings = _section(ResponsesSettings)
    workflows: WorkflowSettings = _section(WorkflowSettings)
    batches: BatchSettings = _section(BatchSettings)
    security: SecuritySettings = _section(SecuritySettings)
    limits: LimitSettings = _section(LimitSettings)
    ollama: OllamaSettings = _section(OllamaSettings)

    @property
    def home_path(self) -> Path:
        """`server.home` with `~` expanded."""
        return Path(self.server.home).expanduser()

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
        s = self.sampling
        return SamplingDefaults(
            temperature=s.default_temperature,
            top_p=s.default_top_p,
            top_k=s.default_top_k,
            min_p=s.default_min_p,
            max_tokens=s.default_max_tokens or None,
            max_stops=s.max_stop_sequences,
            max_stop_length=s.max_stop_length,
            max_tool_calls=s.max_tool_calls,
        )

    def engine_options(self) -> EngineOptions:
        """The engine settings these settings ask for."""
        e = self.engine
        return EngineOptions(
            device=e.device,
            threads=e.threads,
            performance_hint=e.performance_hint,
            cpu_pinning=e.cpu_pinning,
            kv_cache_precision=e.kv_cache_precision,
            inference_precision=e.inference_precision,
            kv_cache_gb=e.kv_cache_gb,
            context_length=e.context_length,
            max_num_seqs=e.max_num_seqs,
            max_num_batched_tokens=e.max_num_batched_tokens,
            cache_dir=str(self.home_path / "cache") if e.model_cache else "",
            gguf_ir_cache=e.gguf_ir_cache and e.model_cache,
            quick_start=e.quick_start and e.model_cache,
        )

    def worker_confinement(self) -> Confinement:
        """How model workers are confined (docs/security.md)."""
        return Confinement(
            enabled=self.security.sandbox,
            filesystem=self.security.sandbox_files,
            max_memory_bytes=int(self.security.worker_max_memory_gb * 1024**3),
        )


def sections() -> dict[str, type[_Section]]:
    """Each section's name and type, in order."""
    return {f.name: f.default_factory for f in msgspec.structs.fields(Settings)}


def flat_names() -> dict[str, str]:
    """Every field's flat name (flag, `HEARTH_*` variable, config key) and the section that holds it."""
    return {name: section for section, cls in sections().items() for name in cls.__struct_fields__}


def to_nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """Flat `name: value` pairs as `section: {name: value}`; unknown names stay at the top for msgspec to refuse."""
    owner = flat_names()
    nested: dict[str, Any] = {}
    for name, value in flat.items():
        if name in owner:
            nested.setdefault(owner[name], {})[name] = value
        else:
            nested[name] = value
    return nested


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(merged.get(key), dict) and isinstance(value, Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """The flat settings named by non-empty `HEARTH_<NAME>` variables."""
    values = {name: env.get(ENV_PREFIX + name.upper()) for name in flat_names()}
    return {name: raw for name, raw in values.items() if raw}


def from_file(path: Path, required: bool) -> dict[str, Any]:
    """A config file's settings, nested; its keys are flat names or sections (`-` or `_` alike)."""
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
    known = sections()
    flat = {str(k).replace("-", "_"): v for k, v in data.items()}
    nested = {k: v for k, v in flat.items() if k in known and isinstance(v, dict)}
    in_sections = {k: {str(n).replace("-", "_"): x for n, x in v.items()} for k, v in nested.items()}
    return _merge(in_sections, to_nested({k: v for k, v in flat.items() if k not in nested}))


def load_settings(flags: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Merge defaults, the config file, the environment and flags (later wins) into `Settings`.

    `flags` and `env` use the flat names; `flags` may also hold `config`, the config file's path.
    """
    flags = {k: v for k, v in (flags or {}).items() if v is not None}
    environ = os.environ if env is None else env
    env_values = from_env(environ)
    home = flags.get("home") or env_values.get("home") or ServerSettings().home
    config_arg = flags.pop("config", None) or environ.get(ENV_PREFIX + "CONFIG")
    config_path = Path(config_arg).expanduser() if config_arg else Path(home).expanduser() / "config.yaml"
    merged = from_file(config_path, required=bool(config_arg))
    for layer in (env_values, flags, {"home": home}):
        merged = _merge(merged, to_nested(layer))
    try:
        # strict=False lets "9000" from the environment become the int 9000.
        return msgspec.convert(merged, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SettingsError(f"invalid setting: {exc}") from exc
