"""Unit tests of the embedding model's folder reading and the vectors' wire form."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from adapters.base import EmbedResult
from adapters.limits import max_tokens_of, pooling_of


def test_max_tokens_prefers_sentence_transformers_limit(tmp_path: Path) -> None:
    """max_seq_length wins over the tokenizer's limit, which wins over the position embeddings;
    the tokenizers' "no limit" sentinel is skipped."""
    (tmp_path / "config.json").write_text(json.dumps({"max_position_embeddings": 512}))
    assert max_tokens_of(tmp_path) == 512
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": int(1e30)}))
    assert max_tokens_of(tmp_path) == 512
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 384}))
    assert max_tokens_of(tmp_path) == 384
    (tmp_path / "sentence_bert_config.json").write_text(json.dumps({"max_seq_length": 256}))
    assert max_tokens_of(tmp_path) == 256


def test_pooling(tmp_path: Path) -> None:
    """Mean pooling unless the sentence-transformers pooling config says CLS or last token."""
    assert pooling_of(tmp_path) == "mean"
    (tmp_path / "1_Pooling").mkdir()
    (tmp_path / "1_Pooling" / "config.json").write_text(json.dumps({"pooling_mode_cls_token": True}))
    assert pooling_of(tmp_path) == "cls"


def test_vectors_round_trip_as_float32_bytes() -> None:
    """The bytes a worker sends decode to the same matrix."""
    matrix = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    result = EmbedResult(request_id=1, vectors=matrix.astype("<f4").tobytes(), token_counts=(1, 2, 3))
    np.testing.assert_array_equal(result.matrix(4), matrix)
