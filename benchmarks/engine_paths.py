"""Single-stream engine paths for the default model: weight formats, pipelines and runtimes side by side.

Issue 18 asks which engine path could beat llama.cpp on one stream. Each variant here is the default
GGUF's model served another way, measured in a child process of its own (fresh thread pools):

- `gguf`: what Hearth serves today, OpenVINO GenAI's continuous-batching pipeline on the GGUF;
- `ir`: the same graph from the IR the GGUF reader saves (Hearth's IR cache);
- `ir-int8`, `ir-int4-sym`: that IR with its Q4_1 weights folded to f32 and re-compressed by NNCF
  (int8 per channel, int4 symmetric group 64: the formats OpenVINO's CPU kernels are tuned for);
- `sdpa`: the IR in the stateful `LLMPipeline` (no paged attention, one sequence);
- `prompt-lookup`: the IR with prompt-lookup decoding, on an edit (the answer repeats the prompt);
- `ort-int4`: ONNX Runtime GenAI's int4 (accuracy level 4: int8 dot products on AVX2), built by its
  model builder from the Hugging Face model that transformers dequantizes from the GGUF.

Per variant: decode tok/s (best of 3), TTFT, CPU ms per token (steadier than tok/s on a shared
machine), and the first greedy tokens; then fidelity against the GGUF's IR: teacher-forced argmax
agreement, top-5 agreement and logit correlation over fixed texts.

    .venv/bin/python -m benchmarks.engine_paths [--work /tmp/engine-paths] [--only ir ir-int8 ...]

Building the variants needs the converters (`pip install -e '.[convert]'`, accelerate) and ~2 min.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.engine_variants import VARIANTS, build, fidelity, model_path

PROMPT = "Write a long, detailed story about owls, with many characters and places."


def _edit_prompt() -> str:
    source = Path(__file__).resolve().parent.parent / "adapters" / "stops.py"
    code = source.read_text()[:1500]
    return f"Rewrite this Python file, renaming the class StopMatcher to StopFinder, and output it whole:\n\n{code}"


def measure(variant: str, work: Path, max_tokens: int) -> dict[str, Any]:
    """Single-stream numbers of one variant, in this process."""
    import numpy as np

    path = model_path(variant, work)
    started, cpu = time.perf_counter(), time.process_time()
    if variant == "ort-int4":
        return _measure_ort(path, max_tokens, started, cpu)
    import openvino as ov
    import openvino_genai as ov_genai

    properties: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "KV_CACHE_PRECISION": "u8"}
    stateful = variant == "sdpa"
    if stateful:
        pipe: Any = ov_genai.LLMPipeline(str(path), "CPU", ATTENTION_BACKEND="SDPA", **properties)
    else:
        scheduler = ov_genai.SchedulerConfig()
        scheduler.cache_size = 1
        scheduler.dynamic_split_fuse = True
        scheduler.max_num_batched_tokens = 256
        if variant == "prompt-lookup":
            properties["prompt_lookup"] = True
        pipe = ov_genai.ContinuousBatchingPipeline(str(path), scheduler, "CPU", properties)
    load_s, load_cpu = time.perf_counter() - started, time.process_time() - cpu
    tokenizer = pipe.get_tokenizer()
    text = _edit_prompt() if variant == "prompt-lookup" else PROMPT
    templated = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True)
    ids = tokenizer.encode(templated, add_special_tokens=False).input_ids.data[0].tolist()

    def run(n: int) -> tuple[list[float], list[int], int]:
        tensor = ov.Tensor(np.array([ids], dtype=np.int64))
        times: list[float] = []
        out: list[int] = []
        steps = 0
        if stateful:
            config = pipe.get_generation_config()
            config.max_new_tokens, config.ignore_eos, config.do_sample = n, True, False

            def stream(token: int | list[int]) -> Any:
                got = token if isinstance(token, list) else [token]
                times.extend([time.perf_counter()] * len(got))
                out.extend(got)
                return ov_genai.StreamingStatus.RUNNING

            pipe.generate(tensor, config, stream)
            return times, out, len(out)
        config = pipe.get_config()
        config.max_new_tokens, config.ignore_eos, config.do_sample = n, True, False
        if variant == "prompt-lookup":
            config.num_assistant_tokens, config.max_ngram_size = 5, 3
        handle = pipe.add_request(0, tensor, config)
        while pipe.has_non_finished_requests():
            pipe.step()
            steps += 1
            if handle.can_read():
                for output in handle.read().values():
                    times.extend([time.perf_counter()] * len(output.generated_ids))
                    out.extend(output.generated_ids)
        return times, out, steps

    run(1)
    return _summary(variant, [_timed(lambda: run(max_tokens)) for _ in range(3)], load_s, load_cpu, len(ids))


def _timed(go: Any) -> dict[str, Any]:
    submitted, cpu = time.perf_counter(), time.process_time()
    times, out, steps = go()
    decode = (len(times) - 1) / max(1e-9, times[-1] - times[0])
    return {
        "tok_s": decode,
        "ttft_ms": (times[0] - submitted) * 1000,
        "cpu_ms_per_token": (time.process_time() - cpu) * 1000 / max(1, len(out)),
        "tokens": len(out),
        "steps": steps,
        "head": out[:12],
    }


def _summary(variant: str, runs: list[dict[str, Any]], load_s: float, load_cpu: float, prompt: int) -> dict[str, Any]:
    best = max(runs, key=lambda r: r["tok_s"])
    return {
        "variant": variant,
        "prompt_tokens": prompt,
        "load_s": round(load_s, 2),
        "load_cpu_s": round(load_cpu, 2),
        "tok_s": round(best["tok_s"], 1),
        "runs_tok_s": [round(r["tok_s"], 1) for r in runs],
        "ttft_ms": round(best["ttft_ms"], 1),
        "cpu_ms_per_token": round(min(r["cpu_ms_per_token"] for r in runs), 2),
        "steps_per_token": round(best["steps"] / max(1, best["tokens"]), 2),
        "head": best["head"],
        "loadavg": round(os.getloadavg()[0], 2),
    }


def _measure_ort(path: Path, max_tokens: int, started: float, cpu: float) -> dict[str, Any]:
    import numpy as np
    import onnxruntime_genai as og

    model = og.Model(str(path))
    load_s, load_cpu = time.perf_counter() - started, time.process_time() - cpu
    tokenizer = og.Tokenizer(model)
    ids = tokenizer.encode(f"<|im_start|>user\n{PROMPT}<|im_end|>\n<|im_start|>assistant\n").tolist()

    def run(n: int) -> tuple[list[float], list[int], int]:
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=len(ids) + n, min_length=len(ids) + n)
        generator = og.Generator(model, params)
        generator.append_tokens(np.array([ids], dtype=np.int32))
        times: list[float] = []
        out: list[int] = []
        while not generator.is_done() and len(out) < n:
            generator.generate_next_token()
            times.append(time.perf_counter())
            out.append(int(generator.get_next_tokens()[0]))
        return times, out, len(out)

    run(2)
    return _summary("ort-int4", [_timed(lambda: run(max_tokens)) for _ in range(3)], load_s, load_cpu, len(ids))


def main(argv: list[str] | None = None) -> int:
    """Build the variants (once), then measure each in a child process, then fidelity."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("/tmp/engine-paths"), help="where the variants are built")
    parser.add_argument("--only", nargs="*", choices=VARIANTS, help="measure only these variants")
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--one", help="internal: measure one variant in this process")
    parser.add_argument("--no-fidelity", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/engine_paths.json"))
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args.work, args.max_tokens)), flush=True)
        return 0
    variants = args.only or list(VARIANTS)
    build(variants, args.work)
    results: dict[str, Any] = {"command": "python -m benchmarks.engine_paths " + " ".join(argv or sys.argv[1:])}
    for variant in variants:
        cmd = [sys.executable, "-m", "benchmarks.engine_paths", "--one", variant, "--work", str(args.work)]
        proc = subprocess.run([*cmd, "--max-tokens", str(args.max_tokens)], capture_output=True, text=True, check=False)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        results[variant] = json.loads(lines[-1]) if lines else {"error": proc.stderr.strip().splitlines()[-1:]}
        print(json.dumps(results[variant]), flush=True)
    if not args.no_fidelity:
        results["fidelity"] = fidelity([v for v in variants if v not in ("gguf", "sdpa", "prompt-lookup")], args.work)
        print(json.dumps(results["fidelity"], indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
