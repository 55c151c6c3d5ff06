"""Text embedding models: the plain data that crosses the worker boundary, and the OpenVINO backend.

An embedding model is an OpenVINO IR folder (as `optimum-cli export openvino --task
feature-extraction` writes it, tokenizer included) served by `openvino_genai.TextEmbeddingPipeline`.
Vectors cross the process boundary as little-endian float32 bytes: the exact bytes OpenAI's
`encoding_format: "base64"` encodes, and a quarter the size of a msgpack list of floats.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import msgspec
import numpy as np

from adapters.base import EngineError

DEFAULT_EMBEDDING_MODEL_ID = "all-minilm-l6-v2"
# Pooling of a sentence-transformers model when its folder does not say (all-MiniLM-L6-v2's).
_DEFAULT_POOLING = "mean"
# Texts per engine call. A batch is padded to its longest text and attention memory grows with
# batch x length^2, so thousands of inputs in one call would take gigabytes.
MAX_BATCH = 32


class EmbeddingSpec(msgspec.Struct, frozen=True):
    """An embedding model that can be served: its public id and its OpenVINO IR folder."""

    id: str
    path: str
    owned_by: str = "hearth"


class EmbeddingInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a loaded embedding model is."""

    model_id: str
    device: str
    dimensions: int
    # The most tokens (special tokens included) one input may have.
    max_tokens: int
    load_seconds: float = 0.0


class EmbedRequest(msgspec.Struct, frozen=True, kw_only=True):
    """Embed every text of one API call."""

    request_id: int
    texts: tuple[str, ...]


class EmbedResult(msgspec.Struct, frozen=True, kw_only=True):
    """The vectors of one `EmbedRequest` (row-major float32 bytes) and each input's token count."""

    request_id: int
    vectors: bytes = b""
    token_counts: tuple[int, ...] = ()
    error: EngineError | None = None

    def matrix(self, dimensions: int) -> np.ndarray[Any, np.dtype[np.float32]]:
        """The vectors as an (inputs x dimensions) float32 array."""
        return np.frombuffer(self.vectors, dtype="<f4").reshape(-1, dimensions)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def pooling_of(folder: Path) -> str:
    """The pooling a sentence-transformers model was trained with (`1_Pooling/config.json`)."""
    config = _read_json(folder / "1_Pooling" / "config.json")
    if config.get("pooling_mode_cls_token"):
        return "cls"
    if config.get("pooling_mode_lasttoken"):
        return "last"
    return _DEFAULT_POOLING


def max_tokens_of(folder: Path) -> int:
    """The longest input the model was built for: sentence-transformers' `max_seq_length` if the
    folder has it, else the tokenizer's `model_max_length`, else the position embeddings."""
    limits = [
        _read_json(folder / "sentence_bert_config.json").get("max_seq_length"),
        _read_json(folder / "tokenizer_config.json").get("model_max_length"),
        _read_json(folder / "config.json").get("max_position_embeddings"),
    ]
    # Tokenizers without a limit store a huge sentinel (int(1e30)) as model_max_length.
    usable = [int(n) for n in limits if isinstance(n, int | float) and 0 < n < 1_000_000]
    return usable[0] if usable else 512


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
        self._info = EmbeddingInfo(
            model_id=spec.id,
            device=device,
            dimensions=int(probe.shape[-1]),
            max_tokens=self._max_tokens,
            load_seconds=time.perf_counter() - start,
        )

    def info(self) -> EmbeddingInfo:
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


def embed_batch(embedder: OpenVINOEmbedder, requests: list[EmbedRequest]) -> list[EmbedResult]:
    """Embed several API calls' texts in one engine call; refuse (per call) inputs that are too long."""
    limit = embedder.info().max_tokens
    accepted: list[tuple[EmbedRequest, list[int]]] = []
    results: dict[int, EmbedResult] = {}
    for request in requests:
        counts = embedder.count_tokens(list(request.texts))
        too_long = [i for i, n in enumerate(counts) if n > limit]
        if too_long:
            i = too_long[0]
            message = (
                f"This model's maximum input length is {limit} tokens, however input[{i}] has {counts[i]} tokens. "
                "Please reduce the length of the input."
            )
            results[request.request_id] = EmbedResult(
                request_id=request.request_id, error=EngineError("context_length_exceeded", message)
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
