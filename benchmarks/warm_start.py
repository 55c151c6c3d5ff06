"""Start-up to the first answer: `hearth serve` process start to the first answered chat.

For each configuration a fresh `$HEARTH_HOME` is started once (cold: nothing cached) and then
`--repeat` more times on the same home (warm: the second start and later), the configurations'
warm starts taking turns. A start ends when a 1-token chat completion is answered
(benchmarks.run's `first_answer`), then a 32-token chat is timed (`first_chat_s`: what a first real
question waits); the server is then stopped and the CPU seconds its process tree
used (user + system) are read, a figure that other processes on a loaded machine inflate far less
than wall time. The process tree's resident memory is sampled every 50 ms throughout; with
`--hold-s N` the server keeps answering 16-token chats for N seconds after its first answer (so
that the peak covers quick start's hand-over to the batching pipeline; the CPU seconds then include
those chats). Prints a markdown table for RESULTS.md.

    .venv/bin/python -m benchmarks.warm_start [--repeat 3] [--hold-s 12] [--configs ir gguf ir-no-quick-start ...]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

from benchmarks.run import REPO, first_answer, stop

# Label -> extra `hearth serve` flags.
CONFIGS: dict[str, list[str]] = {
    "ir": [],
    "gguf": ["--no-gguf-ir-cache"],
    "ir-no-preload-while-binding": ["--no-preload-while-binding"],
    "ir-no-quick-start": ["--no-quick-start"],
    "gguf-no-model-cache": ["--no-gguf-ir-cache", "--no-model-cache"],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class _PeakRSS:
    """The largest resident memory of a process tree, sampled every 50 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.peak = 0
        self._pid = pid
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            with contextlib.suppress(psutil.Error):
                root = psutil.Process(self._pid)
                tree = [root, *root.children(recursive=True)]
                total = 0
                for process in tree:
                    with contextlib.suppress(psutil.Error):
                        total += process.memory_info().rss
                self.peak = max(self.peak, total)

    def stop(self) -> float:
        """Stop sampling; the peak in MiB."""
        self._stop.set()
        self._thread.join()
        return round(self.peak / 2**20, 1)


def _hold(port: int, seconds: float) -> int:
    """Keep asking 16-token chats for `seconds`, 1.25 s apart: quick start builds the batching
    pipeline once nothing was asked for 1 s, so the build and the hand-over happen meanwhile; how
    many were answered."""
    body = {"model": "smollm2-135m-instruct", "messages": [{"role": "user", "content": "Tell me a joke."}]}
    deadline, answered = time.perf_counter() + seconds, 0
    with httpx.Client(timeout=60.0) as client:
        while time.perf_counter() < deadline:
            reply = client.post(f"http://127.0.0.1:{port}/v1/chat/completions", json={**body, "max_tokens": 16})
            answered += reply.status_code == 200
            time.sleep(1.25)
    return answered


def _first_chat(port: int) -> float:
    """Seconds of a 32-token chat right after the first answer: what a first real question
    waits for, including any first-inference cost the worker left out of its warm-up."""
    body = {
        "model": "smollm2-135m-instruct",
        "messages": [{"role": "user", "content": "Write two sentences about the sea and the wind."}],
        "max_tokens": 32,
        "temperature": 0,
    }
    started = time.perf_counter()
    httpx.post(f"http://127.0.0.1:{port}/v1/chat/completions", json=body, timeout=60.0).raise_for_status()
    return round(time.perf_counter() - started, 3)


def one_start(home: Path, flags: list[str], log_path: Path, hold_s: float = 0.0) -> dict[str, Any]:
    """Start hearth on `home`, time its first answer, then (`hold_s`) keep chatting while sampling
    the process tree's peak memory, and stop it; seconds, CPU seconds, peak MiB."""
    hearth = Path(os.environ.get("HEARTH_BIN", str(Path(sys.executable).with_name("hearth"))))
    port = _free_port()
    command = [str(hearth), "serve", "--host", "127.0.0.1", "--port", str(port), "--home", str(home), *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    cpu_before = _children_cpu()
    with log_path.open("ab") as log:
        started = time.perf_counter()
        proc = subprocess.Popen(
            command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        peak = _PeakRSS(proc.pid)
        answered = 0
        try:
            ready = first_answer(f"http://127.0.0.1:{port}", "smollm2-135m-instruct", proc, timeout_s=300.0)
            wall = time.perf_counter() - started if ready is not None else None
            chat = _first_chat(port) if ready is not None else None
            if ready is not None and hold_s > 0:
                answered = _hold(port, hold_s)
        finally:
            peak_mib = peak.stop()
            stop(proc)
    result: dict[str, Any] = {
        "wall_s": None if wall is None else round(wall, 3),
        "cpu_s": round(_children_cpu() - cpu_before, 2),
        "peak_rss_mib": peak_mib,
        "first_chat_s": chat,
    }
    if hold_s > 0:
        result["answered_while_held"] = answered
    return result


def summary(values: list[float]) -> str:
    """`min / median` of `values`."""
    return f"{min(values):.2f} / {statistics.median(values):.2f}" if values else "-"


def main() -> None:
    """Run every configuration and print the table."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warm_start")
    parser.add_argument("--repeat", type=int, default=3, help="warm starts per configuration")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument(
        "--hold-s", type=float, default=0.0, help="after the first answer, keep chatting this long (peak memory)"
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "out" / "warm_start.json")
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    with contextlib.ExitStack() as stack:
        homes = {
            label: Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"hearth-start-{label}-")))
            for label in args.configs
        }
        logs = {label: args.out.with_name(f"warm_start-{label}.log") for label in args.configs}
        for label in args.configs:
            logs[label].unlink(missing_ok=True)
            results[label] = {"flags": CONFIGS[label], "cold": one_start(homes[label], CONFIGS[label], logs[label])}
            results[label]["warm"] = []
        # Warm starts interleaved (a, b, a, b, ...), so that the machine's drift hits every
        # configuration alike.
        for _ in range(args.repeat):
            for label in args.configs:
                results[label]["warm"].append(one_start(homes[label], CONFIGS[label], logs[label], args.hold_s))
    for label in args.configs:
        print(label, json.dumps(results[label]), flush=True)
    args.out.write_text(json.dumps(results, indent=2))
    print(
        "\n| configuration | cold wall s | cold CPU s | warm wall s (min / median) | warm CPU s (min / median) "
        "| warm peak RSS MiB (max) | warm first 32-token chat s (median) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        walls = [w["wall_s"] for w in r["warm"] if w["wall_s"] is not None]
        cpus = [w["cpu_s"] for w in r["warm"]]
        chats = [w["first_chat_s"] for w in r["warm"] if w["first_chat_s"] is not None]
        print(
            f"| {label} (`{' '.join(r['flags']) or 'defaults'}`) | {r['cold']['wall_s']} | {r['cold']['cpu_s']} "
            f"| {summary(walls)} | {summary(cpus)} | {max(w['peak_rss_mib'] for w in r['warm'])} "
            f"| {statistics.median(chats) if chats else '-'} |"
        )


if __name__ == "__main__":
    main()
