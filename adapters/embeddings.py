"""The embedding backend: a text embedding model on OpenVINO GenAI, run in a worker process.

An embedding model is an OpenVINO IR folder (as `optimum-cli export openvino --task
feature-extraction` writes it, tokenizer included) served by `openvino_genai.TextEmbeddingPipeline`.
Its data (`EmbeddingSpec`, `EmbedRequest`, `EmbedResult`) is part of the contract in adapters/base.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from adapters.base import Capabilities, EmbeddingSpec, EmbedRequest, EmbedResult, EngineError, ModelInfo
from adapters.limits import max_tokens_of, pooling_of

log = logging.getLogger(__name__)

# Texts per engine call. A batch is padded to its longest text and attention memory grows with
# batch x length^2, so thousands of inputs in one call would take gigabytes.
MAX_BATCH = 32


class OpenVINOEmbedder:
    """A text embedding model on OpenVINO GenAI: mean (or CLS) pooling, L2-normalized vectors."""

    def __init__(self, spec: EmbeddingSpec, device: str = "CPU") -> None:
        import openvino_genai as ov_genai

        start = time.perf_counter()
        folder = Path(spec.path)
        self._max_tokens = max_tokens_of(folder)
        pooling = {
            "mean": ov_genai.TextEmbeddingPipeline.PoolingType.MEAN,
            "cls": ov_genai.TextEmbeddingPipeline.PoolingType.CLS,
            "last": ov_genai.TextEmbeddingPipeline.PoolingType.LAST_TOKEN,
        }[pooling_of(folder)]
        config = ov_genai.TextEmbeddingPipeline.Config(
            pooling_type=pooling, normalize=True, max_length=self._max_tokens
        )
        self._pipeline = ov_genai.TextEmbeddingPipeline(str(folder), device, config)
        self._tokenizer = ov_genai.Tokenizer(str(folder))
        probe = np.asarray(self._pipeline.embed_query("probe"), dtype=np.float32)
        self._info = ModelInfo(
            model_id=spec.id,
            backend="openvino",
            device=device,
            context_length=self._max_tokens,
            load_seconds=time.perf_counter() - start,
            capabilities=Capabilities(batching=True, token_id_prompts=False, chat_template=False),
            dimensions=int(probe.shape[-1]),
        )

    def info(self) -> ModelInfo:
        """Describe the loaded model."""
        return self._info

    def count_tokens(self, texts: list[str]) -> list[int]:
        """Tokens of each text, special tokens included, as the model sees it (before truncation)."""
        counts: list[int] = []
        for text in texts:
            encoded = self._tokenizer.encode(text, add_special_tokens=True)
            counts.append(int(np.asarray(encoded.attention_mask.data).sum()))
        return counts

    def embed(self, texts: list[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The vectors of `texts` as an (inputs x dimensions) float32 array, `MAX_BATCH` per engine call."""
        parts = [
            np.asarray(self._pipeline.embed_documents(texts[i : i + MAX_BATCH]), dtype=np.float32)
            for i in range(0, len(texts), MAX_BATCH)
        ]
        return np.concatenate(parts).reshape(len(texts), self._info.dimensions)

    def close(self) -> None:
        """Release the model."""
        del self._pipeline
        del self._tokenizer


def load_embedder(spec: EmbeddingSpec, device: str) -> OpenVINOEmbedder:
    """The embedder on `device`; `auto` tries the best accelerator, then the CPU."""
    from adapters.registry import available_devices, plan_devices

    plan = plan_devices("openvino", device, available_devices("openvino"))
    if plan.note:
        log.warning("%s", plan.note)
    failure: Exception | None = None
    for candidate in plan.candidates:
        try:
            return OpenVINOEmbedder(spec, candidate)
        except Exception as exc:
            log.warning("cannot load %s on %s: %s", spec.id, candidate, exc)
            failure = exc
    assert failure is not None  # a plan always has a candidate
    raise failure


def embed_batch(embedder: OpenVINOEmbedder, requests: list[EmbedRequest]) -> list[EmbedResult]:
    """Embed several API calls' texts in one engine call; refuse (per call) inputs that are too long."""
    limit = embedder.info().context_length
    accepted: list[tuple[EmbedRequest, list[int]]] = []
    results: dict[int, EmbedResult] = {}
    for request in requests:
        counts = embedder.count_tokens(list(request.texts))
        if max(counts) > limit:
            # The caller knows what each input is called in its API; it names the culprit.
            message = f"This model's maximum input length is {limit} tokens."
            results[request.request_id] = EmbedResult(
                request_id=request.request_id,
                token_counts=tuple(counts),
                error=EngineError("context_length_exceeded", message),
            )
        else:
            accepted.append((request, counts))
    texts = [text for request, _ in accepted for text in request.texts]
    if texts:
        matrix = embedder.embed(texts)
        row = 0
        for request, counts in accepted:
            rows = matrix[row : row + len(request.texts)]
            row += len(request.texts)
            results[request.request_id] = EmbedResult(
                request_id=request.request_id,
                vectors=np.ascontiguousarray(rows, dtype="<f4").tobytes(),
                token_counts=tuple(counts),
            )
    return [results[r.request_id] for r in requests]
