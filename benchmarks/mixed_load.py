"""Mixed load on several services at once: 32 streaming clients, mixed priorities, for a while.

Starts `hearth serve` with three services of the default model (three runner processes):
`chat` (priority 10, short answers), `code` (priority 5) and `batch` (priority 0, long answers).
Clients are spread over them; every fourth request overrides its priority. Every request must
succeed; the whole process tree's memory is sampled to show it stays flat.

    .venv/bin/python -m benchmarks.mixed_load --duration 600 --clients 32
"""

from __future__ import annotations

import argparse
import asyncio
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import httpx

from benchmarks.loadgen import chat_body, stream_one
from benchmarks.run import first_answer, free_port, stop
from benchmarks.stats import RssSampler, percentile

SERVICES = """\
services:
  - name: chat
    priority: 10
    preload: true
  - name: code
    priority: 5
    preload: true
  - name: batch
    priority: 0
    preload: true
"""
# (service, max_tokens, share of clients)
MIX = [("chat", 32, 0.4), ("code", 64, 0.3), ("batch", 128, 0.3)]


def _plan(clients: int) -> list[tuple[str, int]]:
    plan: list[tuple[str, int]] = []
    for service, tokens, share in MIX:
        plan += [(service, tokens)] * round(clients * share)
    return (plan + [MIX[0][:2]] * clients)[:clients]


async def _client(
    url: str, service: str, tokens: int, index: int, deadline: float, stats: dict[str, list[float]]
) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(300.0)) as client:
        n = 0
        while time.monotonic() < deadline:
            body = chat_body(service, index * 1000 + n, tokens)
            if n % 4 == 3:
                body["priority"] = 20 if service == "batch" else -5
            n += 1
            try:
                timing = await stream_one(client, url, body)
            except Exception as exc:  # every failure is counted and shown
                stats[f"{service}:failed"].append(1)
                print(f"failed ({service}): {exc}", file=sys.stderr)
                continue
            stats[f"{service}:ttft"].append(timing.ttft)
            stats[f"{service}:tokens"].append(timing.tokens)
            stats[f"{service}:latency"].append(timing.latency)


async def _load(url: str, clients: int, duration: float) -> dict[str, list[float]]:
    stats: dict[str, list[float]] = defaultdict(list)
    deadline = time.monotonic() + duration
    await asyncio.gather(*(_client(url, s, t, i, deadline, stats) for i, (s, t) in enumerate(_plan(clients))))
    return stats


def main() -> int:
    """Run the mixed load and print a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=32)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="hearth-mixed-"))
    (home / "services.yaml").write_text(SERVICES)
    port = free_port()
    hearth = Path(sys.executable).with_name("hearth")
    command = [
        str(hearth),
        "serve",
        "--port",
        str(port),
        "--home",
        str(home),
        "--services",
        str(home / "services.yaml"),
    ]
    base = f"http://127.0.0.1:{port}"
    with (home / "server.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        if first_answer(base, "chat", proc, 300) is None:
            print(f"hearth did not answer; see {home / 'server.log'}", file=sys.stderr)
            return 1
        memory: list[tuple[float, float]] = []
        with RssSampler(proc.pid, interval_s=5.0) as sampler:
            started = time.monotonic()

            async def sample_memory() -> None:
                while time.monotonic() - started < args.duration:
                    memory.append((time.monotonic() - started, sampler.sample()))
                    await asyncio.sleep(10)

            async def both() -> dict[str, list[float]]:
                sampling = asyncio.ensure_future(sample_memory())
                try:
                    return await _load(f"{base}/v1/chat/completions", args.clients, args.duration)
                finally:
                    sampling.cancel()

            stats = asyncio.run(both())
            elapsed = time.monotonic() - started
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
    finally:
        stop(proc)
    print(f"command: `{shlex.join(sys.argv)}` ({elapsed:.0f} s, {args.clients} clients)\n")
    print("| service | priority | requests | failed | tokens/s | TTFT p50 ms | TTFT p95 ms | latency p95 s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    priorities = {"chat": 10, "code": 5, "batch": 0}
    for service, _, _ in MIX:
        ttft = stats[f"{service}:ttft"]
        done = len(ttft)
        rate = sum(stats[f"{service}:tokens"]) / elapsed
        p50 = percentile(ttft, 50) * 1000 if ttft else 0.0
        p95 = percentile(ttft, 95) * 1000 if ttft else 0.0
        lat = percentile(stats[f"{service}:latency"], 95) if done else 0.0
        failed = len(stats[f"{service}:failed"])
        print(
            f"| {service} | {priorities[service]} | {done} | {failed} | {rate:.1f} | {p50:.0f} | {p95:.0f} "
            f"| {lat:.1f} |"
        )
    if memory:
        first, last = memory[min(1, len(memory) - 1)][1], memory[-1][1]
        peak = max(m for _, m in memory)
        print(
            f"\nprocess tree RSS: {first:.0f} MiB at t={memory[min(1, len(memory) - 1)][0]:.0f}s, "
            f"{last:.0f} MiB at t={memory[-1][0]:.0f}s, peak {peak:.0f} MiB"
        )
        print("samples (s, MiB): " + ", ".join(f"{t:.0f}:{m:.0f}" for t, m in memory))
    crashes = [
        line
        for line in metrics.splitlines()
        if line.startswith(("hearth_runner_crashes_total", "hearth_model_evictions_total"))
    ]
    print("\n" + "\n".join(crashes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
