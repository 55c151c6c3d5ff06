"""OpenVINO GenAI backend: a continuous-batching pipeline advanced one step at a time.

Runs inside a worker process (see `adapters.worker`): `ContinuousBatchingPipeline.step()` holds
the Python GIL for the whole batch step, so it must not share a process with the HTTP event loop.
"""

from __future__ import annotations

import logging
import math
import random
import time
from typing import TYPE_CHECKING

import msgspec
import numpy as np

from adapters.base import (
    Capabilities,
    ChatMessage,
    Delta,
    EngineError,
    EngineOptions,
    FinishReason,
    GenerationRequest,
    ModelInfo,
    TokenLogprob,
)
from adapters.budget import checked_prompt_ids, new_token_budget
from adapters.detokenize import DecodeState, decode_step
from adapters.ir_cache import pipeline_source
from adapters.kv_cache import KVShape, kv_cache_blocks, kv_cache_gb_for, kv_shape
from adapters.limits import model_limits, served_context, wanted_context
from adapters.stops import StopMatcher
from adapters.structured import constraint_problem, structured_output_config
from adapters.tool_prompt import template_history, text_history
from hub.models import ModelSpec

if TYPE_CHECKING:
    import openvino_genai as ov_genai

log = logging.getLogger(__name__)

_FALLBACK_CONTEXT = 4096


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
    spec: ModelSpec, options: EngineOptions, shape: KVShape | None
) -> tuple[ov_genai.ContinuousBatchingPipeline, str]:
    """The pipeline of `spec` and what it was built from when not `spec.path` (""): a GGUF from its
    cached IR when `gguf_ir_cache` is on (the first load reads the GGUF and saves the IR and its
    tokenizer; adapters/ir_cache.py)."""
    import openvino_genai as ov_genai

    source = pipeline_source(spec, options)
    try:
        pipe = create_pipeline(source.path, options, shape, source.properties)
        if source.saving:
            # The pipeline saves only the graph; the tokenizer pair is saved by its own reader.
            ov_genai.Tokenizer(source.path, enable_save_ov_model=True)
    except BaseException:
        source.discard()
        raise
    source.saved()
    return pipe, f"its cached IR {source.path}" if source.from_ir_cache else ""


class _Running:
    """One request in flight: its handle, decode state and stop matcher."""

    def __init__(
        self, request_id: int, handle: ov_genai.GenerationHandle, stops: tuple[str, ...], prompt_tokens: int
    ) -> None:
        self.request_id = request_id
        self.handle = handle
        self.decoded = DecodeState()
        self.stopper = StopMatcher(stops)
        self.prompt_tokens: int | None = prompt_tokens
        self.finish: FinishReason = "stop"
        self.new_tokens = 0
        self.done = False
        self.logprobs: list[tuple[int, float]] | None = None


class OpenVINOBackend:
    """A model served by OpenVINO GenAI's continuous-batching pipeline."""

    def __init__(self, spec: ModelSpec, options: EngineOptions) -> None:
        import openvino
        import openvino_genai as ov_genai

        self._ov = ov_genai
        self._tensor = openvino.Tensor
        started = time.monotonic()
        limits = model_limits(spec)
        if options.kv_cache_gb <= 0:
            context = wanted_context(limits, options)
            size = kv_cache_gb_for(0, limits.kv_shape, context, options.kv_cache_precision, options.device)
            options = msgspec.structs.replace(options, kv_cache_gb=size)
        self._pipe, loaded_from = load_pipeline(spec, options, limits.kv_shape)
        self._tokenizer = self._pipe.get_tokenizer()
        self._vocab_size = limits.vocab_size
        context = served_context(limits, spec, options)
        template = self._tokenizer.chat_template or ""
        self._template_tools = "tools" in template
        self._info = ModelInfo(
            model_id=spec.id,
            backend="openvino",
            device=options.device,
            context_length=context,
            load_seconds=round(time.monotonic() - started, 3),
            loaded_from=loaded_from,
            capabilities=Capabilities(
                batching=True,
                prefix_caching=options.enable_prefix_caching,
                token_id_prompts=self._vocab_size is not None,
            ),
            template_tools=self._template_tools,
            reasoning="<think>" in template,
            fim_tokens=limits.fim_tokens,
        )
        self._running: dict[int, _Running] = {}

    def info(self) -> ModelInfo:
        """Describe the loaded model."""
        return self._info

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        if request.prompt_ids is not None:
            return checked_prompt_ids(request.prompt_ids, self._vocab_size)
        if request.messages is not None:
            text = self._chat_prompt(request.messages, request.tools)
            # The template already wrote the special tokens it wants.
            encoded = self._tokenizer.encode(text, add_special_tokens=False)
        else:
            encoded = self._tokenizer.encode(request.prompt or "", add_special_tokens=True)
        ids: list[int] = encoded.input_ids.data[0].tolist()
        if not ids:
            # An empty prompt still needs one token to start from.
            ids = [self._tokenizer.get_bos_token_id()]
        return ids

    def count_tokens(self, request: GenerationRequest) -> int:
        """Tokens of the request's prompt after the chat template."""
        return len(self._prompt_ids(request))

    def _chat_prompt(self, messages: tuple[ChatMessage, ...], tools: tuple[dict[str, object], ...]) -> str:
        """The chat template applied to `messages`; tools go to a template that renders them."""
        if self._template_tools:
            history = template_history(messages)
            text: str = self._tokenizer.apply_chat_template(
                history, add_generation_prompt=True, tools=list(tools) if tools else None
            )
            return text
        rendered: str = self._tokenizer.apply_chat_template(text_history(messages, tools), add_generation_prompt=True)
        return rendered

    def tokenize(self, text: str | None, messages: tuple[ChatMessage, ...] | None, add_special: bool) -> list[int]:
        """Token ids of `text`, or of `messages` rendered by the chat template."""
        if messages is not None:
            encoded = self._tokenizer.encode(self._chat_prompt(messages, ()), add_special_tokens=False)
        else:
            encoded = self._tokenizer.encode(text or "", add_special_tokens=add_special)
        ids: list[int] = encoded.input_ids.data[0].tolist()
        return ids

    def detokenize(self, ids: list[int]) -> tuple[str, list[str]]:
        """The text of `ids`, and the text of each id on its own."""
        vocab = self._vocab_size
        if vocab is not None and any(t < 0 or t >= vocab for t in ids):
            raise ValueError(f"token ids must be between 0 and {vocab - 1}")
        if not ids:
            return "", []
        # Decoded apart: a batch of unequal lengths comes back padded.
        text: str = self._tokenizer.decode(ids, skip_special_tokens=False)
        pieces: list[str] = self._tokenizer.decode([[t] for t in ids], skip_special_tokens=False)
        return text, pieces

    def _config(self, request: GenerationRequest, max_new_tokens: int) -> ov_genai.GenerationConfig:
        params = request.params
        config = self._pipe.get_config()
        config.max_new_tokens = max_new_tokens
        config.ignore_eos = params.ignore_eos
        config.presence_penalty = params.presence_penalty
        config.frequency_penalty = params.frequency_penalty
        config.num_return_sequences = 1
        # top_p 0 keeps only the most likely token: that is greedy decoding (the sampler refuses 0).
        if params.temperature <= 0.0 or params.top_p <= 0.0:
            config.do_sample = False
        else:
            config.do_sample = True
            config.temperature = params.temperature
            config.top_p = params.top_p
            if params.top_k > 0:
                config.top_k = params.top_k
            config.min_p = params.min_p
            seed = params.seed if params.seed is not None else random.getrandbits(31)
            config.rng_seed = seed % (2**32)
        config.logprobs = 1 if params.logprobs else 0
        if request.constraint is not None:
            config.structured_output_config = structured_output_config(request.constraint)
        return config

    def submit(self, request: GenerationRequest) -> list[Delta]:
        """Tokenize, check the context budget and queue the request in the pipeline."""
        rid = request.request_id
        try:
            ids = self._prompt_ids(request)
        except Exception as exc:  # a template that rejects the conversation, or bad token ids
            return [Delta(request_id=rid, error=EngineError("invalid_request", f"invalid prompt: {exc}"))]
        n_prompt = len(ids)
        budget = new_token_budget(
            rid, n_prompt, self._info.context_length, request.params.max_tokens, request.params.default_max_tokens
        )
        if isinstance(budget, list):
            return budget
        max_new = budget
        if request.constraint is not None and (problem := constraint_problem(request.constraint)):
            # Refused here, alone: inside the batch step it would break the pipeline for everyone.
            return [Delta(request_id=rid, error=EngineError("invalid_request", f"cannot enforce the {problem}"))]
        input_ids = self._tensor(np.array([ids], dtype=np.int64))
        handle = self._pipe.add_request(rid, input_ids, self._config(request, max_new))
        running = _Running(rid, handle, request.params.stop, n_prompt)
        if request.params.logprobs:
            running.logprobs = []
        self._running[rid] = running
        return []

    def cancel(self, request_id: int) -> None:
        """Drop a request; the pipeline frees its KV blocks on the next step."""
        running = self._running.pop(request_id, None)
        if running is not None:
            running.handle.cancel()

    def has_work(self) -> bool:
        """Whether a request is running or the pipeline still has cleanup to do."""
        return bool(self._running) or self._pipe.has_non_finished_requests()

    def _decode_batch(self, windows: list[list[int]]) -> list[str]:
        texts: list[str] = self._tokenizer.decode(windows)
        return texts

    def step(self) -> list[Delta]:
        """Advance every running request by one batch step."""
        # A grammar xgrammar cannot compile fails here, inside the step, and leaves the pipeline
        # unusable (measured): the server checks every schema before it gets this far, and
        # `submit` checks it again (adapters/schema_bounds.py).
        self._pipe.step()
        running = self._ov.GenerationStatus.RUNNING
        length = self._ov.GenerationFinishReason.LENGTH
        changed: list[_Running] = []
        for run in self._running.values():
            run.new_tokens = 0
            if run.handle.can_read():
                for output in run.handle.read().values():
                    new_ids = output.generated_ids
                    run.new_tokens += len(new_ids)
                    run.decoded.ids.extend(new_ids)
                    if run.logprobs is not None:
                        run.logprobs.extend(zip(new_ids, output.generated_log_probs, strict=True))
                    if output.finish_reason == length:
                        run.finish = "length"
            run.done = run.handle.get_status() != running
            if run.new_tokens or run.done:
                changed.append(run)
        texts = decode_step(self._decode_batch, [r.decoded for r in changed], [r.done for r in changed])
        deltas: list[Delta] = []
        for run, text in zip(changed, texts, strict=True):
            deltas.append(self._delta(run, text))
        return [d for d in deltas if d.text or d.tokens or d.final]

    def _delta(self, run: _Running, text: str) -> Delta:
        rid = run.request_id
        released = run.stopper.feed(text)
        finish: FinishReason | None = None
        error: EngineError | None = None
        if run.stopper.matched:
            run.handle.cancel()
            finish = "stop"
        elif run.done:
            released += run.stopper.flush()
            if run.handle.get_status() == self._ov.GenerationStatus.IGNORED:
                error = EngineError("engine_error", "the request did not fit in the KV cache")
            else:
                finish = run.finish
        delta = Delta(
            request_id=rid,
            text=released,
            tokens=run.new_tokens,
            prompt_tokens=run.prompt_tokens,
            finish_reason=finish,
            stop_sequence=run.stopper.stop,
            error=error,
            logprobs=self._token_logprobs(run),
        )
        run.prompt_tokens = None
        if delta.final:
            del self._running[rid]
        return delta

    def _token_logprobs(self, run: _Running) -> tuple[TokenLogprob, ...]:
        """The log probabilities gathered since the last delta, each with its token's own text."""
        if not run.logprobs:
            return ()
        ids = [token for token, _ in run.logprobs]
        texts: list[str] = self._tokenizer.decode([[token] for token in ids], skip_special_tokens=False)
        out = tuple(
            TokenLogprob(text, list(text.encode()), float(logprob))
            for text, (_, logprob) in zip(texts, run.logprobs, strict=True)
        )
        run.logprobs.clear()
        return out

    def close(self) -> None:
        """Cancel everything in flight and drop the pipeline."""
        for rid in list(self._running):
            self.cancel(rid)
        del self._pipe
