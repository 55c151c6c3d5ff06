"""Run a reference and a converted model on the same token ids, for the fidelity tests.

Greedy decoding feeds token ids and never stops at EOS, so the comparison is over a fixed number of
tokens and is not at the mercy of the tokenizer. Teacher-forced logits are the logits of every
position of one fixed sequence: they measure a quantized model without the compounding of its own
earlier choices (the right measure at int4, where random weights give near-tied logits).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

Logits = npt.NDArray[np.float32]


class TorchReference:
    """The PyTorch model that a conversion must reproduce."""

    def __init__(self, folder: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        self._torch = torch
        self.model: Any = AutoModelForCausalLM.from_pretrained(folder, torch_dtype=torch.float32).eval()

    def logits(self, ids: Sequence[int]) -> Logits:
        """Teacher-forced logits, shape (len(ids), vocab)."""
        with self._torch.no_grad():
            out = self.model(self._torch.tensor([list(ids)])).logits[0]
        return np.asarray(out.float().numpy(), dtype=np.float32)

    def greedy(self, ids: Sequence[int], n: int, banned: Sequence[int] = ()) -> list[int]:
        """`n` greedy tokens after `ids`, never choosing a token of `banned`."""
        seq = list(ids)
        for _ in range(n):
            last = self.logits(seq)[-1]
            last[list(banned)] = -np.inf
            seq.append(int(np.argmax(last)))
        return seq[len(ids) :]


def openvino_greedy(folder: Path, ids: Sequence[int], n: int) -> list[int]:
    """`n` greedy tokens from an OpenVINO IR folder through openvino_genai (ignore_eos)."""
    import openvino as ov
    import openvino_genai

    pipe = openvino_genai.LLMPipeline(str(folder), "CPU")  # an IR folder or a .gguf file
    config = openvino_genai.GenerationConfig()
    config.max_new_tokens = n
    config.min_new_tokens = n
    config.ignore_eos = True
    config.do_sample = False
    tensor = np.array([list(ids)], dtype=np.int64)
    inputs = openvino_genai.TokenizedInputs(ov.Tensor(tensor), ov.Tensor(np.ones_like(tensor)))
    result = pipe.generate(inputs, config)
    return [int(t) for t in result.tokens[0]]


def openvino_logits(folder: Path, ids: Sequence[int]) -> Logits:
    """Teacher-forced logits of an OpenVINO IR (stateful) LLM, shape (len(ids), vocab)."""
    import openvino as ov

    compiled = ov.Core().compile_model(folder / "openvino_model.xml", "CPU")
    request = compiled.create_infer_request()
    tensor = np.array([list(ids)], dtype=np.int64)
    names = {name for port in compiled.inputs for name in port.get_names()}
    feed: dict[str, npt.NDArray[Any]] = {"input_ids": tensor, "attention_mask": np.ones_like(tensor)}
    if "position_ids" in names:
        feed["position_ids"] = np.arange(tensor.shape[1], dtype=np.int64)[None, :]
    if "beam_idx" in names:
        feed["beam_idx"] = np.zeros(1, dtype=np.int32)
    result = request.infer(feed)
    return np.asarray(result[compiled.output("logits")][0], dtype=np.float32)


def onnx_greedy(folder: Path, ids: Sequence[int], n: int) -> list[int]:
    """`n` greedy tokens from an ONNX Runtime GenAI folder; EOS is banned until the end (min_length)."""
    import onnxruntime_genai as og

    model = og.Model(str(folder))
    params = og.GeneratorParams(model)
    total = len(ids) + n
    params.set_search_options(do_sample=False, max_length=total, min_length=total)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([list(ids)], dtype=np.int32))
    out: list[int] = []
    while not generator.is_done() and len(out) < n:
        generator.generate_next_token()
        out.append(int(generator.get_next_tokens()[0]))
    return out


def onnx_logits(folder: Path, ids: Sequence[int]) -> Logits:
    """Teacher-forced logits of an ONNX Runtime GenAI model (its prompt pass), shape (len(ids), vocab)."""
    import onnxruntime_genai as og

    config = og.Config(str(folder))
    # Run on CPU whatever the model was built for (a cuda/dml build's prompt pass runs there too).
    config.clear_providers()
    model = og.Model(config)
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(ids) + 1)
    generator = og.Generator(model, params)
    generator.append_tokens(np.array([list(ids)], dtype=np.int32))
    logits = np.asarray(generator.get_output("logits"), dtype=np.float32)
    return logits.reshape(-1, logits.shape[-1])


def compare_logits(reference: Logits, converted: Logits) -> tuple[float, float]:
    """(share of positions whose argmax agrees, worst relative max-abs logit error per position)."""
    assert reference.shape == converted.shape, (reference.shape, converted.shape)
    agree = float(np.mean(reference.argmax(-1) == converted.argmax(-1)))
    scale = np.abs(reference).max(axis=-1)
    error = float((np.abs(reference - converted).max(axis=-1) / scale).max())
    return agree, error


def logit_correlation(reference: Logits, converted: Logits) -> Logits:
    """Pearson correlation of the two models' logits, per position."""
    a = reference - reference.mean(axis=-1, keepdims=True)
    b = converted - converted.mean(axis=-1, keepdims=True)
    return np.asarray((a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1)), dtype=np.float32)


def top_k_agreement(reference: Logits, converted: Logits, k: int) -> float:
    """Share of positions where the converted model's choice is among the reference's top k."""
    top = np.argsort(reference, axis=-1)[:, -k:]
    return float(np.mean([converted[i].argmax() in top[i] for i in range(len(reference))]))
