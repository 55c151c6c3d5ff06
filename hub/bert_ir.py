"""An OpenVINO IR of a BERT encoder built straight from its safetensors, without torch.

Sentence-embedding models such as all-MiniLM-L6-v2 and BGE-small are plain BERT encoders: token,
position and segment embeddings, then N identical layers of self-attention and a GELU feed-forward,
each followed by a residual LayerNorm. That graph is small and fixed, so it is written here with
OpenVINO's own opset and the weights read from `model.safetensors` with numpy: what `optimum-cli
export openvino --task feature-extraction` makes, with no 6 GB of torch to install first. The
tokenizer becomes `openvino_tokenizer.xml` through openvino-tokenizers (which needs `transformers`
but not torch). The output, `last_hidden_state`, is pooled and normalized by OpenVINO GenAI's
TextEmbeddingPipeline as it is for an exported model (tests/hub/test_bert_ir.py checks the vectors
against the transformers/torch reference: cosine >= 0.999).

    python -m hub.bert_ir SOURCE_FOLDER DEST_FOLDER
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import shutil
import struct
from pathlib import Path
from typing import Any

import numpy as np

# Files the serving side reads beside the graph (pooling, maximum input length, tokenizer).
_SIDE_FILES = (
    "config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.txt",
    "sentence_bert_config.json", "modules.json", "config_sentence_transformers.json", "1_Pooling",
)  # fmt: skip
_DTYPES = {"F32": np.float32, "F16": np.float16, "BF16": None, "I64": np.int64}


class BertIRError(ValueError):
    """The folder is not a BERT encoder this builder understands."""


def supports(folder: Path) -> bool:
    """Whether `folder` holds a BERT encoder (config.json model_type bert, model.safetensors)."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(config, dict)
        and config.get("model_type") == "bert"
        and config.get("position_embedding_type", "absolute") == "absolute"
        and config.get("hidden_act") == "gelu"
        and (folder / "model.safetensors").is_file()
    )


def read_safetensors(path: Path) -> dict[str, np.ndarray[Any, Any]]:
    """Every tensor of a safetensors file as a float32 (or int64) numpy array."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        if length > 100 * 1024 * 1024:
            raise BertIRError(f"{path}: a safetensors header of {length} bytes is not a real header")
        header = json.loads(f.read(length))
        data = f.read()
    tensors: dict[str, np.ndarray[Any, Any]] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        start, end = meta["data_offsets"]
        raw = data[start:end]
        if meta["dtype"] == "BF16":
            as_u32 = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
            array = as_u32.view(np.float32)
        elif meta["dtype"] in _DTYPES:
            array = np.frombuffer(raw, dtype=_DTYPES[meta["dtype"]])
        else:
            raise BertIRError(f"{path}: tensor {name} has dtype {meta['dtype']}")
        array = array.reshape(meta["shape"])
        tensors[name] = array.astype(np.float32) if array.dtype != np.int64 else array
    return tensors


class _Weights:
    def __init__(self, tensors: dict[str, np.ndarray[Any, Any]]) -> None:
        self.tensors = tensors
        # BertModel checkpoints name tensors `embeddings...`; BertFor* ones prefix them with `bert.`.
        self.prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def __call__(self, name: str) -> np.ndarray[Any, Any]:
        try:
            return self.tensors[self.prefix + name]
        except KeyError:
            raise BertIRError(f"the checkpoint has no tensor {self.prefix + name}") from None


def build_model(config: dict[str, Any], tensors: dict[str, np.ndarray[Any, Any]]) -> Any:
    """The encoder as an `openvino.Model` (inputs input_ids, attention_mask, token_type_ids)."""
    import openvino as ov
    import openvino.opset14 as op

    w = _Weights(tensors)
    hidden, heads = int(config["hidden_size"]), int(config["num_attention_heads"])
    head_dim, eps = hidden // heads, float(config.get("layer_norm_eps", 1e-12))
    i64 = ov.Type.i64

    def const(array: np.ndarray[Any, Any]) -> Any:
        return op.constant(np.ascontiguousarray(array, dtype=np.float32))

    def linear(x: Any, name: str) -> Any:
        return op.add(op.matmul(x, const(w(f"{name}.weight")), False, True), const(w(f"{name}.bias")))

    def layer_norm(x: Any, name: str) -> Any:
        normed = op.mvn(x, op.constant(np.array([-1], dtype=np.int64)), True, eps, "inside_sqrt")
        return op.add(op.multiply(normed, const(w(f"{name}.weight"))), const(w(f"{name}.bias")))

    def split_heads(x: Any) -> Any:
        shaped = op.reshape(x, op.constant(np.array([0, 0, heads, head_dim], dtype=np.int64)), True)
        return op.transpose(shaped, op.constant(np.array([0, 2, 1, 3], dtype=np.int64)))

    input_ids = op.parameter([-1, -1], i64, name="input_ids")
    attention_mask = op.parameter([-1, -1], i64, name="attention_mask")
    token_type_ids = op.parameter([-1, -1], i64, name="token_type_ids")
    seq_len = op.gather(op.shape_of(input_ids, i64), op.constant(np.int64(1)), op.constant(np.int64(0)))
    positions = op.range(op.constant(np.int64(0)), seq_len, op.constant(np.int64(1)), i64)
    zero = op.constant(np.int64(0))
    x = op.add(
        op.add(
            op.gather(const(w("embeddings.word_embeddings.weight")), input_ids, zero),
            op.gather(const(w("embeddings.position_embeddings.weight")), positions, zero),
        ),
        op.gather(const(w("embeddings.token_type_embeddings.weight")), token_type_ids, zero),
    )
    x = layer_norm(x, "embeddings.LayerNorm")
    # Padding is masked out of attention: (1 - mask) * most negative float, as transformers does.
    mask = op.convert(op.unsqueeze(attention_mask, op.constant(np.array([1, 2], dtype=np.int64))), ov.Type.f32)
    bias = op.multiply(op.subtract(op.constant(np.float32(1)), mask), op.constant(np.float32(np.finfo(np.float32).min)))
    scale = op.constant(np.float32(1 / math.sqrt(head_dim)))
    for i in range(int(config["num_hidden_layers"])):
        layer = f"encoder.layer.{i}"
        q, k, v = (split_heads(linear(x, f"{layer}.attention.self.{p}")) for p in ("query", "key", "value"))
        scores = op.add(op.multiply(op.matmul(q, k, False, True), scale), bias)
        context = op.matmul(op.softmax(scores, -1), v, False, False)
        context = op.transpose(context, op.constant(np.array([0, 2, 1, 3], dtype=np.int64)))
        context = op.reshape(context, op.constant(np.array([0, 0, hidden], dtype=np.int64)), True)
        x = layer_norm(
            op.add(linear(context, f"{layer}.attention.output.dense"), x), f"{layer}.attention.output.LayerNorm"
        )
        inner = op.gelu(linear(x, f"{layer}.intermediate.dense"), "erf")
        x = layer_norm(op.add(linear(inner, f"{layer}.output.dense"), x), f"{layer}.output.LayerNorm")
    x.output(0).get_tensor().set_names({"last_hidden_state"})
    return ov.Model([x], [input_ids, attention_mask, token_type_ids], "bert_encoder")


def build(source: Path, dest: Path, precision: str = "fp16") -> None:
    """Write the IR of the BERT encoder at `source` (graph, tokenizer, side files) into `dest`."""
    import openvino as ov

    if not supports(source):
        raise BertIRError(f"{source} is not a BERT encoder (config.json model_type bert + model.safetensors)")
    config = json.loads((source / "config.json").read_text())
    model = build_model(config, read_safetensors(source / "model.safetensors"))
    dest.mkdir(parents=True, exist_ok=True)
    ov.save_model(model, dest / "openvino_model.xml", compress_to_fp16=precision == "fp16")
    _convert_tokenizer(source, dest)
    for name in _SIDE_FILES:
        path = source / name
        if path.is_dir():
            shutil.copytree(path, dest / name, dirs_exist_ok=True)
        elif path.is_file():
            shutil.copy2(path, dest / name)


def _convert_tokenizer(source: Path, dest: Path) -> None:
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source))
    encoder, decoder = convert_tokenizer(tokenizer, with_detokenizer=True)
    ov.save_model(encoder, dest / "openvino_tokenizer.xml")
    ov.save_model(decoder, dest / "openvino_detokenizer.xml")


def tool_versions() -> dict[str, str]:
    """The versions of what builds the IR, for the artifact's manifest."""
    from importlib.metadata import PackageNotFoundError, version

    found: dict[str, str] = {}
    for package in ("openvino", "openvino-tokenizers", "transformers"):
        with contextlib.suppress(PackageNotFoundError):
            found[package] = version(package)
    return found


def main() -> None:
    """Command line: build SOURCE into DEST."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--precision", choices=("fp16", "fp32"), default="fp16")
    args = parser.parse_args()
    build(args.source, args.dest, args.precision)


if __name__ == "__main__":
    main()
