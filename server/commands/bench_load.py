"""What `hearth bench` measures one configuration with: a `hearth serve` of its own, a fixed prompt
set, one stream and then N streams of fixed-length answers (`ignore_eos`), and the server's memory.

Each configuration runs in a fresh server process (engine settings apply at load), on a free port
and a scratch home that shares the real home's models, so nothing a user runs is disturbed.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import msgspec
import psutil

PROMPTS = (
    "Explain what a hearth is in two sentences.",
    "Write a short list of three fruits and their colours.",
    "Summarize: the quick brown fox jumps over the lazy dog, again and again, all day long.",
    "What is 12 times 12? Answer, then explain the method.",
)


class Measure(msgspec.Struct, frozen=True, kw_only=True):
    """One run of one configuration."""

    tokens_per_s_1: float
    tokens_per_s_n: float
    ttft_p50_ms: float
    ttft_p90_ms: float
    peak_rss_mb: float


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _stream(client: httpx.AsyncClient, model: str, prompt: str, max_tokens: int) -> tuple[float, int]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    first: float | None = None
    tokens = 0
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = msgspec.json.decode(line[6:])
            if first is None and chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                first = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = int(chunk["usage"]["completion_tokens"])
    return (first if first is not None else time.perf_counter() - started) * 1000, tokens


async def _load(base: str, model: str, streams: int, rounds: int, max_tokens: int) -> tuple[float, list[float]]:
    """Aggregate tokens/s of `streams` concurrent streams over `rounds`, and every TTFT (ms)."""
    async with httpx.AsyncClient(base_url=base, timeout=300) as client:
        started = time.perf_counter()
        ttfts: list[float] = []
        tokens = 0
        for r in range(rounds):
            jobs = [_stream(client, model, PROMPTS[(r + i) % len(PROMPTS)], max_tokens) for i in range(streams)]
            for ttft, count in await asyncio.gather(*jobs):
                ttfts.append(ttft)
                tokens += count
        return tokens / (time.perf_counter() - started), ttfts


def _tree_rss(pid: int) -> float:
    try:
        root = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20
    except psutil.Error:
        return 0.0


def measure(home: Path, model: str, flags: list[str], concurrency: int, max_tokens: int) -> Measure:
    """Start a server with `flags`, warm it, measure 1 and `concurrency` streams, stop it."""
    port = _free_port()
    scratch = Path(tempfile.mkdtemp(prefix="hearth-bench-"))
    if (home / "models").is_dir():
        (scratch / "models").symlink_to(home / "models")
    command = [sys.executable, "-m", "server.cli", "serve", "--home", str(scratch), "--port", str(port)]
    command += ["--model", model, "--no-audit", *flags]
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEARTH_")}
    log = scratch / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log)
        asyncio.run(_load(base, model, 1, 1, 8))  # warm-up: load, first compile
        peak = _tree_rss(process.pid)
        single, _ = asyncio.run(_load(base, model, 1, 2, max_tokens))
        peak = max(peak, _tree_rss(process.pid))
        many, ttfts = asyncio.run(_load(base, model, concurrency, 1, max_tokens))
        peak = max(peak, _tree_rss(process.pid))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(scratch)], check=False)
    ordered = sorted(ttfts)
    return Measure(
        tokens_per_s_1=single,
        tokens_per_s_n=many,
        ttft_p50_ms=statistics.median(ordered),
        ttft_p90_ms=ordered[min(len(ordered) - 1, math.ceil(0.9 * len(ordered)) - 1)],
        peak_rss_mb=peak,
    )


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = log.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the server exited ({process.returncode}): {error}")
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("the server did not become healthy")
