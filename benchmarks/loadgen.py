"""Load generator for OpenAI-compatible `/v1/chat/completions` streaming endpoints.

Closed loop: at concurrency C, C clients each send their next request as soon as the previous one
ends, max(4, 2*C) requests per level, each level bounded in time. Per request it records TTFT
(first content chunk), TPOT = (last content chunk - first) / (completion_tokens - 1) and the gaps
between content chunks (ITL); per level the aggregate output tok/s over the level's wall time.
Tokens are counted from the `include_usage` chunk's `completion_tokens`.

`--raw` measures the same on OpenVINO GenAI's ContinuousBatchingPipeline in this process, built
exactly as Hearth builds it (`adapters.openvino_pipelines.create_pipeline`), to compute HTTP overhead.

    .venv/bin/python -m benchmarks.loadgen --url http://127.0.0.1:8080 --model smollm2-135m-instruct
    .venv/bin/python -m benchmarks.loadgen --raw
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import msgspec

from benchmarks.raw_engine import RawEngine, RequestTiming, default_model_path, project_pipeline, prompt_text
from benchmarks.stats import LevelResult, RssSampler, markdown_table, summarize

DEFAULT_LEVELS = (1, 4, 16, 64)


class _Delta(msgspec.Struct):
    content: str | None = None


class _Choice(msgspec.Struct):
    delta: _Delta | None = None


class _Usage(msgspec.Struct):
    completion_tokens: int = 0
    prompt_tokens: int = 0


class _Chunk(msgspec.Struct):
    choices: list[_Choice] = msgspec.field(default_factory=list)
    usage: _Usage | None = None


_decode_chunk = msgspec.json.Decoder(_Chunk).decode


def requests_for(concurrency: int) -> int:
    """How many requests a level sends: twice its concurrency, at least 4."""
    return max(4, 2 * concurrency)


def chat_body(model: str, index: int, max_tokens: int) -> dict[str, Any]:
    """A streaming chat request that always generates exactly `max_tokens` tokens."""
    return {
        "model": model,
        "messages": [{"role": "user", "content": prompt_text(index)}],
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "temperature": 0,
    }


async def stream_one(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> RequestTiming:
    """Send one streaming request and time its content chunks; raises on any failure."""
    started = time.perf_counter()
    chunk_times: list[float] = []
    usage: _Usage | None = None
    async with client.stream("POST", url, json=body) as response:
        if response.status_code != 200:
            text = (await response.aread()).decode(errors="replace")
            raise RuntimeError(f"HTTP {response.status_code}: {text[:200]}")
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            now = time.perf_counter() - started
            chunk = _decode_chunk(data)
            if chunk.usage is not None:
                usage = chunk.usage
            if any(c.delta is not None and c.delta.content for c in chunk.choices):
                chunk_times.append(now)
    if not chunk_times:
        raise RuntimeError("no content chunk in the stream")
    tokens = usage.completion_tokens if usage is not None and usage.completion_tokens else len(chunk_times)
    return RequestTiming(
        ttft=chunk_times[0],
        latency=chunk_times[-1],
        tokens=tokens,
        prompt_tokens=usage.prompt_tokens if usage is not None else None,
        token_times=chunk_times,
    )


async def run_http_level(
    url: str,
    model: str,
    concurrency: int,
    max_tokens: int,
    deadline_s: float,
    label: str,
    api_key: str | None = None,
) -> LevelResult:
    """One closed-loop level against `url` (the full /v1/chat/completions URL)."""
    n_requests = requests_for(concurrency)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n_requests):
        queue.put_nowait(i)
    timings: list[RequestTiming] = []
    errors: list[str] = []
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=concurrency + 4, max_keepalive_connections=concurrency + 4)
    timeout = httpx.Timeout(connect=10.0, read=max(60.0, deadline_s), write=10.0, pool=deadline_s)

    async def client_loop(client: httpx.AsyncClient) -> None:
        while True:
            try:
                index = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                timings.append(await stream_one(client, url, chat_body(model, index, max_tokens)))
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:300])

    async with httpx.AsyncClient(limits=limits, timeout=timeout, headers=headers) as client:
        started = time.perf_counter()
        workers = [asyncio.create_task(client_loop(client)) for _ in range(concurrency)]
        _done, still_running = await asyncio.wait(workers, timeout=deadline_s)
        for task in still_running:
            task.cancel()
        await asyncio.gather(*still_running, return_exceptions=True)
        wall = time.perf_counter() - started
    if still_running:
        errors.append(f"level deadline of {deadline_s:.0f} s reached; {len(still_running)} clients cancelled")
    return summarize(label, concurrency, n_requests, timings, wall, errors)


async def warm_up_http(url: str, model: str, api_key: str | None = None) -> float:
    """One short request so that lazy loading and compilation are not measured; returns seconds."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    started = time.perf_counter()
    async with httpx.AsyncClient(timeout=120.0, headers=headers) as client:
        await stream_one(client, url, chat_body(model, 999, 16))
    return time.perf_counter() - started


async def run_http(
    url: str,
    model: str,
    levels: tuple[int, ...],
    max_tokens: int,
    deadline_s: float,
    label: str,
    api_key: str | None = None,
) -> list[LevelResult]:
    """Warm up once, then run every level in order."""
    await warm_up_http(url, model, api_key)
    results: list[LevelResult] = []
    for level in levels:
        result = await run_http_level(url, model, level, max_tokens, deadline_s, label, api_key)
        print(f"[{label}] c={level}: {result.agg_tok_s} tok/s, {result.completed}/{result.requests}", file=sys.stderr)
        results.append(result)
    return results


def run_raw(
    levels: tuple[int, ...],
    max_tokens: int,
    deadline_s: float,
    label: str = "raw engine",
    engine_overrides: dict[str, Any] | None = None,
) -> tuple[list[LevelResult], dict[str, Any]]:
    """The same levels on the pipeline in this process; also returns load time and peak RSS."""
    with RssSampler(os.getpid()) as rss:
        started = time.perf_counter()
        engine = RawEngine(project_pipeline(str(default_model_path()), engine_overrides))
        load_s = time.perf_counter() - started
        engine.run_closed_loop(1, 1, 16)  # warm-up, as for HTTP targets
        results: list[LevelResult] = []
        for level in levels:
            n = requests_for(level)
            timings, wall = engine.run_closed_loop(n, level, max_tokens, deadline_s)
            errors = [] if len(timings) == n else [f"{n - len(timings)} requests unfinished at the deadline"]
            result = summarize(label, level, n, timings, wall, errors)
            print(f"[{label}] c={level}: {result.agg_tok_s} tok/s, {result.completed}/{n}", file=sys.stderr)
            results.append(result)
    return results, {"load_s": round(load_s, 3), **rss.report()}


def main(argv: list[str] | None = None) -> int:
    """Command line: one target (an HTTP endpoint or the raw engine), JSON out, markdown to stdout."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="server base URL, e.g. http://127.0.0.1:8080")
    target.add_argument("--raw", action="store_true", help="measure the in-process engine instead")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--label", help="name of the target in the results")
    parser.add_argument("--levels", type=int, nargs="+", default=list(DEFAULT_LEVELS))
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--deadline", type=float, default=180.0, help="seconds per level at most")
    parser.add_argument("--api-key", default=os.environ.get("OPENAI_API_KEY"))
    parser.add_argument("--server-pid", type=int, help="sample this process tree's RSS during the run")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args(argv)
    levels = tuple(args.levels)
    extra: dict[str, Any] = {}
    if args.raw:
        results, extra = run_raw(levels, args.max_tokens, args.deadline, args.label or "raw engine")
    else:
        url = args.url.rstrip("/") + "/v1/chat/completions"
        label = args.label or args.url
        coro = run_http(url, args.model, levels, args.max_tokens, args.deadline, label, args.api_key)
        if args.server_pid:
            with RssSampler(args.server_pid) as rss:
                results = asyncio.run(coro)
            extra = rss.report()
        else:
            results = asyncio.run(coro)
    table = markdown_table(results)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"max_tokens": args.max_tokens, "levels": msgspec.to_builtins(results), **extra}
        args.out.write_text(json.dumps(payload, indent=2))
    print(table)
    return 0 if all(r.completed for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
