"""The GGUF metadata reader agrees with the reference `gguf` package on the default model."""

from __future__ import annotations

from pathlib import Path

import gguf
import pytest

from hub.gguf import GGUFError, context_length, read_metadata
from hub.models import default_model_path


def test_metadata_matches_reference_reader() -> None:
    path = default_model_path()
    ours = read_metadata(path)
    reference = gguf.GGUFReader(path)
    assert set(ours) == set(reference.fields) - {"GGUF.version", "GGUF.tensor_count", "GGUF.kv_count"}
    for key in ("general.architecture", "general.name", "llama.context_length", "llama.embedding_length"):
        assert ours[key] == reference.fields[key].contents()
    tokens = ours["tokenizer.ggml.tokens"]
    assert isinstance(tokens, list)
    assert tokens == reference.fields["tokenizer.ggml.tokens"].contents()


def test_context_length_of_default_model() -> None:
    assert context_length(read_metadata(default_model_path())) == 8192


def test_not_a_gguf_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 32)
    with pytest.raises(GGUFError, match="bad magic"):
        read_metadata(bad)


def test_truncated_file(tmp_path: Path) -> None:
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(default_model_path().read_bytes()[:1000])
    with pytest.raises(GGUFError, match="unexpected end"):
        read_metadata(cut)
