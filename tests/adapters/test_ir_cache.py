"""The default GGUF served through the IR its first load saves (adapters/ir_cache.py).

The first load reads the GGUF (through a link in a staging folder) and leaves the IR and the
tokenizer pair in the model cache; a later load reads them. The tokenizer that loads from disk must
be the GGUF's, token for token, on a fixed text set (words, code, numbers, accents, CJK, emoji,
runs of whitespace, the chat markup's special tokens).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from adapters.base import EngineOptions
from adapters.ir_cache import ir_folder, is_complete, pipeline_source
from adapters.limits import model_limits
from adapters.openvino_pipelines import load_pipeline
from hub.models import DEFAULT_MODEL_ID, ModelSpec, resolve_model

TEXTS = (
    "Hello, world!",
    "The quick brown fox jumps over the lazy dog.",
    "def add(a: int, b: int) -> int:\n    return a + b\n",
    "  leading and trailing spaces   ",
    "tabs\tand\nnew\n\nlines\r\n",
    "3.14159 2026-12-03 1,000,000 0x1F",
    "naïve café façade résumé Ærøskøbing",
    "日本語のテキストと中文文本",
    "emoji: 🙂🚀👩‍💻",
    "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    "",
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModelSpec, EngineOptions, str]:
    """The default model loaded once with the IR cache on, in a fresh cache: (spec, options, origin)."""
    spec = resolve_model(DEFAULT_MODEL_ID, None)
    cache = tmp_path_factory.mktemp("model-cache")
    options = EngineOptions(device="CPU", kv_cache_gb=0.05, max_num_seqs=2, cache_dir=str(cache), gguf_ir_cache=True)
    source = pipeline_source(spec, options)
    pipe = load_pipeline(source, options, model_limits(spec).kv_shape)
    del pipe
    return spec, options, "its cached IR" if source.from_ir_cache else ""


def test_the_first_load_reads_the_gguf_and_leaves_a_complete_ir(saved: tuple[ModelSpec, EngineOptions, str]) -> None:
    spec, options, origin = saved
    assert origin == ""  # built from the GGUF itself
    folder = ir_folder(Path(spec.path), Path(options.cache_dir))
    assert is_complete(folder)
    assert not (folder / "source.gguf").exists()
    assert [p.name for p in folder.parent.iterdir()] == [folder.name]  # no staging folder left


def test_a_later_load_reads_the_cached_ir(saved: tuple[ModelSpec, EngineOptions, str]) -> None:
    spec, options, _ = saved
    source = pipeline_source(spec, options)
    assert source.from_ir_cache and not source.saving and not source.properties
    assert source.path == str(ir_folder(Path(spec.path), Path(options.cache_dir)))


def test_the_cached_tokenizer_is_the_ggufs_token_for_token(saved: tuple[ModelSpec, EngineOptions, str]) -> None:
    import openvino_genai

    spec, options, _ = saved
    from_disk = openvino_genai.Tokenizer(str(ir_folder(Path(spec.path), Path(options.cache_dir))))
    from_gguf = openvino_genai.Tokenizer(spec.path)
    for text in TEXTS:
        for special in (True, False):
            ids = list(from_gguf.encode(text, add_special_tokens=special).input_ids.data[0])
            assert list(from_disk.encode(text, add_special_tokens=special).input_ids.data[0]) == ids, (text, special)
            for skip in (True, False):
                assert from_disk.decode(ids, skip_special_tokens=skip) == from_gguf.decode(
                    ids, skip_special_tokens=skip
                )
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": TEXTS[1]}]
    assert from_disk.apply_chat_template(messages, True) == from_gguf.apply_chat_template(messages, True)
    assert from_disk.get_eos_token_id() == from_gguf.get_eos_token_id()
    assert from_disk.get_vocab() == from_gguf.get_vocab()


def test_a_changed_gguf_or_the_cache_off_reads_the_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"GGUF")
    spec = ModelSpec(id="m", path=str(gguf), format="gguf")
    options = EngineOptions(cache_dir=str(tmp_path / "cache"), gguf_ir_cache=True)
    before = ir_folder(gguf, tmp_path / "cache")
    os.utime(gguf, ns=(1_000_000_000, 1_000_000_000))
    assert ir_folder(gguf, tmp_path / "cache") != before
    staged = pipeline_source(spec, options)
    assert staged.saving and staged.path.endswith("source.gguf") and Path(staged.path).resolve() == gguf
    staged.discard()  # a failed load leaves no staging folder behind
    assert not any((tmp_path / "cache" / "ir").iterdir())
    for off in (EngineOptions(cache_dir=str(tmp_path / "cache")), EngineOptions(gguf_ir_cache=True)):
        assert pipeline_source(spec, off).path == str(gguf)
