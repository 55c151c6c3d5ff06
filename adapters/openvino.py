"""OpenVINO GenAI backend: a continuous-batching pipeline advanced one step at a time.

Runs inside a worker process (see `adapters.worker`): `ContinuousBatchingPipeline.step()` holds
the Python GIL for the whole batch step, so it must not share a process with the HTTP event loop.

With `quick_start` (an IR on CPU, with the model cache) the backend is ready as soon as the
stateful pipeline has loaded its compiled blob (adapters/solo.py): that pipeline answers one plain
request at a time while the batching pipeline builds on a thread, and every request after the
build goes to the batching pipeline. Requests that need what only the batching pipeline does
(log probabilities, a grammar) or that arrive while the stateful one is busy wait for whichever
frees first.
"""

from __future__ import annotations

import logging
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

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
from adapters.ir_cache import PipelineSource, pipeline_source
from adapters.kv_cache import kv_cache_gb_for, kv_cache_tokens
from adapters.limits import model_limits, served_context, wanted_context
from adapters.openvino_pipelines import PipelineBuild, load_pipeline, pipeline_properties
from adapters.solo import SoloHandle, SoloPipeline, solo_properties
from adapters.stops import StopMatcher
from adapters.structured import constraint_problem, structured_output_config
from adapters.tool_prompt import template_history, text_history
from hub.models import ModelSpec

if TYPE_CHECKING:
    import openvino_genai as ov_genai

log = logging.getLogger(__name__)

# With quick start: the batching pipeline starts building once the stateful pipeline has had nothing
# to do for this long (since ready, or since its last answer), or at once when a request has to
# wait. Not right after an answer: a next question sent at once then shared the CPU with the build
# (measured: a 32-token answer right after the first took 1.4 s, ~0.85 s alone).
_BUILD_AFTER_IDLE_S = 1.0
# How long a step waits for the stateful pipeline's next token before the loop looks for commands.
_SOLO_WAIT_S = 0.05


def quick_start_source(source: PipelineSource, options: EngineOptions) -> bool:
    """Whether the stateful pipeline can answer while the batching one builds: an IR already on
    disk (not one this load saves), on CPU, with a model cache for its compiled blob."""
    return (
        options.quick_start
        and options.device.upper() == "CPU"
        and bool(options.cache_dir)
        and not source.saving
        and Path(source.path, "openvino_model.xml").is_file()
    )


class _Waiting(NamedTuple):
    """A request accepted but not yet started (quick start: no pipeline free for it yet)."""

    request: GenerationRequest
    ids: list[int]
    max_new: int


class _Running:
    """One request in flight: its handle, decode state and stop matcher."""

    def __init__(
        self,
        request_id: int,
        handle: ov_genai.GenerationHandle | SoloHandle,
        stops: tuple[str, ...],
        prompt_tokens: int,
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
        source = pipeline_source(spec, options)
        loaded_from = f"its cached IR {source.path}" if source.from_ir_cache else ""
        self._pipe: ov_genai.ContinuousBatchingPipeline | None = None
        self._solo: SoloPipeline | None = None
        self._build: PipelineBuild | None = None
        self._solo_max_tokens = 0
        if quick_start_source(source, options):
            properties = solo_properties(options, pipeline_properties(options))
            self._solo = SoloPipeline(source.path, options.device, properties)
            self._build = PipelineBuild(source, options, limits.kv_shape)
            self._tokenizer = self._solo.pipe.get_tokenizer()
            # The stateful pipeline's f32 KV cache grows with its sequence, outside the memory the
            # server reserved for the batching pipeline's cache: a longer request waits for that one.
            shape = limits.kv_shape
            self._solo_max_tokens = (
                kv_cache_tokens(shape, options.kv_cache_gb, "f32", options.device) if shape is not None else 0
            )
            loaded_from = (loaded_from or source.path) + " (stateful pipeline first, batching pipeline building)"
        else:
            self._pipe = load_pipeline(source, options, limits.kv_shape)
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
        self._waiting: dict[int, _Waiting] = {}
        # Answers decided outside a step (a waiting request that failed), sent with the next.
        self._failed: list[Delta] = []
        self._idle_since = time.monotonic()

    def info(self) -> ModelInfo:
        """Describe the loaded model."""
        return self._info

    def serving_pipeline(self) -> str:
        """ "stateful" while quick start answers from the stateful pipeline, else "batching"."""
        return "batching" if self._pipe is not None else "stateful"

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
        if self._pipe is not None:
            config = self._pipe.get_config()
        else:
            assert self._solo is not None
            config = self._solo.pipe.get_generation_config()
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
        if self._pipe is not None:
            self._start(request, ids, max_new)
        else:
            self._waiting[rid] = _Waiting(request, ids, max_new)
            self._advance_startup()
        return []

    def _start(self, request: GenerationRequest, ids: list[int], max_new: int) -> None:
        """Run a request on the batching pipeline, or on the stateful one while there is none."""
        config = self._config(request, max_new)
        handle: ov_genai.GenerationHandle | SoloHandle
        if self._pipe is not None:
            handle = self._pipe.add_request(request.request_id, self._tensor(np.array([ids], dtype=np.int64)), config)
        else:
            assert self._solo is not None
            handle = self._solo.start(ids, config)
        running = _Running(request.request_id, handle, request.params.stop, len(ids))
        if request.params.logprobs:
            running.logprobs = []
        self._running[request.request_id] = running

    def _solo_can_serve(self, waiting: _Waiting) -> bool:
        """Whether the stateful pipeline does all a request asks (no log probabilities, no grammar)
        within the tokens its KV cache may hold."""
        request = waiting.request
        fits = len(waiting.ids) + waiting.max_new <= self._solo_max_tokens
        return fits and not request.params.logprobs and request.constraint is None

    def _advance_startup(self) -> None:
        """Quick start: move to the batching pipeline once built, start a waiting request on the
        stateful pipeline when it is free, begin the build when due, and drop the stateful
        pipeline once the batching one serves and nothing runs on it."""
        build, solo = self._build, self._solo
        if build is not None and build.done:
            self._adopt(build)
            build = None
        if self._pipe is None and solo is not None and not solo.busy:
            for rid, waiting in list(self._waiting.items()):
                if self._solo_can_serve(waiting):
                    del self._waiting[rid]
                    self._start(*waiting)
                    break
        if build is not None and not build.started:
            idle_for = time.monotonic() - self._idle_since if not self._running else 0.0
            # Something waits (the stateful pipeline is busy or cannot serve it), or nothing asked
            # for a while.
            if self._waiting or idle_for >= _BUILD_AFTER_IDLE_S:
                build.start()
        if self._pipe is None and self._build is None:
            self._fail_waiting("the batching pipeline failed to build")
        if self._pipe is not None and solo is not None and not self._solo_running():
            solo.close()
            self._solo = None
            log.info("the batching pipeline serves %s from now on", self._info.model_id)

    def _solo_running(self) -> bool:
        return any(isinstance(r.handle, SoloHandle) for r in self._running.values())

    def _adopt(self, build: PipelineBuild) -> None:
        """Take the built batching pipeline and start everything that waits on it."""
        self._build = None
        if build.pipe is None:
            return
        log.info("built the batching pipeline of %s in %.1fs", self._info.model_id, build.seconds)
        self._pipe = build.pipe
        for waiting in self._waiting.values():
            self._start(*waiting)
        self._waiting.clear()

    def _fail_waiting(self, why: str) -> None:
        """Fail the waiting requests that only the batching pipeline could serve."""
        for rid, waiting in list(self._waiting.items()):
            if not self._solo_can_serve(waiting):
                del self._waiting[rid]
                self._failed.append(Delta(request_id=rid, error=EngineError("engine_error", why)))

    def cancel(self, request_id: int) -> None:
        """Drop a request; the pipeline frees its KV blocks on the next step."""
        self._waiting.pop(request_id, None)
        running = self._running.pop(request_id, None)
        if running is not None:
            running.handle.cancel()

    def has_work(self) -> bool:
        """Whether a request is running or waiting, quick start is still under way, or the
        pipeline still has cleanup to do."""
        if self._running or self._waiting or self._failed or self._build is not None:
            return True
        if self._solo is not None and self._pipe is not None:
            return True  # one more step drops the stateful pipeline
        return self._pipe is not None and self._pipe.has_non_finished_requests()

    def _decode_batch(self, windows: list[list[int]]) -> list[str]:
        texts: list[str] = self._tokenizer.decode(windows)
        return texts

    def step(self) -> list[Delta]:
        """Advance every running request by one batch step."""
        # A grammar xgrammar cannot compile fails here, inside the step, and leaves the pipeline
        # unusable (measured): the server checks every schema before it gets this far, and
        # `submit` checks it again (adapters/schema_bounds.py).
        if self._pipe is None or self._solo is not None:
            self._advance_startup()
        if self._pipe is not None and self._pipe.has_non_finished_requests():
            self._pipe.step()
        elif self._solo is not None and (self._running or self._waiting):
            self._solo.wait(_SOLO_WAIT_S)
        elif self._build is not None:
            time.sleep(_SOLO_WAIT_S)
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
        deltas, self._failed = self._failed, []
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
            if isinstance(run.handle, SoloHandle) and run.handle.error is not None:
                error = EngineError("engine_error", run.handle.error)
            elif run.handle.get_status() == self._ov.GenerationStatus.IGNORED:
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
            if isinstance(run.handle, SoloHandle):
                self._idle_since = time.monotonic()
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
        self._waiting.clear()
        if self._build is not None:
            self._build.join()
        if self._solo is not None:
            self._solo.close()
        self._pipe = None
