"""Conversion time and on-disk size per path, for the tiny test model and the default model.

Each path runs `hub.convert.convert` exactly as the hub does (a converter subprocess), so the time
includes the converter's own start-up (importing torch, transformers, nncf): that is what a user
waits for. Wall time depends on the machine's load; CPU time (user + system of the child) is the
steadier number on a shared machine, and both are reported.

Usage (from the repository root, after `make .venv/.installed-test`):

    .venv/bin/python -m benchmarks.convert_bench [--only tiny|default] [--out benchmarks/out/convert.json]
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from hub.convert import Format, Precision, convert
from hub.models import default_model_path

# (format, precision, symmetric, device); ONNX fp16 is a GPU precision (refused for cpu).
ConvPath = tuple[Format, Precision, bool, str]
TINY_PATHS: list[ConvPath] = [
    ("openvino", "fp16", False, "cpu"),
    ("openvino", "int8", False, "cpu"),
    ("openvino", "int4", False, "cpu"),
    ("openvino", "int4", True, "cpu"),
    ("onnx", "fp32", False, "cpu"),
    ("onnx", "fp16", False, "cuda"),
    ("onnx", "int4", False, "cpu"),
]
DEFAULT_PATHS: list[ConvPath] = [("openvino", "int4", False, "cpu")]


class Measurement(msgspec.Struct, frozen=True):
    """One conversion: what, how long, how big."""

    model: str
    format: str
    precision: str
    symmetric: bool
    device: str
    wall_s: float
    cpu_s: float
    size_mb: float
    source_mb: float
    tool: str


def _size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return sum(p.stat().st_size for p in files) / 1e6


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(model: str, source: Path, paths: list[ConvPath], work: Path) -> list[Measurement]:
    """Convert `source` on every path into folders under `work` and measure each."""
    results: list[Measurement] = []
    for format, precision, symmetric, device in paths:
        out = work / f"{model}-{format}-{precision}{'-sym' if symmetric else ''}-{device}"
        out.mkdir()
        cpu0, t0 = _children_cpu(), time.perf_counter()
        record = convert(source, out, format=format, precision=precision, symmetric=symmetric, device=device)
        wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu0
        row = Measurement(
            model, format, precision, symmetric, device, wall, cpu, _size_mb(out), _size_mb(source), record.tool
        )
        print(
            f"{model} {format} {precision}{' sym' if symmetric else ''}: {wall:.1f} s wall, {cpu:.1f} s cpu, "
            f"{row.size_mb:.2f} MB",
            file=sys.stderr,
            flush=True,
        )
        results.append(row)
    return results


def to_markdown(rows: list[Measurement]) -> str:
    """The results as a Markdown table."""
    lines = [
        "| model | path | tool | wall s | CPU s | size MB | source MB |",
        "|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        path = f"{r.format} {r.precision}{' sym' if r.symmetric else ''} ({r.device})"
        lines.append(
            f"| {r.model} | {path} | {r.tool} | {r.wall_s:.1f} | {r.cpu_s:.1f} | {r.size_mb:.2f} | {r.source_mb:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the conversions and print a Markdown table (and JSON with --out)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.convert_bench")
    parser.add_argument("--only", choices=("tiny", "default"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    rows: list[Measurement] = []
    with tempfile.TemporaryDirectory(prefix="hearth-convert-bench-") as tmp:
        work = Path(tmp)
        if args.only in (None, "tiny"):
            # Imported here: building the tiny model needs torch, which only this half needs.
            from tests.hub.tiny_models import make_tiny_llama

            rows += measure("tiny-llama", make_tiny_llama(work / "tiny-llama"), TINY_PATHS, work)
        if args.only in (None, "default"):
            rows += measure("smollm2-135m (GGUF Q4_1)", default_model_path(), DEFAULT_PATHS, work)
    print(to_markdown(rows))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(msgspec.to_builtins(rows), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
