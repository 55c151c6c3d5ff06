"""A GGUF model served through the OpenVINO IR its first load saves (`gguf_ir_cache`).

OpenVINO GenAI builds a GGUF's graph and tokenizer from the file on every load (measured: most of
a warm start, benchmarks/RESULTS.md). With `enable_save_ov_model` its GGUF reader writes that same
graph, and the tokenizer it read, next to the file it loaded; loading a link to the GGUF placed in
a staging folder under the model cache therefore leaves the IR there. The folder is renamed into
place only once complete, so a load that dies half-way leaves nothing that a later load would trust.
Later loads read the IR and no longer rebuild the graph from the GGUF.

Before it is moved into place the saved graph goes through OpenVINO's offline transformations once
(`simplify_graph`), so that later loads compile a smaller graph.

The cache key is the GGUF's resolved path, size and modification time, OpenVINO GenAI's version
(another version may build another graph) and the layout of what is saved: a changed file, an
upgrade or a new layout converts again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from adapters.base import EngineOptions
from hub.models import ModelSpec

log = logging.getLogger(__name__)

# What a complete IR folder holds: the model and the tokenizer pair OpenVINO GenAI loads from disk.
IR_FILES = (
    "openvino_model.xml",
    "openvino_model.bin",
    "openvino_tokenizer.xml",
    "openvino_tokenizer.bin",
    "openvino_detokenizer.xml",
    "openvino_detokenizer.bin",
)
_LINK = "source.gguf"
# Part of the cache key: raised when what is saved changes (2: the graph is simplified once saved).
_LAYOUT = 2


def ir_folder(gguf: Path, cache_dir: Path) -> Path:
    """The folder under `cache_dir` that holds (or will hold) `gguf`'s IR."""
    import openvino_genai

    resolved = gguf.resolve()
    stat = resolved.stat()
    key = f"{resolved}\0{stat.st_size}\0{stat.st_mtime_ns}\0{openvino_genai.__version__}\0{_LAYOUT}"
    return cache_dir / "ir" / f"{resolved.stem}-{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def is_complete(folder: Path) -> bool:
    """Whether `folder` holds every file of a saved IR."""
    return all((folder / name).is_file() for name in IR_FILES)


@dataclass
class PipelineSource:
    """What to build a pipeline from: a path, the extra properties its load needs, and whether it
    is the cached IR. `saved()` must be called once the pipeline (and its tokenizer) loaded."""

    path: str
    from_ir_cache: bool = False
    # True while this load reads the GGUF and saves its IR (`saved()` then moves it into place).
    properties: dict[str, object] = field(default_factory=dict)
    _staging: Path | None = None
    _target: Path | None = None

    @property
    def saving(self) -> bool:
        """Whether this load saves an IR."""
        return self._staging is not None

    def saved(self) -> None:
        """Move a staged IR into place (no-op unless this load saved one)."""
        if self._staging is None or self._target is None:
            return
        staging, target = self._staging, self._target
        (staging / _LINK).unlink(missing_ok=True)
        if not is_complete(staging):
            log.warning("the GGUF reader saved no complete IR in %s; the next load reads the GGUF again", staging)
            shutil.rmtree(staging, ignore_errors=True)
            return
        try:
            simplify_graph(staging)
        except Exception as exc:  # the IR as the reader saved it still serves, only slower to compile
            log.warning("could not simplify the saved IR in %s (%s); keeping it as saved", staging, exc)
        try:
            staging.rename(target)
            log.info("saved the IR of %s in %s", self.path, target)
        except OSError:
            # Another worker put the same IR in place first: theirs is as good.
            shutil.rmtree(staging, ignore_errors=True)

    def discard(self) -> None:
        """Remove a staged IR after a failed load."""
        if self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)


def simplify_graph(folder: Path) -> None:
    """Run OpenVINO's offline graph transformations (MOC, with constant folding) on the graph in
    `folder` once, and save it in place: the GGUF reader's graph has ~5,900 operations, ~4,900 after,
    and every later load compiles that much less (measured ~0.8 s of a ~5 s compile; the same
    greedy tokens, tests/adapters/test_ir_cache.py)."""
    import openvino
    from openvino._offline_transformations import apply_moc_transformations

    model = openvino.Core().read_model(folder / "openvino_model.xml")
    apply_moc_transformations(model, cf=True)
    simplified = folder / "simplified"
    openvino.save_model(model, simplified / "openvino_model.xml", compress_to_fp16=False)
    del model  # it maps the old weights file
    for name in ("openvino_model.bin", "openvino_model.xml"):  # the graph last: it names the weights
        os.replace(simplified / name, folder / name)
    simplified.rmdir()


def pipeline_source(spec: ModelSpec, options: EngineOptions) -> PipelineSource:
    """Where to load `spec` from: its cached IR when there is one, else the GGUF (through a link in
    a staging folder, saving its IR) when the cache is on, else the model's own path."""
    if spec.format != "gguf" or not options.gguf_ir_cache or not options.cache_dir:
        return PipelineSource(spec.path)
    target = ir_folder(Path(spec.path), Path(options.cache_dir))
    if is_complete(target):
        return PipelineSource(str(target), from_ir_cache=True)
    staging = target.with_name(f"{target.name}.staging-{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        shutil.rmtree(staging)
    try:
        staging.mkdir(parents=True)
        (staging / _LINK).symlink_to(Path(spec.path).resolve())
    except OSError as exc:
        # A read-only cache must not stop the model from loading: serve the GGUF as it is.
        log.warning("cannot stage an IR for %s in %s (%s); serving the GGUF", spec.path, staging, exc)
        shutil.rmtree(staging, ignore_errors=True)
        return PipelineSource(spec.path)
    return PipelineSource(
        str(staging / _LINK), properties={"enable_save_ov_model": True}, _staging=staging, _target=target
    )
