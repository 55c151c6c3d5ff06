"""What a pull, a conversion or an import is asked for: one definition for the CLI, the HTTP API
and the jobs.

`POST /v1/hub/pull`, `/v1/hub/convert` and `/v1/hub/import` take these as their bodies, `hearth
pull` / `hearth convert` build them from their arguments, and a job records them as its `params`.
"""

from __future__ import annotations

import argparse
from typing import Annotated, Literal, TypeVar

import msgspec

from hub.manifest import Task

PullFormat = Literal["openvino", "onnx", "gguf"]
PullTarget = Literal["cpu", "igpu", "npu", "dml", "cuda"]
ConvertFormat = Literal["openvino", "onnx"]
ConvertPrecision = Literal["fp32", "fp16", "int8", "int4"]


class PullOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Pull a catalog model (by name) or a Hugging Face repo (`org/name`)."""

    model: str
    # The installed artifact's name (default: the catalog name, or one made from the recipe).
    name: str | None = None
    format: PullFormat | None = None
    # fp16, int8, int4, or a GGUF quantization such as q4_k_m.
    precision: str | None = None
    # Default: the best target of this machine.
    target: PullTarget | None = None
    # Branch, tag or commit of the repo (default main; recorded as a commit).
    revision: str | None = None


class ConvertOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Make a new artifact from installed artifact `model`."""

    model: str
    format: ConvertFormat
    precision: ConvertPrecision
    # cpu, gpu, npu, dml or cuda.
    device: str = "cpu"
    # Symmetric weights (what NPUs want).
    symmetric: bool = False
    # The new artifact's name (default MODEL-FORMAT-PRECISION).
    name: str | None = None


class ImportOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Import a model file or folder that is on the server's machine."""

    # Absolute: a .gguf file, or a Hugging Face, TensorFlow SavedModel, OpenVINO IR or ONNX folder;
    # no longer than Linux's PATH_MAX (a longer one is refused at decoding, not echoed back whole).
    path: Annotated[str, msgspec.Meta(min_length=1, max_length=4096)]
    # The installed artifact's name (default: made from the file or folder name).
    name: str | None = None
    task: Task = "text-generation"


Options = TypeVar("Options", PullOptions, ConvertOptions)


def from_arguments(kind: type[Options], args: argparse.Namespace) -> Options:
    """The options a command line parsed into `args` (its flags use the fields' names)."""
    return msgspec.convert({f: getattr(args, f) for f in kind.__struct_fields__}, kind)
