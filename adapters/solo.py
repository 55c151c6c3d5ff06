"""One request at a time through OpenVINO GenAI's stateful `LLMPipeline`, while the batching
pipeline builds.

Why (benchmarks/RESULTS.md, session 24): on CPU the continuous-batching pipeline cannot load a
compiled blob (OpenVINO's CPU plugin fails to import PagedAttention), so every start spends ~4-5 s
in graph transformations and compilation. The stateful pipeline of the same IR loads its compiled
blob from the model cache in ~1.2 s and decodes one stream as fast. A backend in its start-up phase
therefore answers from this pipeline and moves to the batching one once it is built
(adapters/openvino.py).

`LLMPipeline.generate` blocks until the answer is complete, so it runs on a thread of its own and
hands each token to the worker's loop through a `SoloHandle`, which reads like the batching
pipeline's `GenerationHandle`: the backend's step code serves both.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from adapters.base import EngineOptions

if TYPE_CHECKING:
    import openvino_genai as ov_genai

log = logging.getLogger(__name__)


def solo_cache_dir(options: EngineOptions) -> str:
    """Where the stateful pipeline's compiled blobs are kept: a folder of their own under the model
    cache, so that tools (and the tests, which share it between homes) can tell them apart. The
    blob's name is a hash of the model's content and properties, not of its path (measured)."""
    return os.path.join(options.cache_dir, "stateful") if options.cache_dir else ""


def solo_properties(options: EngineOptions, base: dict[str, object]) -> dict[str, object]:
    """Compile properties of the stateful pipeline: the batching pipeline's `base` properties, the
    compiled-model cache (which this pipeline, unlike the batching one, can load), and an f32 KV
    cache: its greedy tokens are then those of the batching pipeline with an f32 cache (measured),
    where the plugin's default or u8 drift from it sooner."""
    properties = {k: v for k, v in base.items() if k != "KV_CACHE_PRECISION"}
    properties["ATTENTION_BACKEND"] = "SDPA"
    properties["KV_CACHE_PRECISION"] = "f32"
    properties["CACHE_DIR"] = solo_cache_dir(options)
    return properties


class SoloOutput(NamedTuple):
    """What a `SoloHandle` read returns for its one sequence (as a `GenerationOutput` would)."""

    generated_ids: list[int]
    generated_log_probs: list[float]
    finish_reason: object


class SoloHandle:
    """One request on the stateful pipeline, read like a batching pipeline's `GenerationHandle`."""

    def __init__(self, ov: object, max_new_tokens: int, wake: threading.Event) -> None:
        self._ov = ov
        self._max_new = max_new_tokens
        self._wake = wake
        self._lock = threading.Lock()
        self._ids: list[int] = []
        self._produced = 0
        self._done = False
        self._cancelled = False
        self.error: str | None = None

    # Called on the generating thread.
    def add(self, ids: Sequence[int]) -> bool:
        """Take new tokens; False once the request was cancelled (the streamer then cancels)."""
        with self._lock:
            self._ids.extend(ids)
            self._produced += len(ids)
            cancelled = self._cancelled
        self._wake.set()
        return not cancelled

    def finish(self, error: str | None = None) -> None:
        """Mark the request complete (or failed with `error`)."""
        with self._lock:
            self._done = True
            self.error = error
        self._wake.set()

    # Called on the worker's loop.
    def cancel(self) -> None:
        """Stop at the next token."""
        with self._lock:
            self._cancelled = True

    def can_read(self) -> bool:
        """Whether tokens (or the end) arrived since the last read."""
        with self._lock:
            return bool(self._ids) or self._done

    def read(self) -> dict[int, SoloOutput]:
        """The tokens since the last read, and the finish reason once complete."""
        ov = self._ov
        with self._lock:
            ids, self._ids = self._ids, []
            reason = None
            if self._done and self.error is None:
                length = self._produced >= self._max_new
                reason = ov.GenerationFinishReason.LENGTH if length else ov.GenerationFinishReason.STOP  # type: ignore[attr-defined]
        return {0: SoloOutput(ids, [], reason)}

    def get_status(self) -> object:
        """RUNNING until complete; then FINISHED, CANCELLED or (after an engine error) IGNORED."""
        status = self._ov.GenerationStatus  # type: ignore[attr-defined]
        with self._lock:
            if not self._done:
                return status.RUNNING
            if self.error is not None:
                return status.IGNORED
            return status.CANCELLED if self._cancelled else status.FINISHED


class SoloPipeline:
    """The stateful pipeline of a model and the one request it may be running."""

    def __init__(self, path: str, device: str, properties: dict[str, object]) -> None:
        import openvino
        import openvino_genai as ov_genai

        self._ov = ov_genai
        self._tensor = openvino.Tensor
        self.pipe = ov_genai.LLMPipeline(path, device, **properties)
        self.wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._warm_up()

    def _warm_up(self) -> None:
        """A 16-token prompt and two tokens: the first prefill of a compiled model costs ~0.5 s
        more than later ones, and so does its first one-token decode step (measured), which the
        worker pays while the server is still starting rather than in its first answer. A 1- or
        2-token prompt leaves the cost to the first longer prompt; 16 tokens cover prompts of 40
        and 100 tokens (measured)."""
        config = self.pipe.get_generation_config()
        config.max_new_tokens = 2
        config.ignore_eos = True
        config.do_sample = False
        shape = (1, 16)
        ids = self._tensor(np.full(shape, self.pipe.get_tokenizer().get_bos_token_id(), dtype=np.int64))
        self.pipe.generate(self._ov.TokenizedInputs(ids, self._tensor(np.ones(shape, dtype=np.int64))), config)

    @property
    def busy(self) -> bool:
        """Whether a request is still generating."""
        return self._thread is not None and self._thread.is_alive()

    def start(self, ids: list[int], config: ov_genai.GenerationConfig) -> SoloHandle:
        """Generate for the prompt `ids` on a thread; tokens arrive through the returned handle."""
        import openvino_genai as ov_genai

        handle = SoloHandle(self._ov, config.max_new_tokens, self.wake)

        class _Streamer(ov_genai.StreamerBase):  # type: ignore[misc]
            def write(self, token: int | list[int]) -> ov_genai.StreamingStatus:
                ok = handle.add([token] if isinstance(token, int) else token)
                return ov_genai.StreamingStatus.RUNNING if ok else ov_genai.StreamingStatus.CANCEL

            def end(self) -> None:
                return None

        tensor = self._tensor(np.array([ids], dtype=np.int64))
        inputs = ov_genai.TokenizedInputs(tensor, self._tensor(np.ones((1, len(ids)), dtype=np.int64)))

        def run() -> None:
            try:
                self.pipe.generate(inputs, config, _Streamer())
            except Exception as exc:  # reported on this request only
                log.exception("the stateful pipeline failed")
                handle.finish(f"{type(exc).__name__}: {exc}")
                return
            handle.finish()

        self._thread = threading.Thread(target=run, name="solo-generate", daemon=True)
        self._thread.start()
        return handle

    def wait(self, timeout: float) -> None:
        """Block until a token or an end arrives, at most `timeout` seconds."""
        self.wake.wait(timeout)
        self.wake.clear()

    def close(self) -> None:
        """Wait for the running request (it was cancelled) and drop the pipeline."""
        if self._thread is not None:
            self._thread.join()
        del self.pipe
