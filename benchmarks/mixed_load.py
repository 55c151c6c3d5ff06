"""Mixed load on several services at once: 32 streaming clients, mixed priorities, for a while.

Starts `hearth serve` with three services of the default model (three runner processes):
`chat` (priority 10, short answers), `code` (priority 5) and `batch` (priority 0, long answers).
Clients are spread over them; every fourth request overrides its priority. `--device-slots` limits
the requests running at once on the device, so that requests queue and priorities decide who runs
next. Every request must succeed; the memory of the server and of each runner is sampled to show
that it levels off once the runners' KV caches have filled.

    .venv/bin/python -m benchmarks.mixed_load --duration 600 --clients 32 --kv-cache-gb 0.25 --device-slots 8
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
from typing import NamedTuple

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


PRIORITIES = {"chat": 10, "code": 5, "batch": 0}
# What every fourth request of a service asks for instead of the service's priority.
OVERRIDES = {"chat": -5, "code": -5, "batch": 20}


async def _client(
    url: str, service: str, tokens: int, index: int, deadline: float, stats: dict[str, list[float]]
) -> None:
    async with httpx.AsyncClient(timeout=httpx.Timeout(600.0)) as client:
        n = 0
        while time.monotonic() < deadline:
            body = chat_body(service, index * 1000 + n, tokens)
            priority = PRIORITIES[service]
            if n % 4 == 3:
                body["priority"] = priority = OVERRIDES[service]
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
            stats[f"priority {priority}:ttft"].append(timing.ttft)


async def _load(url: str, clients: int, duration: float) -> dict[str, list[float]]:
    stats: dict[str, list[float]] = defaultdict(list)
    deadline = time.monotonic() + duration
    await asyncio.gather(*(_client(url, s, t, i, deadline, stats) for i, (s, t) in enumerate(_plan(clients))))
    return stats


class MemorySample(NamedTuple):
    """One sample of the process tree: seconds since the load began, MiB in all and per process."""

    at: float
    tree_mib: float
    by_pid: dict[int, float]


def _service_table(stats: dict[str, list[float]], elapsed: float) -> list[str]:
    rows = [
        "| service | priority | requests | failed | tokens/s | TTFT p50 ms | TTFT p95 ms | latency p95 s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for service, _, _ in MIX:
        ttft = stats[f"{service}:ttft"]
        rate = sum(stats[f"{service}:tokens"]) / elapsed
        latency = percentile(stats[f"{service}:latency"], 95) if ttft else 0.0
        rows.append(
            f"| {service} | {PRIORITIES[service]} | {len(ttft)} | {len(stats[f'{service}:failed'])} | {rate:.1f} "
            f"| {percentile(ttft, 50) * 1000 if ttft else 0:.0f} | {percentile(ttft, 95) * 1000 if ttft else 0:.0f} "
            f"| {latency:.1f} |"
        )
    return rows


def _priority_table(stats: dict[str, list[float]]) -> list[str]:
    """TTFT by the priority a request ran at: with a device limit it is mostly time in the queue."""
    rows = ["| request priority | requests | TTFT p50 ms | TTFT p95 ms |", "|---:|---:|---:|---:|"]
    levels = sorted({*PRIORITIES.values(), *OVERRIDES.values()}, reverse=True)
    for level in levels:
        ttft = stats.get(f"priority {level}:ttft", [])
        if ttft:
            rows.append(
                f"| {level} | {len(ttft)} | {percentile(ttft, 50) * 1000:.0f} | {percentile(ttft, 95) * 1000:.0f} |"
            )
    return rows


def _memory_report(samples: list[MemorySample], server_pid: int) -> list[str]:
    """Per process at a few points in time, and how much the tree grew in the second half."""
    if len(samples) < 2:
        return []
    pids = sorted({pid for s in samples for pid in s.by_pid}, key=lambda pid: (pid != server_pid, pid))
    points = sorted({round(i * (len(samples) - 1) / 6) for i in range(7)})
    header = "| process | " + " | ".join(f"t={samples[i].at:.0f}s" for i in points) + " |"
    rows = [header, "|---|" + "---:|" * len(points)]
    for pid in pids:
        name = "server" if pid == server_pid else f"runner {pid}"
        cells = " | ".join(f"{samples[i].by_pid.get(pid, 0.0):.0f}" for i in points)
        rows.append(f"| {name} | {cells} |")
    rows.append("| **tree** | " + " | ".join(f"**{samples[i].tree_mib:.0f}**" for i in points) + " |")
    half = samples[len(samples) // 2]
    last = samples[-1]
    growth = last.tree_mib - half.tree_mib
    rows.append(
        f"\nprocess tree RSS (MiB): {samples[0].tree_mib:.0f} at the start, {half.tree_mib:.0f} at t={half.at:.0f}s, "
        f"{last.tree_mib:.0f} at t={last.at:.0f}s, peak {max(s.tree_mib for s in samples):.0f}; "
        f"second half {growth:+.0f} MiB ({growth / half.tree_mib * 100:+.1f}%)"
    )
    rows.append("samples (s, MiB): " + ", ".join(f"{s.at:.0f}:{s.tree_mib:.0f}" for s in samples))
    return rows


def main() -> int:
    """Run the mixed load and print a markdown report."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=600.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--kv-cache-gb", type=float, default=1.0, help="KV cache of each runner")
    parser.add_argument("--device-slots", type=int, default=0, help="requests running at once (0: no limit)")
    parser.add_argument("--sample-s", type=float, default=10.0, help="seconds between memory samples")
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
        "--kv-cache-gb",
        str(args.kv_cache_gb),
        "--max-concurrency-per-device",
        str(args.device_slots),
    ]
    base = f"http://127.0.0.1:{port}"
    with (home / "server.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    try:
        if first_answer(base, "chat", proc, 300) is None:
            print(f"hearth did not answer; see {home / 'server.log'}", file=sys.stderr)
            return 1
        memory: list[MemorySample] = []
        sampler = RssSampler(proc.pid)
        started = time.monotonic()

        async def sample_memory() -> None:
            while time.monotonic() - started < args.duration:
                total = sampler.sample()
                memory.append(MemorySample(time.monotonic() - started, total, dict(sampler.last_by_pid)))
                await asyncio.sleep(args.sample_s)

        async def both() -> dict[str, list[float]]:
            sampling = asyncio.ensure_future(sample_memory())
            try:
                return await _load(f"{base}/v1/chat/completions", args.clients, args.duration)
            finally:
                sampling.cancel()

        stats = asyncio.run(both())
        elapsed = time.monotonic() - started
        total = sampler.sample()
        memory.append(MemorySample(elapsed, total, dict(sampler.last_by_pid)))
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
    finally:
        stop(proc)
    print(f"command: `{shlex.join(sys.argv)}` ({elapsed:.0f} s, {args.clients} clients)\n")
    print("\n".join(_service_table(stats, elapsed)) + "\n")
    print("\n".join(_priority_table(stats)) + "\n")
    print("\n".join(_memory_report(memory, proc.pid)))
    counters = ("hearth_runner_crashes_total", "hearth_model_evictions_total", "hearth_scheduler_events_total")
    print("\n" + "\n".join(line for line in metrics.splitlines() if line.startswith(counters)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
