"""What Ollama's model endpoints say about a model: /api/tags, /api/show and /api/ps lines, read from
the served deployments, the hub's installed artifacts and the models' own files.

Reading a GGUF's metadata takes ~0.1 s, so these functions run in a thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hub.gguf import GGUFError, read_metadata
from hub.manifest import SERVABLE_FORMATS, Manifest
from hub.store import ArtifactStore
from server.dialects.ollama import protocol as o
from server.serving.deployments import Deployment
from server.serving.status import ModelStatus

# GGUF's general.file_type -> Ollama's quantization level (llama.cpp's LLAMA_FTYPE_* names).
_FILE_TYPES = {
    0: "F32",
    1: "F16",
    2: "Q4_0",
    3: "Q4_1",
    7: "Q8_0",
    8: "Q5_0",
    9: "Q5_1",
    10: "Q2_K",
    11: "Q3_K_S",
    12: "Q3_K_M",
    13: "Q3_K_L",
    14: "Q4_K_S",
    15: "Q4_K_M",
    16: "Q5_K_S",
    17: "Q5_K_M",
    18: "Q6_K",
    32: "BF16",
}
# Ollama's answer for a model kept loaded forever.
_FOREVER = "2318-01-01T00:00:00Z"


def timestamp(seconds: float) -> str:
    """A Unix time as RFC 3339 (UTC), as Ollama writes it."""
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class ModelFiles:
    """A model's files and what they say about it."""

    path: Path
    format: str
    metadata: dict[str, Any]
    size: int
    modified: float
    digest: str
    precision: str | None = None

    @property
    def architecture(self) -> str:
        """The model family (`llama`, `bert`, ...)."""
        return str(self.metadata.get("general.architecture", ""))

    def details(self) -> o.Details:
        """Ollama's `details` of the model."""
        family = self.architecture
        file_type = self.metadata.get("general.file_type")
        quantization = _FILE_TYPES.get(file_type, "") if isinstance(file_type, int) else ""
        return o.Details(
            format=self.format,
            family=family,
            families=[family] if family else None,
            parameter_size=str(self.metadata.get("general.size_label", "")),
            quantization_level=quantization or (self.precision or "").upper(),
        )


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _config_metadata(folder: Path) -> dict[str, Any]:
    """An OpenVINO / ONNX folder's config.json in GGUF's key names."""
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return {}
    arch = str(config.get("model_type", ""))
    names = {
        "max_position_embeddings": "context_length",
        "hidden_size": "embedding_length",
        "num_hidden_layers": "block_count",
        "num_attention_heads": "attention.head_count",
        "vocab_size": "vocab_size",
    }
    metadata: dict[str, Any] = {"general.architecture": arch}
    for key, name in names.items():
        if isinstance(config.get(key), int):
            metadata[f"{arch}.{name}"] = config[key]
    return metadata


def read_files(path: Path, format: str, manifest: Manifest | None = None) -> ModelFiles:
    """Read a model's metadata, size and identity. The digest is the entry file's sha256 where the
    hub recorded it, else a digest of the path, size and modification time (hashing gigabytes to
    list models would take minutes)."""
    metadata: dict[str, Any] = {}
    if format == "gguf":
        try:
            metadata = dict(read_metadata(path, scalars_only=True))
        except (OSError, GGUFError):
            metadata = {}
    else:
        metadata = _config_metadata(path)
    stat = path.stat()
    digest = ""
    if manifest is not None:
        digest = next((f.sha256 for f in manifest.files if f.path == manifest.entry), "")
    if not digest:
        digest = hashlib.sha256(f"{path.resolve()}|{_size(path)}|{stat.st_mtime_ns}".encode()).hexdigest()
    return ModelFiles(
        path=path,
        format=format,
        metadata=metadata,
        size=_size(path),
        modified=manifest.created if manifest is not None else stat.st_mtime,
        digest=digest,
        precision=manifest.precision if manifest is not None else None,
    )


def deployment_files(deployment: Deployment) -> ModelFiles:
    """The files a deployment serves."""
    return read_files(Path(deployment.spec.path), deployment.spec.format)


def listed(name: str, files: ModelFiles) -> o.ListedModel:
    """A model's line of /api/tags."""
    return o.ListedModel(
        name=name,
        model=name,
        modified_at=timestamp(files.modified),
        size=files.size,
        digest=files.digest,
        details=files.details(),
    )


def installed(store: ArtifactStore, served: set[str]) -> list[o.ListedModel]:
    """Every installed, servable artifact not already listed as served."""
    lines: list[o.ListedModel] = []
    for manifest in store.artifacts():
        if manifest.name in served or manifest.format not in SERVABLE_FORMATS:
            continue
        files = read_files(store.entry_path(manifest.name), manifest.format, manifest)
        lines.append(listed(manifest.name, files))
    return lines


def capabilities(deployment: Deployment, files: ModelFiles) -> list[str]:
    """What the model can be asked to do, in Ollama's words."""
    if deployment.kind == "embeddings":
        return ["embedding"]
    found = ["completion", "tools"]
    template = str(files.metadata.get("tokenizer.chat_template", ""))
    if "<think>" in template:
        found.append("thinking")
    return found


def _parameters(deployment: Deployment) -> str:
    sampling = deployment.sampling
    lines = [
        ("temperature", sampling.temperature),
        ("top_p", sampling.top_p),
        ("top_k", sampling.top_k),
        ("min_p", sampling.min_p),
        ("num_ctx", deployment.context_length),
    ]
    if sampling.max_tokens is not None:
        lines.append(("num_predict", sampling.max_tokens))
    return "\n".join(f"{key:<15} {value}" for key, value in lines)


def show(name: str, deployment: Deployment, files: ModelFiles) -> o.ShowResponse:
    """/api/show's answer. `model_info` holds the model's scalar metadata; its `<arch>.context_length`
    is the context the server serves (what fits a request), which may be less than trained."""
    info = {k: v for k, v in files.metadata.items() if k != "tokenizer.chat_template"}
    arch = files.architecture or "unknown"
    info["general.architecture"] = arch
    info[f"{arch}.context_length"] = deployment.context_length
    if deployment.dimensions:
        info[f"{arch}.embedding_length"] = deployment.dimensions
    return o.ShowResponse(
        modelfile=f"# Modelfile of {name}, served by Hearth\nFROM {name}\n",
        parameters=_parameters(deployment),
        template=str(files.metadata.get("tokenizer.chat_template", "")),
        details=files.details(),
        model_info=info,
        capabilities=capabilities(deployment, files),
        modified_at=timestamp(files.modified),
        license=str(files.metadata.get("general.license", "")),
    )


def running(status: ModelStatus, deployment: Deployment, files: ModelFiles) -> o.RunningModel:
    """A loaded model's line of /api/ps; `size_vram` is its memory when it runs on an accelerator."""
    expires = status.expires_in_seconds
    if status.keep_alive_seconds is None or (expires is not None and math.isinf(expires)):
        expires_at = _FOREVER
    else:
        left = expires if expires is not None else status.keep_alive_seconds
        expires_at = timestamp(time.time() + left)
    memory = status.memory_bytes or files.size
    return o.RunningModel(
        name=status.id,
        model=status.id,
        size=memory,
        digest=files.digest,
        details=files.details(),
        expires_at=expires_at,
        size_vram=memory if any(d in status.device.upper() for d in ("GPU", "NPU", "CUDA")) else 0,
        context_length=deployment.context_length,
    )
