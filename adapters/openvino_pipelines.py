"""Building OpenVINO GenAI's continuous-batching pipeline: its compile properties, its KV cache in
blocks, and where it loads from (a GGUF's cached IR, adapters/ir_cache.py)."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING

from adapters.base import EngineOptions
from adapters.ir_cache import PipelineSource
from adapters.kv_cache import KVShape, kv_cache_blocks, kv_cache_gb_for, kv_shape

if TYPE_CHECKING:
    import openvino_genai as ov_genai

log = logging.getLogger(__name__)


def pipeline_properties(options: EngineOptions) -> dict[str, object]:
    """OpenVINO compile properties for `options` (threads, hints, KV-cache precision)."""
    properties: dict[str, object] = {"PERFORMANCE_HINT": options.performance_hint}
    if options.device.upper() == "CPU":
        properties["ENABLE_CPU_PINNING"] = options.cpu_pinning
    if options.threads > 0:
        properties["INFERENCE_NUM_THREADS"] = options.threads
    if options.kv_cache_precision:
        properties["KV_CACHE_PRECISION"] = options.kv_cache_precision
    if options.inference_precision:
        properties["INFERENCE_PRECISION_HINT"] = options.inference_precision
    if options.cache_dir and options.device.upper() != "CPU":
        # Not on CPU: this OpenVINO's CPU plugin cannot import the blob of a PagedAttention model
        # (missing k_head_size/num_k_heads runtime info), so a continuous-batching load with
        # CACHE_DIR compiled anyway after a failed import of a 135 MB blob: 0.5-0.8 s slower,
        # measured interleaved (benchmarks/RESULTS.md, session 23). GPU and NPU keep it.
        properties["CACHE_DIR"] = options.cache_dir
    properties.update(options.extra_properties)
    return properties


def create_pipeline(
    model_path: str,
    options: EngineOptions,
    shape: KVShape | None = None,
    extra_properties: dict[str, object] | None = None,
) -> ov_genai.ContinuousBatchingPipeline:
    """Build the continuous-batching pipeline Hearth serves with (also used by the benchmarks);
    `shape` sizes the KV cache (read from the model's files when not given); `extra_properties`
    are load options beyond `options` (the GGUF reader's `enable_save_ov_model`)."""
    import openvino_genai as ov_genai

    scheduler = ov_genai.SchedulerConfig()
    shape = shape or kv_shape(model_path)
    if shape is not None:
        # In blocks, so that any size works (cache_size takes whole gigabytes only).
        size = kv_cache_gb_for(options.kv_cache_gb, shape, 0, options.kv_cache_precision, options.device)
        blocks = kv_cache_blocks(size, shape, options.kv_cache_precision, options.device)
        scheduler.num_kv_blocks = blocks
    else:
        scheduler.cache_size = max(1, math.ceil(options.kv_cache_gb))
    scheduler.max_num_seqs = options.max_num_seqs
    scheduler.max_num_batched_tokens = options.max_num_batched_tokens
    scheduler.dynamic_split_fuse = True
    scheduler.enable_prefix_caching = options.enable_prefix_caching
    properties = pipeline_properties(options) | (extra_properties or {})
    return ov_genai.ContinuousBatchingPipeline(model_path, scheduler, options.device, properties)


def load_pipeline(
    source: PipelineSource, options: EngineOptions, shape: KVShape | None
) -> ov_genai.ContinuousBatchingPipeline:
    """The batching pipeline built from `source` (`ir_cache.pipeline_source`); a load that reads a
    GGUF saves its IR and tokenizer and moves them into place once both loaded."""
    import openvino_genai as ov_genai

    try:
        pipe = create_pipeline(source.path, options, shape, source.properties)
        if source.saving:
            # The pipeline saves only the graph; the tokenizer pair is saved by its own reader.
            ov_genai.Tokenizer(source.path, enable_save_ov_model=True)
    except BaseException:
        source.discard()
        raise
    source.saved()
    return pipe


class PipelineBuild:
    """The batching pipeline built on a thread of its own (the stateful one answers meanwhile)."""

    def __init__(self, source: PipelineSource, options: EngineOptions, shape: KVShape | None) -> None:
        self._args = (source, options, shape)
        self._thread: threading.Thread | None = None
        self.pipe: ov_genai.ContinuousBatchingPipeline | None = None
        self.error: str | None = None
        self.seconds = 0.0

    @property
    def started(self) -> bool:
        """Whether the build has begun."""
        return self._thread is not None

    @property
    def done(self) -> bool:
        """Whether the build has ended, with `pipe` or with `error`."""
        return self._thread is not None and not self._thread.is_alive()

    def start(self) -> None:
        """Begin building (once)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="pipeline-build", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        started = time.monotonic()
        try:
            self.pipe = load_pipeline(*self._args)
        except Exception as exc:  # the stateful pipeline keeps serving what it can
            log.exception("building the batching pipeline failed")
            self.error = f"{type(exc).__name__}: {exc}"
        self.seconds = time.monotonic() - started

    def join(self) -> None:
        """Wait for a build under way to end."""
        if self._thread is not None:
            self._thread.join()
