"""The default model's engine variants for `benchmarks.engine_paths`: how each is built, and how
faithful each is to the GGUF (teacher-forced logits against the GGUF reader's own graph)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.raw_engine import default_model_path

VARIANTS = ("gguf", "ir", "ir-int8", "ir-int4-sym", "sdpa", "prompt-lookup", "ort-int4")
# Texts whose every position is compared: prose, code and a chat turn in the model's own markup.
FIDELITY_TEXTS = (
    "The quick brown fox jumps over the lazy dog. In 1969, astronauts landed on the Moon, and the world watched "
    "as Neil Armstrong stepped onto its surface.",
    "def fibonacci(n):\n    if n < 2:\n        return n\n    return fibonacci(n - 1) + fibonacci(n - 2)\n\n"
    "print([fibonacci(i) for i in range(10)])",
    "<|im_start|>user\nWhat is the capital of France, and why is it famous?<|im_end|>\n<|im_start|>assistant\n"
    "The capital of France is Paris. It is famous for the Eiffel Tower, the Louvre museum, its cafes and its long "
    "history as a centre of art and science.",
)


def model_path(variant: str, work: Path) -> Path:
    """Where a variant's model is (after `build`)."""
    if variant == "gguf":
        return default_model_path()
    if variant in ("sdpa", "prompt-lookup"):
        return work / "ir"
    return work / variant


def build(variants: list[str], work: Path) -> None:
    """Build what `variants` need under `work`, skipping what is already there."""
    work.mkdir(parents=True, exist_ok=True)
    if any(v != "gguf" for v in variants):
        _save_ir(work / "ir")
    for variant, mode in (("ir-int8", "int8"), ("ir-int4-sym", "int4-sym")):
        if variant in variants and not (work / variant / "openvino_model.xml").is_file():
            requantize(work / "ir", work / variant, mode)
    if "ort-int4" in variants and not (work / "ort-int4" / "genai_config.json").is_file():
        _dequantized_hf(work / "hf")
        builder = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-m", str(work / "hf")]
        builder += ["-i", str(work / "hf"), "-o", str(work / "ort-int4"), "-p", "int4", "-e", "cpu"]
        subprocess.run([*builder, "--extra_options", "int4_accuracy_level=4"], check=True, capture_output=True)


def _save_ir(folder: Path) -> None:
    """The IR (graph and tokenizer pair) OpenVINO GenAI's GGUF reader builds from the default GGUF."""
    if (folder / "openvino_model.xml").is_file():
        return
    import openvino_genai as ov_genai

    folder.mkdir(parents=True, exist_ok=True)
    link = folder / "source.gguf"
    link.unlink(missing_ok=True)
    link.symlink_to(default_model_path())
    scheduler = ov_genai.SchedulerConfig()
    scheduler.cache_size = 1
    ov_genai.ContinuousBatchingPipeline(str(link), scheduler, "CPU", {"enable_save_ov_model": True})
    ov_genai.Tokenizer(str(link), enable_save_ov_model=True)
    link.unlink()


def requantize(source: Path, target: Path, mode: str) -> None:
    """The IR at `source` with every compressed weight folded to f32 (its decompression chain run
    once) and compressed again by NNCF: `int8` (asymmetric, per channel) or `int4-sym` (group 64,
    since 576, the model's width, is not a multiple of 128)."""
    import nncf
    import numpy as np
    import openvino as ov
    from openvino import opset13

    core = ov.Core()
    model = core.read_model(source / "openvino_model.xml")
    chain = {"Convert", "Subtract", "Multiply", "Reshape"}
    for op in list(model.get_ordered_ops()):
        if op.get_type_name() != "Constant" or op.get_element_type() not in (ov.Type.u4, ov.Type.u8, ov.Type.i4):
            continue
        end = op
        while True:
            users = [i.get_node() for o in end.outputs() for i in o.get_target_inputs()]
            if len(users) != 1 or users[0].get_type_name() not in chain:
                break
            end = users[0]
        consumers = list(end.output(0).get_target_inputs())
        if end is op or not any(c.get_node().get_type_name() in ("MatMul", "Gather", "Convert") for c in consumers):
            continue
        folded = core.compile_model(ov.Model([end.output(0)], [], "fold"), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        constant = opset13.constant(np.asarray(folded({})[0], dtype=np.float32))
        for consumer in consumers:
            consumer.replace_source_output(constant.output(0))
    if mode == "int8":
        compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT8_ASYM)
    else:
        compressed = nncf.compress_weights(model, mode=nncf.CompressWeightsMode.INT4_SYM, group_size=64, ratio=1.0)
    target.mkdir(parents=True, exist_ok=True)
    ov.save_model(compressed, target / "openvino_model.xml", compress_to_fp16=False)
    for tokenizer_file in source.glob("openvino_*tokenizer.*"):
        shutil.copy(tokenizer_file, target / tokenizer_file.name)


def _dequantized_hf(folder: Path) -> None:
    """The Hugging Face model transformers dequantizes from the GGUF (f32 safetensors)."""
    if (folder / "config.json").is_file():
        return
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = default_model_path()
    AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(folder)
    AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name).save_pretrained(folder)


def _openvino_logits(folder: Path, ids: list[int]) -> Any:
    import numpy as np
    import openvino as ov

    compiled = ov.Core().compile_model(folder / "openvino_model.xml", "CPU")
    tensor = np.array([ids], dtype=np.int64)
    feed = {"input_ids": tensor, "attention_mask": np.ones_like(tensor), "beam_idx": np.zeros(1, dtype=np.int32)}
    if "position_ids" in {n for port in compiled.inputs for n in port.get_names()}:
        feed["position_ids"] = np.arange(len(ids), dtype=np.int64)[None, :]
    return np.asarray(compiled.create_infer_request().infer(feed)[compiled.output("logits")][0], dtype=np.float32)


def _onnx_logits(folder: Path, ids: list[int]) -> Any:
    import numpy as np
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 1)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([ids], dtype=np.int32))
    logits = np.asarray(generator.get_output("logits"), dtype=np.float32)
    return logits.reshape(-1, logits.shape[-1])


def fidelity(variants: list[str], work: Path) -> dict[str, dict[str, float]]:
    """Each variant's teacher-forced logits against the GGUF's IR, over `FIDELITY_TEXTS`."""
    import numpy as np
    import openvino_genai as ov_genai

    tokenizer = ov_genai.Tokenizer(str(work / "ir"))
    sequences = [tokenizer.encode(t, add_special_tokens=False).input_ids.data[0].tolist() for t in FIDELITY_TEXTS]
    reference = np.concatenate([_openvino_logits(work / "ir", ids) for ids in sequences])
    report: dict[str, dict[str, float]] = {}
    for variant in variants:
        if variant == "ir":
            continue
        logits = _onnx_logits if variant == "ort-int4" else _openvino_logits
        other = np.concatenate([logits(model_path(variant, work), ids) for ids in sequences])
        a = reference - reference.mean(-1, keepdims=True)
        b = other - other.mean(-1, keepdims=True)
        correlation = (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
        top5 = np.argsort(reference, axis=-1)[:, -5:]
        report[variant] = {
            "positions": len(reference),
            "argmax_agreement": round(float(np.mean(reference.argmax(-1) == other.argmax(-1))), 4),
            "top5_agreement": round(float(np.mean([other[i].argmax() in top5[i] for i in range(len(other))])), 4),
            "correlation_mean": round(float(correlation.mean()), 4),
            "correlation_min": round(float(correlation.min()), 4),
        }
    return report
