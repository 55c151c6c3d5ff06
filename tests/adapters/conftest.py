"""Artifacts for the adapter conformance suite: the tiny random Llama converted by the hub.

The default model has no Hugging Face checkpoint on this machine (only its GGUF), so the IR and
ONNX paths run on `make_tiny_llama`, converted once per session with `hub.convert.convert`
(tests/conftest.py's `converted`, which the converter fidelity tests share).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Converted


@pytest.fixture(scope="session")
def tiny_llama_dir(tiny_llama: Path) -> Path:
    """The tiny random Llama as a Hugging Face folder (the session's, shared with tests/hub)."""
    return tiny_llama


@pytest.fixture(scope="session")
def tiny_ir_dir(converted: Callable[..., Converted]) -> Path:
    """The tiny Llama as OpenVINO IR (fp16, optimum-intel), as the hub makes it."""
    return converted("openvino", "fp16")[0]


@pytest.fixture(scope="session")
def tiny_onnx_dir(converted: Callable[..., Converted]) -> Path:
    """The tiny Llama as an ONNX Runtime GenAI folder (fp32, CPU provider), as the hub makes it."""
    return converted("onnx", "fp32")[0]
