"""Convert an imported model into a servable artifact: OpenVINO IR or ONNX Runtime GenAI.

Every converter runs in a child Python process (`sys.executable -m ...`): the converters import
torch, transformers and nncf (seconds of start-up and gigabytes of memory), which must never land in
the server's process, and a crashing converter must not take the caller down. Their output lines are
passed to `progress` as they come; a failure raises ConversionError with the tool's last lines.

| source          | format   | tool                                   | precisions                 |
|-----------------|----------|----------------------------------------|----------------------------|
| hf              | openvino | optimum-intel (`optimum-cli export`)   | fp32 fp16 int8 int4 (+sym) |
| hf              | onnx     | onnxruntime-genai model builder        | fp32 fp16 int4 (cpu/dml/cuda) |
| tf-savedmodel   | openvino | openvino.convert_model (+ nncf)        | fp32 fp16 int8 int4        |
| gguf            | openvino | openvino_genai's GGUF reader           | the GGUF's own (Q4_1: int4)|
"""

from __future__ import annotations

import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Literal

import msgspec

from hub.convert_run import ConversionError, run_converter
from hub.gguf import read_metadata
from hub.sources import SourceError, SourceKind, detect_source

__all__ = [
    "ConversionError",
    "ConversionRecord",
    "Format",
    "Precision",
    "SourceError",
    "SourceKind",
    "Task",
    "convert",
    "detect_source",
]

Format = Literal["openvino", "onnx"]
Precision = Literal["fp32", "fp16", "int8", "int4"]
Task = Literal["text-generation", "embeddings"]

ONNX_DEVICES = ("cpu", "dml", "cuda")
# optimum-intel's default group size for int4; channel-wise (-1) for the NPU recipe, which is what
# OpenVINO GenAI's NPU guide prescribes for symmetric int4.
INT4_GROUP_SIZE = 128
NPU_GROUP_SIZE = -1

_OPTIMUM_PACKAGES = ("optimum-intel", "optimum", "transformers", "torch", "nncf", "openvino", "openvino-tokenizers")
_ORT_PACKAGES = ("onnxruntime-genai", "onnxruntime", "onnx", "onnx-ir", "transformers", "torch")
_GGUF_PACKAGES = ("openvino-genai", "openvino", "openvino-tokenizers")
# llama.cpp's general.file_type values that OpenVINO GenAI's GGUF reader loads, as Hearth precisions.
_GGUF_PRECISION: dict[int, str] = {0: "fp32", 1: "fp16", 2: "int4", 3: "int4", 7: "int8", 14: "int4", 15: "int4"}
_TF_PACKAGES = ("openvino", "nncf", "openvino-tokenizers", "transformers")


class ConversionRecord(msgspec.Struct, frozen=True):
    """How an artifact was made: enough to reproduce it and to know which tools shaped it."""

    tool: str
    tool_versions: dict[str, str]
    recipe: dict[str, str]


@dataclass(frozen=True)
class _Job:
    """One conversion as `convert` validated it; `recipe` is filled in as the converter is chosen."""

    source: Path
    out_dir: Path
    precision: Precision
    device: str
    task: Task
    symmetric: bool
    recipe: dict[str, str]
    progress: Callable[[str], None] | None


def _run_tool(
    job: _Job, cmd: list[str], command: str, tool: str, packages: tuple[str, ...], required: tuple[str, ...]
) -> ConversionRecord:
    """Run one converter child, check it wrote `required`, and record how (`command` as a user types it)."""
    job.recipe["command"] = command
    run_converter(cmd, tool, job.progress)
    _require_outputs(job.out_dir, required, tool)
    return ConversionRecord(tool=tool, tool_versions=_versions(packages), recipe=job.recipe)


def _versions(packages: tuple[str, ...]) -> dict[str, str]:
    found: dict[str, str] = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def _require_outputs(out_dir: Path, names: tuple[str, ...], tool: str) -> None:
    missing = [name for name in names if not (out_dir / name).is_file()]
    if missing:
        raise ConversionError(f"{tool} finished but did not write {', '.join(missing)} into {out_dir}")


def _has_tokenizer(folder: Path) -> bool:
    return any((folder / name).is_file() for name in ("tokenizer.json", "tokenizer.model", "vocab.txt"))


def convert(
    source: Path,
    out_dir: Path,
    *,
    format: Format,
    precision: Precision,
    device: str = "cpu",
    task: Task = "text-generation",
    symmetric: bool = False,
    progress: Callable[[str], None] | None = None,
) -> ConversionRecord:
    """Convert `source` into a servable model (weights + tokenizer) in `out_dir`.

    `out_dir` must be an existing, empty folder owned by the caller; on failure it may hold partial
    files, which the caller discards. Raises SourceError for input that cannot be converted this
    way and ConversionError when the converter fails.
    """
    source, out_dir = Path(source), Path(out_dir)
    kind = detect_source(source)
    if not out_dir.is_dir() or any(out_dir.iterdir()):
        raise ValueError(f"{out_dir} must be an existing empty directory")
    if symmetric and (format != "openvino" or precision not in ("int8", "int4")):
        raise SourceError("symmetric quantization applies only to OpenVINO int8/int4")
    recipe = {
        "format": format,
        "precision": precision,
        "device": device,
        "task": task,
        "symmetric": "true" if symmetric else "false",
        "source_kind": kind,
    }
    job = _Job(source, out_dir, precision, device, task, symmetric, recipe, progress)
    if kind == "hf" and format == "openvino":
        return _optimum_openvino(job)
    if kind == "hf" and format == "onnx":
        return _ort_genai(job)
    if kind == "tf-savedmodel" and format == "openvino":
        return _tf_openvino(job)
    if kind == "tf-savedmodel":
        raise SourceError("a TensorFlow SavedModel converts only to OpenVINO (format openvino)")
    if kind == "gguf" and format == "openvino":
        return _gguf_openvino(job)
    if kind == "gguf":
        raise SourceError(
            "a GGUF file converts only to OpenVINO (through OpenVINO GenAI's GGUF reader); for ONNX, "
            "import the Hugging Face model it was made from (GGUF -> Hugging Face loses tokenizer fidelity)"
        )
    raise SourceError(f"{source} is already converted ({kind}); convert the Hugging Face model it came from instead")


def _optimum_openvino(job: _Job) -> ConversionRecord:
    optimum_task = "text-generation-with-past" if job.task == "text-generation" else "feature-extraction"
    cmd = [sys.executable, "-m", "optimum.commands.optimum_cli", "export", "openvino"]
    cmd += ["--model", str(job.source), "--task", optimum_task, "--weight-format", job.precision]
    if job.precision == "int4":
        group_size = NPU_GROUP_SIZE if job.symmetric else INT4_GROUP_SIZE
        # "adjust": a layer whose width the group size does not divide gets the largest group size
        # that does, instead of failing the whole export (small models, odd projection widths).
        cmd += ["--group-size", str(group_size), "--group-size-fallback", "adjust", "--ratio", "1.0"]
        job.recipe.update(group_size=str(group_size), group_size_fallback="adjust", ratio="1.0")
    if job.symmetric:
        cmd.append("--sym")
    cmd.append(str(job.out_dir))
    required: tuple[str, ...] = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml")
    if job.task == "text-generation":
        required += ("openvino_detokenizer.xml",)
    # Recorded as the user would type it, without this machine's interpreter path.
    record = _run_tool(job, cmd, "optimum-cli " + shlex.join(cmd[3:]), "optimum-intel", _OPTIMUM_PACKAGES, required)
    if job.task != "text-generation":
        _keep_sentence_transformers_files(job.source, job.out_dir)
    return record


# What a sentence-transformers model says about its pooling and longest input; the export leaves
# them behind and the embedding backend reads them (adapters/embeddings.py). hub/bert_ir.py copies
# the same files.
_SENTENCE_TRANSFORMERS_FILES = ("sentence_bert_config.json", "modules.json", "1_Pooling")


def _keep_sentence_transformers_files(source: Path, out_dir: Path) -> None:
    for name in _SENTENCE_TRANSFORMERS_FILES:
        found, target = source / name, out_dir / name
        if target.exists() or not found.exists():
            continue
        if found.is_dir():
            shutil.copytree(found, target)
        else:
            shutil.copy2(found, target)


def _ort_genai(job: _Job) -> ConversionRecord:
    if job.task != "text-generation":
        raise SourceError("the onnxruntime-genai builder makes text-generation models only: use format openvino")
    if job.precision == "int8":
        raise SourceError("the onnxruntime-genai builder has no int8 recipe: use fp32, fp16 or int4")
    if job.device not in ONNX_DEVICES:
        raise SourceError(f"device {job.device!r} is not an ONNX target: choose one of {', '.join(ONNX_DEVICES)}")
    if job.precision == "fp16" and job.device == "cpu":
        # The builder writes it, but ONNX Runtime's CPU provider fails on its second decode step
        # (microsoft/onnxruntime-genai#2009: fp16 is a GPU precision there).
        raise SourceError(
            "ONNX fp16 is for dml/cuda; ONNX Runtime's CPU provider cannot run it: use fp32 or int4 for cpu"
        )
    with tempfile.TemporaryDirectory(prefix="hearth-ort-cache-") as cache:
        cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder"]
        cmd += ["-i", str(job.source), "-o", str(job.out_dir), "-p", job.precision, "-e", job.device, "-c", cache]
        required = ("genai_config.json", "model.onnx", "tokenizer.json")
        return _run_tool(job, cmd, "python " + shlex.join(cmd[1:-2]), "onnxruntime-genai", _ORT_PACKAGES, required)


def _gguf_openvino(job: _Job) -> ConversionRecord:
    if job.task != "text-generation":
        raise SourceError("a GGUF file converts as a text-generation model only")
    file_type = read_metadata(job.source, scalars_only=True).get("general.file_type")
    native = _GGUF_PRECISION.get(file_type) if isinstance(file_type, int) else None
    if native is None:
        raise SourceError(
            f"{job.source}: GGUF file type {file_type} has no OpenVINO conversion here; serve the GGUF as it is"
        )
    if job.precision != native:
        # The reader keeps the GGUF's own quantization; re-quantizing it would stack two roundings.
        raise SourceError(
            f"{job.source} holds {native} weights (GGUF file type {file_type}): convert it with precision {native}"
        )
    cmd = [sys.executable, "-m", "hub.convert_gguf", str(job.source), str(job.out_dir)]
    job.recipe["gguf_file_type"] = str(file_type)
    required = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml", "openvino_detokenizer.xml")
    return _run_tool(job, cmd, "python " + shlex.join(cmd[1:]), "openvino-genai", _GGUF_PACKAGES, required)


def _tf_openvino(job: _Job) -> ConversionRecord:
    if not _has_tokenizer(job.source):
        raise SourceError(
            f"{job.source}: a TensorFlow SavedModel needs its tokenizer files (tokenizer.json and "
            "tokenizer_config.json) beside saved_model.pb to be servable"
        )
    cmd = [sys.executable, "-m", "hub.convert_tf", str(job.source), str(job.out_dir), job.precision, job.task]
    if job.symmetric:
        cmd.append("--sym")
    required = ("openvino_model.xml", "openvino_model.bin", "openvino_tokenizer.xml")
    return _run_tool(job, cmd, "python " + shlex.join(cmd[1:]), "openvino.convert_model", _TF_PACKAGES, required)
