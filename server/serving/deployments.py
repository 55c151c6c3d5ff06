"""From services and settings to `Deployment`s: everything the scheduler needs to run one service."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec
import psutil

from adapters.base import EmbeddingSpec, EngineKind, EngineOptions
from adapters.hardware import DeviceInfo, openvino_devices, openvino_gpu_possible
from adapters.kv_cache import auto_kv_cache_gb
from adapters.limits import (
    ModelLimits,
    dimensions_of,
    max_tokens_of,
    model_limits,
    served_context,
    wanted_context,
)
from hub.manifest import SERVABLE_FORMATS
from hub.models import ModelNotFound, ModelSpec
from hub.store import ArtifactNotFound, ArtifactStore, InvalidName
from server.serving.services import Service, default_service, load_services
from server.settings import SamplingDefaults, Settings

GIB = 1024**3
# Beyond its weights and KV cache a runner holds the runtime, the tokenizer, compiled kernels and
# work buffers: measured 320 MiB for the default model's worker (a 135M GGUF of 86 MiB: 338 MiB
# after load, 1436 MiB once its 1 GiB KV cache had filled).
_RUNTIME_OVERHEAD_BYTES = 320 * 1024**2
# An embedding model's worker holds the runtime, the tokenizer, the compiled model and its work
# buffers, but no KV cache: measured 235 MiB resident for all-MiniLM-L6-v2 (44 MiB of files) after
# a batch of 64 texts.
_EMBEDDING_OVERHEAD_BYTES = 200 * 1024**2

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Deployment:
    """One service ready to run: its model files, engine options and request defaults."""

    service: Service
    spec: ModelSpec
    options: EngineOptions
    sampling: SamplingDefaults
    # Seconds a model stays loaded after its last request (inf: forever).
    keep_alive_s: float
    # Requests of this service running at once (0: as many as its engine batches; see `slots`).
    max_concurrency: int
    estimated_bytes: int
    # The context window its engine will have (read from the model's files before it loads).
    context_length: int
    # An embedding model's vector length as its files say (0: unknown until it loads).
    dimensions: int = 0

    @property
    def name(self) -> str:
        """The model id clients use."""
        return self.service.name

    @property
    def device(self) -> str:
        """The device its engine runs on."""
        return self.options.device

    @property
    def slots(self) -> int:
        """Requests it runs at once: as many as its engine batches (`max_num_seqs`; ONNX Runtime
        GenAI interleaves that many generators), or its service's limit when that is lower."""
        batch = self.options.max_num_seqs
        return min(self.max_concurrency, batch) if self.max_concurrency else batch

    @property
    def kind(self) -> EngineKind:
        """What its engine serves: an `EmbeddingSpec` runs an embedding engine."""
        return "embeddings" if isinstance(self.spec, EmbeddingSpec) else "chat"


def artifact_bytes(path: str) -> int:
    """Size on disk of a model file or folder."""
    root = Path(path)
    if root.is_file():
        return root.stat().st_size
    return sum(f.stat().st_size for f in root.rglob("*") if f.is_file())


def estimate_bytes(spec: ModelSpec, options: EngineOptions) -> int:
    """Memory a model grows to: weights, runtime and its whole KV cache (with prefix caching the
    engine keeps finished requests' blocks until the cache is full, so it fills and stays full).
    ONNX Runtime GenAI has no shared cache (it allocates per request): its runner is measured."""
    kv_cache = 0 if spec.format == "onnx" else int(options.kv_cache_gb * GIB)
    return artifact_bytes(spec.path) + _RUNTIME_OVERHEAD_BYTES + kv_cache


def device_key(device: str) -> str:
    """One name per device: "GPU" and "GPU.0" are the same (OpenVINO's first GPU)."""
    return device.upper().removesuffix(".0")


def device_budgets(settings: Settings, devices: Sequence[DeviceInfo] | None = None) -> dict[str, int]:
    """Bytes the models on each accelerator that reports its memory may use together: a share of
    it (`device_memory_fraction`). `devices` defaults to what OpenVINO sees here."""
    if devices is None:
        # Only a GPU reports its memory: without one possible, OpenVINO is not even loaded.
        devices = openvino_devices()[1] if openvino_gpu_possible() else []
    fraction = settings.scheduler.device_memory_fraction
    return {device_key(d.id): int(d.memory_bytes * fraction) for d in devices if d.memory_bytes and d.kind != "cpu"}


def memory_budget(settings: Settings) -> int:
    """Bytes all resident models may use together: the setting, or a safe share of RAM."""
    if settings.scheduler.memory_budget_gb > 0:
        return int(settings.scheduler.memory_budget_gb * GIB)
    return int(psutil.virtual_memory().total * 0.6)


def deployment(service: Service, settings: Settings, store: ArtifactStore | None = None) -> Deployment:
    """The deployment of `service`: its own defaults over the server's."""
    spec = service.spec(store)
    base = settings.engine_options()
    device = (service.device or settings.engine.device).upper()
    options = msgspec.structs.replace(
        base,
        device="AUTO" if device == "AUTO" else device,
        context_length=base.context_length if service.context is None else service.context,
        kv_cache_gb=base.kv_cache_gb if service.kv_cache_gb is None else service.kv_cache_gb,
    )
    server = settings.sampling_defaults()
    sampling = msgspec.structs.replace(
        server,
        temperature=server.temperature if service.temperature is None else service.temperature,
        top_p=server.top_p if service.top_p is None else service.top_p,
        top_k=server.top_k if service.top_k is None else service.top_k,
        min_p=server.min_p if service.min_p is None else service.min_p,
        max_tokens=server.max_tokens if service.max_tokens is None else service.max_tokens,
    )
    limits = model_limits(spec)
    if options.kv_cache_gb <= 0:
        options = msgspec.structs.replace(options, kv_cache_gb=_auto_kv_cache_gb(limits, options, settings))
    keep_alive = service.keep_alive_s
    if keep_alive is None:
        keep_alive = math.inf if settings.scheduler.keep_alive_s < 0 else settings.scheduler.keep_alive_s
    return Deployment(
        service=service,
        spec=spec,
        options=options,
        sampling=sampling,
        keep_alive_s=keep_alive,
        max_concurrency=service.max_concurrency or settings.scheduler.max_concurrency_per_model,
        estimated_bytes=estimate_bytes(spec, options),
        context_length=served_context(limits, spec, options),
    )


def _auto_kv_cache_gb(limits: ModelLimits, options: EngineOptions, settings: Settings) -> float:
    """The KV cache sized from the model (its shape and served context) and this machine's memory,
    or the accelerator's where the device names one that reports it."""
    context = wanted_context(limits, options)
    memory = psutil.virtual_memory().total
    if options.device.upper() not in ("CPU", "AUTO"):
        memory = device_budgets(settings).get(device_key(options.device), memory)
    size = auto_kv_cache_gb(limits.kv_shape, context, options.kv_cache_precision, options.device, memory)
    log.debug("KV cache for a %d-token context on %s: %.3f GB", context, options.device, size)
    return size


def deployments(settings: Settings, store: ArtifactStore | None = None) -> list[Deployment]:
    """Every service this server runs: the services file's, or `--model` alone (loaded at start
    and kept loaded unless a request's keep_alive says otherwise)."""
    if settings.scheduler.services is not None:
        services = load_services(settings.scheduler.services)
    else:
        # A server started for one model keeps it loaded, as before services existed, unless
        # `preload_model` is off: then it is an ordinary service, loaded on first use.
        implicit = default_service(settings.engine.model, settings.engine.model_path)
        if settings.scheduler.preload_model:
            implicit = msgspec.structs.replace(implicit, preload=True, keep_alive=-1)
        services = [implicit]
    preload = set(settings.scheduler.preload_names)
    services = [msgspec.structs.replace(s, preload=True) if s.name in preload else s for s in services]
    return [deployment(s, settings, store) for s in services]


# A deployment for a model id the scheduler does not serve yet (None: there is no such model).
Resolver = Callable[[str], Deployment | None]


def installed_resolver(settings: Settings, store: ArtifactStore) -> Resolver:
    """The scheduler's resolver for names it does not serve: an installed, servable artifact of
    that name becomes a model with the server's defaults (loaded on first use, kept for the
    server's keep-alive), as `/v1/models` lists it: a chat model, or an embedding model for
    /v1/embeddings and /v1/rerank; anything else is None (a 404)."""

    def resolve(name: str) -> Deployment | None:
        try:
            manifest = store.get(name)
        except (ArtifactNotFound, InvalidName):
            return None
        if manifest.format not in SERVABLE_FORMATS:
            return None
        if manifest.task == "embeddings":
            spec = resolve_embedding_model(name, None, store)
            return None if spec is None else _embedding(spec, settings, preload=False)
        return deployment(default_service(name, None), settings, store)

    return resolve


def resolve_embedding_model(
    model_id: str, path: str | None, store: ArtifactStore | None = None
) -> EmbeddingSpec | None:
    """The embedding model to serve: the folder at `path`, else the installed hub artifact named
    `model_id` (`hearth pull all-minilm-l6-v2` makes the default one); None when neither exists."""
    if not path:
        if store is None or not store.exists(model_id):
            return None
        manifest = store.get(model_id)
        if manifest.task != "embeddings" or manifest.format != "openvino":
            log.warning("the artifact %s is not an OpenVINO embedding model; not serving it for embeddings", model_id)
            return None
        path = str(store.entry_path(model_id))
    folder = Path(path).expanduser()
    if not (folder / "openvino_model.xml").is_file():
        raise ModelNotFound(f"embedding model path {folder} is not an OpenVINO model folder (no openvino_model.xml)")
    return EmbeddingSpec(id=model_id, path=str(folder))


def embedding_deployment(settings: Settings, store: ArtifactStore | None = None) -> Deployment | None:
    """The embedding model as a scheduled model (None when there is none): loaded on first use,
    or at start-up when `--embedding-model-path` names it, and unloaded after the server's
    keep-alive like any model. Its memory is its files and runtime: it has no KV cache."""
    spec = resolve_embedding_model(settings.embeddings.embedding_model, settings.embeddings.embedding_model_path, store)
    if spec is None:
        return None
    return _embedding(spec, settings, preload=settings.embeddings.embedding_model_path is not None)


def _embedding(spec: EmbeddingSpec, settings: Settings, preload: bool) -> Deployment:
    service = Service(name=spec.id, model=spec.id, path=spec.path, preload=preload)
    device = settings.engine.device.upper()
    return Deployment(
        service=service,
        spec=spec,
        options=msgspec.structs.replace(settings.engine_options(), device=device),
        sampling=SamplingDefaults(),
        keep_alive_s=math.inf if settings.scheduler.keep_alive_s < 0 else settings.scheduler.keep_alive_s,
        max_concurrency=settings.scheduler.max_concurrency_per_model,
        estimated_bytes=artifact_bytes(spec.path) + _EMBEDDING_OVERHEAD_BYTES,
        context_length=max_tokens_of(Path(spec.path)),
        dimensions=dimensions_of(Path(spec.path)),
    )
