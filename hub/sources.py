"""What kind of model a file or folder holds, checked deeply enough to name what is wrong.

Detection reads headers only (GGUF metadata, safetensors JSON headers, zip/pickle magic), never
tensors, so it is cheap enough to run before every import and conversion.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path
from typing import Literal

from hub.errors import HubFailure
from hub.gguf import GGUFError, read_metadata

SourceKind = Literal["gguf", "hf", "tf-savedmodel", "openvino", "onnx"]

# A safetensors header longer than this is not a real header: reading it would only waste memory.
_MAX_SAFETENSORS_HEADER = 100 * 1024 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTOCOL_2_PLUS = 0x80


class SourceError(HubFailure, ValueError):
    """The input is not a model Hearth can import; the message names what is wrong."""

    code = "sourceerror"
    bad_request = True


def detect_source(path: Path) -> SourceKind:
    """The kind of model at `path`; raises SourceError naming what is missing or broken."""
    path = Path(path)
    if not path.exists():
        raise SourceError(f"{path} does not exist")
    if path.is_file():
        return _detect_file(path)
    if not path.is_dir():
        raise SourceError(f"{path} is neither a file nor a folder")
    if (path / "openvino_model.xml").is_file():
        _require(path, "openvino_model.bin", "an OpenVINO IR model (openvino_model.xml) needs its weights")
        return "openvino"
    if (path / "genai_config.json").is_file():
        _check_onnx_folder(path)
        return "onnx"
    if (path / "saved_model.pb").is_file() or (path / "saved_model.pbtxt").is_file():
        return "tf-savedmodel"
    if (path / "config.json").is_file():
        _check_hf_folder(path)
        return "hf"
    ggufs = sorted(path.glob("*.gguf"))
    if len(ggufs) == 1:
        return _detect_file(ggufs[0])
    if _weight_files(path):
        raise SourceError(f"{path} has model weights but no config.json (a Hugging Face model folder needs one)")
    raise SourceError(
        f"{path} holds no model Hearth recognises: expected a .gguf file, a Hugging Face folder "
        "(config.json + *.safetensors or pytorch_model*.bin), a TensorFlow SavedModel (saved_model.pb), "
        "an OpenVINO IR folder (openvino_model.xml) or an ONNX GenAI folder (genai_config.json)"
    )


def _require(folder: Path, name: str, why: str) -> None:
    if not (folder / name).is_file():
        raise SourceError(f"{folder}: {why}, but {name} is missing")


def _detect_file(path: Path) -> SourceKind:
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"GGUF":
        try:
            read_metadata(path, scalars_only=True)
        except GGUFError as exc:
            raise SourceError(f"{path} is a broken GGUF file: {exc}") from exc
        return "gguf"
    if path.suffix == ".gguf":
        raise SourceError(f"{path} is named .gguf but is not a GGUF file (bad magic)")
    if path.suffix in (".safetensors", ".bin", ".pt", ".pth"):
        raise SourceError(
            f"{path} is a bare weights file: import the folder that holds it with its config.json and tokenizer"
        )
    raise SourceError(f"{path} is not a model file Hearth recognises (only .gguf files are imported as single files)")


def _check_onnx_folder(path: Path) -> None:
    try:
        config = json.loads((path / "genai_config.json").read_text())
        filename = config["model"]["decoder"]["filename"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SourceError(f"{path}/genai_config.json is not a valid ONNX Runtime GenAI config: {exc}") from exc
    _require(path, str(filename), "genai_config.json names the decoder's model file")


def _weight_files(path: Path) -> list[Path]:
    return sorted([*path.glob("*.safetensors"), *path.glob("pytorch_model*.bin")])


def _check_hf_folder(path: Path) -> None:
    try:
        config = json.loads((path / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise SourceError(f"{path}/config.json is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or not (config.get("model_type") or config.get("architectures")):
        raise SourceError(f"{path}/config.json names neither model_type nor architectures")
    weights = _weight_files(path)
    if not weights:
        found = ", ".join(sorted(p.name for p in path.iterdir())) or "nothing"
        raise SourceError(
            f"{path} has a config.json but no weights (*.safetensors or pytorch_model*.bin); found: {found}"
        )
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        if (path / index_name).is_file():
            _check_index(path, index_name)
    for weight in weights:
        if weight.suffix == ".safetensors":
            _check_safetensors(weight)
        else:
            _check_torch_bin(weight)


def _check_index(path: Path, index_name: str) -> None:
    try:
        weight_map = json.loads((path / index_name).read_text())["weight_map"]
        shards = set(weight_map.values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SourceError(f"{path}/{index_name} is not a valid weights index: {exc}") from exc
    missing = sorted(shard for shard in shards if not (path / shard).is_file())
    if missing:
        raise SourceError(f"{path}/{index_name} lists shards that are missing: {', '.join(missing)}")


def _check_safetensors(path: Path) -> None:
    """Check the header and that the file is long enough for every tensor it declares."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise SourceError(f"{path} is truncated: too short for a safetensors header")
        (header_len,) = struct.unpack("<Q", prefix)
        if header_len > min(size - 8, _MAX_SAFETENSORS_HEADER):
            raise SourceError(f"{path} is not a valid safetensors file (header length {header_len} > file)")
        try:
            header = json.loads(f.read(header_len))
        except ValueError as exc:
            raise SourceError(f"{path} is not a valid safetensors file: its header is not JSON") from exc
    if not isinstance(header, dict):
        raise SourceError(f"{path} is not a valid safetensors file: its header is not a JSON object")
    end = 0
    for name, info in header.items():
        if name == "__metadata__":
            continue
        try:
            end = max(end, int(info["data_offsets"][1]))
        except (KeyError, TypeError, IndexError, ValueError) as exc:
            raise SourceError(f"{path}: tensor {name!r} has no valid data_offsets") from exc
    if 8 + header_len + end > size:
        raise SourceError(f"{path} is truncated: its header declares {8 + header_len + end} bytes, the file has {size}")


def _check_torch_bin(path: Path) -> None:
    with open(path, "rb") as f:
        head = f.read(4)
    if head != _ZIP_MAGIC and (not head or head[0] != _PICKLE_PROTOCOL_2_PLUS):
        raise SourceError(f"{path} is not a PyTorch checkpoint (neither a torch zip archive nor a pickle)")
    if head == _ZIP_MAGIC and not zipfile.is_zipfile(path):
        # torch.save writes a zip whose directory is at the end: a cut file has none.
        raise SourceError(f"{path} is truncated: its zip directory is missing")
