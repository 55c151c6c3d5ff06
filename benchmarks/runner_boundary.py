"""What the runner process boundary costs per token: the same backend in-process vs in a worker.

Both sides run Hearth's own `OpenVINOBackend` with the same options and the same step loop (submit,
then `step()` until every request is done); the worker side adds the pipe, msgpack and the reader
thread of `adapters/worker.py`. No HTTP. Rounds alternate in-process and worker so that a noisy
machine shifts both alike. The server-side CPU per token (the reader thread, dispatch, asyncio
queues) is the part of the boundary that load on the machine does not blur.

    .venv/bin/python -m benchmarks.runner_boundary --rounds 9 --concurrency 1 8 --max-tokens 128
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from adapters.base import Delta, EngineOptions, GenerationRequest, SamplingParams
from adapters.chat_engine import ChatEngine
from adapters.openvino import OpenVINOBackend
from benchmarks.raw_engine import prompt_text
from hub.models import DEFAULT_MODEL_ID, resolve_model


def _requests(concurrency: int, max_tokens: int, next_id: Callable[[], int]) -> list[GenerationRequest]:
    params = SamplingParams(max_tokens=max_tokens, temperature=0, ignore_eos=True)
    return [GenerationRequest(request_id=next_id(), params=params, prompt=prompt_text(i)) for i in range(concurrency)]


def in_process(backend: OpenVINOBackend, concurrency: int, max_tokens: int) -> tuple[float, int]:
    """Seconds and tokens for `concurrency` requests stepped in this process."""
    ids = iter(range(10**9))
    started = time.perf_counter()
    tokens = 0
    for request in _requests(concurrency, max_tokens, lambda: next(ids)):
        backend.submit(request)
    while backend.has_work():
        tokens += sum(d.tokens for d in backend.step())
    return time.perf_counter() - started, tokens


async def in_worker(engine: ChatEngine, concurrency: int, max_tokens: int) -> tuple[float, int, float]:
    """Seconds, tokens, and CPU seconds this (the server's) process spent, for `concurrency`
    requests through the worker process."""

    async def one(request: GenerationRequest) -> int:
        deltas: list[Delta] = [d async for d in engine.generate(request)]
        return sum(d.tokens for d in deltas)

    started, cpu = time.perf_counter(), time.process_time()
    counts = await asyncio.gather(*(one(r) for r in _requests(concurrency, max_tokens, engine.next_request_id)))
    return time.perf_counter() - started, sum(counts), time.process_time() - cpu


async def main_async(args: argparse.Namespace) -> None:
    """Alternate in-process and worker rounds at every concurrency; print a markdown table."""
    spec = resolve_model(DEFAULT_MODEL_ID, None)
    options = EngineOptions(context_length=1024)
    backend = OpenVINOBackend(spec, options)
    engine = await ChatEngine.start(spec, options)
    try:
        in_process(backend, 1, 8)  # warm both
        await in_worker(engine, 1, 8)
        print("| concurrency | in-process ms/token | worker ms/token | boundary cost | server-side CPU µs/token |")
        print("|---:|---:|---:|---:|---:|")
        for concurrency in args.concurrency:
            raw: list[float] = []
            worker: list[float] = []
            server_cpu: list[float] = []
            for _ in range(args.rounds):
                seconds, tokens = in_process(backend, concurrency, args.max_tokens)
                raw.append(seconds * 1000 / tokens)
                seconds, tokens, cpu = await in_worker(engine, concurrency, args.max_tokens)
                worker.append(seconds * 1000 / tokens)
                server_cpu.append(cpu * 1e6 / tokens)
            r, w = statistics.median(raw), statistics.median(worker)
            c = statistics.median(server_cpu)
            print(f"| {concurrency} | {r:.2f} | {w:.2f} | {100 * (w - r) / r:+.1f}% | {c:.0f} |")
    finally:
        backend.close()
        await engine.close()


def main() -> None:
    """Parse flags and run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--max-tokens", type=int, default=128)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
