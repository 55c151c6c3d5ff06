"""KV-cache sizing: how many bytes a cached token takes for a model, and how many cache blocks a
memory size buys.

OpenVINO GenAI's `SchedulerConfig.cache_size` only takes whole gigabytes; `num_kv_blocks` takes
any size, but in blocks whose byte size depends on the model's shape. With prefix caching on,
the engine keeps finished requests' blocks for reuse until the cache is full, so a runner's memory
grows to its whole KV cache and stays there (measured: benchmarks/RESULTS.md): the size chosen
here is what the scheduler must budget for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from hub.gguf import GGUFError, read_metadata

GIB = 1024**3
# The automatic KV cache (`kv_cache_gb` 0) holds one full context, or this many tokens when that is
# more: 16 streams of 1024 tokens, what a small model is asked for at once (benchmarks/RESULTS.md).
AUTO_KV_MIN_TOKENS = 16 * 1024
# ... but never more than this share of the machine's memory (the served context shrinks instead).
AUTO_KV_MEMORY_SHARE = 0.10
# The smallest automatic cache: a model whose shape is unknown, or a machine short of memory.
AUTO_KV_FLOOR_GB = 0.25
# Bytes of one cached element, by OpenVINO KV-cache precision.
_ELEMENT_BYTES = {"u4": 0.5, "i4": 0.5, "u8": 1.0, "i8": 1.0, "f16": 2.0, "bf16": 2.0, "f32": 4.0}
# A quantized cache keeps a scale and a zero point (two f32) per token and head beside the values.
_QUANTIZED_EXTRA_BYTES = 8


class KVShape(NamedTuple):
    """The parts of a model's shape that decide its KV-cache size."""

    layers: int
    kv_heads: int
    head_dim: int


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _shape(layers: object, heads: object, kv_heads: object, width: object, head_dim: object) -> KVShape | None:
    """The shape from raw values: KV heads default to the query heads (no grouped-query attention),
    the head size to width / heads."""
    n_layers, n_heads, width_ = _int(layers), _int(heads), _int(width)
    n_kv = _int(kv_heads) or n_heads
    size = _int(head_dim) or (width_ // n_heads if width_ and n_heads else None)
    return KVShape(n_layers, n_kv, size) if n_layers and n_kv and size else None


def gguf_shape(metadata: Mapping[str, object]) -> KVShape | None:
    """The KV-cache shape recorded in a GGUF file's metadata."""
    arch = metadata.get("general.architecture")
    return _shape(
        layers=metadata.get(f"{arch}.block_count"),
        heads=metadata.get(f"{arch}.attention.head_count"),
        kv_heads=metadata.get(f"{arch}.attention.head_count_kv"),
        width=metadata.get(f"{arch}.embedding_length"),
        head_dim=metadata.get(f"{arch}.attention.key_length"),
    )


def config_shape(config: object) -> KVShape | None:
    """The KV-cache shape in a Hugging Face `config.json` (a multimodal one's `text_config`)."""
    if not isinstance(config, dict):
        return None
    config = config.get("text_config", config)
    if not isinstance(config, dict):
        return None
    return _shape(
        layers=config.get("num_hidden_layers"),
        heads=config.get("num_attention_heads"),
        kv_heads=config.get("num_key_value_heads"),
        width=config.get("hidden_size"),
        head_dim=config.get("head_dim"),
    )


def kv_shape(model_path: str) -> KVShape | None:
    """The KV-cache shape of the model at `model_path` (a GGUF file or a folder with config.json);
    None when its files do not say."""
    path = Path(model_path)
    try:
        if path.is_file():
            return gguf_shape(read_metadata(path, scalars_only=True))
        config_path = path / "config.json"
        return config_shape(json.loads(config_path.read_text())) if config_path.is_file() else None
    except (OSError, ValueError, GGUFError):
        return None


def bytes_per_token(shape: KVShape, precision: str) -> float:
    """Bytes one token takes in the KV cache (keys and values of every layer)."""
    element = _ELEMENT_BYTES.get(precision.lower(), 2.0)
    extra = _QUANTIZED_EXTRA_BYTES if element < 2 else 0
    return 2 * shape.layers * shape.kv_heads * (shape.head_dim * element + extra)


def block_tokens(device: str) -> int:
    """Tokens per KV-cache block on `device` (OpenVINO GenAI: 16 on GPUs, 32 elsewhere)."""
    return 16 if "GPU" in device.upper() else 32


def kv_cache_blocks(kv_cache_gb: float, shape: KVShape, precision: str, device: str) -> int:
    """How many blocks fill `kv_cache_gb` of memory (at least one)."""
    block_bytes = bytes_per_token(shape, precision) * block_tokens(device)
    return max(1, math.floor(kv_cache_gb * GIB / block_bytes))


def kv_cache_tokens(shape: KVShape, kv_cache_gb: float, precision: str, device: str) -> int:
    """Tokens a KV cache of `kv_cache_gb` holds for a model of this shape."""
    return kv_cache_blocks(kv_cache_gb, shape, precision, device) * block_tokens(device)


def kv_cache_gb_for(
    kv_cache_gb: float, shape: KVShape | None, context_length: int, precision: str, device: str
) -> float:
    """`kv_cache_gb` as given, or the automatic size (this machine's memory) when it is 0: what an
    engine built without the server (tests, benchmarks) gets; the server resolves it before."""
    if kv_cache_gb > 0:
        return kv_cache_gb
    import psutil

    return auto_kv_cache_gb(shape, context_length, precision, device, psutil.virtual_memory().total)


def auto_kv_cache_gb(
    shape: KVShape | None, context_length: int, precision: str, device: str, memory_bytes: int
) -> float:
    """The KV cache `kv_cache_gb` 0 asks for: one full context of this model or
    `AUTO_KV_MIN_TOKENS`, whichever is more, at this precision, capped by `AUTO_KV_MEMORY_SHARE` of
    `memory_bytes` (the machine's, or the device's); `AUTO_KV_FLOOR_GB` when the shape is unknown."""
    if shape is None:
        return AUTO_KV_FLOOR_GB
    tokens = max(context_length, AUTO_KV_MIN_TOKENS)
    # Whole blocks, so that the tokens asked for are the tokens the engine gets.
    block = block_tokens(device)
    wanted = math.ceil(tokens / block) * block * bytes_per_token(shape, precision) / GIB
    # A machine short of memory still gets the floor (or all the model wants, when that is less).
    size = max(min(wanted, AUTO_KV_MEMORY_SHARE * memory_bytes / GIB), min(wanted, AUTO_KV_FLOOR_GB))
    # Rounded up to the MiB: short to print and store, and never under what was computed.
    return math.ceil(size * 1024) / 1024
