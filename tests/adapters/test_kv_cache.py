"""KV-cache sizing from a model's shape: GGUF metadata, config.json, bytes and blocks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.kv_cache import (
    GIB,
    KVShape,
    auto_kv_cache_gb,
    block_tokens,
    bytes_per_token,
    kv_cache_blocks,
    kv_cache_tokens,
    kv_shape,
)
from hub.models import default_model_path


def test_shape_of_the_default_gguf() -> None:
    # SmolLM2-135M: 30 layers, 9 query heads sharing 3 KV heads, 576 wide.
    assert kv_shape(str(default_model_path())) == KVShape(layers=30, kv_heads=3, head_dim=64)


def test_shape_from_config_json(tmp_path: Path) -> None:
    config = {"num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8, "hidden_size": 4096}
    (tmp_path / "config.json").write_text(json.dumps(config))
    assert kv_shape(str(tmp_path)) == KVShape(32, 8, 128)
    (tmp_path / "config.json").write_text(json.dumps({**config, "head_dim": 256}))
    assert kv_shape(str(tmp_path)) == KVShape(32, 8, 256)


@pytest.mark.parametrize("contents", [None, "{}", "not json", '{"num_hidden_layers": "many"}'])
def test_unknown_shape_is_none(tmp_path: Path, contents: str | None) -> None:
    if contents is not None:
        (tmp_path / "config.json").write_text(contents)
    assert kv_shape(str(tmp_path)) is None


def test_bytes_and_blocks() -> None:
    shape = KVShape(30, 3, 64)
    # Keys and values, each head: 64 u8 values plus an f32 scale and zero point.
    assert bytes_per_token(shape, "u8") == 2 * 30 * 3 * (64 + 8)
    assert bytes_per_token(shape, "f16") == 2 * 30 * 3 * 64 * 2
    assert (block_tokens("CPU"), block_tokens("GPU.1")) == (32, 16)
    assert kv_cache_blocks(1.0, shape, "u8", "CPU") == GIB // (12960 * 32)
    assert kv_cache_blocks(1e-9, shape, "u8", "CPU") == 1
    assert kv_cache_tokens(shape, 0.25, "u8", "CPU") == 647 * 32


def test_auto_size_holds_a_full_context_or_16k_tokens_within_a_share_of_memory() -> None:
    small = KVShape(layers=30, kv_heads=3, head_dim=64)  # the default model
    short = auto_kv_cache_gb(small, 8192, "u8", "CPU", 24 * GIB)
    assert kv_cache_tokens(small, short, "u8", "CPU") >= 16 * 1024
    assert short < 0.21  # 16,384 tokens of 12,960 bytes, rounded up to the MiB
    long = auto_kv_cache_gb(small, 65536, "u8", "CPU", 24 * GIB)
    assert kv_cache_tokens(small, long, "u8", "CPU") >= 65536
    # A bigger model on a small machine: capped at 10% of its memory, never under the floor.
    big = KVShape(layers=32, kv_heads=8, head_dim=128)
    assert auto_kv_cache_gb(big, 131072, "u8", "CPU", 8 * GIB) == pytest.approx(0.8, abs=1 / 1024)
    assert auto_kv_cache_gb(big, 131072, "u8", "CPU", 1 * GIB) == 0.25
    assert auto_kv_cache_gb(None, 4096, "u8", "CPU", 24 * GIB) == 0.25
    # f16 takes about twice the bytes of u8 for the same tokens.
    assert auto_kv_cache_gb(small, 8192, "f16", "CPU", 24 * GIB) > 1.7 * short
