"""Artifacts for the adapter conformance suite: the tiny random Llama converted by the hub.

The default model has no Hugging Face checkpoint on this machine (only its GGUF), so the IR and
ONNX paths run on `make_tiny_llama`, converted once per session with `hub.convert.convert`.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny random Llama as a Hugging Face folder."""
    from tests.hub.tiny_models import make_tiny_llama

    return make_tiny_llama(tmp_path_factory.mktemp("tiny-llama-hf"))


@pytest.fixture(scope="session")
def tiny_ir_dir(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama as OpenVINO IR (fp16, optimum-intel), as the hub makes it."""
    from hub.convert import convert

    out = tmp_path_factory.mktemp("tiny-llama-ir")
    convert(tiny_llama_dir, out, format="openvino", precision="fp16")
    return out


@pytest.fixture(scope="session")
def tiny_onnx_dir(tiny_llama_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Llama as an ONNX Runtime GenAI folder (fp32, CPU provider), as the hub makes it."""
    from hub.convert import convert

    out = tmp_path_factory.mktemp("tiny-llama-onnx")
    convert(tiny_llama_dir, out, format="onnx", precision="fp32", device="cpu")
    return out
