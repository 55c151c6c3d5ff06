"""ONNX Runtime GenAI backend for folders made by onnxruntime-genai's model builder.

ONNX Runtime GenAI has no continuous batching on its public Python API: a `Generator` runs one
sequence (its `batch_size` is fixed when it is created, so requests arriving later cannot join).
This backend therefore keeps one `Generator` per request, up to `max_num_seqs` of them, and a batch
step advances each running generator by one token in turn: concurrent requests interleave fairly
(round-robin, first come first admitted) and aggregate throughput stays that of one stream.
Requests beyond `max_num_seqs` wait in a FIFO queue. Like the OpenVINO backend it runs inside a
worker process (`adapters.worker`), so a long prefill never blocks the HTTP event loop.
"""

from __future__ import annotations

import collections
import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

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
    SamplingParams,
)
from adapters.budget import checked_prompt_ids, new_token_budget
from adapters.detokenize import DecodeState, decode_step
from adapters.limits import FALLBACK_CONTEXT
from adapters.stops import StopMatcher
from hub.models import ModelSpec

if TYPE_CHECKING:
    import onnxruntime_genai as og


def genai_config(path: Path) -> dict[str, Any]:
    """The `genai_config.json` the model builder wrote next to the model."""
    config: dict[str, Any] = json.loads((path / "genai_config.json").read_text())
    return config


def _hf_decoder(path: Path) -> Any:
    """The builder's `tokenizer.json` loaded with Hugging Face `tokenizers`, if both are there.

    onnxruntime-genai's own decode stops at the first invalid UTF-8 byte inside a sequence and
    drops the rest; incremental detokenization decodes windows that can hold such a byte (a
    character split over tokens), so text would be lost. `tokenizers` decodes the same file
    faithfully, and in one batched call.
    """
    file = path / "tokenizer.json"
    try:
        from tokenizers import Tokenizer
    except ImportError:
        return None
    return Tokenizer.from_file(str(file)) if file.is_file() else None


class _Running:
    """One request: its generator (once admitted), decode state and stop matcher."""

    def __init__(self, request: GenerationRequest, ids: list[int], max_new: int) -> None:
        self.request = request
        self.ids = ids
        self.max_new = max_new
        self.generator: og.Generator | None = None
        self.decoded = DecodeState()
        self.stopper = StopMatcher(request.params.stop)
        self.prompt_tokens: int | None = len(ids)
        self.generated = 0
        self.new_tokens = 0
        self.finish: FinishReason = "stop"
        self.done = False


class ONNXBackend:
    """A model served by ONNX Runtime GenAI on one execution provider (cpu, cuda or dml)."""

    def __init__(self, spec: ModelSpec, options: EngineOptions) -> None:
        import onnxruntime_genai as og

        self._og = og
        started = time.monotonic()
        path = Path(spec.path)
        meta = genai_config(path).get("model", {})
        config = og.Config(str(path))
        config.clear_providers()
        device = options.device.lower()
        if device != "cpu":
            config.append_provider(device)
        self._model = og.Model(config)
        self._tokenizer = og.Tokenizer(self._model)
        self._decoder = _hf_decoder(path)
        vocab = meta.get("vocab_size")
        self._vocab_size: int | None = vocab if isinstance(vocab, int) else None
        eos = meta.get("eos_token_id", [])
        self._eos = set(eos if isinstance(eos, list) else [eos])
        bos = meta.get("bos_token_id")
        self._bos = bos if isinstance(bos, int) else None
        trained = meta.get("context_length")
        trained = trained if isinstance(trained, int) else FALLBACK_CONTEXT
        context = min(trained, options.context_length) if options.context_length > 0 else trained
        self._max_running = options.max_num_seqs
        self._info = ModelInfo(
            model_id=spec.id,
            backend="onnx",
            device=device,
            context_length=context,
            load_seconds=round(time.monotonic() - started, 3),
            capabilities=Capabilities(
                batching=False, prefix_caching=False, token_id_prompts=self._vocab_size is not None
            ),
        )
        self._waiting: collections.deque[_Running] = collections.deque()
        self._running: dict[int, _Running] = {}

    def info(self) -> ModelInfo:
        """Describe the loaded model."""
        return self._info

    def _prompt_ids(self, request: GenerationRequest) -> list[int]:
        if request.prompt_ids is not None:
            return checked_prompt_ids(request.prompt_ids, self._vocab_size)
        if request.messages is not None:
            history = json.dumps([{"role": m.role, "content": m.content} for m in request.messages])
            text = self._tokenizer.apply_chat_template(history, add_generation_prompt=True)
        else:
            text = request.prompt or ""
        ids: list[int] = [int(t) for t in self._tokenizer.encode(text)]
        if not ids and self._bos is not None:
            ids = [self._bos]  # an empty prompt still needs one token to start from
        if not ids:
            raise ValueError("the prompt is empty and the model has no BOS token")
        return ids

    def count_tokens(self, request: GenerationRequest) -> int:
        """Tokens of the request's prompt after the chat template."""
        return len(self._prompt_ids(request))

    def tokenize(self, text: str | None, messages: tuple[ChatMessage, ...] | None, add_special: bool) -> list[int]:
        """Token ids of `text`, or of `messages` rendered by the chat template (the builder's
        tokenizer always adds its special tokens, so `add_special` cannot turn them off)."""
        if messages is not None:
            return self._prompt_ids(GenerationRequest(request_id=-1, params=SamplingParams(), messages=messages))
        return [int(t) for t in self._tokenizer.encode(text or "")]

    def detokenize(self, ids: list[int]) -> tuple[str, list[str]]:
        """The text of `ids`, and the text of each id on its own."""
        vocab = self._vocab_size
        if vocab is not None and any(t < 0 or t >= vocab for t in ids):
            raise ValueError(f"token ids must be between 0 and {vocab - 1}")
        if not ids:
            return "", []
        if self._decoder is not None:
            text: str = self._decoder.decode(ids, skip_special_tokens=False)
            pieces: list[str] = self._decoder.decode_batch([[t] for t in ids], skip_special_tokens=False)
            return text, pieces
        decode = self._tokenizer.decode
        return decode(np.array(ids, dtype=np.int32)), [decode(np.array([t], dtype=np.int32)) for t in ids]

    def submit(self, request: GenerationRequest) -> list[Delta]:
        """Tokenize, check the context budget and queue the request."""
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
        run = _Running(request, ids, max_new)
        self._running[rid] = run
        self._waiting.append(run)
        return []

    def _generator(self, run: _Running) -> og.Generator:
        params = self._og.GeneratorParams(self._model)
        p = run.request.params
        total = len(run.ids) + run.max_new
        options: dict[str, Any] = {"max_length": total, "num_beams": 1}
        if p.ignore_eos:
            options["min_length"] = total  # EOS is masked until the length is reached
        # top_p 0 keeps only the most likely token: greedy, as in the OpenVINO backend.
        if p.temperature <= 0.0 or p.top_p <= 0.0:
            options["do_sample"] = False
        else:
            seed = p.seed if p.seed is not None else random.getrandbits(31)
            options.update(do_sample=True, temperature=p.temperature, top_p=p.top_p, random_seed=seed % (2**31))
            if p.top_k > 0:
                options["top_k"] = p.top_k
        params.set_search_options(**options)
        generator = self._og.Generator(self._model, params)
        generator.append_tokens(np.array(run.ids, dtype=np.int32))
        return generator

    def cancel(self, request_id: int) -> None:
        """Drop a request; deleting its generator frees its KV cache."""
        run = self._running.pop(request_id, None)
        if run is not None:
            run.generator = None
            if run in self._waiting:
                self._waiting.remove(run)

    def has_work(self) -> bool:
        """Whether any request is waiting or running."""
        return bool(self._running)

    def _decode_batch(self, windows: list[list[int]]) -> list[str]:
        if self._decoder is not None:
            texts: list[str] = self._decoder.decode_batch(windows, skip_special_tokens=True)
            return texts
        return [self._tokenizer.decode(np.array(w, dtype=np.int32)) if w else "" for w in windows]

    def step(self) -> list[Delta]:
        """Admit waiting requests (their prefill) while slots are free, then one token for each."""
        active = [r for r in self._running.values() if r.generator is not None]
        while self._waiting and len(active) < self._max_running:
            run = self._waiting.popleft()
            try:
                run.generator = self._generator(run)
            except Exception as exc:  # e.g. out of memory for this request's KV cache
                del self._running[run.request.request_id]
                error = EngineError("engine_error", f"{type(exc).__name__}: {exc}")
                return [Delta(request_id=run.request.request_id, error=error)]
            active.append(run)
        changed: list[_Running] = []
        for run in active:
            generator = run.generator
            assert generator is not None
            generator.generate_next_token()
            token = int(generator.get_next_tokens()[0])
            run.generated += 1
            run.new_tokens = 1
            if token in self._eos and not run.request.params.ignore_eos:
                run.new_tokens = 0  # the end-of-text token is not part of the answer
                run.done = True
            else:
                run.decoded.ids.append(token)
                if run.generated >= run.max_new:
                    run.finish = "length"
                    run.done = True
                elif generator.is_done():
                    run.done = True
            changed.append(run)
        texts = decode_step(self._decode_batch, [r.decoded for r in changed], [r.done for r in changed])
        deltas = [self._delta(run, text) for run, text in zip(changed, texts, strict=True)]
        return [d for d in deltas if d.text or d.tokens or d.final]

    def _delta(self, run: _Running, text: str) -> Delta:
        rid = run.request.request_id
        released = run.stopper.feed(text)
        finish: FinishReason | None = None
        if run.stopper.matched:
            finish = "stop"
        elif run.done:
            released += run.stopper.flush()
            finish = run.finish
        delta = Delta(
            request_id=rid,
            text=released,
            tokens=run.new_tokens,
            prompt_tokens=run.prompt_tokens,
            finish_reason=finish,
            stop_sequence=run.stopper.stop,
        )
        run.prompt_tokens = None
        if delta.final:
            self.cancel(rid)
        return delta

    def close(self) -> None:
        """Drop every request and the model."""
        for rid in list(self._running):
            self.cancel(rid)
        del self._tokenizer
        del self._model
