"""Conversions are faithful: a converted tiny model answers like its PyTorch original.

One tiny random Llama is built per session and converted once per path (shared by every test that
needs that path). Tolerances, per precision:

- fp32, fp16, int8: the same 20 greedy tokens as PyTorch, token for token (fed as ids, EOS ignored).
- ONNX fp16 (built for cuda; ORT's CPU provider runs only its prompt pass): teacher-forced argmax
  identical at every position and max logit error <= FP16_MAX_LOGIT_ERROR of the largest logit.
- int4: teacher-forced logits over a fixed sequence of INT4_POSITIONS positions: per-position
  correlation with PyTorch's logits >= INT4_MIN_CORRELATION (mean >= INT4_MEAN_CORRELATION), the
  int4 model's choice among PyTorch's top 5 at >= INT4_MIN_TOP5 of positions, and its argmax equal
  at >= INT4_MIN_AGREEMENT (chance is 1/300). Measured on this random model (hidden 64, so every
  group is a whole row): mean correlation 0.87-0.90, top-5 0.75-0.79, argmax 0.35-0.46 for OpenVINO
  asym, OpenVINO sym and ONNX int4. Random weights quantize badly and their logits are near-tied,
  so int4 is checked for being the same model, roughly, not the same answers; a broken conversion
  (wrong layout, wrong scales) lands near zero correlation and chance agreement.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from hub.convert import ConversionError, Format, Precision, SourceError, convert, detect_source
from hub.models import default_model_path
from tests.conftest import Converted
from tests.hub import fidelity
from tests.hub.tiny_models import SENTENCES

GREEDY_TOKENS = 20
INT4_POSITIONS = 48
INT4_MIN_AGREEMENT = 0.25
INT4_MIN_TOP5 = 0.6
INT4_MIN_CORRELATION = 0.5
INT4_MEAN_CORRELATION = 0.8
FP16_MAX_LOGIT_ERROR = 0.02


@pytest.fixture(scope="session")
def reference(tiny_llama: Path) -> fidelity.TorchReference:
    return fidelity.TorchReference(tiny_llama)


@pytest.fixture(scope="session")
def prompt_ids(tiny_llama: Path) -> list[int]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    ids: list[int] = tokenizer(SENTENCES[1])["input_ids"]
    return ids


def _greedy(format: Format, folder: Path, ids: list[int]) -> list[int]:
    if format == "openvino":
        return fidelity.openvino_greedy(folder, ids, GREEDY_TOKENS)
    return fidelity.onnx_greedy(folder, ids, GREEDY_TOKENS)


@pytest.mark.parametrize(("format", "precision"), [("openvino", "fp16"), ("openvino", "int8"), ("onnx", "fp32")])
def test_greedy_tokens_match_pytorch(
    format: Format,
    precision: Precision,
    converted: Callable[..., Converted],
    reference: fidelity.TorchReference,
    prompt_ids: list[int],
    tiny_llama: Path,
) -> None:
    folder, record, lines = converted(format, precision)
    assert detect_source(folder) == format
    assert record.recipe["precision"] == precision and record.recipe["format"] == format
    assert lines, "the converter's output reached `progress`"
    # ONNX Runtime GenAI has no ignore_eos: it bans EOS until min_length, so the reference does too.
    banned = [] if format == "openvino" else _eos_ids(folder)
    expected = reference.greedy(prompt_ids, GREEDY_TOKENS, banned=banned)
    assert _greedy(format, folder, prompt_ids) == expected


def _eos_ids(onnx_folder: Path) -> list[int]:
    eos = json.loads((onnx_folder / "genai_config.json").read_text())["model"]["eos_token_id"]
    return list(eos) if isinstance(eos, list) else [eos]


@pytest.mark.parametrize(("format", "symmetric"), [("openvino", False), ("openvino", True), ("onnx", False)])
def test_int4_teacher_forced_logits_close_to_pytorch(
    format: Format,
    symmetric: bool,
    converted: Callable[..., Converted],
    reference: fidelity.TorchReference,
    tiny_llama: Path,
) -> None:
    from transformers import AutoTokenizer

    folder, record, _ = converted(format, "int4", symmetric)
    ids = AutoTokenizer.from_pretrained(tiny_llama)(" ".join(SENTENCES))["input_ids"][:INT4_POSITIONS]
    assert len(ids) == INT4_POSITIONS
    logits = fidelity.openvino_logits(folder, ids) if format == "openvino" else fidelity.onnx_logits(folder, ids)
    expected = reference.logits(ids)
    agreement, _ = fidelity.compare_logits(expected, logits)
    correlation = fidelity.logit_correlation(expected, logits)
    assert correlation.min() >= INT4_MIN_CORRELATION and correlation.mean() >= INT4_MEAN_CORRELATION, correlation
    assert fidelity.top_k_agreement(expected, logits, 5) >= INT4_MIN_TOP5
    assert agreement >= INT4_MIN_AGREEMENT, agreement
    # Control: the same logits against a shuffled vocabulary score near zero, so the bounds above
    # do tell a broken model from a lossy one.
    shuffled = logits[:, np.random.default_rng(0).permutation(logits.shape[1])]
    assert fidelity.logit_correlation(expected, shuffled).mean() < 0.3
    assert record.recipe["symmetric"] == str(symmetric).lower()


def test_onnx_fp16_teacher_forced_logits_match_pytorch(
    converted: Callable[..., Converted], reference: fidelity.TorchReference, tiny_llama: Path
) -> None:
    """ONNX fp16 is built for cuda (fp16 cannot run on ORT's CPU provider past the prompt); its
    prompt pass runs on CPU here and is compared position by position."""
    from transformers import AutoTokenizer

    folder, record, _ = converted("onnx", "fp16", device="cuda")
    assert record.recipe["device"] == "cuda" and "-e cuda" in record.recipe["command"]
    ids = AutoTokenizer.from_pretrained(tiny_llama)(" ".join(SENTENCES))["input_ids"][:INT4_POSITIONS]
    agreement, error = fidelity.compare_logits(reference.logits(ids), fidelity.onnx_logits(folder, ids))
    assert agreement == 1.0
    assert error <= FP16_MAX_LOGIT_ERROR, error


def test_openvino_artifact_is_servable(converted: Callable[..., Converted], tiny_llama: Path) -> None:
    """The IR folder carries its own tokenizer and chat template: openvino_genai needs nothing else."""
    import openvino_genai
    from transformers import AutoTokenizer

    folder, record, _ = converted("openvino", "int8")
    hf = AutoTokenizer.from_pretrained(tiny_llama)
    ov_tokenizer = openvino_genai.Tokenizer(str(folder))
    for text in SENTENCES:
        assert list(ov_tokenizer.encode(text, add_special_tokens=False).input_ids.data[0]) == hf.encode(
            text, add_special_tokens=False
        )
    messages = [{"role": "user", "content": "Hello"}]
    assert ov_tokenizer.apply_chat_template(messages, add_generation_prompt=True) == hf.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=False
    )
    assert record.tool == "optimum-intel"
    assert {"optimum-intel", "openvino", "nncf", "transformers"} <= set(record.tool_versions)
    assert record.recipe["command"].startswith("optimum-cli export openvino")


def test_onnx_artifact_is_servable(converted: Callable[..., Converted], tiny_llama: Path) -> None:
    """The ONNX folder has genai_config.json and a tokenizer that onnxruntime_genai reads."""
    import onnxruntime_genai as og
    from transformers import AutoTokenizer

    folder, record, _ = converted("onnx", "fp32")
    hf = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer = og.Tokenizer(og.Model(str(folder)))
    for text in SENTENCES:
        assert list(tokenizer.encode(text)) == hf.encode(text)
        assert tokenizer.decode(hf.encode(text, add_special_tokens=False)) == text
    assert record.tool == "onnxruntime-genai"
    assert {"onnxruntime-genai", "onnx-ir", "transformers"} <= set(record.tool_versions)


def test_detects_every_source_kind(converted: Callable[..., Converted], tiny_llama: Path, tmp_path: Path) -> None:
    assert detect_source(tiny_llama) == "hf"
    assert detect_source(default_model_path()) == "gguf"
    assert detect_source(converted("openvino", "int8")[0]) == "openvino"
    assert detect_source(converted("onnx", "fp32")[0]) == "onnx"
    (tmp_path / "saved_model.pb").write_bytes(b"\x08\x01")
    assert detect_source(tmp_path) == "tf-savedmodel"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("no-config", "no config.json"),
        ("truncated-safetensors", "is truncated"),
        ("no-weights", "no weights"),
        ("random-file", "not a model file"),
        ("bad-gguf", "broken GGUF"),
        ("empty", "holds no model"),
        ("missing", "does not exist"),
    ],
)
def test_bad_input_is_named(damage: str, message: str, tiny_llama: Path, tmp_path: Path) -> None:
    source = tmp_path / "model"
    if damage == "empty":
        source.mkdir()
    elif damage == "random-file":
        source.write_bytes(bytes(range(256)) * 8)
    elif damage == "bad-gguf":
        source = tmp_path / "model.gguf"
        source.write_bytes(default_model_path().read_bytes()[:4096])
    elif damage != "missing":
        shutil.copytree(tiny_llama, source)
        if damage == "no-config":
            (source / "config.json").unlink()
        elif damage == "no-weights":
            (source / "model.safetensors").unlink()
        elif damage == "truncated-safetensors":
            weights = source / "model.safetensors"
            weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(SourceError, match=message):
        detect_source(source)
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SourceError, match=message):
        convert(source, out, format="openvino", precision="int8")
    assert not any(out.iterdir())


def test_failing_converter_raises_conversion_error(tiny_llama: Path, tmp_path: Path) -> None:
    """Weights that do not fit their config pass detection but make the converter fail."""
    source = tmp_path / "mismatched"
    shutil.copytree(tiny_llama, source)
    config = json.loads((source / "config.json").read_text())
    config["hidden_size"] = 96
    (source / "config.json").write_text(json.dumps(config))
    out = tmp_path / "out"
    out.mkdir()
    lines: list[str] = []
    with pytest.raises(ConversionError, match="onnxruntime-genai failed") as caught:
        convert(source, out, format="onnx", precision="fp32", progress=lines.append)
    assert lines and lines[-1] in str(caught.value)


def test_unsupported_requests_are_refused_before_running(tiny_llama: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(SourceError, match="no int8 recipe"):
        convert(tiny_llama, out, format="onnx", precision="int8")
    with pytest.raises(SourceError, match="not an ONNX target"):
        convert(tiny_llama, out, format="onnx", precision="int4", device="npu")
    with pytest.raises(SourceError, match="CPU provider cannot run it"):
        convert(tiny_llama, out, format="onnx", precision="fp16")
    with pytest.raises(SourceError, match="symmetric"):
        convert(tiny_llama, out, format="onnx", precision="int4", symmetric=True)
    with pytest.raises(SourceError, match="GGUF"):
        convert(default_model_path(), out, format="onnx", precision="int4")
    (out / "leftover").write_text("x")
    with pytest.raises(ValueError, match="empty directory"):
        convert(tiny_llama, out, format="openvino", precision="int8")


def test_default_gguf_to_openvino_answers_like_the_gguf(tmp_path: Path) -> None:
    """The default model: its GGUF, served by OpenVINO GenAI, against the IR converted from it."""
    import openvino_genai

    source = default_model_path()
    out = tmp_path / "ir"
    out.mkdir()
    with pytest.raises(SourceError, match="convert it with precision int4"):
        convert(source, out, format="openvino", precision="int8")
    record = convert(source, out, format="openvino", precision="int4")
    assert record.tool == "openvino-genai" and record.recipe["gguf_file_type"] == "3"
    assert detect_source(out) == "openvino" and not (out / "source.gguf").exists()
    tokenizer = openvino_genai.Tokenizer(str(out))
    prompt = tokenizer.apply_chat_template([{"role": "user", "content": "Name three colours."}], True)
    ids = list(tokenizer.encode(prompt, add_special_tokens=False).input_ids.data[0])
    assert fidelity.openvino_greedy(out, ids, GREEDY_TOKENS) == fidelity.openvino_greedy(source, ids, GREEDY_TOKENS)
