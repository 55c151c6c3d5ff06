"""What a model's files say about its limits, read before any engine loads it.

The scheduler sizes and describes a deployment from these (its context window, an embedding
model's longest input) without importing a backend; the backends read the same numbers when they
load.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from adapters.base import EngineOptions
from adapters.kv_cache import KVShape, config_shape, gguf_shape, kv_cache_gb_for, kv_cache_tokens
from hub.gguf import context_length as gguf_context_length
from hub.gguf import read_metadata
from hub.models import ModelSpec

# The context of a model whose files do not say.
FALLBACK_CONTEXT = 4096
# Pooling of a sentence-transformers model when its folder does not say (all-MiniLM-L6-v2's).
_DEFAULT_POOLING = "mean"


class ModelLimits(NamedTuple):
    """Sizes read from a model's files."""

    context_length: int
    vocab_size: int | None
    fim_tokens: tuple[str, str, str] | None = None
    kv_shape: KVShape | None = None


# Fill-in-the-middle tokens (prefix, suffix, middle) of the model families that have them.
FIM_TOKEN_SETS = (
    ("<fim_prefix>", "<fim_suffix>", "<fim_middle>"),  # StarCoder, StarCoder2, SantaCoder
    ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>"),  # Qwen2.5-Coder
    # DeepSeek-Coder (its bars are U+FF5C, its spaces U+2581)
    ("<\uff5cfim\u2581begin\uff5c>", "<\uff5cfim\u2581hole\uff5c>", "<\uff5cfim\u2581end\uff5c>"),
)


def fim_tokens(vocabulary: object) -> tuple[str, str, str] | None:
    """The first FIM token set that `vocabulary` (token strings) contains completely."""
    if not isinstance(vocabulary, list | set | dict):
        return None
    known = set(vocabulary)
    return next((tokens for tokens in FIM_TOKEN_SETS if known.issuperset(tokens)), None)


def model_limits(spec: ModelSpec) -> ModelLimits:
    """The trained context length, vocabulary size, FIM tokens and KV-cache shape recorded in the
    model's files (read once: a GGUF's metadata takes ~0.1 s to parse)."""
    if spec.format == "gguf":
        metadata = read_metadata(spec.path, arrays=("tokenizer.ggml.tokens",))
        tokens = metadata.get("tokenizer.ggml.tokens")
        return ModelLimits(
            gguf_context_length(metadata) or FALLBACK_CONTEXT,
            len(tokens) if isinstance(tokens, list) else None,
            fim_tokens(tokens),
            gguf_shape(metadata),
        )
    config_path = Path(spec.path) / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    context = config.get("max_position_embeddings")
    vocab = config.get("vocab_size")
    tokenizer_path = Path(spec.path) / "tokenizer.json"
    added = json.loads(tokenizer_path.read_text()).get("added_tokens", []) if tokenizer_path.is_file() else []
    return ModelLimits(
        context if isinstance(context, int) else FALLBACK_CONTEXT,
        vocab if isinstance(vocab, int) else None,
        fim_tokens([t.get("content") for t in added if isinstance(t, dict)]),
        config_shape(config),
    )


def wanted_context(limits: ModelLimits, options: EngineOptions) -> int:
    """The context a model is asked to serve: its trained length, capped by the setting (before
    the KV cache caps it further in `served_context`; what the automatic KV cache is sized for)."""
    if options.context_length > 0:
        return min(limits.context_length, options.context_length)
    return limits.context_length


def served_context(limits: ModelLimits, spec: ModelSpec, options: EngineOptions) -> int:
    """The context window a model is served with: its trained length, capped by the setting and,
    on OpenVINO, by what the KV cache holds (a request that outgrew the cache could never finish;
    ONNX Runtime GenAI sizes its cache per request)."""
    context = wanted_context(limits, options)
    if spec.format == "onnx" or limits.kv_shape is None:
        return context
    size = kv_cache_gb_for(options.kv_cache_gb, limits.kv_shape, context, options.kv_cache_precision, options.device)
    capacity = kv_cache_tokens(limits.kv_shape, size, options.kv_cache_precision, options.device)
    return min(context, capacity)


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


def dimensions_of(folder: Path) -> int:
    """The length of the vectors the model makes, read from its files before it loads (0 when
    they do not say): the pooling layer's input width, else the transformer's hidden size."""
    for value in (
        _read_json(folder / "1_Pooling" / "config.json").get("word_embedding_dimension"),
        _read_json(folder / "config.json").get("hidden_size"),
    ):
        if isinstance(value, int) and value > 0:
            return value
    return 0
